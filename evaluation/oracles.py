"""Oracle upper bounds: the best a time-frequency mask can do, computed
from the true stems (after Vincent et al., "Oracle estimators for the
benchmarking of source separation algorithms", 2007, and sigsep's oracle
baselines).

With ``X`` the mixture STFT and ``S_j`` the true stem STFTs (Hann window,
``n_fft``, hop ``n_fft / 4``), each oracle estimates ``Ŝ_j`` and inverts it:

* ``irm``, ideal ratio mask: ``Ŝ_j = |S_j| / Σ_k |S_k| · X``;
* ``ibm``, ideal binary mask: ``Ŝ_j = 1[|S_j| / Σ_k |S_k| > 1/2] · X``
  (sigsep's IBM with α = 1, θ = 0.5);
* ``mpi``, true magnitude with the mixture's phase: ``Ŝ_j = |S_j| · X / |X|``;
* ``irm-complex``, a ratio mask of the target against the rest of the mix as
  one signal: ``Ŝ_j = |S_j| / (|S_j| + |Σ_{k≠j} S_k|) · X``. Where the other
  stems cancel each other, their sum is quieter than the sum of their
  magnitudes, so the target gets more of the mixture than under ``irm``;
  this is the two-source IRM of a target against its accompaniment.

No model can beat these by changing a mask of the mixture; the gap between a
method and them is what is left to gain.
"""

from __future__ import annotations

import numpy as np
import torch

from demix import TARGETS

ORACLES = ("irm", "ibm", "mpi", "irm-complex")
_EPSILON = 1e-10


def oracle_estimates(kind: str, mixture: np.ndarray, stems: dict[str, np.ndarray], n_fft: int = 4096) -> dict[str, np.ndarray]:
    """``mixture`` and each stem: (n_samples, n_channels). Returns estimates
    of the same shape for every target in ``stems``."""
    if kind not in ORACLES:
        raise ValueError(f"unknown oracle {kind!r}; choose one of {', '.join(ORACLES)}")
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def stft(audio: np.ndarray) -> torch.Tensor:
        return torch.stft(torch.from_numpy(audio.T.astype(np.float64)), n_fft, n_fft // 4, window=window,
                          center=True, return_complex=True)

    def istft(spectrogram: torch.Tensor) -> np.ndarray:
        wave = torch.istft(spectrogram, n_fft, n_fft // 4, window=window, center=True, length=len(mixture))
        return wave.numpy().T.astype(np.float32)

    mix = stft(mixture)
    targets = [target for target in TARGETS if target in stems]
    spectra = {target: stft(stems[target]) for target in targets}
    magnitudes = {target: spectrum.abs() for target, spectrum in spectra.items()}
    total = sum(magnitudes.values()) + _EPSILON
    estimates = {}
    for target in targets:
        if kind == "irm":
            estimate = magnitudes[target] / total * mix
        elif kind == "ibm":
            estimate = (magnitudes[target] / total > 0.5).to(mix.dtype) * mix
        elif kind == "irm-complex":
            rest = sum(spectrum for other, spectrum in spectra.items() if other != target).abs()
            estimate = magnitudes[target] / (magnitudes[target] + rest + _EPSILON) * mix
        else:
            estimate = magnitudes[target] * mix / (mix.abs() + _EPSILON)
        estimates[target] = istft(estimate)
    return estimates
