"""``python -m training fit --recipe umx|vocal-mask | augment-preview``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demix.errors import DemixError

from .options import RECIPE_OPTIONS, Augmentations, FitOptions, add_arguments, from_namespace

def build_parser(recipe: str = "umx") -> argparse.ArgumentParser:
    """The parser, with the options of ``recipe`` under ``fit``."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser(
        "fit", help="train a model with a recipe: " + "; ".join(f"{k}: {_trains(k)}" for k in RECIPE_OPTIONS),
        description=f"--recipe {recipe}: {_trains(recipe)}. The options below are this recipe's; "
                    "`fit --recipe NAME --help` lists another's.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fit.add_argument("--recipe", choices=tuple(RECIPE_OPTIONS), default="umx", help="what to train")
    add_arguments(fit, RECIPE_OPTIONS[recipe])
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

    args = build_parser(_chosen_recipe(argv)).parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ:  # a thread count the user set wins
        configure_threads()
    try:
        if args.command == "fit":
            from .fit import fit

            output = fit(from_namespace(RECIPE_OPTIONS[args.recipe], args))
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


def _trains(recipe: str) -> str:
    """What a recipe trains: the first line of its options' docstring."""
    return RECIPE_OPTIONS[recipe].__doc__.strip().splitlines()[0].rstrip(".")


def _chosen_recipe(argv) -> str:
    """The --recipe of ``fit`` (default umx), read before the rest: it decides the other options."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--recipe", choices=tuple(RECIPE_OPTIONS), default="umx")
    known, _ = first.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.recipe


if __name__ == "__main__":
    sys.exit(main())
