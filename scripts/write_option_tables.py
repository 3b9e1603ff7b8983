"""Writes the README's option tables from the schema: ``[separation]``'s keys
(demix/config.py) and each family's member options (demix/families.py), with
their defaults and the values they take, so the README never restates a
default by hand.

    python scripts/write_option_tables.py          # rewrite the block in README.md
    python scripts/write_option_tables.py --check  # exit 1 if README.md is not current
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from demix.config import MEMBER_KEYS, separation_schema  # noqa: E402
from demix.families import FAMILIES  # noqa: E402

README = PROJECT / "README.md"
BEGIN = "<!-- option tables: written by scripts/write_option_tables.py from the schema; do not edit -->"
END = "<!-- end of the option tables -->"


def _value(value) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list):
        return "`[]`" if not value else f"`{value!r}`"
    return f"`{value!r}`"


def _rows(options) -> list[str]:
    return [f"| `{key}` | {_value(option.default)} | {option.description} |" for key, option in options.items()]


def _grouped(key, value) -> list[tuple[str, object]]:
    """Families whose ``key`` is the same share one row: ``(their names, value)``, in the registry's order."""
    groups: dict[object, list] = {}
    for family in FAMILIES.values():
        groups.setdefault(key(family), []).append(family)
    return [(", ".join(f"`{family.name}` ({family.title})" for family in members), value(members[0]))
            for members in groups.values()]


def option_tables() -> str:
    lines = [BEGIN, "", "`[separation]`:", "", "| key | default | values |", "| --- | --- | --- |"]
    lines += _rows(separation_schema())
    lines += ["", f"Every `[[members]]` table: `{'`, `'.join(MEMBER_KEYS)}` (see above); then its family's options:",
              "", "| family | option | default | values |", "| --- | --- | --- | --- |"]
    for names, options in _grouped(lambda family: tuple(_rows(family.options)), lambda family: family.options):
        for index, row in enumerate(_rows(options)):
            lines.append(f"| {names if index == 0 else ''} {row}")
    lines += ["", "What each family's files are where no family is declared, and the compute modes that change how "
              "it runs (in the others it runs eager float32; `python -m demix info` says so):", "",
              "| family | files | compute modes |", "| --- | --- | --- |"]
    lines += [f"| {names} | {files} | {', '.join(compute)} |" for names, (files, compute)
              in _grouped(lambda family: (family.files, family.compute), lambda family: (family.files, family.compute))]
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args()
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"{README}: no option tables block ({BEGIN} ... {END})", file=sys.stderr)
        return 1
    start, end = text.index(BEGIN), text.index(END) + len(END)
    current = text[:start] + option_tables() + text[end:]
    if args.check:
        if current != text:
            print(f"{README}: the option tables are not the schema's: python scripts/write_option_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(current)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
