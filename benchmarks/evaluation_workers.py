"""Evaluation throughput with 1 and with 2 worker processes on the same tracks.

Builds a MUSDB18-HQ-shaped folder of TRACKS tracks from the real excerpts
(each excerpt repeated under new names), scores them with the ideal ratio
mask (museval BSSEval v4 + global SDR, the same work as for any method)
once with 1 worker and once with 2, and prints tracks per hour.
Target: 2 workers >= 1.8 x one worker (on 2 cores).

    .venv/bin/python benchmarks/evaluation_workers.py [--tracks 8]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def build_root(root: Path, count: int, excerpts: Path | None = None) -> None:
    import stempeg

    from challenge.example import lay_out_stem_file

    sources = [Path(stempeg.example_stem_path())] + (sorted(excerpts.glob("*.stem.mp4")) if excerpts else [])
    staging = root / "staging"
    laid_out = [lay_out_stem_file(path, staging) for path in sources]
    for index in range(count):
        shutil.copytree(laid_out[index % len(laid_out)], root / "test" / f"track {index:02d}")
    shutil.rmtree(staging)


def timed_run(root: Path, out: Path, workers: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "evaluation", "run", "--root", str(root), "--method", "irm",
                    "--workers", str(workers), "--out", str(out)], cwd=PROJECT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--excerpts", type=Path, default=None,
                        help="a folder of more MUSDB .stem.mp4 excerpts (default: the stempeg wheel's alone)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build_root(root, args.tracks, args.excerpts)
        rates = {}
        for workers in (1, 2):
            seconds = timed_run(root, root / f"out-{workers}", workers)
            rates[workers] = args.tracks / seconds * 3600
            print(f"{workers} worker(s): {args.tracks} tracks in {seconds:.1f} s = {rates[workers]:.0f} tracks/hour",
                  flush=True)
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f} (target >= 1.8)")


if __name__ == "__main__":
    main()
