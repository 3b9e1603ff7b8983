"""Speed of an xumx-sliCQ-V2 member (demix/members/xumx_slicq.py) of the
published size: bark scale, 262 bins from 32.9 Hz, 15.1 M parameters, with
RANDOM weights (cost does not depend on them), written as the package's
training writes a model folder. On real music (the stempeg example, tiled to
``--seconds``), in one ``separate`` call: loading time, each run's time after
a 1 s warm-up, seconds per second of audio (the best run) and peak RSS.

    .venv/bin/python benchmarks/xumx_slicq.py [--variant offline|realtime] [--threads N] [--seconds S]

Run it once per variant and thread count (each in its own process, so that
peak RSS is its own) on an otherwise idle machine: on a busy 2-core CPU,
two torch threads ran up to 15 times slower than one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demix.members.xumx_slicq import JSON_NAME, WEIGHTS_NAME, XumxSlicqMember  # noqa: E402

PUBLISHED = {"fscale": "bark", "fbins": 262, "fmin": 32.9, "fgamma": 15.0, "sample_rate": 44100.0, "seq_dur": 2.0}


def write_random_model(folder: Path, realtime: bool) -> Path:
    from xumx_slicq_v2.model import Unmix
    from xumx_slicq_v2.transforms import ComplexNorm, NSGTBase

    with contextlib.redirect_stdout(io.StringIO()):
        base = NSGTBase(PUBLISHED["fscale"], PUBLISHED["fbins"], PUBLISHED["fmin"], fs=44100.0, device="cpu")
    torch.manual_seed(0)
    unmix = Unmix(ComplexNorm()(base.predict_input_size(1, 2, PUBLISHED["seq_dur"])[0]), realtime=realtime)
    torch.save(unmix.state_dict(), folder / WEIGHTS_NAME)
    (folder / JSON_NAME).write_text(json.dumps({"args": {**PUBLISHED, "realtime": realtime}}))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("offline", "realtime"), default="offline")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    import stempeg

    torch.set_num_threads(args.threads)
    audio, rate = stempeg.read_stems(stempeg.example_stem_path(), dtype=np.float32)
    mix = torch.from_numpy(np.ascontiguousarray(audio[0].T))
    frames = int(args.seconds * rate)
    mix = mix.tile(1, -(-frames // mix.shape[1]))[:, :frames].contiguous()
    with tempfile.TemporaryDirectory() as folder:
        write_random_model(Path(folder), args.variant == "realtime")
        started = time.perf_counter()
        member = XumxSlicqMember.from_path("xumx", folder)
        loaded = time.perf_counter() - started
        member.separate(mix[:, :rate])  # warm-up
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            member.separate(mix)
            runs.append(time.perf_counter() - started)
    print(f"{args.variant}, {args.threads} thread(s), {args.seconds:g} s, random weights of the published size: "
          f"load {loaded:.2f} s; runs {', '.join(f'{run:.2f}' for run in runs)} s; "
          f"{min(runs) / args.seconds:.3f} s per s of audio; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
