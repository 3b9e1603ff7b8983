"""Training speed and memory: ``python -m training fit`` with Open-Unmix's
default batch (16) and sequence length (6 s), hidden size 512, one target,
with and without the pitch/tempo augmentation (the other augmentations on).

Builds a MUSDB18-HQ-shaped folder from the real excerpts (each tiled to
about 34 s so that 6 s examples fit after tempo changes), then runs the
command twice per setting, for WARMUP and for WARMUP + STEPS steps: the
difference is STEPS steps of training alone (start-up, input statistics
and the closing validation cancel out). Peak memory is the longer run's
maximum resident set size. On a CUDA machine it also compares float32
with bfloat16 autocast.

    .venv/bin/python benchmarks/training.py [--steps 6] [--warmup 2] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

#: How many times each excerpt is repeated to make a track.
TILES = 5


def build_root(root: Path, excerpts: Path | None) -> None:
    import stempeg

    from challenge.example import MUSDB_STREAMS
    from demix.audio import write_wav_atomically

    extra = sorted(excerpts.glob("*.stem.mp4")) if excerpts else []
    # the wheel's excerpt validates; the extra excerpts train (without any, it trains on itself too)
    sources = [Path(stempeg.example_stem_path())] + (extra or [Path(stempeg.example_stem_path())])
    for index, path in enumerate(sources):
        audio, rate = stempeg.read_stems(str(path), dtype=np.float32)
        folder = root / ("valid" if index == 0 else "train") / path.name.removesuffix(".stem.mp4")
        for stream, name in enumerate(MUSDB_STREAMS):
            write_wav_atomically(folder / f"{name}.wav", np.tile(audio[stream], (TILES, 1)), rate, subtype="PCM_16")


def timed_fit(root: Path, output: Path, steps: int, extra: list[str], env: dict) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one training run."""
    command = [sys.executable, "-m", "training", "fit", "--root", str(root), "--output", str(output),
               "--steps", str(steps), "--quiet", "--checkpoint-steps", "100000", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024


def measure(root: Path, work: Path, name: str, extra: list[str], args, env: dict) -> None:
    short, _ = timed_fit(root, work / f"{name}-short", args.warmup, extra, env)
    long, peak = timed_fit(root, work / f"{name}-long", args.warmup + args.steps, extra, env)
    rate = args.steps / max(long - short, 1e-9)
    print(f"{name:<28} {rate:6.3f} steps/s ({1 / rate:6.2f} s/step)   peak memory {peak / 2**30:5.2f} GiB",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="steps timed per setting")
    parser.add_argument("--excerpts", type=Path, default=None,
                        help="a folder of MUSDB .stem.mp4 excerpts to train on (default: the stempeg wheel's)")
    parser.add_argument("--warmup", type=int, default=2, help="steps of the shorter run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every CPU)")
    args = parser.parse_args()
    import torch

    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    threads = args.threads or "all"
    print(f"torch {torch.__version__}, CPU threads: {threads}; batch 16 x 6 s, hidden 512, target vocals")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        build_root(work / "data", args.excerpts)
        common = ["--device", "cpu", "--target", "vocals"]
        measure(work / "data", work, "cpu, no pitch/tempo", [*common, "--repitch-proba", "0"], args, env)
        measure(work / "data", work, "cpu, pitch/tempo 0.2", [*common, "--repitch-proba", "0.2"], args, env)
        if torch.cuda.is_available():
            gpu = ["--device", "cuda", "--target", "vocals", "--repitch-proba", "0"]
            measure(work / "data", work, "cuda, float32", [*gpu, "--no-bf16"], args, env)
            measure(work / "data", work, "cuda, bfloat16 autocast", [*gpu, "--bf16"], args, env)
        else:
            print("no CUDA device here: GPU speed and the bfloat16 speed-up not measured")


if __name__ == "__main__":
    main()
