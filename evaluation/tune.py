"""Blend tuning: per-target member weights and Wiener iterations that
maximise the median SDR on a set of tracks (the validation split).

1. Each member's estimates are computed once per track and cached as WAV
   files (``OUT/cache/<member>/<track>/<target>.wav``); a second tuning run,
   or one with more candidates, runs no model again.
2. Weights: candidate weight vectors on a grid over the simplex of the
   members' weights (step ``1 / steps``) are applied to every target at
   once. In BSSEval v4 a target's SDR depends only on its own reference and
   estimate, so one museval run per candidate and track scores every
   target, and each target then takes its best candidate: the median over
   tracks of the per-track median SDR over frames, as the papers report.
3. Wiener iterations: with the chosen weights, each candidate number of EM
   steps of the post-filter (0 = off) is scored, and the one with the best
   mean over targets of that median SDR is kept.
4. The default config is scored on the same tracks, and a config with the
   chosen weights is written with both sets of scores in its header.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
import tqdm

from demix import TARGETS
from demix.audio import write_wav_atomically
from demix.config import Config, config_to_toml, load_config


def weight_grid(members: int, steps: int) -> list[tuple[float, ...]]:
    """All weight vectors with entries in {0, 1/steps, ..., 1} summing to 1."""
    return [tuple(c / steps for c in combo) for combo in itertools.product(range(steps + 1), repeat=members)
            if sum(combo) == steps]


def cached_estimates(cache: Path, member: str, track, compute) -> dict[str, np.ndarray]:
    """The member's estimates for ``track``, computed by ``compute(track)``
    only when not cached yet."""
    folder = cache / member / track.name
    if not all((folder / f"{t}.wav").is_file() for t in TARGETS):
        estimates = compute(track)
        for target in TARGETS:
            write_wav_atomically(folder / f"{target}.wav", estimates[target], int(track.rate))
    return {t: sf.read(folder / f"{t}.wav", dtype="float32")[0] for t in TARGETS}


def blend(member_estimates: list[dict], weights: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Per target: Σ_m weights[target][m] · estimate_m[target]."""
    return {t: sum(w * est[t] for w, est in zip(weights[t], member_estimates)) for t in TARGETS}


def postfilter(mixture: np.ndarray, estimates: dict[str, np.ndarray], iterations: int) -> dict[str, np.ndarray]:
    """The ensemble's Wiener post-filter on whole-track estimates (n, channels)."""
    if iterations == 0:
        return estimates
    import torch

    from demix.postfilter import WienerPostFilter

    mix = torch.from_numpy(np.ascontiguousarray(mixture.T, dtype=np.float32))
    stacked = torch.from_numpy(np.stack([estimates[t].T for t in TARGETS]).astype(np.float32))
    refined = WienerPostFilter(iterations)(mix, stacked).numpy()
    return {t: refined[i].T for i, t in enumerate(TARGETS)}


def median_sdr_per_target(track, estimates: dict[str, np.ndarray]) -> dict[str, float]:
    """museval (BSSEval v4, 1 s windows): per target, the median SDR over frames."""
    import museval

    store = museval.eval_mus_track(track, estimates)
    frame = store.df
    frame = frame[frame["metric"] == "SDR"]
    return {t: float(np.nanmedian(frame[frame["target"] == t]["score"])) for t in TARGETS}


def _score_candidate(job) -> dict[str, float]:
    track, member_estimates, weights, iterations = job
    estimates = postfilter(track.audio, blend(member_estimates, weights), iterations)
    return median_sdr_per_target(track, estimates)


def tune(
    config_path: Path | None,
    models_dir: Path,
    tracks: list,
    out_dir: Path,
    steps: int = 10,
    wiener_candidates: tuple[int, ...] = (0, 1, 2),
    workers: int = 1,
    report=tqdm.tqdm.write,
) -> tuple[Path, dict]:
    """Search, write ``OUT/tuned.toml``; returns its path and the scores."""
    from evaluation.methods import EnsembleMethod

    config = load_config(config_path)
    names = [member.name for member in config.members]
    cache = Path(out_dir) / "cache"
    methods: dict[str, EnsembleMethod] = {}

    def member_method(name):
        if name not in methods:  # loaded only if some estimate is not cached
            methods[name] = EnsembleMethod(config.path, models_dir, member=name)
        return methods[name]

    estimates = {
        track.name: [cached_estimates(cache, name, track, lambda tr, n=name: member_method(n).separate(tr))
                     for name in names]
        for track in tqdm.tqdm(tracks, desc="member estimates", unit="track")
    }

    pool = ProcessPoolExecutor(max(1, min(workers, len(tracks))), mp_context=get_context("spawn"))

    def evaluate(weights: dict[str, list[float]], iterations: int) -> dict[str, float]:
        jobs = [(track, estimates[track.name], weights, iterations) for track in tracks]
        per_track = list(pool.map(_score_candidate, jobs))
        return {t: float(np.nanmedian([scores[t] for scores in per_track])) for t in TARGETS}

    with pool:
        return _search(config, names, tracks, evaluate, out_dir, steps, wiener_candidates, report)


def _search(config, names, tracks, evaluate, out_dir, steps, wiener_candidates, report) -> tuple[Path, dict]:
    grid = weight_grid(len(names), steps)
    candidate_scores = []
    for candidate in tqdm.tqdm(grid, desc="weight candidates", unit="candidate"):
        candidate_scores.append(evaluate({t: list(candidate) for t in TARGETS}, 0))
    chosen = {t: list(grid[int(np.argmax([scores[t] for scores in candidate_scores]))]) for t in TARGETS}
    report("chosen weights: " + "; ".join(f"{t} " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, chosen[t]))
                                          for t in TARGETS))

    by_iterations = {n: evaluate(chosen, n) for n in wiener_candidates}
    best_iterations = max(wiener_candidates, key=lambda n: np.mean(list(by_iterations[n].values())))

    default_weights = {t: _normalised([m.weights[t] for m in config.members]) for t in TARGETS}
    default_scores = evaluate(default_weights, config.wiener_iterations)
    tuned_scores = by_iterations[best_iterations]

    tuned = replace(config, wiener_iterations=best_iterations, members=tuple(
        replace(member, weights={t: chosen[t][i] for t in TARGETS}) for i, member in enumerate(config.members)))
    path = Path(out_dir) / "tuned.toml"
    path.write_text(config_to_toml(tuned, _header(config, tracks, tuned_scores, default_scores, best_iterations)))
    return path, {"tuned": tuned_scores, "default": default_scores, "wiener_iterations": best_iterations,
                  "weights": chosen, "by_wiener_iterations": by_iterations}


def _normalised(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total > 0 else values


def _header(config: Config, tracks: list, tuned: dict, default: dict, iterations: int) -> str:
    def row(scores):
        return ", ".join(f"{t} {scores[t]:.2f}" for t in TARGETS) + f"; mean {np.mean(list(scores.values())):.2f}"

    return (f"Written by `python -m evaluation tune` from {config.path}\n"
            f"on {len(tracks)} tracks: {', '.join(track.name for track in tracks)}\n"
            f"median SDR (museval v4, median over frames, then over tracks), in dB:\n"
            f"  these weights, {iterations} Wiener iteration(s): {row(tuned)}\n"
            f"  the original config on the same tracks:  {row(default)}")
