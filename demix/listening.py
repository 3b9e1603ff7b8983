"""Listening pages: one HTML page to hear and see stems side by side.

A page is a folder that opens from ``file://`` or any static web server:
``index.html`` (its CSS and JavaScript inline, nothing fetched from
anywhere) and, beside it, the audio excerpts it plays and the images it
shows. Every player of a group plays the same excerpt window of the song,
by default the loudest stretch of the reference (or, without references,
of the mixture), so switching players compares the same music.

This module holds what both pages are built from: the window, the
excerpts (16-bit FLAC), magnitude spectrograms on a shared colour scale
(matplotlib, librosa's display), the spectral descriptors of a stem
(librosa), the HTML pieces, and the page for songs separated without
references (``python -m demix separate --report``). The evaluation page
(``python -m evaluation report``) adds scores on top of it.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

import numpy as np

from . import TARGETS
from .atomic import atomic_path
from .errors import AudioError, first_line

#: Seconds each player plays, unless asked otherwise.
DEFAULT_WINDOW_SECONDS = 10.0
#: The loudest window is searched on this grid of start times (seconds).
WINDOW_STEP_SECONDS = 0.5
#: STFT of spectrograms and descriptors: 2048 points (46 ms at 44.1 kHz), hop 512.
N_FFT, HOP = 2048, 512
#: Spectrogram images use a coarser hop: a 10 s window still gets more frames than pixels.
IMAGE_HOP = 1024
#: Spectrograms show this many dB below the loudest bin of the group's reference.
SPECTROGRAM_RANGE_DB = 80.0
#: Where a page's excerpts and images go, beside index.html (evaluation) or in a song's folder.
ASSETS = "listening"

_CSS = Path(__file__).with_name("listening.css")
_JS = Path(__file__).with_name("listening.js")


# ---------------------------------------------------------------- the window


@dataclass(frozen=True)
class Window:
    """``length`` samples from ``start`` at ``rate``; ``reason`` says how it was chosen."""

    start: int
    length: int
    rate: int
    reason: str

    @property
    def start_seconds(self) -> float:
        return self.start / self.rate

    @property
    def seconds(self) -> float:
        return self.length / self.rate

    @property
    def end_seconds(self) -> float:
        return (self.start + self.length) / self.rate

    def cut(self, audio: np.ndarray) -> np.ndarray:
        """The window of (channels, frames) ``audio``, padded with silence
        where the audio ends before it (an estimate a few samples short)."""
        audio = np.atleast_2d(audio)
        piece = audio[:, self.start:self.start + self.length]
        if piece.shape[1] < self.length:
            piece = np.pad(piece, ((0, 0), (0, self.length - piece.shape[1])))
        return piece


def loudest_window(audio: np.ndarray, rate: int, seconds: float = DEFAULT_WINDOW_SECONDS,
                   step_seconds: float = WINDOW_STEP_SECONDS) -> Window:
    """The ``seconds`` of (channels, frames) ``audio`` with the most energy,
    starting on a grid of ``step_seconds`` (the earliest of equals); the
    whole audio where it is shorter than that."""
    audio = np.atleast_2d(np.asarray(audio))
    frames = audio.shape[1]
    if frames == 0 or seconds <= 0:
        raise ValueError(f"no window of {seconds} s in {frames} samples")
    length = min(frames, max(1, round(seconds * rate)))
    energy = np.concatenate([[0.0], np.cumsum(np.sum(np.square(audio, dtype=np.float64), axis=0))])
    starts = np.arange(0, frames - length + 1, max(1, round(step_seconds * rate)))
    start = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    return Window(start, length, int(rate), "loudest")


def fixed_window(frames: int, rate: int, start_seconds: float, seconds: float = DEFAULT_WINDOW_SECONDS) -> Window:
    """``seconds`` from ``start_seconds``, moved back to end with the audio
    where it would run past it."""
    if frames <= 0 or seconds <= 0 or start_seconds < 0:
        raise ValueError(f"no window of {seconds} s from {start_seconds} s in {frames} samples")
    length = min(frames, max(1, round(seconds * rate)))
    start = min(round(start_seconds * rate), frames - length)
    return Window(int(start), int(length), int(rate), "chosen")


# ---------------------------------------------------------------- what is shown


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


def reference_power(audio: np.ndarray) -> float:
    """The loudest bin of ``audio``'s power spectrogram: 0 dB of a group's spectrograms."""
    return max(float(power_spectrogram(audio, hop=IMAGE_HOP).max()), 1e-20)


def write_spectrogram(path: Path, audio: np.ndarray, rate: int, zero_db_power: float,
                      start_seconds: float = 0.0, title: str = "") -> Path:
    """A PNG of the magnitude spectrogram of (channels, frames) ``audio`` in
    dB relative to ``zero_db_power``, over ``SPECTROGRAM_RANGE_DB``, on a
    log frequency axis and the song's time axis: images given the same
    ``zero_db_power`` share one colour scale."""
    import librosa
    import librosa.display
    from matplotlib.figure import Figure

    power = power_spectrogram(audio, hop=IMAGE_HOP)
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


# ---------------------------------------------------------------- HTML


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def link(path: Path, page_folder: Path) -> str:
    """``path`` as a URL relative to the page's folder."""
    return quote(Path(os.path.relpath(path, page_folder)).as_posix())


def slug(name: str) -> str:
    """A file name for ``name``: letters, digits, '-', '_' and '.' only."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in name).strip("-.")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned or "x"


def number(value, digits: int = 2, unit: str = "") -> str:
    """A table cell's text and sort value: '–' for a missing value."""
    if value is None or not math.isfinite(value):
        return '<td class="num" data-value="">–</td>'
    return f'<td class="num" data-value="{value:.6g}">{value:.{digits}f}{unit}</td>'


def audio_tag(src: str, window: Window) -> str:
    return (f'<audio controls preload="metadata" src="{esc(src)}" '
            f'data-window="{window.seconds:.6f}"></audio>')


def image_tag(src: str, alt: str, css_class: str = "") -> str:
    return f'<img src="{esc(src)}" alt="{esc(alt)}" class="{css_class}" loading="eager">'


def window_control(window: Window, where: str) -> str:
    """The control over a group's window: the part of the song it is, and
    a loop range within it applied to every player of the group."""
    seconds = f"{window.seconds:.1f}"
    return (
        f'<div class="window-control"><span class="window-text">window {window.start_seconds:.1f}–'
        f'{window.end_seconds:.1f} s of the song ({esc(where)})</span>'
        f'<label>play from <input type="range" class="loop-from" min="0" max="{seconds}" step="0.1" value="0"></label>'
        f'<label>to <input type="range" class="loop-to" min="0" max="{seconds}" step="0.1" value="{seconds}"></label>'
        f'<output class="loop-label">0.0–{seconds} s</output>'
        '<label><input type="checkbox" class="loop"> loop</label>'
        '<label title="a player started while another plays goes on from the same moment">'
        '<input type="checkbox" class="follow" checked> switch at the same moment</label></div>'
    )


def descriptor_cells(values: Descriptors | None, reference: Descriptors | None) -> str:
    """Centroid and bandwidth in Hz, flatness in dB, entropy; against a
    reference, the change from it (relative for Hz, absolute otherwise)."""
    if values is None:
        return '<td class="num" data-value="">–</td>' * len(Descriptors.NAMES)
    cells = []
    for name in Descriptors.NAMES:
        value = getattr(values, name)
        if not math.isfinite(value):
            cells.append('<td class="num" data-value="">–</td>')
            continue
        base = getattr(reference, name) if reference is not None else math.nan
        compare = reference is not None and values is not reference and math.isfinite(base)
        change = ""
        if name in ("centroid", "bandwidth"):
            text = f"{value:.0f} Hz"
            if compare and base > 0:
                change = f"{100 * (value - base) / base:+.0f}%"
        elif name == "flatness":  # music spans decades below white noise's 1: shown in dB
            text = f"{_decibels(value):.1f} dB"
            if compare:
                change = f"{_decibels(value) - _decibels(base):+.1f} dB"
        else:
            text = f"{value:.3f}"
            if compare:
                change = f"{value - base:+.3f}"
        extra = f'<br><small class="change">{change}</small>' if change else ""
        cells.append(f'<td class="num" data-value="{value:.6g}">{text}{extra}</td>')
    return "".join(cells)


def _decibels(ratio: float) -> float:
    return 10 * math.log10(max(ratio, 1e-12))


def page_html(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><link rel=\"icon\" href=\"data:,\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>\n{_CSS.read_text()}</style></head>\n<body>\n{body}\n"
        f"<script>\n{_JS.read_text()}</script>\n</body></html>\n"
    )


def write_page(path: Path, title: str, body: str) -> Path:
    with atomic_path(path) as temp:
        temp.write_text(page_html(title, body), encoding="utf-8")
    return Path(path)


# ---------------------------------------------------------------- songs without references


def song_section(name: str, anchor: str, mixture: np.ndarray, stems: dict[str, Path], rate: int,
                 assets: Path, page_folder: Path, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> str:
    """One song of a ``separate --report`` page: the window where the
    mixture is loudest, then the mixture and each stem: player,
    spectrogram (0 dB: the mixture's loudest bin) and descriptors."""
    window = loudest_window(mixture, rate, window_seconds)
    mixture_piece = window.cut(mixture)
    zero_db = reference_power(mixture_piece)
    rows = []
    sources = [("mixture", None, mixture_piece)]
    sources += [(target, path, read_excerpt(path, window)) for target, path in stems.items()]
    for label, full, piece in sources:
        audio = write_excerpt(assets / f"{label}.flac", piece, rate)
        image = write_spectrogram(assets / f"{label}.png", piece, rate, zero_db, window.start_seconds, label)
        full_link = f' <a href="{esc(link(full, page_folder))}">whole stem</a>' if full is not None else ""
        rows.append(
            f'<tr><th scope="row">{esc(label)}{full_link}<br>{audio_tag(link(audio, page_folder), window)}</th>'
            f'<td>{image_tag(link(image, page_folder), f"{label} spectrogram", "spectrogram")}</td>'
            f"{descriptor_cells(descriptors(piece, rate), None)}</tr>"
        )
    header = "".join(f"<th>{n}</th>" for n in ("", "magnitude spectrogram", *Descriptors.NAMES))
    return (
        f'<section class="track" id="{esc(anchor)}"><h2>{esc(name)}</h2>'
        f'<div class="group" data-window="{window.seconds:.6f}">'
        f"{window_control(window, 'where the mixture is loudest')}"
        f'<table class="players"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</div></section>"
    )


def write_songs_page(out_root: Path, songs: Iterable[tuple[Path, Path]],
                     window_seconds: float = DEFAULT_WINDOW_SECONDS) -> Path:
    """``out_root/index.html`` for songs separated into ``out_root/<song>/``:
    ``songs`` are (input file, stem folder) pairs. A song that cannot be
    read is named on the page with the reason, and the others are shown."""
    from .audio import read_audio, stem_paths

    out_root = Path(out_root)
    sections, contents = [], []
    for index, (source, folder) in enumerate(songs, 1):
        name, anchor = Path(folder).name, f"s{index:03d}-{slug(Path(folder).name)}"
        try:
            audio = read_audio(Path(source))
            stems = stem_paths(Path(folder))
            missing = [str(path) for path in stems.values() if not path.is_file()]
            if missing:
                raise AudioError(f"stems missing: {', '.join(missing)}")
            sections.append(song_section(name, anchor, audio.samples, stems, audio.sample_rate,
                                         Path(folder) / ASSETS, out_root, window_seconds))
        except AudioError as error:
            sections.append(f'<section class="track" id="{esc(anchor)}"><h2>{esc(name)}</h2>'
                            f'<p class="note">not shown: {esc(error)}</p></section>')
        contents.append(f'<li><a href="#{esc(anchor)}">{esc(name)}</a></li>')
    body = (
        "<header><h1>Separated songs</h1><p>Each player plays the same window of its song: the "
        f"{window_seconds:g} s where the mixture is loudest (the whole song where it is shorter). "
        "Spectrograms of a song share one colour scale (0 dB: the loudest bin of the mixture's window). "
        f"Stems in this order: {', '.join(TARGETS)}.</p>"
        f"<nav><ul>{''.join(contents)}</ul></nav></header>\n" + "\n".join(sections)
    )
    return write_page(out_root / "index.html", "Separated songs", body)


def method_colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name (matplotlib's tab10, cycled), the same in plots and tables."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = colormaps["tab10"].colors
    return {name: to_hex(palette[index % len(palette)]) for index, name in enumerate(names)}
