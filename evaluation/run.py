"""Scoring methods on MUSDB18(-HQ): parallel over tracks, resumable.

One task is one (method, track). Its scores are written to
``OUT/scores/<method>/<track>.json`` as soon as it finishes, atomically, so
a run that is stopped (crash, Ctrl-C) and started again computes only the
tasks without a file. Tasks are spread over worker processes, each loading
its models once and using its share of the CPUs.

Each file holds museval's per-frame BSSEval v4 scores for the track (1 s
windows and hops, as ``museval.eval_mus_track`` writes them), the global
SDR per target, and the data root and subset the references come from.
:func:`results_table` turns the files into one long table
(track × target × method × metric, museval metrics as the median over
frames) and :func:`summary` aggregates as the papers do: the median over
tracks of those medians (``museval.EvalStore``), and the mean global SDR.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import tqdm

from demix import TARGETS
from demix.atomic import atomic_path, write_json_atomically
from evaluation.slicq_oracles import DEFAULT_SLICQ, SLICQ_ORACLES

METRICS = ("SDR", "SIR", "ISR", "SAR")


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to rebuild the data and the methods."""

    root: str
    subset: str
    split: str | None
    config: str | None
    models_dir: str
    oracle_nfft: int
    out_dir: str
    keep_estimates: bool
    #: The sliCQT of the slicq-* oracles, as ``--slicq`` takes it (evaluation/slicq_oracles.py).
    slicq: str = str(DEFAULT_SLICQ)


def score_file(out_dir: Path, method: str, track: str) -> Path:
    return Path(out_dir) / "scores" / method.replace(":", "_") / f"{track}.json"


# ---------------------------------------------------------------- in a worker

_cache: dict = {}


def _tracks(spec: RunSpec) -> dict:
    key = ("tracks", spec.root, spec.subset, spec.split)
    if key not in _cache:
        from evaluation.dataset import open_tracks

        _cache[key] = {track.name: track for track in open_tracks(Path(spec.root), spec.subset, spec.split)}
    return _cache[key]


def _method(spec: RunSpec, name: str):
    key = ("method", name, spec.oracle_nfft, spec.slicq)
    if key not in _cache:  # models are loaded once per worker, not per track
        from evaluation.methods import build_method

        config = Path(spec.config) if spec.config else None
        _cache[key] = build_method(name, config, Path(spec.models_dir), spec.oracle_nfft, spec.slicq)
    return _cache[key]


def evaluate_task(spec: RunSpec, method_name: str, track_name: str) -> dict:
    """Separate one track with one method, score it, write the score file."""
    import museval

    from evaluation.scores import global_sdr

    track = _tracks(spec)[track_name]
    started = time.perf_counter()
    estimates = _method(spec, method_name).separate(track)
    separation_seconds = time.perf_counter() - started
    museval_scores = museval.eval_mus_track(track, estimates)
    result = {
        "method": method_name,
        "track": track_name,
        "duration": track.duration,
        "separation_seconds": separation_seconds,
        "seconds": time.perf_counter() - started,
        # of the targets the method estimates (a vocals-only member: vocals and accompaniment)
        "global_sdr": {t: global_sdr(track.targets[t].audio, estimate) for t, estimate in estimates.items()},
        "museval": json.loads(museval_scores.json),
        # where the references are, for the listening page of `python -m evaluation report`
        "data": {"root": spec.root, "subset": spec.subset},
    }
    if method_name in SLICQ_ORACLES:
        result["slicq"] = spec.slicq
    if spec.keep_estimates:
        _write_estimates(estimates_folder(Path(spec.out_dir), method_name, track_name), estimates, int(track.rate))
    write_json_atomically(score_file(Path(spec.out_dir), method_name, track_name), result)
    return result


def estimates_folder(out_dir: Path, method: str, track: str) -> Path:
    return Path(out_dir) / "estimates" / method.replace(":", "_") / track


def _write_estimates(folder: Path, estimates: dict, rate: int) -> None:
    from demix.audio import write_wav_atomically

    for target, audio in estimates.items():
        write_wav_atomically(folder / f"{target}.wav", audio, rate)


# ---------------------------------------------------------------- the run


def run(spec: RunSpec, methods: list[str], track_names: list[str], workers: int, log=tqdm.tqdm.write,
        ray_address: str | None = None) -> list[str]:
    """Compute every missing (method, track) score file, in ``workers``
    local processes or on the Ray cluster at ``ray_address``. Returns the
    failures (one line each); the other tasks are still computed."""
    from evaluation.tasks import run_tasks

    tasks = [(m, t) for m in methods for t in track_names]
    todo = [(m, t) for m, t in tasks if not _done(spec, m, t)]
    if len(todo) < len(tasks):
        log(f"{len(tasks) - len(todo)} of {len(tasks)} (method, track) scores already done: kept")
    other_transform = [(m, t) for m, t in todo if m in SLICQ_ORACLES
                       and _recorded_slicq(score_file(Path(spec.out_dir), m, t)) not in (None, spec.slicq)]
    if other_transform:
        log(f"{len(other_transform)} sliCQT oracle score(s) of another transform than --slicq {spec.slicq}: "
            "computed again")
    tasks = [(f"{m} / {t}", evaluate_task, (spec, m, t)) for m, t in todo]
    return run_tasks(tasks, workers, ray_address, lambda result: f"{result['seconds']:.1f} s", "track", log)


def _done(spec: RunSpec, method: str, track: str) -> bool:
    """A task is done when its score file exists and, with --keep-estimates,
    its estimates too (a run without it, then one with it, keeps them)."""
    out = Path(spec.out_dir)
    if not score_file(out, method, track).is_file():
        return False
    if method in SLICQ_ORACLES and _recorded_slicq(score_file(out, method, track)) != spec.slicq:
        return False  # a score of another transform: this run's replaces it
    folder = estimates_folder(out, method, track)
    if not spec.keep_estimates:
        return True
    estimated = json.loads(score_file(out, method, track).read_text())["global_sdr"]
    return all((folder / f"{target}.wav").is_file() for target in estimated)


def _recorded_slicq(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("slicq")
    except (OSError, ValueError):
        return None


def load_results(out_dir: Path, methods: list[str] | None = None) -> list[dict]:
    files = sorted((Path(out_dir) / "scores").glob("*/*.json"))
    results = [json.loads(path.read_text()) for path in files]
    return [r for r in results if methods is None or r["method"] in methods]


def results_table(results: list[dict]):
    """Long table: track, target, method, metric, score (museval metrics
    as the median over frames; ``global_SDR`` over the whole track)."""
    import museval
    import pandas as pd

    frames = []
    for result in results:
        per_frame = museval.json2df(result["museval"], result["track"])
        per_track = per_frame.groupby(["track", "target", "metric"])["score"].median().reset_index()
        per_track["method"] = result["method"]
        frames.append(per_track)
        frames.append(pd.DataFrame([
            {"track": result["track"], "target": t, "metric": "global_SDR", "score": s, "method": result["method"]}
            for t, s in result["global_sdr"].items()
        ]))
    if not frames:
        return pd.DataFrame(columns=["track", "target", "method", "metric", "score"])
    return pd.concat(frames, ignore_index=True)[["track", "target", "method", "metric", "score"]]


def summary(results: list[dict]):
    """Per method and target: median over tracks of the per-track median
    (museval.EvalStore), and the mean global SDR over tracks."""
    import museval
    import pandas as pd

    rows = []
    for method in sorted({r["method"] for r in results}):
        store = museval.EvalStore(frames_agg="median", tracks_agg="median")
        method_results = [r for r in results if r["method"] == method]
        for result in method_results:
            store.add_track(museval.json2df(result["museval"], result["track"]))
        aggregated = store.agg_frames_tracks_scores()
        for target in TARGETS:
            row = {"method": method, "target": target, "tracks": len(method_results)}
            for metric in METRICS:
                row[metric] = float(aggregated.get((target, metric), float("nan")))
            row["global_SDR"] = float(pd.Series([r["global_sdr"].get(target, float("nan"))
                                                 for r in method_results]).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def write_outputs(out_dir: Path, results: list[dict]) -> tuple[Path, Path]:
    table, aggregated = results_table(results), summary(results)
    table_path, summary_path = Path(out_dir) / "results.csv", Path(out_dir) / "summary.csv"
    for frame, path in ((table, table_path), (aggregated, summary_path)):
        with atomic_path(path) as temp:
            frame.to_csv(temp, index=False)
    return table_path, summary_path
