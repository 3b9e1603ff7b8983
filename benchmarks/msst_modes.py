"""The MSST families' compute modes against msst's own inference, in one run.

For each catalogued checkpoint named (its shipped YAML's architecture with
random weights: cost does not depend on the weights), on real music (the
stempeg example, tiled) of one chunk's length by default, each in a fresh
process so that peak RSS is its own:

* the anchor: ``msst.utils.model_utils.demix``, eager float32, what MSST,
  python-audio-separator and UVR run on a CPU (with msst's ``normalize_audio``
  and ``denormalize_audio`` around it where the YAML asks, as its inference
  script does);
* each mode through the member (:class:`demix.members.msst.MsstMember`):
  its warm-up (the first chunk batch, which compiles, from an empty kernel
  cache), then the timed separation; seconds per second of audio, the
  multiple of the anchor's time, the agreement with the anchor's stems (the
  lowest global SDR over the stems, dB) and peak RSS; ``--cached-warm-up``
  runs the first mode given a second time, with the kernels from the first;
* ``--profile``: where one chunk's time goes, eager under bf16 autocast
  (``torch.profiler``, self time per operator, in groups), and the band split
  and mask estimators' share (timed around those modules).

    .venv/bin/python benchmarks/engine.py --msst-modes NAME [...] [--modes compiled,bf16] [--seconds S]
        [--batch-sizes 1,2,4] [--overlaps 1,2,4] [--profile] [--cached-warm-up]

``--batch-sizes`` and ``--overlaps`` add rows of the first mode given with
``inference.batch_size`` or ``num_overlap`` set (``anchor`` rows with the
YAML's values are the reference for every row).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

#: Operator groups of the profile, by substrings of aten operator names (first match wins).
PROFILE_GROUPS = (
    ("attention", ("scaled_dot_product", "flash_attention", "softmax", "_efficient_attention")),
    ("matrix products", ("addmm", "bmm", "::mm", "matmul", "linear", "baddbmm", "mkldnn_rnn", "lstm")),
    ("convolutions", ("conv", "mkldnn_convolution")),
    ("norms", ("norm", "rsqrt")),
    ("STFT / iSTFT / FFT", ("stft", "fft", "istft")),
    # inductor's kernels of the compiled modes: element-wise work fused into loops
    ("fused element-wise (compiled)", ("cpp_fused", "triton_")),
)

#: How many of the largest operators of "the rest" the profile names.
PROFILE_REST_SHOWN = 6


def separate_in_mode(name: str, mode: str, wav: Path, out: Path, batch_size: int = 0, num_overlap: int = 0) -> dict:
    """One row: ``mode`` is ``anchor`` (msst's demix) or a compute mode of the member."""
    import torch

    from demix.audio import read_audio, to_engine
    from demix.compute import run_warm, use_compile_cache
    from engine import msst_member

    member = msst_member(name, batch_size=batch_size, num_overlap=num_overlap)
    mix = to_engine(read_audio(wav))
    warm_up = None
    if mode == "anchor":  # as msst's inference script runs a file
        from msst.utils.audio_utils import denormalize_audio, normalize_audio
        from msst.utils.model_utils import demix

        started = time.perf_counter()
        audio, parameters = normalize_audio(mix.numpy()) if member.needs_song_statistics else (mix.numpy(), None)
        stems = demix(member.config, member.model, audio, torch.device("cpu"), member.family)
        if parameters is not None:
            stems = {stem: denormalize_audio(value, parameters) for stem, value in stems.items()}
    else:
        use_compile_cache()
        member.set_compute(mode)
        started = time.perf_counter()
        run_warm(lambda: member.separate(mix[:, : member.chunk_size // 4]))  # one chunk: as Ensemble.warm_up
        warm_up = time.perf_counter() - started
        started = time.perf_counter()
        outputs = member.separate(mix)
        stems = {stem: outputs[target].numpy() for stem, target in member.stem_targets.items()}
    seconds = time.perf_counter() - started
    np.savez(out, **{stem: np.asarray(value) for stem, value in stems.items()})
    return {"seconds": seconds, "warm_up": warm_up, "description": member.compute_description if mode != "anchor"
            else "msst demix, eager float32"}


def agreement_db(anchor: Path, other: Path) -> float:
    """The lowest global SDR over the stems both have, of ``other`` against ``anchor``."""
    from evaluation.scores import global_sdr

    reference, estimate = np.load(anchor), np.load(other)
    return min(global_sdr(reference[stem], estimate[stem]) for stem in reference.files if stem in estimate.files)


def profile_chunk(name: str, wav: Path, compiled: bool = False) -> dict:
    """Self time per operator group of one batch of chunks, eager under bf16 autocast, and
    the inclusive time of the Roformers' band split and mask estimators; ``compiled``: of one
    chunk as the member runs it in ``bf16`` (compiled, frozen weights, after its warm-up)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from demix.audio import read_audio, to_engine
    from demix.compute import run_warm, use_compile_cache
    from engine import msst_member

    member = msst_member(name)
    mix = to_engine(read_audio(wav))[:, : member.chunk_size]
    chunks = mix[None].repeat(1 if compiled else int(member.config.inference.get("batch_size", 1)), 1, 1)
    if compiled:
        use_compile_cache()
        member.set_compute("bf16")
        with torch.inference_mode():
            run_warm(lambda: member.runner(chunks))
        with torch.inference_mode():
            started = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as profiler:
                member.runner(chunks)
            total = time.perf_counter() - started
        return _grouped(profiler, total, chunks.shape[0], {})
    module_seconds: dict[str, float] = {}

    def timed(label: str):
        def before(*_):
            module_seconds.setdefault(label, 0.0)
            module_seconds[label] -= time.perf_counter()

        def after(*_):
            module_seconds[label] += time.perf_counter()

        return before, after

    for attribute, label in (("band_split", "band split"), ("mask_estimators", "mask estimators")):
        module = getattr(member.model, attribute, None)
        # mask_estimators is a ModuleList, which is never called itself: time each head
        for part in (module if isinstance(module, torch.nn.ModuleList) else [module] if module is not None else []):
            before, after = timed(label)
            part.register_forward_pre_hook(before)
            part.register_forward_hook(after)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        member.model(chunks)  # warm-up: oneDNN primitives
        module_seconds.clear()
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            member.model(chunks)
        total = time.perf_counter() - started
    return _grouped(profiler, total, chunks.shape[0], module_seconds)


def _grouped(profiler, total: float, chunks: int, module_seconds: dict) -> dict:
    groups = {label: 0.0 for label, _ in PROFILE_GROUPS}
    groups["the rest"] = 0.0
    rest: dict[str, float] = {}
    for event in profiler.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        label = next((label for label, keys in PROFILE_GROUPS if any(key in event.key for key in keys)), "the rest")
        groups[label] += seconds
        if label == "the rest":
            rest[event.key] = seconds
    # The profiler's self times add up over threads; scale them to the batch's wall time.
    scale = total / (sum(groups.values()) or 1.0)
    largest = sorted(rest.items(), key=lambda item: -item[1])[:PROFILE_REST_SHOWN]
    return {"seconds": total, "chunks": chunks,
            "groups": {label: seconds * scale for label, seconds in groups.items()},
            "rest": {name: seconds * scale for name, seconds in largest}, "modules": module_seconds}


def modes_table(names, modes, seconds, batch_sizes, overlaps, profile, cached_warm_up, run_isolated) -> None:
    """Prints one table per family; ``run_isolated(mode_string, wav)`` runs a row in a fresh process."""
    import torch

    from demix.weights.catalogue import get_official
    from engine import make_input, msst_member

    print(f"MSST compute modes against msst's own demix (eager float32), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; random weights, real music")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name in names:
            member = msst_member(name)
            length = seconds or member.chunk_size / member.sample_rate
            wav = make_input(folder / f"{name}.wav", length)
            print(f"\n{name} ({get_official(name).family}; chunk {member.chunk_size}, num_overlap "
                  f"{member.config.inference.num_overlap}, batch_size {member.config.inference.get('batch_size', 1)}),"
                  f" {length:.1f} s of input:")
            print(f"{'mode':<28} {'s per s':>8} {'x anchor':>9} {'agreement':>10} {'peak RSS MB':>12} "
                  f"{'warm-up s':>10}  runs as")
            cache = folder / f"cache-{name}"
            rows = [] if modes == ["none"] else [("anchor", 0, 0)] + [(mode, 0, 0) for mode in modes]  # none: profiles only
            rows += [(modes[0], size, 0) for size in batch_sizes] + [(modes[0], 0, overlap) for overlap in overlaps]
            anchor = None
            for mode, batch_size, num_overlap in rows:
                repeats = 2 if cached_warm_up and mode == modes[0] != "eager" and not (batch_size or num_overlap) else 1
                for repeat in range(repeats):
                    stems = folder / f"{name}-{mode}-{batch_size}-{num_overlap}.npz"
                    row = run_isolated(f"msst-mode:{name}:{mode}:{batch_size}:{num_overlap}:{stems}", wav,
                                       env={"DEMIX_COMPILE_CACHE": str(cache)})
                    anchor = anchor or row["seconds"]
                    agreement = "" if mode == "anchor" else \
                        f"{agreement_db(folder / f'{name}-anchor-0-0.npz', stems):>7.1f} dB"
                    label = mode + (f" batch_size {batch_size}" if batch_size else "") + \
                        (f" num_overlap {num_overlap}" if num_overlap else "") + (" (cached)" if repeat else "")
                    warm = f"{row['warm_up']:>10.1f}" if row["warm_up"] is not None else f"{'':>10}"
                    print(f"{label:<28} {row['seconds'] / length:>8.2f} {row['seconds'] / anchor:>9.2f} "
                          f"{agreement:>10} {row['peak_rss_mb']:>12.0f} {warm}  {row['description']}", flush=True)
            for how in profile:
                row = run_isolated(f"msst-profile:{name}:{how}", wav, env={"DEMIX_COMPILE_CACHE": str(cache)})
                runs = "eager under bf16 autocast" if how == "eager" else "compiled bf16, as the member runs it"
                print(f"where one batch of {row['chunks']} chunk(s) goes, {runs} ({row['seconds']:.1f} s):")
                for label, part in row["groups"].items():
                    print(f"  {label:<22} {part:>7.1f} s  {100 * part / row['seconds']:>5.1f} %")
                print("  the rest's largest: " + ", ".join(f"{name} {part:.1f} s" for name, part in row["rest"].items()))
                for label, part in row["modules"].items():
                    print(f"  of which in the {label}: {part:.1f} s ({100 * part / row['seconds']:.1f} %)")
            wav.unlink()


def measure(mode_string: str, wav: Path) -> dict:
    """A child's row: ``msst-mode:<name>:<mode>:<batch_size>:<num_overlap>:<stems .npz>`` or
    ``msst-profile:<name>:<eager|compiled>``."""
    kind, name, *rest = mode_string.split(":", 5)
    if kind == "msst-profile":
        return profile_chunk(name, wav, compiled=rest == ["compiled"])
    mode, batch_size, num_overlap, stems = rest
    return separate_in_mode(name, mode, wav, Path(stems), int(batch_size), int(num_overlap))


if __name__ == "__main__":
    raise SystemExit("run it through benchmarks/engine.py --msst-modes")
