"""``python -m evaluation slicq-search``: which sliCQT lets a magnitude model
reach highest, by the oracle (after the package's own ``slicqfinder``).

A trial is one transform, :class:`~evaluation.slicq_oracles.SlicqParams`
(frequency scale, number of bins, lowest frequency ``fmin``; the slice
length follows from them). Its score is the MPI oracle's
(``slicq-mpi``: the true stems' magnitudes with the mixture's phase) mean
global SDR over the four targets and the tracks. The best trial's score is
set against the STFT MPI oracle's (:mod:`evaluation.oracles`, ``n_fft``
4096) on the same tracks.

* **Trials**: ``random`` draws the scale among ``--scales``, the bins in
  ``--bins LO,HI`` and fmin in ``--fmin LO,HI`` (0.1 Hz steps), both ends
  included, from a generator seeded by ``--seed``: the same seed and ranges
  give the same trials, and more ``--trials`` extend the same list. A drawn
  transform whose slice length exceeds ``--max-sllen`` samples is recorded
  as skipped and another is drawn in its place, as is a repeat. ``grid``
  takes about ``--trials`` points: the scales times evenly spaced bins and
  fmins; a point over ``--max-sllen`` is skipped, not replaced.
* **Resuming**: each trial's scores go to ``OUT/trials/<scale>-<bins>-<fmin>.json``
  as soon as it is done, written atomically, the STFT oracle's to
  ``OUT/stft-mpi.json``; a second run computes only what has no file.
  ``OUT/search.json`` names the tracks; a run on other tracks is refused.
* **Workers**: trials are spread over ``--workers`` local processes (spawned,
  each with its share of the CPUs) or, with ``--ray ADDRESS``, over a Ray
  cluster, one CPU per trial; every node must see the data and OUT at the
  same paths.
* **Outputs**: a table of the best trials and ``OUT/best.json``: the best
  transform (``slicq`` as ``--slicq`` takes it), its scores, the STFT
  oracle's and the trials counted.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tqdm

from demix import TARGETS
from demix.atomic import write_json_atomically
from demix.errors import DemixError
from evaluation.slicq_oracles import FMAX, SCALES, SlicqParams, slice_length
from evaluation.tasks import run_tasks

#: The STFT of the baseline: the n_fft the STFT oracles of ``run`` use by default.
STFT_NFFT = 4096
#: fmin is drawn and gridded in steps of this many Hz (the package's slicqfinder: 0.1).
FMIN_STEP = 0.1
#: Random search gives up after this many draws per trial wanted (too small a --max-sllen).
DRAWS_PER_TRIAL = 50
#: Rows of the printed table.
TABLE_ROWS = 10
#: A worker keeps the decoded audio of tracks up to this many bytes (musdb decodes through ffmpeg,
#: about 1 s per short track); beyond, it reads them again for each trial.
AUDIO_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class SearchSpec:
    """Everything a worker needs: where the tracks are, which, and OUT."""

    root: str
    subset: str
    split: str | None
    tracks: tuple[str, ...]
    out_dir: str


@dataclass(frozen=True)
class SearchSpace:
    scales: tuple[str, ...] = SCALES
    bins: tuple[int, int] = (10, 300)
    fmin: tuple[float, float] = (10.0, 130.0)
    max_sllen: int = 44100

    def __post_init__(self):
        unknown = [scale for scale in self.scales if scale not in SCALES]
        if unknown or not self.scales:
            raise DemixError(f"--scales {','.join(self.scales)}: choose among {', '.join(SCALES)}")
        if not 2 <= self.bins[0] <= self.bins[1]:
            raise DemixError(f"--bins {self.bins[0]},{self.bins[1]}: need 2 <= LO <= HI")
        if not 0 < self.fmin[0] <= self.fmin[1] < FMAX:
            raise DemixError(f"--fmin {self.fmin[0]:g},{self.fmin[1]:g}: need 0 < LO <= HI < {FMAX:g} Hz")
        if self.max_sllen <= 0:
            raise DemixError(f"--max-sllen {self.max_sllen}: must be positive")


def trial_id(params: SlicqParams) -> str:
    """The trial's file name, from its parameters: ``bark-262-32.9``."""
    return f"{params.scale}-{params.bins}-{params.fmin:g}"


def trial_file(out_dir: Path, params: SlicqParams) -> Path:
    return Path(out_dir) / "trials" / f"{trial_id(params)}.json"


def stft_file(out_dir: Path) -> Path:
    return Path(out_dir) / "stft-mpi.json"


# ---------------------------------------------------------------- the trials


def random_trials(space: SearchSpace, count: int, seed: int) -> tuple[list[SlicqParams], list[tuple[SlicqParams, int]]]:
    """``count`` distinct transforms within ``--max-sllen``, drawn in a
    seeded order, and the (transform, slice length) drawn on the way that
    exceeded it."""
    rng = np.random.default_rng(seed)
    kept: list[SlicqParams] = []
    skipped: list[tuple[SlicqParams, int]] = []
    seen: set[SlicqParams] = set()
    draws = 0
    while len(kept) < count:
        if draws >= DRAWS_PER_TRIAL * count:
            raise DemixError(f"only {len(kept)} of {draws} drawn transforms have a slice length within "
                             f"--max-sllen {space.max_sllen}: raise it or narrow --bins/--fmin")
        draws += 1
        scale = space.scales[int(rng.integers(len(space.scales)))]
        bins = int(rng.integers(space.bins[0], space.bins[1] + 1))
        fmin = float(np.clip(round(float(rng.uniform(*space.fmin)), 1), *space.fmin))
        params = SlicqParams(scale, bins, fmin)
        if params in seen:
            continue
        seen.add(params)
        _keep_or_skip(params, space, kept, skipped)
    return kept, skipped


def grid_trials(space: SearchSpace, count: int) -> tuple[list[SlicqParams], list[tuple[SlicqParams, int]]]:
    """About ``count`` transforms: every scale times evenly spaced bins and
    fmins (a single value is the middle of its range); those over
    ``--max-sllen`` apart."""
    per_scale = max(1.0, count / len(space.scales))
    bin_count = max(1, round(math.sqrt(per_scale)))
    fmin_count = max(1, round(per_scale / bin_count))

    def spaced(low, high, number):
        return [(low + high) / 2] if number == 1 else list(np.linspace(low, high, number))

    bins = sorted({int(round(value)) for value in spaced(*space.bins, bin_count)})
    fmins = sorted({round(float(value), 1) for value in spaced(*space.fmin, fmin_count)})
    kept, skipped = [], []
    for scale in space.scales:
        for bin_number in bins:
            for fmin in fmins:
                _keep_or_skip(SlicqParams(scale, bin_number, fmin), space, kept, skipped)
    return kept, skipped


def _keep_or_skip(params: SlicqParams, space: SearchSpace, kept: list, skipped: list) -> None:
    """Into ``kept``, or into ``skipped`` with its slice length where that exceeds ``--max-sllen``."""
    sllen = slice_length(params)
    if sllen > space.max_sllen:
        skipped.append((params, sllen))
    else:
        kept.append(params)


# ---------------------------------------------------------------- in a worker

_cache: dict = {}


def _tracks(spec: SearchSpec) -> list:
    key = (spec.root, spec.subset, spec.split, spec.tracks)
    if key not in _cache:
        from evaluation.dataset import open_tracks

        _cache[key] = open_tracks(Path(spec.root), spec.subset, spec.split, list(spec.tracks))
    return _cache[key]


def _audio(track) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(mixture, stems) of ``track``, kept for the next trials while they fit :data:`AUDIO_CACHE_BYTES`."""
    key = ("audio", track.path)
    if key in _cache:
        return _cache[key]
    mixture = np.asarray(track.audio, dtype=np.float32)
    stems = {target: np.asarray(track.targets[target].audio, dtype=np.float32) for target in TARGETS}
    size = mixture.nbytes * (1 + len(stems))
    if _cache.get("audio bytes", 0) + size <= AUDIO_CACHE_BYTES:
        _cache[key] = mixture, stems
        _cache["audio bytes"] = _cache.get("audio bytes", 0) + size
    return mixture, stems


def _scores(spec: SearchSpec, separate) -> dict:
    """Global SDR per track and target of ``separate(track, mixture, stems)``,
    the mean per target over tracks and the mean of those."""
    from evaluation.scores import global_sdr

    started = time.perf_counter()
    by_track = {}
    for track in _tracks(spec):
        mixture, stems = _audio(track)
        estimates = separate(track, mixture, stems)
        by_track[track.name] = {target: global_sdr(stems[target], estimates[target]) for target in TARGETS}
    targets = {target: float(np.mean([scores[target] for scores in by_track.values()])) for target in TARGETS}
    return {"score": float(np.mean(list(targets.values()))), "targets": targets, "tracks": by_track,
            "seconds": time.perf_counter() - started}


def evaluate_trial(spec: SearchSpec, params: SlicqParams) -> dict:
    """The sliCQT MPI oracle of ``params`` on the tracks; writes the trial file."""
    from evaluation.slicq_oracles import slicq_oracle_estimates, transform

    _, _, base = transform(params)
    result = {"id": trial_id(params), **asdict(params), "slicq": str(params), "sllen": int(base.sllen),
              "trlen": int(base.trlen)}
    result.update(_scores(spec, lambda track, mixture, stems: slicq_oracle_estimates(
        "slicq-mpi", mixture, stems, params, rate=track.rate, name=track.name)))
    transform.cache_clear()  # the next trial is another transform
    write_json_atomically(trial_file(Path(spec.out_dir), params), result)
    return result


def evaluate_stft(spec: SearchSpec) -> dict:
    """The STFT MPI oracle (n_fft 4096) on the tracks; writes OUT/stft-mpi.json."""
    from evaluation.oracles import oracle_estimates

    result = {"oracle": "mpi", "n_fft": STFT_NFFT}
    result.update(_scores(spec, lambda track, mixture, stems: oracle_estimates("mpi", mixture, stems, STFT_NFFT)))
    write_json_atomically(stft_file(Path(spec.out_dir)), result)
    return result


# ---------------------------------------------------------------- the search


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _check_same_tracks(spec: SearchSpec) -> None:
    """OUT/search.json names the data; a search of other tracks needs another OUT."""
    path = Path(spec.out_dir) / "search.json"
    data = {"root": spec.root, "subset": spec.subset, "split": spec.split, "tracks": sorted(spec.tracks)}
    recorded = _read(path)
    if recorded is None:
        write_json_atomically(path, data, indent=2)
    elif recorded != data:
        raise DemixError(f"{spec.out_dir} holds a search of other tracks ({recorded['subset']} of "
                         f"{recorded['root']}: {', '.join(recorded['tracks'])}); its scores do not compare: "
                         "give another --out")


def search(spec: SearchSpec, space: SearchSpace, trials: int, method: str = "random", seed: int = 0,
           workers: int = 1, ray_address: str | None = None, log=tqdm.tqdm.write) -> tuple[dict, list[str]]:
    """Score the missing trials and the STFT baseline, then write and
    return OUT/best.json's content, with the failures (one line each)."""
    if trials < 1:
        raise DemixError(f"--trials {trials}: must be at least 1")
    out = Path(spec.out_dir)
    _check_same_tracks(spec)
    if method == "random":
        chosen, over = random_trials(space, trials, seed)
    elif method == "grid":
        chosen, over = grid_trials(space, trials)
    else:
        raise DemixError(f"--search {method!r}: random or grid")
    for params, sllen in over:
        if _read(trial_file(out, params)) is None:  # a score of an earlier search with a larger limit is kept
            log(f"skipped {params}: slice length {sllen} > --max-sllen {space.max_sllen}"
                + (" (another drawn in its place)" if method == "random" else ""))
            write_json_atomically(trial_file(out, params), {
                "id": trial_id(params), **asdict(params), "slicq": str(params), "sllen": sllen,
                "skipped": f"slice length {sllen} > --max-sllen {space.max_sllen}"})

    todo = [params for params in chosen if "score" not in (_read(trial_file(out, params)) or {})]
    if len(todo) < len(chosen):
        log(f"{len(chosen) - len(todo)} of {len(chosen)} trials already done: kept")
    tasks = [(str(params), evaluate_trial, (spec, params)) for params in todo]
    if _read(stft_file(out)) is None:
        tasks.append((f"STFT MPI oracle (n_fft {STFT_NFFT})", evaluate_stft, (spec,)))
    failures = run_tasks(tasks, workers, ray_address,
                         lambda scored: f"{scored['score']:.2f} dB ({scored['seconds']:.1f} s)", "trial", log)

    results = [_read(trial_file(out, params)) or {} for params in chosen]
    results = sorted((result for result in results if "score" in result), key=lambda result: -result["score"])
    stft = _read(stft_file(out))
    best = {
        "search": method, "seed": seed if method == "random" else None, "space": asdict(space),
        "tracks": sorted(spec.tracks), "trials": {"evaluated": len(results), "skipped": len(over),
                                                  "failed": len(failures)},
        "best": _summary(results[0]) if results else None,
        "top": [_summary(result) for result in results[:TABLE_ROWS]],
        "stft_mpi": {key: stft[key] for key in ("n_fft", "score", "targets")} if stft else None,
    }
    write_json_atomically(out / "best.json", best, indent=2)
    return best, failures


def _summary(result: dict) -> dict:
    keys = ("slicq", "scale", "bins", "fmin", "sllen", "score", "targets")
    return {key: result[key] for key in keys}


def table(best: dict) -> str:
    """The best trials, then the best against the STFT MPI oracle."""
    header = f"{'rank':>4}  {'slicq':<16} {'sllen':>7}  " + "  ".join(f"{t:>6}" for t in TARGETS) + f"  {'mean':>6}"
    lines = [f"best sliCQT MPI oracles, mean global SDR (dB) over {len(best['tracks'])} track(s):", header]
    for rank, row in enumerate(best["top"], 1):
        lines.append(f"{rank:>4}  {row['slicq']:<16} {row['sllen']:>7}  "
                     + "  ".join(f"{row['targets'][t]:>6.2f}" for t in TARGETS) + f"  {row['score']:>6.2f}")
    stft = best["stft_mpi"]
    if stft:
        lines.append(f"{'':>4}  {'STFT ' + str(stft['n_fft']):<16} {'':>7}  "
                     + "  ".join(f"{stft['targets'][t]:>6.2f}" for t in TARGETS) + f"  {stft['score']:>6.2f}")
    counts = best["trials"]
    lines.append(f"{counts['evaluated']} trials scored, {counts['skipped']} skipped for their slice length"
                 + (f", {counts['failed']} failed" if counts["failed"] else ""))
    if best["best"] and stft:
        top = best["best"]
        lines.append(f"best: --slicq {top['slicq']} (slice length {top['sllen']}): {top['score']:.2f} dB, "
                     f"{top['score'] - stft['score']:+.2f} dB against the STFT MPI oracle's {stft['score']:.2f} dB")
    return "\n".join(lines)
