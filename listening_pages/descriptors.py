"""What is measured on a stem's window: its power spectrogram and its
spectral descriptors (librosa, on the long-term average spectrum)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: STFT of spectrograms and descriptors: 2048 points (46 ms at 44.1 kHz), hop 512.
N_FFT, HOP = 2048, 512
#: Spectrogram images use a coarser hop: a 10 s window still gets more frames than pixels.
IMAGE_HOP = 1024


@dataclass(frozen=True)
class Descriptors:
    """Spectral descriptors of a stem's long-term average power spectrum
    (STFT frames and channels averaged), with librosa's definitions:
    centroid and bandwidth in Hz, flatness (geometric over arithmetic
    mean of the power) and entropy (Shannon entropy of the power
    distribution over frequency, divided by its maximum) in [0, 1].
    All NaN for silence."""

    centroid: float
    bandwidth: float
    flatness: float
    entropy: float

    NAMES = ("centroid", "bandwidth", "flatness", "entropy")

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.NAMES}


def power_spectrogram(audio: np.ndarray, center: bool = True, hop: int = HOP) -> np.ndarray:
    """|STFT|² of (channels, frames) audio, averaged over channels: (bins, frames).
    ``center`` frames on their times (for display) by padding the ends with
    zeros; without it frames lie inside the audio, whose edges then add no
    spectrum of their own (for descriptors)."""
    import librosa

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if not center and audio.shape[1] < N_FFT:
        audio = np.pad(audio, ((0, 0), (0, N_FFT - audio.shape[1])))
    return np.mean(np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=hop, center=center)) ** 2, axis=0)


def image_power(audio: np.ndarray) -> np.ndarray:
    """The power spectrogram a spectrogram image shows (hop ``IMAGE_HOP``), computed
    once per stem and used both for the image and, for a reference, its 0 dB."""
    return power_spectrogram(audio, hop=IMAGE_HOP)


def loudest_bin(power: np.ndarray) -> float:
    """The loudest bin of an :func:`image_power`: 0 dB of a group's spectrograms."""
    return max(float(np.max(power)), 1e-20)


def descriptors(audio: np.ndarray, rate: int) -> Descriptors:
    """:class:`Descriptors` of (channels, frames) ``audio``."""
    import librosa

    spectrum = power_spectrogram(audio, center=False).mean(axis=1)
    total = float(spectrum.sum())
    if not math.isfinite(total) or total < 1e-20:
        return Descriptors(math.nan, math.nan, math.nan, math.nan)
    magnitude = np.sqrt(spectrum)[:, None]
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=rate, n_fft=N_FFT)
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=rate, n_fft=N_FFT, centroid=centroid)
    flatness = librosa.feature.spectral_flatness(S=magnitude, power=2.0)
    share = spectrum[spectrum > 0] / total
    entropy = float(-np.sum(share * np.log(share)) / np.log(len(spectrum)))
    return Descriptors(float(centroid[0, 0]), float(bandwidth[0, 0]), float(flatness[0, 0]), entropy)
