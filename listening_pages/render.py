"""The files a page shows: spectrogram images (matplotlib, librosa's display),
16-bit FLAC excerpts, and the window of a stem read from its file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from demix.atomic import atomic_path
from demix.errors import AudioError, first_line

from .descriptors import IMAGE_HOP, N_FFT
from .window import Window

#: Spectrograms show this many dB below the loudest bin of the group's reference.
SPECTROGRAM_RANGE_DB = 80.0


def write_spectrogram(path: Path, power: np.ndarray, rate: int, zero_db_power: float,
                      start_seconds: float = 0.0, title: str = "") -> Path:
    """A PNG of ``power`` (:func:`~listening_pages.descriptors.image_power` of a
    window) as a magnitude spectrogram in dB relative to ``zero_db_power``, over
    ``SPECTROGRAM_RANGE_DB``, on a log frequency axis and the song's time axis:
    images given the same ``zero_db_power`` share one colour scale."""
    import librosa
    import librosa.display
    from matplotlib.figure import Figure

    decibels = 10 * np.log10(np.maximum(power, 1e-20) / zero_db_power)
    times = start_seconds + librosa.frames_to_time(np.arange(power.shape[1]), sr=rate, hop_length=IMAGE_HOP)
    figure = Figure(figsize=(5.0, 1.9), dpi=80)
    axis = figure.subplots()
    mesh = librosa.display.specshow(decibels, sr=rate, hop_length=IMAGE_HOP, n_fft=N_FFT, x_coords=times,
                                    x_axis="time", y_axis="log", vmin=-SPECTROGRAM_RANGE_DB, vmax=0.0,
                                    cmap="magma", ax=axis)
    axis.set_xlabel("")
    axis.set_ylabel("Hz", labelpad=1)
    axis.tick_params(labelsize=7)
    if title:
        axis.set_title(title, fontsize=8, loc="left")
    colour_bar = figure.colorbar(mesh, ax=axis, pad=0.01, fraction=0.04,
                                 ticks=[-SPECTROGRAM_RANGE_DB, -SPECTROGRAM_RANGE_DB / 2, 0])
    colour_bar.ax.tick_params(labelsize=6)
    colour_bar.set_label("dB", fontsize=7, labelpad=1)
    figure.subplots_adjust(left=0.11, right=0.96, bottom=0.14, top=0.88)
    return save_figure(figure, path)


def save_figure(figure, path: Path) -> Path:
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png")
    return Path(path)


def write_excerpt(path: Path, audio: np.ndarray, rate: int) -> Path:
    """(channels, frames) audio as 16-bit FLAC (lossless at CD resolution,
    played by every browser), clipped to [-1, 1], written atomically."""
    import soundfile as sf

    samples = np.clip(np.atleast_2d(np.asarray(audio, dtype=np.float32)), -1.0, 1.0).T
    try:
        with atomic_path(path) as temp:
            sf.write(temp, samples, int(rate), subtype="PCM_16", format="FLAC")
    except (OSError, sf.LibsndfileError) as error:
        raise AudioError(f"{path}: cannot write the excerpt ({first_line(error)})") from None
    return Path(path)


def read_excerpt(path: Path, window: Window) -> np.ndarray:
    """The window of a WAV (or any libsndfile) file as (channels, window.length)
    float32, without reading the rest; an error names the file."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as handle:
            if handle.samplerate != window.rate:
                raise AudioError(f"{path}: {handle.samplerate} Hz, expected {window.rate} Hz like the mixture")
            handle.seek(min(window.start, handle.frames))
            data = handle.read(window.length, dtype="float32", always_2d=True)
    except (OSError, sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: cannot read ({first_line(error)})") from None
    piece = np.ascontiguousarray(data.T)
    if piece.shape[1] < window.length:  # a file a few samples shorter than its reference
        piece = np.pad(piece, ((0, 0), (0, window.length - piece.shape[1])))
    return piece


def method_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name (matplotlib's tab10, cycled), the same in plots and tables."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = colormaps["tab10"].colors
    return {name: to_hex(palette[index % len(palette)]) for index, name in enumerate(names)}
