"""The HTML of a page: escaping, links, table cells, players, the window
control, and the page around a body with its CSS and JavaScript inline."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from urllib.parse import quote

from demix.atomic import atomic_path

from .descriptors import Descriptors
from .window import Window

#: Where a page's excerpts and images go, beside index.html (evaluation) or in a song's folder.
ASSETS = "listening"

_CSS = Path(__file__).with_name("page.css")
_JS = Path(__file__).with_name("page.js")


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
