"""The page of ``python -m demix separate --report``: songs separated without
references, each shown as its mixture and stems over the window where the
mixture is loudest, with spectrograms and descriptors, no scores."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from demix import TARGETS
from demix.audio import Audio, AudioFile, open_audio, stem_paths
from demix.errors import AudioError

from .descriptors import Descriptors, descriptors, image_power, loudest_bin
from .markup import ASSETS, audio_tag, descriptor_cells, esc, image_tag, link, slug, window_control, write_page
from .render import read_excerpt, write_excerpt, write_spectrogram
from .window import DEFAULT_WINDOW_SECONDS, Window, loudest_window_of_blocks

#: Seconds of the mixture read at a time while its loudest window is searched.
_SEARCH_BLOCK_SECONDS = 30.0


def mixture_window(source: Audio | AudioFile, window_seconds: float) -> tuple[Window, np.ndarray]:
    """The loudest window of a song and its samples. A file libsndfile reads is
    streamed once to find the window, then only the window is read again; an
    ffmpeg format is already decoded whole (:func:`demix.audio.open_audio`)."""
    rate = source.sample_rate
    window = loudest_window_of_blocks(source.blocks(round(_SEARCH_BLOCK_SECONDS * rate)), source.frames, rate,
                                      window_seconds)
    piece = window.cut(source.samples) if isinstance(source, Audio) else read_excerpt(source.path, window)
    return window, piece


def song_section(name: str, anchor: str, source: Audio | AudioFile, stems: dict[str, Path],
                 assets: Path, page_folder: Path, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> str:
    """One song: the window where the mixture is loudest, then the mixture and
    each stem: player, spectrogram (0 dB: the mixture's loudest bin) and
    descriptors. Each spectrogram is computed once."""
    rate = source.sample_rate
    window, mixture_piece = mixture_window(source, window_seconds)
    sources = [("mixture", None, mixture_piece)]
    sources += [(target, path, read_excerpt(path, window)) for target, path in stems.items()]
    powers = [image_power(piece) for _, _, piece in sources]
    zero_db = loudest_bin(powers[0])
    rows = []
    for (label, full, piece), power in zip(sources, powers):
        audio = write_excerpt(assets / f"{label}.flac", piece, rate)
        image = write_spectrogram(assets / f"{label}.png", power, rate, zero_db, window.start_seconds, label)
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
    out_root = Path(out_root)
    sections, contents = [], []
    for index, (source, folder) in enumerate(songs, 1):
        name, anchor = Path(folder).name, f"s{index:03d}-{slug(Path(folder).name)}"
        try:
            stems = stem_paths(Path(folder))
            missing = [str(path) for path in stems.values() if not path.is_file()]
            if missing:
                raise AudioError(f"stems missing: {', '.join(missing)}")
            sections.append(song_section(name, anchor, open_audio(Path(source)), stems,
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
