"""The model families demix runs: one record each, the one place a family is
declared.

A record (:class:`Family`) says everything the rest of the kit asks of a
family: its member class (named as ``"module:Class"``, so reading a config
imports no torch), its member options with their defaults and checks, how
its files are recognised when a config does not declare the family, and
which compute modes change how it runs. MSST model types add
:class:`MsstModel`: the msst class that builds the model, and what of it
stays out of a compiled graph.

Adding a family is one member module (a :class:`demix.members.base.Member`
with ``from_official`` and ``from_path``) and one record in :data:`FAMILIES`;
an MSST type is one record with an :class:`MsstModel`. A family that is
not here is an error wherever it is named, never a fallback to another.

Which family a member is: the config's ``family`` where it declares one
(it is then obeyed: nothing is sniffed); else the catalogue's for an
official name; else :func:`recognise` asks every record whether the path
looks like its files, and more than one answer is an error that names them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from . import TARGETS
from .errors import ConfigError, WeightsError
from .members.msst_files import is_msst_model, msst_yaml, read_msst_yaml
from .options import ALLOW_GLOBALS, ALLOW_GLOBALS_OPTION, Option, boolean, integer, number, one_of

#: Every compute mode of demix.compute; a family lists those that change how it runs.
ALL_MODES = ("eager", "compiled", "bf16", "fp16")


@dataclass(frozen=True)
class MsstModel:
    """How msst builds and runs one MSST model type (``training.model_type``)."""

    #: The msst class, ``"module:Class"``, as ``msst.utils.settings.get_model_from_config`` builds it.
    model_class: str
    #: Keys of the YAML's ``model`` section that this type's published configs all carry and no
    #: other type's do: how a YAML that does not set ``training.model_type`` is recognised.
    yaml_keys: frozenset[str]
    #: Built from the whole config (MDX23C: ``TFC_TDF_net(config)``), not from ``**config.model``.
    from_whole_config: bool = False
    #: A module class (``"module:Class"``) whose forward stays out of the compiled graph, and why.
    left_eager: tuple[str, str] | None = None


@dataclass(frozen=True)
class Family:
    """One model family, as the config, the loader, ``info`` and ``weights`` see it."""

    name: str
    #: How people call it, in messages.
    title: str
    #: The member class, ``"module:Class"`` (a :class:`demix.members.base.Member`).
    member: str
    #: The member options a config may set, beside the keys every member has.
    options: Mapping[str, Option]
    #: Whether a model path looks like this family's files; asked only when no family is declared.
    recognises: Callable[[Path], bool]
    #: What :attr:`recognises` looks for, for the error when nothing recognises a path.
    files: str
    #: The compute modes that change how it runs; in the others it runs eager float32.
    compute: tuple[str, ...] = ALL_MODES
    msst: MsstModel | None = None

    def member_class(self):
        """The member class, imported now (this imports torch)."""
        module, name = self.member.split(":")
        return getattr(importlib.import_module(module), name)

    def option_defaults(self) -> dict[str, Any]:
        return {key: option.default for key, option in self.options.items()}


# -- recognising a path --------------------------------------------------------------------------

def _is_demucs(path: Path) -> bool:
    return path.suffix in (".th", ".yaml")


def _is_openunmix(path: Path) -> bool:
    return path.is_dir() and any((path / f"{target}.json").is_file() for target in TARGETS)


def _is_spleeter(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.ckpt")) and not is_msst_model(path)


def _is_xumx_slicq(path: Path) -> bool:
    """Either file of an xumx-sliCQ-V2 folder (the member then says which one is missing)."""
    return path.is_dir() and any((path / name).is_file() for name in ("xumx_slicq_v2.json", "xumx_slicq_v2.pth"))


def _is_vocal_mask(path: Path) -> bool:
    return path.is_dir() and (path / "vocal_mask.json").is_file()


def msst_type_of(path: Path) -> str | None:
    """The MSST model type the YAML of the model at ``path`` (a folder or a
    ``.ckpt``) describes, or None when it does not say (:func:`yaml_model_type`)."""
    yaml_path = msst_yaml(path)
    return yaml_model_type(read_msst_yaml(yaml_path), yaml_path)


def yaml_model_type(data: Mapping[str, Any], yaml_path: Path) -> str | None:
    """The MSST model type an MSST YAML (read) describes, or None when it does
    not say: ``training.model_type`` where present (msst's own builder honours
    it), else the one type whose :attr:`MsstModel.yaml_keys` the ``model``
    section all carries (the most specific where several do)."""
    declared = data["training"].get("model_type")
    if declared is not None:
        if declared not in MSST_FAMILIES:
            raise WeightsError(f"{yaml_path}: training.model_type is {declared!r}; demix runs the MSST types "
                               f"{', '.join(MSST_FAMILIES)}")
        return declared
    keys = set(data["model"])
    unofficial = keys & UNOFFICIAL_SCNET_KEYS
    if unofficial:
        raise WeightsError(f"{yaml_path}: a config of MSST's unofficial SCNet (model.{sorted(unofficial)[0]}); "
                           "demix runs msst.models.scnet.SCNet (model.band_SR, model.num_dplayer)")
    matches = {name: FAMILIES[name].msst.yaml_keys for name in MSST_FAMILIES
               if FAMILIES[name].msst.yaml_keys and FAMILIES[name].msst.yaml_keys <= keys}
    most_specific = [name for name, found in matches.items()
                     if all(other < found for other_name, other in matches.items() if other_name != name)]
    return most_specific[0] if len(most_specific) == 1 else None


def _is_msst_type(name: str) -> Callable[[Path], bool]:
    return lambda path: is_msst_model(path) and msst_type_of(path) == name


#: Keys of the YAML of MSST's unofficial SCNet (``msst.models.scnet_unofficial``): another class, not run.
UNOFFICIAL_SCNET_KEYS = frozenset({"bandsplit_ratios", "n_rnn_layers"})


# -- options ------------------------------------------------------------------------------------

#: The inference settings of every MSST type: 0 means the model's YAML value (chunk_size is
#: audio.chunk_size or inference.chunk_size, num_overlap and batch_size are inference's, as
#: msst's demix reads them; demix/members/msst.py).
_MSST_OPTIONS = {
    "chunk_size": integer(0, at_least=1, zero_means="the YAML's"),
    "num_overlap": integer(0, at_least=1, zero_means="the YAML's"),
    "batch_size": integer(0, at_least=1, zero_means="the YAML's"),
    ALLOW_GLOBALS: ALLOW_GLOBALS_OPTION,
}
#: zero_dc (the Roformers) zeroes the DC bin of every output STFT: "yaml" keeps what the YAML's
#: model section says, else the class default (true), which is what msst's own inference runs the
#: published YAMLs with (none of them sets it); false is the class as the published checkpoints
#: were scored with, before msst added the option (2025-09).
_ROFORMER_OPTIONS = dict(_MSST_OPTIONS, zero_dc=one_of("yaml", True, False, "yaml"))

#: The Spleeter HPSS defaults were chosen by the global SDR on the two real excerpts
#: (demix/offline.toml has every figure).
_SPLEETER_OPTIONS = {
    "four_stems": boolean(True),
    "bass_cutoff_hz": number(300.0, 0, 22050, low_open=True),
    "harmonic_kernel": integer(31, at_least=1),
    "percussive_kernel": integer(7, at_least=1),
    ALLOW_GLOBALS: ALLOW_GLOBALS_OPTION,
}

_MSST_MEMBER = "demix.members.msst:MsstMember"
_MSST_FILES = "a folder with an MSST YAML and a .ckpt, or a .ckpt with its YAML beside it"
_SCNET_FEATURE_CONVERSION = (
    "msst.models.scnet.separation:FeatureConversion",
    "the FFTs of SCNet's FeatureConversion layers run eager, between graphs: torch 2.11's inductor "
    "fails on aten._fft_r2c there (assert_size_stride)")


def _msst(name: str, title: str, model: MsstModel, options: Mapping[str, Option] = _MSST_OPTIONS) -> Family:
    return Family(name, title, _MSST_MEMBER, options, _is_msst_type(name), _MSST_FILES, msst=model)


#: Every family, by the name a config's ``family`` uses (MSST types by msst's ``model_type``).
FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("demucs", "Demucs", "demix.members.demucs:DemucsMember", {
        "shifts": integer(1, at_least=0),
        "overlap": number(0.25, 0, 1),
        "segment_batch": integer(1, at_least=1),
        ALLOW_GLOBALS: ALLOW_GLOBALS_OPTION,
    }, _is_demucs, "a .th package or a bag .yaml"),
    Family("openunmix", "Open-Unmix", "demix.members.openunmix:OpenUnmixMember", {
        "niter": integer(0, at_least=0),
        ALLOW_GLOBALS: ALLOW_GLOBALS_OPTION,
    }, _is_openunmix, "a training folder with TARGET.json and TARGET.pth", compute=("eager",)),
    Family("spleeter", "Spleeter", "demix.members.spleeter:SpleeterMember", _SPLEETER_OPTIONS, _is_spleeter,
           "a folder of converted SOURCE.ckpt files, no YAML"),
    _msst("bs_roformer", "BS-RoFormer", MsstModel(
        "msst.models.bs_roformer.bs_roformer:BSRoformer", frozenset({"freqs_per_bands"})), _ROFORMER_OPTIONS),
    _msst("mel_band_roformer", "Mel-Band RoFormer", MsstModel(
        "msst.models.bs_roformer.mel_band_roformer:MelBandRoformer", frozenset({"num_bands"})), _ROFORMER_OPTIONS),
    _msst("scnet", "SCNet", MsstModel(
        "msst.models.scnet:SCNet", frozenset({"band_SR", "num_dplayer"}), left_eager=_SCNET_FEATURE_CONVERSION)),
    _msst("mdx23c", "MDX23C", MsstModel(
        "msst.models.mdx23c_tfc_tdf_v3:TFC_TDF_net", frozenset({"num_subbands", "num_scales"}),
        from_whole_config=True)),
    # Published since the first MSST rows (MSST releases v1.0.14 to v1.0.18):
    _msst("bs_conformer", "BS Conformer", MsstModel(
        "msst.models.bs_roformer.bs_conformer:BSConformer",
        frozenset({"freqs_per_bands", "time_conformer_depth", "freq_conformer_depth"})), _ROFORMER_OPTIONS),
    _msst("scnet_tran", "SCNet Tran", MsstModel(
        "msst.models.scnet.scnet_tran:SCNet_Tran", frozenset({"band_SR", "num_dplayer", "tran_depth"}),
        left_eager=("msst.models.scnet.scnet_tran:FeatureConversion", _SCNET_FEATURE_CONVERSION[1]))),
    # Its YAML has exactly SCNet's keys: it is told by training.model_type or a declared family.
    _msst("scnet_masked", "SCNet Masked", MsstModel(
        "msst.models.scnet.scnet_masked:SCNet", frozenset(), left_eager=_SCNET_FEATURE_CONVERSION)),
    # chunk_size: the package's Separator cuts its input into chunks this long (no overlap); 0 runs
    # each ensemble block whole (the package's default, 2621440, is shorter than the default block)
    Family("xumx_slicq", "xumx-sliCQ-V2", "demix.members.xumx_slicq:XumxSlicqMember", {
        "chunk_size": integer(0, at_least=44100, zero_means="the whole block"),
        ALLOW_GLOBALS: ALLOW_GLOBALS_OPTION,
    }, _is_xumx_slicq, "a folder with xumx_slicq_v2.json and xumx_slicq_v2.pth", compute=("eager",)),
    # Trained with the kit (python -m training fit --recipe vocal-mask); vocals only. Its defaults are
    # vocal_mask_net's MASK_MODES[0] and FRAMES_PER_PASS, written out: this module imports no torch.
    Family("vocal_mask", "Vocal Mask CNN", "demix.members.vocal_mask:VocalMaskMember", {
        "mask_at_eval": one_of("soft", "soft", "hard"),
        "frames_per_pass": integer(4096, at_least=1),
    }, _is_vocal_mask, "a folder with vocal_mask.json and vocal_mask.pth", compute=("eager",)),
)}

#: The MSST model types, by msst's ``model_type``.
MSST_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.msst is not None)


def family(name: Any, where: str = "family") -> Family:
    """The record of ``name``; any other name is an error listing the families."""
    if name not in FAMILIES:
        raise ConfigError(f"{where}: {name!r} is not a model family demix runs; one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def recognise(path: Path) -> str:
    """The one family whose files ``path`` looks like (asked only where the
    config declares none). Nothing, or more than one, is an error that says
    what each family's files are, or which families could claim it."""
    path = Path(path)
    claims = [record.name for record in FAMILIES.values() if record.recognises(path)]
    if len(claims) == 1:
        return claims[0]
    if claims:
        raise ConfigError(f"{path} could be a model of {' or '.join(claims)}: set family = the one it is")
    if is_msst_model(path):  # an MSST layout whose YAML names no type by its keys
        raise ConfigError(f"{path}: its YAML's model section does not say which MSST type it is; "
                          f"set family = one of {', '.join(MSST_FAMILIES)}")
    what = "; ".join(f"{record.title}: {record.files}" for record in FAMILIES.values() if record.msst is None)
    state = "does not exist" if not path.exists() else "is not laid out as any family's files"
    raise ConfigError(f"{path} {state}, so its family cannot be told ({what}; MSST: {_MSST_FILES}); "
                      f"set family = one of {', '.join(FAMILIES)} to describe it")
