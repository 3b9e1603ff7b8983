"""The GPU check: each MSST family and the default ensemble's architecture on
a CUDA device, in float32 (eager), fp16, bf16 and compiled, with seconds per
second of audio, peak GPU memory and the agreement with float32 (the lowest
global SDR over the targets, dB). One table, for benchmarks/RESULTS.md.

Random weights in the published architectures (cost does not depend on the
weights), on real music (the stempeg example, tiled to ``--seconds``). fp16
and bf16 are the member's modes as ``compute`` runs them: compiled and under
autocast; bf16 is skipped, saying why, on a GPU before Ampere. Without CUDA
it prints one line saying so and exits 0: CI has no GPU.

    bash benchmarks/gpu_check.sh [--seconds 30] [--names bs_roformer_ep17,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

#: One published checkpoint per MSST family (catalogue names).
FAMILIES = ("bs_roformer_ep17", "mel_band_roformer_kj", "scnet_xl_ihf", "mdx23c_musdb18")
MODES = ("eager", "fp16", "bf16", "compiled")
#: The default ensemble's architecture (demix/default.toml: HT Demucs + Open-Unmix HQ).
DEFAULT_ENSEMBLE = "default ensemble"


def run(name: str, mode: str, mix, device):
    """(stems as {target: cpu tensor}, seconds, peak GPU MB, warm-up seconds) of ``name``: an MSST
    checkpoint's member, or the default ensemble's architecture (HT Demucs + Open-Unmix HQ, with its
    Wiener post-filter)."""
    import torch

    from demix import TARGETS
    from demix.ensemble import Ensemble
    from engine import build_members, msst_member

    if name == DEFAULT_ENSEMBLE:
        members = build_members()
        ensemble = Ensemble(list(members), {member.name: dict.fromkeys(TARGETS, 1.0) for member in members},
                            device, wiener_iterations=1, compute=mode)
        started = time.perf_counter()
        ensemble.warm_up()
        warm_up = time.perf_counter() - started
        separate = lambda audio: dict(zip(TARGETS, ensemble.separate(audio)))  # noqa: E731
    else:
        member = msst_member(name).to(device)
        member.set_compute(mode)
        started = time.perf_counter()
        member.separate(mix[:, : member.chunk_size // 4].to(device))
        warm_up = time.perf_counter() - started
        separate = member.separate
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    stems = separate(mix.to(device))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return ({target: stem.float().cpu() for target, stem in stems.items()}, seconds,
            torch.cuda.max_memory_allocated() / 2 ** 20, warm_up)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the input")
    parser.add_argument("--names", default=",".join(FAMILIES + (DEFAULT_ENSEMBLE,)),
                        help="catalogue names of MSST checkpoints and/or 'default ensemble', comma-separated")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: skipped: no CUDA device here (torch.cuda.is_available() is False)")
        return 0
    from demix.audio import read_audio, to_engine
    from demix.compute import cuda_has_native_bf16, use_compile_cache
    from engine import make_input
    from evaluation.scores import global_sdr

    use_compile_cache()
    device = torch.device("cuda")
    wav = make_input(Path("/tmp") / "demix-gpu-check.wav", args.seconds)
    mix = to_engine(read_audio(wav))
    print(f"GPU check: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
          f"{args.seconds:.0f} s of music, random weights")
    print(f"{'name':<22} {'mode':<9} {'s per s':>8} {'GPU peak MB':>12} {'agreement':>10} {'warm-up s':>10}")
    for name in args.names.split(","):
        reference = None
        for mode in MODES:
            if mode == "bf16" and not cuda_has_native_bf16(device):
                print(f"{name:<22} {mode:<9} skipped: no native bf16 before compute capability 8.0", flush=True)
                continue
            try:
                stems, seconds, peak, warm_up = run(name, mode, mix, device)
            except Exception as error:  # one failing row must not hide the others
                print(f"{name:<22} {mode:<9} failed: {str(error).splitlines()[0][:100]}", flush=True)
                continue
            reference = reference or stems
            agreement = min(global_sdr(reference[t].numpy(), stems[t].numpy()) for t in stems)
            shown = "" if stems is reference else f"{agreement:>7.1f} dB"
            print(f"{name:<22} {mode:<9} {seconds / args.seconds:>8.3f} {peak:>12.0f} {shown:>10} {warm_up:>10.1f}",
                  flush=True)
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
