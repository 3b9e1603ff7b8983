"""``python -m challenge use | submit``: the challenge a submission is for, and submitting it.

The local grader is ``python test.py`` (the name the starter kits use).
"""

from __future__ import annotations

import argparse
import sys

from demix.errors import DemixError

from .challenges import CHALLENGES, write_aicrowd_json
from .submission import PROJECT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m challenge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    use = commands.add_parser(
        "use", help="write aicrowd.json for a challenge (its id and keys), keeping your authors and description",
        description="\n".join(f"{c.key}: {c.title}, challenge_id {c.challenge_id}" for c in CHALLENGES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    use.add_argument("challenge", choices=sorted(CHALLENGES))
    submit = commands.add_parser(
        "submit", help="check the submission, tag it submission-NAME and push the tag to the aicrowd remote")
    submit.add_argument("name", help="the tag becomes submission-NAME")
    submit.add_argument("--dry-run", action="store_true", help="run every check, print what would be done, do nothing")
    submit.add_argument("--protocol", choices=sorted(CHALLENGES), default=None,
                        help="local grader protocol (default: that of the challenge_id in aicrowd.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "use":
            path = PROJECT / "aicrowd.json"
            data = write_aicrowd_json(path, args.challenge)
            print(f"{path}: {CHALLENGES[args.challenge].title}, challenge_id {data['challenge_id']}")
            print("check 'authors', 'description' and 'external_dataset_used' there before you submit")
            return 0
        from .submit import submit

        submit(args.name, dry_run=args.dry_run, protocol=args.protocol)
        return 0
    except DemixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
