"""The CPU fast path against the reference pipelines.

Reference: htdemucs through ``demucs.apply.apply_model`` (eager, float32,
shifts=1, split, overlap 0.25), then umxhq through openunmix's ``Separator``
(its default niter=1), back to back on the same input. Against it, the
default ensemble (htdemucs + umxhq, Wiener post-filter) in each compute
mode. Random weights in the real architectures (HTDemucs' class defaults
with 7.8 s segments; ``openunmix.umxhq(pretrained=False)``): timing does not
depend on the weights. Each row runs in a fresh process.

Prints per row: load + warm-up time, separation wall time (fastest of 3) and its ratio to
the reference, peak RSS, and the output's difference from the eager
ensemble (max abs difference, and agreement as SDR in dB). ``compiled``
runs twice: with an empty kernel cache (first warm-up) and again with the
cache it filled (warm-up from the cache).

Targets (:data:`TARGETS`, printed under the table): compiled <= 0.75 x the
reference with max abs difference <= 1e-5; bf16 <= 0.45 x with >= 40 dB
agreement; warm-up from the cache <= 10 s.
The bf16 target is for a CPU with native bfloat16 (demix.compute.cpu_has_native_bf16);
on any other, where demix refuses bf16, the row is still measured, through
DEMIX_ALLOW_EMULATED_BF16=1, and labelled "emulated".

    .venv/bin/python benchmarks/fast_path.py [--seconds 30] [--modes compiled-cold,compiled-cached]

For a long input, ``--breakdown-only MODE`` runs one separation of that mode
and prints only its warm-up and where its time goes (no reference, no
repeats): 10 minutes are one separation, not eight.

    .venv/bin/python benchmarks/fast_path.py --seconds 600 --breakdown-only compiled-cached
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import build_members, make_input  # noqa: E402  (the same members as benchmarks/engine.py)


#: What the rows are measured against (the module docstring says the same).
TARGETS = ("compiled <= 0.75 x reference, max|diff| <= 1e-5; bf16 <= 0.45 x, >= 40 dB; "
           "warm-up from cache <= 10 s")
#: The rows, in order; compiled-cached reuses the kernels compiled-cold compiled.
MODES = ("reference", "eager", "compiled-cold", "compiled-cached", "bf16")

#: Separations timed per row; the fastest counts (this machine is shared and noisy).
REPEATS = 3


def fastest(run, repeats: int = REPEATS):
    """(fastest wall time of ``repeats`` runs, the last run's result)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def child(mode: str, wav: Path, output: Path, repeats: int = REPEATS, parts: bool = True) -> dict:
    """One row, in this process: the warm-up, ``repeats`` timed separations
    and (``parts``) one more with its parts timed."""
    import torch

    from demix.audio import read_audio, to_engine
    from demix.compute import COMPILED_MODES, configure_threads, use_compile_cache
    from demix.config import load_config
    from demix.ensemble import Ensemble

    configure_threads()
    mix = to_engine(read_audio(wav))
    row = {"mode": mode}
    if mode == "reference":
        from demucs.apply import apply_model

        demucs_member, _ = build_members()
        _, umx_member = build_members(wiener_niter=1)

        def reference_pipeline():
            with torch.no_grad():
                reference = mix.mean(0)
                apply_model(demucs_member.model, ((mix - reference.mean()) / reference.std())[None],
                            shifts=1, split=True, overlap=0.25)
                umx_member.separator(mix[None])

        row["seconds"], _ = fastest(reference_pipeline)
        return row
    config = load_config()
    started = time.perf_counter()
    if mode.split("-")[0] in COMPILED_MODES:
        use_compile_cache()  # what demix.load.load_ensemble does before it builds a compiled ensemble
    members = build_members()
    ensemble = Ensemble(list(members), {m.name: m.shares for m in config.members},
                        wiener_iterations=config.wiener_iterations, block_seconds=config.block_seconds,
                        overlap_seconds=config.overlap_seconds, compute=mode.split("-")[0])
    ensemble.warm_up()
    row["warm_up_seconds"] = time.perf_counter() - started
    row["fell_back"] = ensemble.compute != "eager" and not ensemble.compiled
    if repeats:
        row["seconds"], stems = fastest(lambda: ensemble.separate(mix), repeats)
        np.save(output, stems.numpy())
    if parts:
        row["breakdown"] = breakdown(ensemble, mix)
    return row


class Stopwatch:
    """Seconds spent inside wrapped callables, by label; a call inside
    another wrapped one counts for both (the post-filter's STFTs are part of
    the post-filter), so the report subtracts the parts from their whole."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
        return timed


def breakdown(ensemble, mix) -> dict[str, float]:
    """One more separation of ``mix`` with its parts timed: each member's
    ``separate`` (its own STFTs, network, masks), the Wiener post-filter
    (its STFTs of the mix and of the blend, the EM step, the inverse STFT)
    and what is left, the engine's own work (blocks, resampling, the blend's
    sums, cross-fades, copies). Wrapping adds a few calls per block, nothing
    per sample."""
    import demix.postfilter

    watch = Stopwatch()
    for member in ensemble.members:
        member.separate = watch.wrap(f"member {member.name}", member.separate)
    postfilter = ensemble.postfilter
    wiener = demix.postfilter.wiener
    if postfilter is not None:
        postfilter.forward = watch.wrap("post-filter", postfilter.forward)
        postfilter.stft.forward = watch.wrap("post-filter STFTs", postfilter.stft.forward)
        postfilter.istft.forward = watch.wrap("post-filter inverse STFT", postfilter.istft.forward)
        demix.postfilter.wiener = watch.wrap("post-filter EM step", wiener)
    started = time.perf_counter()
    try:
        ensemble.separate(mix)
    finally:
        demix.postfilter.wiener = wiener
    total = time.perf_counter() - started
    parts = dict(watch.seconds)
    if "post-filter" in parts:
        parts["post-filter other"] = parts["post-filter"] - sum(
            parts.get(label, 0.0) for label in ("post-filter STFTs", "post-filter inverse STFT", "post-filter EM step"))
    outside = sum(seconds for label, seconds in parts.items() if label.startswith("member ") or label == "post-filter")
    parts["engine's own work"] = total - outside
    parts["total"] = total
    return parts


def run_child(mode: str, wav: Path, output: Path, cache: Path, repeats: int = REPEATS, parts: bool = True) -> dict:
    from demix.compute import ALLOW_EMULATED_BF16

    env = {**os.environ, "DEMIX_COMPILE_CACHE": str(cache), ALLOW_EMULATED_BF16: "1"}
    arguments = [mode, str(wav), str(output), str(repeats), str(int(parts))]
    result = subprocess.run([sys.executable, __file__, "--child", *arguments], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def agreement_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference, estimate = reference.astype(np.float64), estimate.astype(np.float64)
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum((reference - estimate) ** 2), 1e-30)))


def print_breakdowns(rows: dict[str, dict]) -> None:
    print("where the time goes (one more separation, parts timed; seconds and share of it):")
    for mode, row in rows.items():
        if "breakdown" not in row:
            continue
        total = row["breakdown"]["total"]
        parts = ", ".join(f"{label} {seconds:.1f} ({seconds / total:.0%})"
                          for label, seconds in row["breakdown"].items() if label not in ("total", "post-filter"))
        print(f"  {mode}: {total:.1f} s = {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated rows to run, among {', '.join(MODES)} (reference and eager always run)")
    parser.add_argument("--breakdown-only", metavar="MODE", choices=MODES[1:],
                        help="one separation of MODE, timed in parts, and nothing else (for long inputs)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = child(args.child[0], Path(args.child[1]), Path(args.child[2]), int(args.child[3]), args.child[4] == "1")
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(row))
        return

    from demix.compute import available_cpus, cpu_has_native_bf16

    native_bf16 = cpu_has_native_bf16()
    print(f"{args.seconds:.0f} s of real music, {available_cpus()} CPUs, "
          f"{'native' if native_bf16 else 'emulated'} bfloat16")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        wav, cache = folder / "input.wav", folder / "compile-cache"
        make_input(wav, args.seconds)
        if args.breakdown_only:
            if args.breakdown_only == "compiled-cached":  # its kernels, compiled once beforehand
                run_child("compiled-cold", wav, folder / "cold.npy", cache, repeats=0, parts=False)
            row = run_child(args.breakdown_only, wav, folder / "unused.npy", cache, repeats=0)
            print(f"{args.breakdown_only}: warm-up {row['warm_up_seconds']:.1f} s, "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB")
            print_breakdowns({args.breakdown_only: row})
            return
        rows = {}
        wanted = set(args.modes.split(",")) | {"reference", "eager"}
        unknown = wanted - set(MODES)
        if unknown:
            parser.error(f"unknown modes {sorted(unknown)}")
        for mode in (mode for mode in MODES if mode in wanted):
            rows[mode] = run_child(mode, wav, folder / f"{mode}.npy", cache)
        base = rows["reference"]["seconds"]
        eager = np.load(folder / "eager.npy")
        print(f"{'mode':<16} {'warm-up s':>9} {'wall s':>7} {'/ ref':>6} {'RSS MB':>7} {'max|diff|':>10} {'agree dB':>9}")
        for mode, row in rows.items():
            warm = f"{row['warm_up_seconds']:9.1f}" if "warm_up_seconds" in row else f"{'-':>9}"
            diff = agree = "-"
            if mode != "reference":
                stems = np.load(folder / f"{mode}.npy")
                diff = f"{np.abs(stems - eager).max():.1e}"
                agree = f"{agreement_db(eager, stems):.1f}" if mode != "eager" else "-"
            label = mode + (" (emulated)" if mode == "bf16" and not native_bf16 else "")
            label += " (fell back)" if row.get("fell_back") else ""
            print(f"{label:<16} {warm} {row['seconds']:7.1f} {row['seconds'] / base:6.3f} "
                  f"{row['peak_rss_mb']:7.0f} {diff:>10} {agree:>9}")
        print_breakdowns(rows)
        print("targets: " + TARGETS)


if __name__ == "__main__":
    main()
