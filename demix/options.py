"""Option schemas: what a config key may hold, its default, and the one
check of it, shared by ``[separation]`` and every family's member options.

An :class:`Option` is a default, a description of the values it takes (said
in errors) and a check. Families declare theirs in :mod:`demix.families`
with the builders below, so "an integer >= 1" is written and checked one
way everywhere. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping, NamedTuple


class Option(NamedTuple):
    """One key of a table: its default, the values it takes (for errors), and their check."""

    default: Any
    description: str
    check: Callable[[Any], bool]


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(default: int, at_least: int | None = None, zero_means: str = "") -> Option:
    """An integer, at least ``at_least`` if given; ``zero_means``: 0 is also
    allowed and means that (e.g. "the YAML's")."""
    description = "an integer" + (f" >= {at_least}" if at_least is not None else "") + \
        (f" (0: {zero_means})" if zero_means else "")

    def check(value: Any) -> bool:
        if not is_integer(value):
            return False
        return bool(zero_means and value == 0) or at_least is None or value >= at_least

    return Option(default, description, check)


def number(default: float, low: float, high: float | None = None, low_open: bool = False,
           high_open: bool = True) -> Option:
    """A finite number in [low, high) by default; ``high`` None: no upper bound."""
    if high is None:
        description = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        description = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any) -> bool:
        if not is_number(value):
            return False
        above = value > low if low_open else value >= low
        below = high is None or (value < high if high_open else value <= high)
        return above and below

    return Option(default, description, check)


def boolean(default: bool) -> Option:
    return Option(default, "true or false", lambda value: isinstance(value, bool))


def one_of(default: Any, *choices: Any) -> Option:
    shown = ", ".join(f'"{choice}"' if isinstance(choice, str) else str(choice).lower() for choice in choices)
    return Option(default, f"one of {shown}", lambda value: any(
        value == choice and type(value) is type(choice) for choice in choices))


#: The member option that allows its weight files more globals than their family's allowlist
#: (demix/safe_load.py), for files the user trusts: empty, so nothing more, by default.
ALLOW_GLOBALS = "allow_globals"
_GLOBAL_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
ALLOW_GLOBALS_OPTION = Option([], 'a list of "module.Name" strings', lambda value: isinstance(value, list) and all(
    isinstance(name, str) and _GLOBAL_NAME.fullmatch(name) for name in value))


def check_options(raw: Mapping[str, Any], spec: Mapping[str, Option], where: str,
                  fail: Callable[[str, str], Exception]) -> dict[str, Any]:
    """``raw`` checked against ``spec``, each key not given at its default.
    ``fail(key_path, message)`` builds the error raised (it names the file)."""
    unknown = set(raw) - set(spec)
    if unknown:
        raise fail(where, f"unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(spec))})")
    values = {}
    for key, option in spec.items():
        value = raw.get(key, option.default)
        if not option.check(value):
            raise fail(f"{where}.{key}", f"must be {option.description}, got {value!r}")
        values[key] = value
    return values
