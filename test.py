"""Local grader: run a submission the way the AIcrowd grader does.

    python test.py                       # the bundled example, MDX 2021 protocol
    python test.py --protocol sdx23 --data DIR --config my.toml --time-factor 1.57

MDX 2021 runs ``predict.py``'s predictor through the ``evaluator/`` class it
subclasses; SDX 2023 runs ``my_submission/aicrowd_wrapper.py``. Each song
folder in the test folder holds ``mixture.wav`` and, to be scored,
``bass.wav``, ``drums.wav``, ``other.wav`` and ``vocals.wav``. Limits come from
the grader's variables INFERENCE_SETUP_TIMEOUT_SECONDS (900) and
INFERENCE_PER_MUSIC_TIMEOUT_SECONDS (240), or ``--time-factor`` × the song's
duration (SDX 2023 and MDX round 2: 1.57); PARTIAL_RUN_MUSIC_NAMES limits the
songs. Prints a table, writes it as JSON, exits 1 if any song failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from challenge import MIXTURE_FILE, grader
from challenge.example import ensure_bundled_example
from challenge.grader import (PER_MUSIC_TIMEOUT, RESULTS_DATASET_PATH, SETUP_TIMEOUT, TEST_DATASET_PATH, env_path,
                              env_seconds, song_names)
from demix.config_choice import ORDER_HELP, choose_config

PROJECT = Path(__file__).resolve().parent

#: Protocol -> the class each grader loads from this kit (imported by name in the
#: submission's process, with this folder on its path, as on the graders).
ENTRY_POINTS = {
    "mdx21": "predict:DemixPredictor",
    "sdx23": "my_submission.user_config:MySeparationModel",
}
#: The SDX 2023 kit's wrapper, through which the grader runs the model class.
SDX_WRAPPER = PROJECT / "my_submission" / "aicrowd_wrapper.py"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=sorted(grader.PROTOCOLS), default="mdx21")
    parser.add_argument("--data", type=Path, default=None,
                        help="test folder, one folder per song (default: $TEST_DATASET_PATH or data/test/, "
                             "with the bundled example laid out in it)")
    parser.add_argument("--results", type=Path, default=None,
                        help="where stems are written (default: $RESULTS_DATASET_PATH or data/results/)")
    parser.add_argument("--config", type=Path, default=None, help=f"grade this ensemble config ({ORDER_HELP})")
    parser.add_argument("--time-factor", type=float, default=None,
                        help="per-song limit = this × the song's duration (e.g. 1.57)")
    parser.add_argument("--json", type=Path, default=None, help="report file (default: RESULTS/grader_report.json)")
    parser.add_argument("--submission", default=None, metavar="MODULE:CLASS",
                        help="the predictor (mdx21) or model class (sdx23) to grade; default: this kit's")
    args = parser.parse_args(argv)

    if args.config is not None:
        if not args.config.is_file():
            print(f"error: {args.config}: config file not found", file=sys.stderr)
            return 1
        os.environ["DEMIX_CONFIG"] = str(args.config.resolve())  # read by the submission process
    if args.submission is None:  # this kit's entry points: the config they will load, first
        print(choose_config(args.config, PROJECT).describe(), flush=True)
    data = args.data
    if data is None:
        data = env_path(TEST_DATASET_PATH)
        ensure_bundled_example(data)
    results = args.results or env_path(RESULTS_DATASET_PATH)
    if not data.is_dir():
        print(f"error: {data}: test folder not found", file=sys.stderr)
        return 1
    names = song_names(data)
    if not names:
        print(f"error: {data}: no song folder (check PARTIAL_RUN_MUSIC_NAMES)", file=sys.stderr)
        return 1
    without_mixture = [name for name in names if not (data / name / MIXTURE_FILE).is_file()]
    if without_mixture:
        print(f"error: {data}: the graders run every folder here, and these have no {MIXTURE_FILE}: "
              f"{', '.join(without_mixture)}", file=sys.stderr)
        return 1

    result = grader.grade(
        args.protocol, data, names, results,
        setup_limit=env_seconds(SETUP_TIMEOUT), per_song_limit=env_seconds(PER_MUSIC_TIMEOUT),
        submission=args.submission or ENTRY_POINTS[args.protocol], wrapper=SDX_WRAPPER,
        time_factor=args.time_factor,
    )
    print()
    print(grader.format_table(result))
    report_path = args.json or results / "grader_report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(result.to_json(), indent=2))
    print(f"report: {report_path}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
