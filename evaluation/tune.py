"""Blend tuning: per-target member weights and Wiener iterations that
maximise the median SDR on a set of tracks (the validation split).

The score of a candidate is the score of what ``python -m demix separate``
would write with it: tuning replays the ensemble's own pipeline
(:mod:`demix.ensemble`) on cached member outputs instead of reimplementing
it.

1. Member estimates, cached. The config's ensemble cuts each track into the
   blocks of its :class:`~demix.ensemble.BlockPlan`, and every member
   separates every block once (:meth:`~demix.ensemble.Ensemble.member_estimates`).
   These raw per-block estimates, before any blend, post-filter or
   cross-fade, are what is cached: the Wiener post-filter is non-linear and
   runs per block on overlapping blocks, so a member's finished whole-track
   output could not give the blend's result. Layout::

       OUT/cache/<member>/<track>/block-0000/<target>.wav   # float32, engine rate, padded as the blend sees it
       OUT/cache/<member>/<track>/plan.json                 # the block plan, the member's targets, the cache key

   Every file is written atomically and ``plan.json`` last, so a folder with
   a ``plan.json`` is complete; an interrupted run resumes at the first track
   without one. The key (the members' models and options, the block and
   overlap lengths, seed and compute mode) is checked on reading: a cache
   written for other settings is computed again. A second tuning run, or one
   with more candidates, runs no model again.
2. Scoring a candidate: per block, the ensemble's :class:`~demix.ensemble.Blend`
   (shares normalised per target over the members that estimate it, then the
   post-filter), then :func:`~demix.ensemble.crossfade` and
   :func:`~demix.separate.to_source`, exactly as ``separate`` runs them; then
   museval (BSSEval v4, 1 s windows): per target, the median over tracks of
   the per-track median SDR over frames, as the papers report.
3. Weights: candidate weight vectors on a grid over the simplex of the
   members' weights (step ``1 / steps``) are applied to every target at once
   without the post-filter. Then a target's SDR depends only on its own
   estimate, so one museval run per candidate and track scores every target,
   and each target takes its best candidate. A member that does not
   estimate a target gets weight 0 for it; a candidate that gives every
   member estimating a target weight 0 is not scored for that target.
4. Wiener iterations: with the chosen weights, each candidate number of EM
   steps of the post-filter (0 = off) is scored, and the one with the best
   mean over targets is kept.
5. Every score is kept (:mod:`evaluation.score_book`, ``OUT/blend-scores/``)
   under what determines it, and a blend already scored is not run through
   museval again: the chosen weights at 0 iterations are the grid's, so is
   an original config without the post-filter whose weights are on the grid,
   and a second run, or one that resumes, scores only what is new. The result
   says how many museval runs this one made (``museval_runs``).
6. The original config is scored on the same tracks, and a config with the
   chosen weights (written exactly, so that it reads back as the weights
   that were scored) goes to ``OUT/tuned.toml`` with both sets of scores in
   its header. Separating with it on the CPU, where tune runs the members, gives
   the tuned score.
"""

from __future__ import annotations

import itertools
import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import tqdm

from demix import SAMPLE_RATE, TARGETS
from demix.atomic import write_json_atomically
from demix.audio import Audio, engine_length, write_wav_atomically
from demix.config import Config, config_to_toml, load_config
from demix.ensemble import Blend, BlockPlan, crossfade
from demix.errors import DemixError
from demix.separate import collect, to_source
from demix.stream import EngineMix, song_statistics
from evaluation.score_book import SCORES_FOLDER, ScoreBook, scores_key

#: Bumped when the cache layout changes, so that an old cache is recomputed, not misread.
CACHE_FORMAT = 2
PLAN_FILE = "plan.json"


def weight_grid(members: int, steps: int) -> list[tuple[float, ...]]:
    """All weight vectors with entries in {0, 1/steps, ..., 1} summing to 1."""
    return [tuple(c / steps for c in combo) for combo in itertools.product(range(steps + 1), repeat=members)
            if sum(combo) == steps]


def cache_key(config: Config) -> dict:
    """What the cached estimates depend on: every member's model and options
    (the block length is a multiple of the strides of all members), the block
    and overlap lengths, the Demucs seed and the compute mode. Weights and
    Wiener iterations are not in it: they are what is tuned."""
    return {
        "format": CACHE_FORMAT,
        "members": [{"name": m.name, "family": m.family, "model": m.model, "options": m.options,
                     **({"compute": m.compute} if m.compute is not None else {})}
                    for m in config.members],
        "block_seconds": config.block_seconds, "overlap_seconds": config.overlap_seconds,
        "seed": config.seed, "compute": config.compute,
    }


def track_audio(track) -> Audio:
    """A musdb track's mixture as ``separate`` reads a file: float32 (channels, frames)."""
    return Audio(np.ascontiguousarray(track.audio.T, dtype=np.float32), int(track.rate))


def block_path(folder: Path, index: int, target: str) -> Path:
    return Path(folder) / f"block-{index:04d}" / f"{target}.wav"


@dataclass(frozen=True)
class CachedTrack:
    """One track's cache: the block plan and, per member in the config's
    order, its folder and the targets it estimates."""

    name: str
    plan: BlockPlan
    members: tuple[tuple[str, Path, tuple[str, ...]], ...]

    @property
    def member_targets(self) -> dict[str, tuple[str, ...]]:
        return {name: targets for name, _, targets in self.members}

    def block(self, index: int) -> list[tuple[str, dict[str, torch.Tensor]]]:
        """Every member's raw estimates of block ``index``, as
        :meth:`~demix.ensemble.Ensemble.member_estimates` gave them."""
        return [(name, {target: _read_estimate(block_path(folder, index, target)) for target in targets})
                for name, folder, targets in self.members]


def _read_estimate(path: Path) -> torch.Tensor:
    try:
        samples, _ = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, sf.LibsndfileError) as error:
        raise DemixError(f"{path}: cannot read this cached estimate ({error}); "
                         f"delete {path.parent.parent} to compute it again") from None
    return torch.from_numpy(np.ascontiguousarray(samples.T))


def write_member_cache(folder: Path, plan: BlockPlan, targets, blocks, key: dict) -> None:
    """One member's cache of one track: ``blocks[i][target]``, the (2, padded)
    estimates of block ``i`` of ``plan``, each written atomically, then
    ``plan.json`` (atomically, last: the mark that the folder is complete)."""
    _start_member_cache(folder)
    for index, estimates in enumerate(blocks):
        _write_block(folder, index, targets, estimates)
    _finish_member_cache(folder, plan, targets, key)


def _start_member_cache(folder: Path) -> None:
    (Path(folder) / PLAN_FILE).unlink(missing_ok=True)  # incomplete until the new blocks are all written


def _write_block(folder: Path, index: int, targets, estimates) -> None:
    for target in targets:
        write_wav_atomically(block_path(folder, index, target), np.asarray(estimates[target]).T, SAMPLE_RATE)


def _finish_member_cache(folder: Path, plan: BlockPlan, targets, key: dict) -> None:
    write_json_atomically(Path(folder) / PLAN_FILE, {"key": key, "targets": list(targets), "length": plan.length,
                                                     "block": plan.block, "overlap": plan.overlap}, indent=1)


def read_cache(cache: Path, config: Config, track_name: str, length: int) -> CachedTrack | None:
    """The track's cache if every member's is complete, was written for
    ``config``'s key and for ``length`` engine frames, and all share one
    block plan; None otherwise (then it is computed again)."""
    key, plan, members = cache_key(config), None, []
    for member in config.members:
        folder = Path(cache) / member.name / track_name
        try:
            meta = json.loads((folder / PLAN_FILE).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("key") != key or meta.get("length") != length:
            return None
        member_plan = BlockPlan(meta["length"], meta["block"], meta["overlap"])
        if plan is not None and member_plan != plan:
            return None
        plan, targets = member_plan, tuple(meta["targets"])
        if not all(block_path(folder, i, t).is_file() for i in range(len(plan)) for t in targets):
            return None
        members.append((member.name, folder, targets))
    return CachedTrack(track_name, plan, tuple(members))


def compute_cache(ensemble, config: Config, cache: Path, track) -> None:
    """Run every member of ``ensemble`` (loaded from ``config``) on every
    block of ``track`` and cache the raw estimates, block by block."""
    audio = track_audio(track)
    statistics = song_statistics(audio) if ensemble.needs_song_statistics else None
    mix = EngineMix(audio)
    plan = ensemble.plan(mix.length)
    folders = {member.name: Path(cache) / member.name / track.name for member in ensemble.members}
    for folder in folders.values():
        _start_member_cache(folder)
    bar = tqdm.tqdm(plan, total=len(plan), desc=track.name, unit="block", leave=False)
    for index, (start, stop) in enumerate(bar):
        for name, estimates in ensemble.member_estimates(mix.read(start, stop), statistics):
            _write_block(folders[name], index, tuple(estimates), {t: e.cpu().numpy() for t, e in estimates.items()})
    key = cache_key(config)
    for member in ensemble.members:
        _finish_member_cache(folders[member.name], plan, member.targets, key)


def replay(track, cached: CachedTrack, blend: Blend) -> dict[str, np.ndarray]:
    """What ``separate`` writes for ``track`` with ``blend``'s weights and
    post-filter, from the cached member estimates: ``{target: (n, channels)}``."""
    audio = track_audio(track)
    mix = EngineMix(audio)
    if mix.length != cached.plan.length:
        raise DemixError(f"{track.name}: the cache holds {cached.plan.length} frames, the track "
                         f"{mix.length}; delete its cache folders to compute them again")
    blocks = (blend(mix.read(start, stop), cached.block(index)) for index, (start, stop) in enumerate(cached.plan))
    stems = collect(to_source(crossfade(blocks, cached.plan), audio), audio)
    return {target: stems[index].T for index, target in enumerate(TARGETS)}


def median_sdr_per_target(track, estimates: dict[str, np.ndarray]) -> dict[str, float]:
    """museval (BSSEval v4, 1 s windows): per target, the median SDR over frames."""
    import museval

    store = museval.eval_mus_track(track, estimates)
    frame = store.df
    frame = frame[frame["metric"] == "SDR"]
    return {t: float(np.nanmedian(frame[frame["target"] == t]["score"])) for t in TARGETS}


def _score_candidate(job) -> dict[str, float]:
    track, cached, shares, iterations = job
    return median_sdr_per_target(track, replay(track, cached, Blend(cached.member_targets, shares, iterations)))


def tune(
    config_path: Path | None,
    models_dir: Path,
    tracks: list,
    out_dir: Path,
    steps: int = 10,
    wiener_candidates: tuple[int, ...] = (0, 1, 2),
    workers: int = 1,
    log=tqdm.tqdm.write,
) -> tuple[Path, dict]:
    """Search, write ``OUT/tuned.toml``; returns its path and the scores."""
    config = load_config(config_path)
    cache = Path(out_dir) / "cache"
    ensemble = None  # loaded only if some track is not cached yet
    cached: dict[str, CachedTrack] = {}
    for track in tqdm.tqdm(tracks, desc="member estimates", unit="track"):
        audio = track_audio(track)
        length = engine_length(audio.frames, audio.sample_rate)
        found = read_cache(cache, config, track.name, length)
        if found is None:
            if ensemble is None:
                from demix.load import load_ensemble

                ensemble = load_ensemble(config, models_dir, "cpu", threads=False)
            compute_cache(ensemble, config, cache, track)
            found = read_cache(cache, config, track.name, length)
            assert found is not None, f"{cache}: the cache of {track.name} just written does not read back"
        cached[track.name] = found
    member_targets = cached[tracks[0].name].member_targets

    key = scores_key(cache_key(config))
    books = {track.name: ScoreBook(Path(out_dir) / SCORES_FOLDER / f"{track.name}.json", key,
                                   cached[track.name].plan.length) for track in tracks}
    museval_runs = {"now": 0, "answered": 0}
    pool = ProcessPoolExecutor(max(1, min(workers, len(tracks))), mp_context=get_context("spawn"))

    def evaluate(shares: dict[str, dict[str, float]], iterations: int) -> dict[str, float]:
        weights = Blend(member_targets, shares, 0).shares  # what the blend applies: the scores' key
        per_track = {track.name: books[track.name].get(weights, iterations) for track in tracks}
        todo = [track for track in tracks if per_track[track.name] is None]
        jobs = [(track, cached[track.name], shares, iterations) for track in todo]
        for track, scores in zip(todo, pool.map(_score_candidate, jobs)):
            books[track.name].add(weights, iterations, scores)
            per_track[track.name] = scores
        museval_runs["now"] += len(todo)
        museval_runs["answered"] += len(tracks) - len(todo)
        return {t: float(np.nanmedian([scores[t] for scores in per_track.values()])) for t in TARGETS}

    with pool:
        path, results = _search(config, member_targets, tracks, evaluate, out_dir, steps, wiener_candidates, log)
    log(f"museval: {museval_runs['now']} track runs, {museval_runs['answered']} answered by earlier scores "
        f"({Path(out_dir) / SCORES_FOLDER})")
    return path, {**results, "museval_runs": museval_runs["now"]}


def _search(config, member_targets, tracks, evaluate, out_dir, steps, wiener_candidates, log) -> tuple[Path, dict]:
    names = [member.name for member in config.members]
    default_shares = {member.name: dict(member.shares) for member in config.members}

    def shares(candidate: tuple[float, ...], target: str) -> dict[str, float] | None:
        """The candidate's weights for ``target``: 0 for members that do not
        estimate it; None if no member that does gets a weight."""
        weights = {n: (w if target in member_targets[n] else 0.0) for n, w in zip(names, candidate)}
        return weights if sum(weights.values()) > 0 else None

    def per_member(per_target: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {n: {t: per_target[t][n] for t in TARGETS} for n in names}

    grid = weight_grid(len(names), steps)
    candidate_scores = []
    for candidate in tqdm.tqdm(grid, desc="weight candidates", unit="candidate"):
        valid = {t: shares(candidate, t) for t in TARGETS}
        # a target this candidate cannot blend keeps the original weights, and its score is not used:
        # without the post-filter, targets do not affect each other
        weights = {t: valid[t] or {n: default_shares[n][t] for n in names} for t in TARGETS}
        scores = evaluate(per_member(weights), 0)
        candidate_scores.append({t: scores[t] if valid[t] else -math.inf for t in TARGETS})
    chosen = {t: shares(grid[int(np.argmax([scores[t] for scores in candidate_scores]))], t) for t in TARGETS}
    log("chosen weights: " + "; ".join(f"{t} " + ", ".join(f"{n} {chosen[t][n]:.2f}" for n in names)
                                          for t in TARGETS))
    chosen_shares = per_member(chosen)

    by_iterations = {n: evaluate(chosen_shares, n) for n in wiener_candidates}
    best_iterations = max(wiener_candidates, key=lambda n: np.mean(list(by_iterations[n].values())))
    default_scores = evaluate(default_shares, config.wiener_iterations)
    tuned_scores = by_iterations[best_iterations]

    tuned = replace(config, wiener_iterations=best_iterations, members=tuple(
        replace(member, shares=chosen_shares[member.name]) for member in config.members))
    path = Path(out_dir) / "tuned.toml"
    path.write_text(config_to_toml(tuned, _header(config, tracks, tuned_scores, default_scores, best_iterations)))
    return path, {"tuned": tuned_scores, "default": default_scores, "wiener_iterations": best_iterations,
                  "weights": {t: [chosen[t][n] for n in names] for t in TARGETS},
                  "by_wiener_iterations": by_iterations}


def _header(config: Config, tracks: list, tuned: dict, default: dict, iterations: int) -> str:
    def row(scores):
        return ", ".join(f"{t} {scores[t]:.2f}" for t in TARGETS) + f"; mean {np.mean(list(scores.values())):.2f}"

    return (f"Written by `python -m evaluation tune` from {config.path}\n"
            f"on {len(tracks)} tracks: {', '.join(track.name for track in tracks)}\n"
            f"median SDR (museval v4, median over frames, then over tracks), in dB:\n"
            f"  these weights, {iterations} Wiener iteration(s): {row(tuned)}\n"
            f"  the original config on the same tracks:  {row(default)}")
