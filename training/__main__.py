"""``python -m training fit | augment-preview``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demix.errors import DemixError

from .options import Augmentations, FitOptions, add_arguments, from_namespace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="train or fine-tune Open-Unmix target models",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(fit, FitOptions)
    preview = commands.add_parser("augment-preview", help="write augmented examples of one song as WAV files",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    preview.add_argument("song", type=Path, help="a track folder: {bass,drums,other,vocals}.wav")
    preview.add_argument("-o", "--out", type=Path, required=True, help="where the WAV files go")
    preview.add_argument("--examples", type=int, default=4, help="how many examples")
    preview.add_argument("--seq-dur", type=float, default=FitOptions.seq_dur, help="seconds per example")
    preview.add_argument("--seed", type=int, default=0)
    add_arguments(preview.add_argument_group("augmentations"), Augmentations)
    return parser


def main(argv=None) -> int:
    import os

    from demix.compute import configure_threads

    args = build_parser().parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ:  # a thread count the user set wins
        configure_threads()
    try:
        if args.command == "fit":
            from .fit import fit

            output = fit(from_namespace(FitOptions, args))
            print(f"model folder: {output}")
        else:
            from .preview import preview

            written = preview(args.song, args.out, from_namespace(Augmentations, args), args.examples,
                              args.seq_dur, args.seed)
            print(f"{len(written)} examples in {args.out}")
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
