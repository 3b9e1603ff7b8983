"""The listening page of evaluation runs: ``python -m evaluation report``
writes ``DIR/index.html`` beside ``report.md``.

Overview: the methods table (museval median SDR per target, with the
published reference rows) and the mean global SDR per target, both
sortable, the box plots, and a table of tracks. Then per track and target:
the mixture, the reference and each method's estimate as players of one
excerpt window (where the reference is loudest, or ``--window-start``),
each with its scores (museval SDR/SIR/SAR/ISR, median over frames, and the
global SDR), its magnitude spectrogram (one colour scale per target: 0 dB
is the reference's loudest bin) and its spectral descriptors against the
reference's; above them, the museval SDR of every 1 s frame for each
method, with the window shaded.

The references come from the data root the run recorded in each score file
(or ``--root``); the estimates from the ``--keep-estimates`` folders of the
runs. A track without them shows its scores and says how to get them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demix import TARGETS
from demix.errors import AudioError, DemixError
from evaluation.report import PUBLISHED
from evaluation.run import METRICS, estimates_folder
from listening_pages import descriptors as measures
from listening_pages import markup, render
from listening_pages import window as windows

SCORE_COLUMNS = ("SDR", "SIR", "SAR", "ISR")


@dataclass
class MethodRun:
    """One method of one results folder: ``name`` as the report shows it,
    ``method`` as it was run, ``results`` its score files by track."""

    name: str
    method: str
    folder: Path
    results: dict[str, dict] = field(default_factory=dict)

    def estimate_path(self, track: str, target: str) -> Path:
        return estimates_folder(self.folder, self.method, track) / f"{target}.wav"


def method_runs(loaded: list[tuple[Path, dict]]) -> list[MethodRun]:
    """(results folder, score file) pairs as :class:`MethodRun`, in order of
    appearance; the method names already carry the folder where several
    folders are reported (see ``python -m evaluation report``)."""
    runs: dict[str, MethodRun] = {}
    for folder, result in loaded:
        run = runs.setdefault(result["method"], MethodRun(result["method"], result.get("run_method", result["method"]),
                                                         Path(folder)))
        run.results[result["track"]] = result
    return list(runs.values())


def frame_values(result: dict, target: str, metric: str = "SDR") -> tuple[np.ndarray, np.ndarray, float]:
    """museval's frames of one target: start times, values (NaN where museval
    has none, e.g. a silent reference) and the frame duration."""
    for entry in result["museval"]["targets"]:
        if entry["name"] == target:
            frames = entry["frames"]
            times = np.array([frame["time"] for frame in frames], dtype=float)
            values = np.array([_float(frame["metrics"].get(metric)) for frame in frames], dtype=float)
            return times, values, float(frames[0]["duration"]) if frames else 1.0
    return np.zeros(0), np.zeros(0), 1.0


def track_scores(result: dict, target: str) -> dict[str, float]:
    """museval metrics as the median over frames (as results.csv) and the global SDR."""
    scores = {}
    for metric in METRICS:
        values = frame_values(result, target, metric)[1]
        values = values[np.isfinite(values)]
        scores[metric] = float(np.median(values)) if len(values) else math.nan
    scores["global_SDR"] = _float(result["global_sdr"].get(target))
    return scores


def estimates_target(result: dict, target: str) -> bool:
    """Whether the method of a score file estimates ``target`` (a member scored
    alone estimates only its own targets)."""
    return target in result["global_sdr"]


def mean_over_targets(values, estimated: bool = True) -> float:
    """The mean over the four targets, or NaN where the method does not
    estimate them all (a vocals-only member's vocals are not a mean)."""
    return _mean(values) if estimated else math.nan


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------- the page


def write_report_page(out: Path, loaded: list[tuple[Path, dict]], summary, boxplot: Path | None = None,
                      root: Path | None = None, window_seconds: float = windows.DEFAULT_WINDOW_SECONDS,
                      window_start: float | None = None, log=print) -> Path:
    """Write ``out/index.html`` and its excerpts and images under
    ``out/listening/``. ``loaded``: (results folder, score file) pairs;
    ``summary``: :func:`evaluation.run.summary` of them; ``root``: the data
    root, instead of the one each score file names."""
    out = Path(out)
    runs = method_runs(loaded)
    colours = render.method_colours([run.name for run in runs])
    tracks = sorted({track for run in runs for track in run.results})
    references = _References(root)
    sections = []
    for index, track in enumerate(tracks, 1):
        log(f"listening page: {track} ({index}/{len(tracks)})")
        anchor = f"t{index:03d}-{markup.slug(track)}"
        sections.append(_track_section(out, track, anchor, runs, colours, references, window_seconds, window_start))
    folders = sorted({str(run.folder) for run in runs})
    body = (
        "<header><h1>Listening report</h1>"
        f"<p>{len(runs)} methods, {len(tracks)} tracks, from {', '.join(markup.esc(f) for f in folders)}. "
        f"Every player of a track's target plays the same {window_seconds:g} s window (the whole track where "
        "it is shorter), "
        + ("from the start you chose" if window_start is not None else "where that target's reference is loudest")
        + ".</p><nav><a href=\"#methods\">methods</a> · <a href=\"#tracks\">tracks</a></nav></header>\n"
        + _overview(summary, runs, colours, tracks, boxplot, out)
        + "\n".join(sections)
    )
    return markup.write_page(out / "index.html", "Listening report", body)


class _References:
    """The mixture and the true stems of a track, from its data root."""

    def __init__(self, root: Path | None):
        self.root = root
        self.databases: dict[tuple[str, str], dict] = {}

    def load(self, result: dict):
        """(rate, mixture, {target: reference}) as (channels, frames), or the
        reason they cannot be had."""
        data = result.get("data") or {}
        root = self.root or (Path(data["root"]) if data.get("root") else None)
        if root is None:
            return None, ("the score file names no data root (a run before this report existed): "
                          "pass report --root MUSDB18HQ")
        subset = data.get("subset", "test")
        key = (str(root), subset)
        try:
            if key not in self.databases:
                from evaluation.dataset import open_tracks

                self.databases[key] = {track.name: track for track in open_tracks(Path(root), subset)}
            track = self.databases[key].get(result["track"])
            if track is None:
                return None, f"{root}/{subset}: no track named {result['track']!r} (report --root to point elsewhere)"
            mixture = np.ascontiguousarray(track.audio.T, dtype=np.float32)
            stems = {t: np.ascontiguousarray(track.targets[t].audio.T, dtype=np.float32) for t in TARGETS}
            return (int(track.rate), mixture, stems), None
        except (DemixError, OSError, RuntimeError, ValueError) as error:
            return None, f"references not read from {root}: {error}"


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def _overview(summary, runs, colours, tracks, boxplot, out) -> str:
    headers = "".join(f'<th data-sort="num">{t}</th>' for t in TARGETS) + '<th data-sort="num">mean</th>'
    museval_rows, global_rows = [], []
    by_method = {method: rows.set_index("target") for method, rows in summary.groupby("method", sort=False)}
    for run in runs:
        rows = by_method.get(run.name)
        if rows is None:
            continue
        sdr = [float(rows.loc[t, "SDR"]) for t in TARGETS]
        global_sdr = [float(rows.loc[t, "global_SDR"]) for t in TARGETS]
        every_target = all(math.isfinite(value) for value in global_sdr)  # NaN: a target not estimated
        name = f'<th scope="row">{_swatch(colours[run.name])}{markup.esc(run.name)}</th>'
        museval_rows.append(
            f'<tr class="method">{name}{"".join(markup.number(v) for v in sdr)}'
            f"{markup.number(mean_over_targets(sdr, every_target))}"
            f"{markup.number(mean_over_targets(global_sdr, every_target))}"
            f"<td class=\"num\">{int(rows['tracks'].iloc[0])}</td></tr>")
        global_rows.append(f'<tr class="method">{name}{"".join(markup.number(v) for v in global_sdr)}'
                           f"{markup.number(mean_over_targets(global_sdr, every_target))}</tr>")
    for label, scores in PUBLISHED.items():
        values = [scores.get(t) for t in TARGETS]
        mean = scores.get("mean", _mean(values) if all(v is not None for v in values) else None)
        museval_rows.append(f'<tr class="published"><th scope="row">{markup.esc(label)}: published, 50 test tracks</th>'
                            f'{"".join(markup.number(v) for v in values)}{markup.number(mean)}'
                            '<td class="num" data-value="">–</td><td class="num">50</td></tr>')
    track_header = "".join(f'<th data-sort="num">{_swatch(colours[r.name])}{markup.esc(r.name)}</th>' for r in runs)
    track_rows = []
    for index, track in enumerate(tracks, 1):
        cells = []
        for run in runs:
            result = run.results.get(track)
            cells.append(markup.number(mean_over_targets(
                [track_scores(result, t)["SDR"] for t in TARGETS],
                all(estimates_target(result, t) for t in TARGETS))) if result else None)
        anchor = f"t{index:03d}-{markup.slug(track)}"
        track_rows.append(f'<tr><th scope="row"><a href="#{markup.esc(anchor)}">{markup.esc(track)}</a></th>'
                          f'{"".join(cells)}</tr>')
    plot = (f'<p>{markup.image_tag(markup.link(boxplot, out), "per-track SDR box plots", "boxplot")}</p>'
            if boxplot is not None else "")
    return (
        '<section id="methods"><h2>Methods</h2>'
        "<p>Median SDR in dB (museval BSSEval v4: median over 1 s frames, then over tracks), and the mean "
        "global SDR (MDX leaderboard). Published rows come from the papers, on all 50 MUSDB18 test tracks. "
        "Click a column to sort.</p>"
        f'<table class="sortable" id="methods-museval"><thead><tr><th>method</th>{headers}'
        '<th data-sort="num">mean global SDR</th><th>tracks</th></tr></thead>'
        f'<tbody>{"".join(museval_rows)}</tbody></table>'
        "<h3>Global SDR, mean over tracks</h3>"
        f'<table class="sortable" id="methods-global"><thead><tr><th>method</th>{headers}</tr></thead>'
        f'<tbody>{"".join(global_rows)}</tbody></table>{plot}</section>\n'
        '<section id="tracks"><h2>Tracks</h2><p>Median SDR over frames, mean over the targets.</p>'
        f'<table class="sortable" id="track-table"><thead><tr><th>track</th>{track_header}</tr></thead>'
        f'<tbody>{"".join(track_rows)}</tbody></table></section>\n'
    )


def _mean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def _keep_hint(run: MethodRun, result: dict) -> str:
    import shlex

    from evaluation.oracles import ORACLES

    data = result.get("data") or {}
    command = ["python", "-m", "evaluation", "run", "--root", data.get("root", "ROOT"),
               "--subset", data.get("subset", "test"), "--method", run.method, "--keep-estimates",
               "--out", str(run.folder)]
    models = "" if run.method in ORACLES else " (with the run's --config and --models)"
    return (f"estimates not kept: <code>{markup.esc(shlex.join(command))}</code>{models} separates again the "
            "tracks whose estimates are missing, and keeps them")


def _track_section(out, track, anchor, runs, colours, references, window_seconds, window_start) -> str:
    present = [run for run in runs if track in run.results]
    first = present[0].results[track]
    loaded, problem = references.load(first)
    duration = _float(first.get("duration"))
    parts = [f'<section class="track" id="{markup.esc(anchor)}"><h2>{markup.esc(track)}</h2>'
             f"<p>{duration:.1f} s; methods: {', '.join(markup.esc(run.name) for run in present)}.</p>"]
    if problem:
        parts.append(f'<p class="note">No players or spectrograms: {markup.esc(problem)}.</p>')
    missing = [run for run in present if not all(run.estimate_path(track, t).is_file()
                                                 for t in TARGETS if estimates_target(run.results[track], t))]
    for run in missing:
        parts.append(f'<p class="note">{markup.esc(run.name)}: {_keep_hint(run, run.results[track])}.</p>')
    assets = out / markup.ASSETS / anchor
    for target in TARGETS:
        parts.append(_target_group(out, assets, track, target, runs, colours, loaded, window_seconds, window_start))
    parts.append("</section>")
    return "".join(parts)


def _target_group(out, assets, track, target, runs, colours, loaded, window_seconds, window_start) -> str:
    window = None
    rows = []
    if loaded is not None:
        rate, mixture, stems = loaded
        reference = stems[target]
        if window_start is None:
            window = windows.loudest_window(reference, rate, window_seconds)
            where = "where the reference is loudest"
        else:
            window = windows.fixed_window(reference.shape[1], rate, window_start, window_seconds)
            where = "from the chosen start"
        reference_piece, mixture_piece = window.cut(reference), window.cut(mixture)
        silent = not np.any(reference_piece)
        powers = {"mixture": measures.image_power(mixture_piece), "reference": measures.image_power(reference_piece)}
        zero_db = measures.loudest_bin(powers["mixture" if silent else "reference"])
        if silent:
            where += "; the reference is silent here, 0 dB is the mixture's loudest bin"
        reference_descriptors = measures.descriptors(reference_piece, rate)
        for label, piece in (("mixture", mixture_piece), ("reference", reference_piece)):
            player, image = _excerpt(out, assets / target, label, piece, powers[label], rate, zero_db, window,
                                     f"{target}: {label}")
            values = measures.descriptors(piece, rate) if label == "mixture" else reference_descriptors
            rows.append(f'<tr class="{label}"><th scope="row">{label}<br>{player}</th><td>{image}</td>'
                        f'{markup.number(None) * 5}'
                        f'{markup.descriptor_cells(values, reference_descriptors if label == "mixture" else None)}</tr>')
    for number, run in enumerate(runs, 1):
        result = run.results.get(track)
        name = f"{_swatch(colours[run.name])}{markup.esc(run.name)}"
        if result is None:
            rows.append(f'<tr class="estimate"><th scope="row">{name}</th>'
                        '<td colspan="10">not run on this track</td></tr>')
            continue
        if not estimates_target(result, target):
            rows.append(f'<tr class="estimate"><th scope="row">{name}</th>'
                        f'<td colspan="10">does not estimate {markup.esc(target)}</td></tr>')
            continue
        scores = track_scores(result, target)
        cells = "".join(markup.number(scores[m]) for m in SCORE_COLUMNS) + markup.number(scores["global_SDR"])
        path = run.estimate_path(track, target)
        player, image, values = "", '<span class="note">estimates not kept</span>', None
        if window is not None and path.is_file():
            try:
                piece = render.read_excerpt(path, window)
            except AudioError as error:
                rows.append(f'<tr class="estimate"><th scope="row">{name}</th><td colspan="10" class="note">'
                            f"{markup.esc(error)}</td></tr>")
                continue
            player, image = _excerpt(out, assets / target, f"m{number:02d}-{markup.slug(run.name)}", piece,
                                     measures.image_power(piece), rate, zero_db, window, f"{target}: {run.name}")
            player = f'<br>{player} <a href="{markup.esc(markup.link(path, out))}">whole track</a>'
            values = measures.descriptors(piece, rate)
        descriptor_cells = markup.descriptor_cells(values, reference_descriptors if window is not None else None)
        rows.append(f'<tr class="estimate"><th scope="row">{name}{player}</th><td>{image}</td>{cells}'
                    f"{descriptor_cells}</tr>")
    frames = _frames_plot(assets / f"{target}-frames.png", track, target, runs, colours, window)
    header = "".join(f"<th>{h}</th>" for h in ("", "magnitude spectrogram", *SCORE_COLUMNS, "global SDR",
                                                  "centroid", "bandwidth", "flatness", "entropy"))
    control = markup.window_control(window, where) if window is not None else ""
    data_window = f' data-window="{window.seconds:.6f}"' if window is not None else ""
    return (
        f'<div class="group"{data_window}><h3>{target}</h3>{control}'
        f'{markup.image_tag(markup.link(frames, out), f"{track} {target}: SDR per frame", "frames")}'
        f'<table class="players"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _excerpt(out, folder, label, piece, power, rate, zero_db, window, title) -> tuple[str, str]:
    audio = render.write_excerpt(folder / f"{label}.flac", piece, rate)
    image = render.write_spectrogram(folder / f"{label}.png", power, rate, zero_db, window.start_seconds, title)
    return (markup.audio_tag(markup.link(audio, out), window),
            markup.image_tag(markup.link(image, out), f"{title} spectrogram", "spectrogram"))


def _frames_plot(path: Path, track: str, target: str, runs, colours, window) -> Path:
    """museval's SDR of every frame for each method, the window shaded."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 2.0), dpi=80)
    axis = figure.subplots()
    for run in runs:
        result = run.results.get(track)
        if result is None:
            continue
        times, values, duration = frame_values(result, target)
        axis.plot(times + duration / 2, values, marker=".", linewidth=1.2, color=colours[run.name], label=run.name)
    if window is not None:
        axis.axvspan(window.start_seconds, window.end_seconds, color="#999999", alpha=0.2, label="window")
    axis.set_title(f"{target}: museval SDR per frame (dB)", fontsize=9, loc="left")
    axis.set_xlabel("time in the song (s)", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.subplots_adjust(left=0.06, right=0.8, bottom=0.22, top=0.87)
    return render.save_figure(figure, path)
