"""``python -m evaluation run``: score methods on MUSDB18(-HQ) with museval
and the global SDR, in parallel, resumably; ``tune`` an ensemble's weights;
``report`` runs; ``slicq-search`` the sliCQT whose MPI oracle scores best."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from demix.errors import DemixError


def _argument(parse):
    """An argparse type from a parser that raises DemixError: its message, as argparse prints them."""
    def convert(text: str):
        try:
            return parse(text)
        except DemixError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def _pair(kind, option: str):
    """``LO,HI`` of numbers."""
    def pair(text: str):
        parts = text.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            return kind(parts[0]), kind(parts[1])
        except ValueError:
            raise DemixError(f"{option} {text!r}: expected LO,HI, e.g. {option} "
                             + ("10,300" if kind is int else "10,130")) from None

    pair.__name__ = f"{kind.__name__} pair"
    return pair


def _scales(text: str) -> tuple[str, ...]:
    return tuple(scale.strip() for scale in text.split(",") if scale.strip())


def build_parser() -> argparse.ArgumentParser:
    from demix.compute import available_cpus
    from demix.config_choice import ORDER_HELP
    from evaluation.oracles import ORACLES
    from evaluation.slicq_oracles import DEFAULT_SLICQ, SCALES, SLICQ_ORACLES, SlicqParams

    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="separate and score tracks")
    run.add_argument("--root", type=Path, required=True, help="MUSDB18-HQ (wav folders) or MUSDB18 (.stem.mp4) root")
    run.add_argument("--subset", choices=("test", "train"), default="test")
    run.add_argument("--split", choices=("train", "valid"), default=None, help="with --subset train")
    run.add_argument("--tracks", nargs="+", default=None, help="track names (default: all)")
    run.add_argument("--method", nargs="+", default=["ensemble"],
                     help=f"ensemble, member:<name>, {', '.join(ORACLES + SLICQ_ORACLES)} (default: ensemble)")
    run.add_argument("--out", type=Path, default=Path("evaluation-results"), help="score files and tables")
    run.add_argument("--workers", type=int, default=available_cpus(), help="worker processes (default: the CPUs)")
    run.add_argument("--config", type=Path, default=None, help=f"ensemble config ({ORDER_HELP})")
    run.add_argument("--models", type=Path, default=None, help="weights folder")
    run.add_argument("--oracle-nfft", type=int, default=4096, help="STFT size of the oracles")
    run.add_argument("--slicq", type=_argument(SlicqParams.parse), default=DEFAULT_SLICQ, metavar="SCALE,BINS,FMIN",
                     help=f"sliCQT of the slicq-* oracles: scale ({', '.join(SCALES)}), bins, lowest frequency in Hz "
                          f"(default {DEFAULT_SLICQ}: the xumx-sliCQ-V2 model's)")
    run.add_argument("--keep-estimates", action="store_true", help="also write OUT/estimates/<method>/<track>/*.wav")
    run.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="run the tasks on this Ray cluster (HOST:PORT or auto) instead of local workers")

    tune = commands.add_parser("tune", help="search per-target member weights and Wiener iterations")
    tune.add_argument("--root", type=Path, required=True, help="MUSDB18-HQ (wav folders) or MUSDB18 (.stem.mp4) root")
    tune.add_argument("--subset", choices=("test", "train"), default="train")
    tune.add_argument("--split", choices=("train", "valid"), default=None,
                      help="with --subset train (default there: valid)")
    tune.add_argument("--tracks", nargs="+", default=None, help="track names (default: all of the split)")
    tune.add_argument("--config", type=Path, default=None, help=f"the config whose members are tuned ({ORDER_HELP})")
    tune.add_argument("--models", type=Path, default=None, help="weights folder")
    tune.add_argument("--out", type=Path, default=Path("tuning"), help="cache of member estimates, tuned.toml")
    tune.add_argument("--steps", type=int, default=10, help="weight grid step = 1/STEPS (default 10)")
    tune.add_argument("--wiener", type=int, nargs="+", default=[0, 1, 2], help="Wiener iterations to try")
    tune.add_argument("--workers", type=int, default=available_cpus(), help="worker processes for museval")

    slicq = commands.add_parser("slicq-search", help="search the sliCQT whose MPI oracle scores best, "
                                                     "against the STFT's")
    slicq.add_argument("--root", type=Path, required=True, help="MUSDB18-HQ (wav folders) or MUSDB18 (.stem.mp4) root")
    slicq.add_argument("--subset", choices=("test", "train"), default="test")
    slicq.add_argument("--split", choices=("train", "valid"), default=None, help="with --subset train")
    slicq.add_argument("--tracks", nargs="+", default=None, help="track names (default: all)")
    slicq.add_argument("--trials", type=int, default=60, help="transforms to score (default 60)")
    slicq.add_argument("--out", type=Path, required=True,
                       help="trial files (OUT/trials/), the STFT oracle's score, best.json")
    slicq.add_argument("--search", choices=("random", "grid"), default="random",
                       help="random draws (seeded) or a grid of about --trials points (default random)")
    slicq.add_argument("--scales", type=_argument(_scales), default=SCALES, metavar="SCALE,...",
                       help=f"frequency scales to try (default {','.join(SCALES)})")
    slicq.add_argument("--bins", type=_argument(_pair(int, "--bins")), default=(10, 300), metavar="LO,HI",
                       help="numbers of frequency bins to try, both included (default 10,300)")
    slicq.add_argument("--fmin", type=_argument(_pair(float, "--fmin")), default=(10.0, 130.0), metavar="LO,HI",
                       help="lowest frequencies to try in Hz, both included, in 0.1 Hz steps (default 10,130)")
    slicq.add_argument("--max-sllen", type=int, default=44100, metavar="SAMPLES",
                       help="skip transforms with longer slices (default 44100, 1 s)")
    slicq.add_argument("--seed", type=int, default=0, help="of the random search (default 0)")
    slicq.add_argument("--workers", type=int, default=available_cpus(), help="worker processes (default: the CPUs)")
    slicq.add_argument("--ray", metavar="ADDRESS", default=None,
                       help="run the trials on this Ray cluster (HOST:PORT or auto) instead of local workers")

    report = commands.add_parser("report", help="Markdown table, box plots and a listening page of one or more runs")
    report.add_argument("results", type=Path, nargs="+", help="folders written by `run`")
    report.add_argument("--out", type=Path, default=None, help="where report.md, sdr_boxplot.png and index.html go "
                                                                "(default: the first results folder)")
    report.add_argument("--window", type=float, default=10.0, metavar="SECONDS",
                        help="length of the excerpts the page plays (default 10)")
    report.add_argument("--window-start", type=float, default=None, metavar="SECONDS",
                        help="start the excerpts here in every track (default: where each reference is loudest)")
    report.add_argument("--root", type=Path, default=None,
                        help="data root of the references (default: the one the run recorded)")
    report.add_argument("--no-page", action="store_true", help="only report.md and the box plots")
    return parser


def _config_path(args) -> Path:
    """The config the command runs, said in its first line."""
    from demix.config_choice import choose_config

    choice = choose_config(args.config)
    print(choice.describe(), flush=True)
    return choice.path


def main(argv=None) -> int:
    from demix.paths import models_dir
    from evaluation import run as evaluation_run
    from evaluation.dataset import open_tracks
    from evaluation.methods import method_names
    from evaluation.slicq_oracles import SLICQ_ORACLES, check_rate

    args = build_parser().parse_args(argv)
    if args.command == "tune":
        return _tune(args)
    if args.command == "report":
        return _report(args)
    if args.command == "slicq-search":
        return _slicq_search(args)
    config = _config_path(args)
    try:
        tracks = open_tracks(args.root, args.subset, args.split, args.tracks)
        known = method_names(config)
        unknown = [m for m in args.method if m not in known]
        if unknown:
            raise DemixError(f"unknown methods {unknown}; this config offers: {', '.join(known)}")
        if set(args.method) & set(SLICQ_ORACLES):
            for track in tracks:
                check_rate(track.rate, f"{args.root}: {track.name}")
        spec = evaluation_run.RunSpec(
            root=str(args.root.resolve()), subset=args.subset, split=args.split,
            config=str(config.resolve()),
            models_dir=str(models_dir(args.models).resolve()), oracle_nfft=args.oracle_nfft,
            out_dir=str(args.out.resolve()), keep_estimates=args.keep_estimates, slicq=str(args.slicq),
        )
        args.out.mkdir(parents=True, exist_ok=True)
        names = [track.name for track in tracks]
        failures = evaluation_run.run(spec, args.method, names, args.workers, ray_address=args.ray)
        results = [r for r in evaluation_run.load_results(args.out, args.method) if r["track"] in names]
        table_path, summary_path = evaluation_run.write_outputs(args.out, results)
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    frame = evaluation_run.summary(results)
    print(frame.to_string(index=False, float_format=lambda value: f"{value:.2f}"))
    print(f"tables: {table_path}, {summary_path}")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _report(args) -> int:
    from evaluation import listening, report, run

    loaded = []
    for folder in args.results:
        found = run.load_results(folder)
        if not found:
            print(f"error: {folder}: no scores here (expected {folder}/scores/<method>/<track>.json)", file=sys.stderr)
            return 1
        for result in found:
            result["run_method"] = result["method"]  # where its estimates are
            if len(args.results) > 1:  # the same method may have been run in several folders
                result["method"] = f"{result['method']} ({folder.name})"
        loaded += [(folder, result) for result in found]
    results = [result for _, result in loaded]
    if args.window <= 0 or (args.window_start is not None and args.window_start < 0):
        print("error: --window must be positive and --window-start not negative", file=sys.stderr)
        return 1
    out = args.out or args.results[0]
    out.mkdir(parents=True, exist_ok=True)
    tracks = len({result["track"] for result in results})
    summary = run.summary(results)
    markdown = report.markdown_table(summary, tracks)
    plot = report.box_plot(run.results_table(results), out / "sdr_boxplot.png")
    (out / "report.md").write_text(f"# Evaluation report\n\n{markdown}\n![per-track SDR]({plot.name})\n")
    print(markdown)
    print(f"report: {out / 'report.md'}, {plot}")
    if not args.no_page:
        try:
            page = listening.write_report_page(out, loaded, summary, plot, root=args.root, window_seconds=args.window,
                                               window_start=args.window_start,
                                               log=lambda line: print(line, file=sys.stderr))
        except DemixError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"listening page: {page.resolve().as_uri()}")
    return 0


def _slicq_search(args) -> int:
    from evaluation.dataset import open_tracks
    from evaluation.slicq_oracles import check_rate
    from evaluation.slicq_search import SearchSpace, SearchSpec, search, table

    started = time.perf_counter()
    try:
        space = SearchSpace(scales=args.scales, bins=args.bins, fmin=args.fmin, max_sllen=args.max_sllen)
        tracks = open_tracks(args.root, args.subset, args.split, args.tracks)
        for track in tracks:
            check_rate(track.rate, f"{args.root}: {track.name}")
        args.out.mkdir(parents=True, exist_ok=True)
        spec = SearchSpec(root=str(args.root.resolve()), subset=args.subset, split=args.split,
                          tracks=tuple(track.name for track in tracks), out_dir=str(args.out.resolve()))
        best, failures = search(spec, space, args.trials, args.search, args.seed, args.workers, ray_address=args.ray)
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(table(best))
    print(f"best: {args.out / 'best.json'} ({time.perf_counter() - started:.0f} s)")
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures or best["best"] is None else 0


def _tune(args) -> int:
    from demix.paths import models_dir
    from evaluation.dataset import open_tracks
    from evaluation.tune import tune

    config = _config_path(args)
    split = args.split or ("valid" if args.subset == "train" else None)
    try:
        tracks = open_tracks(args.root, args.subset, split, args.tracks)
        args.out.mkdir(parents=True, exist_ok=True)
        path, scores = tune(config, models_dir(args.models), tracks, args.out,
                            steps=args.steps, wiener_candidates=tuple(args.wiener), workers=args.workers)
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path.read_text())
    print(f"tuned config: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
