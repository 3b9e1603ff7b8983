"""Speed and memory of the ensemble against its members run alone.

Prints, for the default architecture (HT Demucs + Open-Unmix HQ with random
weights: timing does not depend on the weights) on the same input:

* wall time and peak RSS of htdemucs alone through ``demucs.apply.apply_model``
  (normalised as ``demucs.api`` does), of umxhq alone through openunmix's
  ``Separator`` on the whole track, and of the ensemble separating a WAV file
  to WAV stems (with and without its Wiener post-filter);
* the ensemble's peak RSS on a 1-minute and a 10-minute input.

Targets (DESIGN.md): ensemble wall time <= 1.05 x the sum of the members
alone; peak RSS at 10 minutes <= 1.3 x at 1 minute. Each measurement runs
in a fresh process so peak RSS is its own.

    .venv/bin/python benchmarks/engine.py [--seconds 60] [--long-seconds 600]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def make_input(path: Path, seconds: float) -> None:
    """Real music: the stempeg example's mixture, repeated to ``seconds``."""
    import numpy as np
    import soundfile as sf
    import stempeg

    audio, rate = stempeg.read_stems(stempeg.example_stem_path(), stem_id=0, dtype=np.float32)
    frames = int(seconds * rate)
    tiled = np.tile(audio, (frames // len(audio) + 1, 1))[:frames]
    sf.write(path, tiled, rate, subtype="PCM_16")


def build_members(wiener_niter: int = 0):
    """Random-weight htdemucs (HTDemucs' defaults, 7.8 s segments) and umxhq."""
    import openunmix
    import torch
    from demucs.htdemucs import HTDemucs

    from demix.members import DemucsMember, OpenUnmixMember

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demucs_model = HTDemucs(sources=["drums", "bass", "other", "vocals"], segment=7.8).eval()
    separator = openunmix.umxhq(pretrained=False, niter=wiener_niter).eval()
    return (DemucsMember("htdemucs", demucs_model, "random"),
            OpenUnmixMember("umxhq", separator, channels=2, source="random"))


def measure(mode: str, wav: Path) -> dict:
    """Run one mode in this process; returns its wall time."""
    import torch

    from demix.audio import read_audio, stem_paths, to_engine
    from demix.config import load_config
    from demix.ensemble import Ensemble
    from demix.separate import separate_file

    demucs_member, umx_member = build_members()
    started = time.perf_counter()
    if mode == "demucs-alone":
        from demucs.apply import apply_model

        mix = to_engine(read_audio(wav))
        reference = mix.mean(0)
        with torch.no_grad():
            apply_model(demucs_member.model, ((mix - reference.mean()) / reference.std())[None],
                        shifts=1, split=True, overlap=0.25)
    elif mode == "umx-alone":
        mix = to_engine(read_audio(wav))
        with torch.no_grad():
            umx_member.separator(mix[None])
    else:
        config = load_config()
        weights = {member.name: member.weights for member in config.members}
        iterations = 0 if mode == "ensemble-no-postfilter" else config.wiener_iterations
        ensemble = Ensemble([demucs_member, umx_member], weights, iterations,
                            config.block_seconds, config.overlap_seconds)
        with tempfile.TemporaryDirectory() as out_dir:
            separate_file(ensemble, wav, stem_paths(Path(out_dir)))
    return {"mode": mode, "seconds": time.perf_counter() - started}


def run_isolated(mode: str, wav: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(wav)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="input length for the speed comparison")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="long input for the memory comparison")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child[0], Path(args.child[1]))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        short, long = Path(folder) / "short.wav", Path(folder) / "long.wav"
        make_input(short, args.seconds)
        make_input(long, args.long_seconds)
        rows = {}
        for mode in ("demucs-alone", "umx-alone", "ensemble-no-postfilter", "ensemble"):
            rows[mode] = run_isolated(mode, short)
            print(f"{mode:<24} {args.seconds:>5.0f} s input: {rows[mode]['seconds']:7.1f} s wall, "
                  f"peak RSS {rows[mode]['peak_rss_mb']:7.0f} MB", flush=True)
        members_sum = rows["demucs-alone"]["seconds"] + rows["umx-alone"]["seconds"]
        for mode in ("ensemble-no-postfilter", "ensemble"):
            print(f"{mode} / (demucs alone + umx alone): {rows[mode]['seconds'] / members_sum:.3f} (target <= 1.05)")
        long_row = run_isolated("ensemble", long)
        print(f"{'ensemble':<24} {args.long_seconds:>5.0f} s input: {long_row['seconds']:7.1f} s wall, "
              f"peak RSS {long_row['peak_rss_mb']:7.0f} MB")
        ratio = long_row["peak_rss_mb"] / rows["ensemble"]["peak_rss_mb"]
        print(f"peak RSS {args.long_seconds:.0f} s / {args.seconds:.0f} s: {ratio:.3f} (target <= 1.3)")


if __name__ == "__main__":
    main()
