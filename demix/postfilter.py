"""Multichannel Wiener post-filter over blended estimates.

This is step 2 of Uhlich et al., "Improving music source separation based on
deep neural networks through data augmentation and network blending"
(ICASSP 2017): after the networks' estimates are blended (step 1), their
magnitude spectrograms ``v_j`` serve as source power estimates for a
multichannel Wiener filter on the mixture STFT ``x``. Each EM iteration
estimates per-source spatial covariances ``R_j(f)`` and refines

    ŝ_j(f, t) = v_j(f, t) R_j(f) [Σ_k v_k(f, t) R_k(f)]⁻¹ x(f, t),

so the four estimates sum to the mixture and each takes the mixture's phase.
The filter itself is :func:`openunmix.filtering.wiener`; this module only
brings waveforms to and from the STFT it expects (Open-Unmix's own 4096/1024
filterbank) and applies it in windows of frames, as Open-Unmix's Separator
does, so its memory does not grow with the input.
"""

from __future__ import annotations

import torch
from openunmix.filtering import wiener
from openunmix.transforms import ComplexNorm, make_filterbanks

N_FFT = 4096
HOP = 1024
#: Frames per independent Wiener window (Open-Unmix's default wiener_win_len),
#: here and in the Open-Unmix member's own filter.
WIENER_WINDOW_FRAMES = 300


class WienerPostFilter(torch.nn.Module):
    def __init__(self, iterations: int):
        super().__init__()
        if iterations < 1:
            raise ValueError("the post-filter needs at least one EM iteration")
        self.iterations = iterations
        self.stft, self.istft = make_filterbanks(n_fft=N_FFT, n_hop=HOP, center=True)
        self.norm = ComplexNorm()

    def forward(self, mix: torch.Tensor, estimates: torch.Tensor) -> torch.Tensor:
        """``mix``: (channels, frames); ``estimates``: (sources, channels, frames).
        Returns refined estimates of the same shape."""
        length = mix.shape[-1]
        mix, estimates = mix.contiguous(), estimates.contiguous()  # the STFT reshapes with view()
        with torch.no_grad():
            # (frames, bins, channels, 2) and (frames, bins, channels, sources)
            mix_stft = self.stft(mix[None])[0].permute(2, 1, 0, 3)
            magnitudes = self.norm(self.stft(estimates)).permute(3, 2, 1, 0)
            refined = torch.zeros(mix_stft.shape + (estimates.shape[0],), dtype=mix_stft.dtype, device=mix.device)
            for start in range(0, mix_stft.shape[0], WIENER_WINDOW_FRAMES):
                window = slice(start, start + WIENER_WINDOW_FRAMES)
                refined[window] = wiener(magnitudes[window], mix_stft[window], self.iterations)
            # back to (sources, channels, bins, frames, 2) for the inverse STFT
            return self.istft(refined.permute(4, 2, 1, 0, 3).contiguous(), length=length)
