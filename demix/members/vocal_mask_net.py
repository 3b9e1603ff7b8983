"""The Vocal Mask CNN: what it sees, what it predicts, and the network.

A vocals-only separator that predicts a binary mask one spectrogram frame
at a time, from the frames around it. Everything here is shared by the
member (:mod:`demix.members.vocal_mask`) and its training recipe
(:mod:`training.vocal_mask`), so the model is fed the same features in both.

Features, at 22,050 Hz with an STFT of 1024 (513 bins) and hop 256 (11.6 ms),
Hann window, centred frames:

* the mixture is downmixed to mono, optionally pre-emphasised
  (``y[n] = x[n] − 0.97 x[n−1]``, which lifts the highs the voice's
  consonants live in), and its magnitude ``|X|`` taken;
* level in dB with a Mel perceptual weighting:
  ``L = 20 log10(max(|X|, 1e-5)) + W(f) − ref_level_db``, where
  ``W(f) = 20 log10(1700 / (700 + f))`` is the slope of the Mel scale
  (``dm/df ∝ 1 / (700 + f)``) relative to 1 kHz: +7.7 dB at 0 Hz, 0 dB at
  1 kHz, −16.7 dB at 11 kHz, so bins weigh as the ear resolves them;
* normalised to 0–1: ``clip((L + 100) / 100, 0, 1)`` (100 dB of range
  below the reference level);
* an input example is a window of ``2 · context + 1`` frames (25: 12 before
  and 12 after the frame predicted, about 290 ms).

The target is the middle frame of the vocals' own features (the same
weighting and normalisation, no pre-emphasis) compared with
``mask_threshold``: 1 where the vocals are that loud, 0 elsewhere. The
network is trained with binary cross-entropy on those 513 bits.

Separation slides the window over the song (silence, 0, beyond its ends),
turns each frame's prediction into a mask — the soft probability, or hard
0/1 at one half — and applies it to the mixture's STFT (per channel, before
any weighting and normalisation), then inverts it with the mixture's phase.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn

SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
BINS = N_FFT // 2 + 1
PREEMPHASIS = 0.97
#: Levels this far below the reference level normalise to 0.
MIN_LEVEL_DB = -100.0
#: |X| below this counts as this (-100 dB), so the logarithm stays finite.
MAGNITUDE_FLOOR = 1e-5
#: The network pools the frequency axis to this many bands before its last layer.
POOLED_BANDS = 32
#: Masks are hard 0/1 above this probability.
HARD_MASK_AT = 0.5
MASK_MODES = ("soft", "hard")
#: Frames per forward pass when separating a song (bounds memory; the member's ``frames_per_pass``).
FRAMES_PER_PASS = 4096
#: Bounds of a settings file's values: beyond them a file would only exhaust memory.
MAX_CONTEXT_FRAMES, MAX_WIDTH = 256, 4096


@dataclass(frozen=True)
class VocalMaskSettings:
    """What a trained model was trained with: its features and its network
    (``vocal_mask.json``'s ``settings``). Sample rate and STFT are fixed."""

    context_frames: int = 12
    ref_level_db: float = 20.0
    preemphasis: bool = True
    mask_threshold: float = 0.8
    res_dims: tuple[int, ...] = (16, 32, 64)

    @property
    def window_frames(self) -> int:
        return 2 * self.context_frames + 1

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "res_dims": list(self.res_dims), "sample_rate": SAMPLE_RATE, "n_fft": N_FFT,
                "hop": HOP}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "VocalMaskSettings":
        """Raises ValueError saying what is missing or wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"settings are a {type(data).__name__}, not a table of values")
        for key, fixed in (("sample_rate", SAMPLE_RATE), ("n_fft", N_FFT), ("hop", HOP)):
            if data.get(key) != fixed:
                raise ValueError(f"{key} is {data.get(key)!r}; the Vocal Mask CNN runs at {key} {fixed}")
        try:
            settings = cls(context_frames=int(data["context_frames"]), ref_level_db=float(data["ref_level_db"]),
                           preemphasis=bool(data["preemphasis"]), mask_threshold=float(data["mask_threshold"]),
                           res_dims=tuple(int(width) for width in data["res_dims"]))
        except KeyError as missing:
            raise ValueError(f"no {missing.args[0]}") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"a setting of the wrong type ({error})") from None
        if not 0 <= settings.context_frames <= MAX_CONTEXT_FRAMES or not settings.res_dims \
                or not 1 <= min(settings.res_dims) <= max(settings.res_dims) <= MAX_WIDTH:
            raise ValueError(f"context_frames must be in [0, {MAX_CONTEXT_FRAMES}] and res_dims widths in "
                             f"[1, {MAX_WIDTH}]")
        VocalMaskCNN.head_frames(settings.res_dims, settings.context_frames)  # the stages fit the context
        return settings


# -- features ------------------------------------------------------------------------------------

def stft(wave: torch.Tensor) -> torch.Tensor:
    """(..., samples) -> complex (..., BINS, frames): Hann window, centred frames."""
    shape = wave.shape
    spectrum = torch.stft(wave.reshape(-1, shape[-1]), N_FFT, HOP, window=torch.hann_window(N_FFT, device=wave.device),
                          center=True, return_complex=True)
    return spectrum.reshape(*shape[:-1], *spectrum.shape[-2:])


def istft(spectrum: torch.Tensor, length: int) -> torch.Tensor:
    shape = spectrum.shape
    wave = torch.istft(spectrum.reshape(-1, *shape[-2:]), N_FFT, HOP,
                       window=torch.hann_window(N_FFT, device=spectrum.device), center=True, length=length)
    return wave.reshape(*shape[:-2], length)


def mel_weighting_db(device=None) -> torch.Tensor:
    """W(f) of every bin, in dB (the module's docstring)."""
    frequencies = torch.linspace(0, SAMPLE_RATE / 2, BINS, device=device)
    return 20 * torch.log10(1700.0 / (700.0 + frequencies))


def normalised_level(magnitude: torch.Tensor, settings: VocalMaskSettings) -> torch.Tensor:
    """(..., BINS, frames) magnitudes -> weighted, normalised levels in [0, 1]."""
    level = (20 * torch.log10(magnitude.clamp_min(MAGNITUDE_FLOOR)) + mel_weighting_db(magnitude.device)[:, None]
             - settings.ref_level_db)
    return ((level - MIN_LEVEL_DB) / -MIN_LEVEL_DB).clamp(0.0, 1.0)


def mixture_features(mixture: torch.Tensor, settings: VocalMaskSettings) -> torch.Tensor:
    """(batch, channels, samples) at SAMPLE_RATE -> (batch, BINS, frames)."""
    mono = mixture.mean(dim=1)
    if settings.preemphasis:
        mono = torch.cat([mono[:, :1], mono[:, 1:] - PREEMPHASIS * mono[:, :-1]], dim=1)
    return normalised_level(stft(mono).abs(), settings)


def vocals_mask(vocals: torch.Tensor, settings: VocalMaskSettings) -> torch.Tensor:
    """(batch, channels, samples) vocals -> the 0/1 target of every frame, (batch, BINS, frames)."""
    level = normalised_level(stft(vocals.mean(dim=1)).abs(), settings)
    return (level > settings.mask_threshold).to(vocals.dtype)


def window_centres(frames: int, settings: VocalMaskSettings, stride: int = 1) -> slice:
    """Of the predictions the network makes over ``frames`` frames (one per
    window that has its whole context: ``frames − 2·context``), those centred
    on every ``stride``-th frame, as a slice of its output."""
    return slice(0, max(frames - 2 * settings.context_frames, 0), stride)


# -- the network ---------------------------------------------------------------------------------

class ResidualUnit(nn.Module):
    """Two 3×3 convolutions with batch norm and a skip connection. Frequency
    is padded and halved (stride 2); time is not padded, so the unit's output
    is 4 frames shorter and each output frame sees only the 5 input frames
    around it (the skip is cropped to match)."""

    TIME_LOST = 4

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, (2, 1), padding=(1, 0), bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, padding=(1, 0), bias=False),
            nn.BatchNorm2d(channels_out),
        )
        self.skip = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, (2, 1), bias=False),
                                  nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        crop = self.TIME_LOST // 2
        return torch.relu(self.body(x) + self.skip(x[..., crop:-crop]))


class VocalMaskCNN(nn.Module):
    """Spectrogram windows -> logits of the middle frame's mask.

    Input (n, 1, BINS, frames), output (n, BINS, frames − 2·context): output
    frame ``t`` is the prediction for input frame ``t + context`` from the
    ``2·context + 1`` frames around it and nothing else. On one window
    (``frames`` = window_frames) it is one prediction; on a whole song it is
    the prediction of every window at once, computed without repeating the
    work windows share (every layer is a convolution that is not padded in time).

    A 3×3 convolution to ``res_dims[0]`` channels, one residual unit per
    width of ``res_dims`` (each halving the frequency axis), a 1×1
    convolution to REDUCED_CHANNELS, the frequency axis pooled to
    POOLED_BANDS bands, and a last layer over the frames of context left
    (a convolution in time) to the 513 bins."""

    REDUCED_CHANNELS = 8

    def __init__(self, res_dims: tuple[int, ...], context_frames: int):
        super().__init__()
        head_frames = self.head_frames(res_dims, context_frames)
        self.stem = nn.Sequential(nn.Conv2d(1, res_dims[0], 3, padding=(1, 0), bias=False),
                                  nn.BatchNorm2d(res_dims[0]), nn.ReLU(inplace=True))
        widths = (res_dims[0], *res_dims)
        self.stages = nn.Sequential(*(ResidualUnit(widths[i], widths[i + 1]) for i in range(len(res_dims))))
        self.reduce = nn.Sequential(nn.Conv2d(res_dims[-1], self.REDUCED_CHANNELS, 1), nn.ReLU(inplace=True),
                                    nn.AdaptiveAvgPool2d((POOLED_BANDS, None)))
        self.head = nn.Conv1d(self.REDUCED_CHANNELS * POOLED_BANDS, BINS, head_frames)

    @staticmethod
    def head_frames(res_dims: tuple[int, ...], context_frames: int) -> int:
        """The frames of context the last layer sees; ValueError when the stages leave none."""
        frames = 2 * context_frames + 1 - 2 - ResidualUnit.TIME_LOST * len(res_dims)
        if frames < 1:
            raise ValueError(f"{len(res_dims)} residual stages need more than {context_frames} frames of context "
                             f"on each side (the first layer uses 1, each stage {ResidualUnit.TIME_LOST // 2})")
        return frames

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.stages(self.stem(spectrogram)))  # (n, REDUCED, POOLED_BANDS, frames')
        return self.head(x.flatten(1, 2))


def new_network(settings: VocalMaskSettings) -> VocalMaskCNN:
    return VocalMaskCNN(settings.res_dims, settings.context_frames)


# -- separating ----------------------------------------------------------------------------------

def frame_logits(network: VocalMaskCNN, features: torch.Tensor, settings: VocalMaskSettings,
                 frames_per_pass: int = FRAMES_PER_PASS) -> torch.Tensor:
    """(BINS, frames) features of a whole song -> (BINS, frames) logits, one
    window per frame (silence, 0, beyond the song's ends), ``frames_per_pass``
    frames per forward pass to bound memory."""
    context = settings.context_frames
    padded = nn.functional.pad(features, (context, context))
    frames = features.shape[-1]
    parts = [network(padded[None, None, :, first:first + frames_per_pass + 2 * context])[0]
             for first in range(0, frames, frames_per_pass)]
    return torch.cat(parts, dim=-1)


def separate_vocals(network: VocalMaskCNN, mixture: torch.Tensor, settings: VocalMaskSettings,
                    mask_at_eval: str = "soft", frames_per_pass: int = FRAMES_PER_PASS) -> torch.Tensor:
    """(channels, samples) at SAMPLE_RATE -> the vocals (channels, samples):
    every frame's mask predicted from its window, applied to the mixture's
    STFT, inverted with the mixture's phase. ``network`` in eval mode."""
    if mask_at_eval not in MASK_MODES:
        raise ValueError(f"mask_at_eval is {mask_at_eval!r}; one of {', '.join(MASK_MODES)}")
    spectrum = stft(mixture)  # (channels, BINS, frames)
    features = mixture_features(mixture[None], settings)[0]
    mask = torch.sigmoid(frame_logits(network, features, settings, frames_per_pass))
    if mask_at_eval == "hard":
        mask = (mask > HARD_MASK_AT).to(mask.dtype)
    return istft(spectrum * mask, mixture.shape[-1])
