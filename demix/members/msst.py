"""MSST members: BS-RoFormer, Mel-Band RoFormer, SCNet and MDX23C models as
MSST (ZFTurbo's Music-Source-Separation-Training) trains and publishes them,
run with the ``msst`` package's own classes and chunked inference.

Files (:mod:`demix.members.msst_files`): the training YAML and the ``.ckpt``. The
YAML is read with a safe loader that knows ``!!python/tuple`` and nothing
else (never msst's ``yaml.FullLoader`` reader); the checkpoint is opened by
:func:`demix.safe_load.load_weights` (``weights_only=True``, no globals
allowed but the member's ``allow_globals``), never by ``msst.Separator``,
which unpickles with ``weights_only=False``. MSST writes a checkpoint as a
plain state dict, or a training dict with the weights under
``model_state_dict`` (beside optimizer state and metrics), ``state_dict`` or
``state``; :func:`unwrap_state` finds them as msst's
``load_start_checkpoint`` does. Weights load strictly: a YAML that does not
describe the checkpoint is an error that says how they disagree.

Model: the class msst's ``get_model_from_config`` builds for the model type,
as its record in :mod:`demix.families` names it, from the YAML's ``model``
section (MDX23C: from the whole config).

Inference, per ensemble block: ``msst.utils.model_utils.demix`` (chunks of
``chunk_size`` every ``chunk_size // num_overlap`` samples, reflect padding
at the block's ends, linear cross-fades), at the YAML's rate. A YAML with
``inference.normalize: true`` (MSST's SCNet small and large configs) makes msst's inference scale the
input by the mono mix's mean and std (``msst.utils.audio_utils.normalize_audio``:
numpy's std, without Bessel's correction; a std at or below float32's
epsilon counts as 1) and undo it on the stems; here the statistics are the
whole song's (:mod:`demix.statistics`), as msst takes them over the whole
file, so blocks do not change the normalisation.

Stems are named by the YAML: ``training.target_instrument`` when set (the
model then gives that one stem), else ``training.instruments`` in order
(:func:`msst.utils.model_utils.prefer_target_instrument`); they are mapped
by name, never by position (:func:`stem_targets`).

Compute modes (:mod:`demix.members.msst_runner`): msst's ``demix`` is handed
a :class:`~demix.members.msst_runner.ChunkRunner` in the model's place, which
runs the chunks compiled and under bf16 or fp16 autocast as the member's mode
says (msst itself enables autocast on CUDA only), and returns float32 stems.

The YAML's inference values (``chunk_size``, ``num_overlap``,
``batch_size``, each of which the config may override) are checked when the
member is built (:func:`check_inference_values`), not first inside
``demix`` after the model is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import TARGETS
from ..config import ALLOW_GLOBALS, family_options
from ..errors import WeightsError, first_line
from ..families import FAMILIES, MSST_FAMILIES, yaml_model_type
from ..safe_load import UnsafeWeightsError, load_weights
from ..statistics import SongStatistics
from ..weights.catalogue import get_official
from ..weights.integrity import require_intact
from .base import Member
from .msst_files import msst_files, read_msst_yaml
from .msst_runner import ChunkRunner
from .networks import load_state_strictly
from .stems import CATCH_ALL_TARGET, fold_stems, target_of

#: What an MSST checkpoint is called in messages.
CHECKPOINT = "MSST checkpoint"
#: Keys under which MSST's training and other tools store the weights in a checkpoint dict.
STATE_KEYS = ("model_state_dict", "state_dict", "state")
#: Stem names that mean "everything but vocals": not a MUSDB target, dropped.
COMPLEMENT_STEMS = ("instrumental", "accompaniment", "no_vocals")
#: msst normalises a song only where its std is above this (normalize_audio).
MIN_STD = float(np.finfo(np.float32).eps)
#: The longest chunk a model may be asked to run at once: longer is a typo, not a setting
#: (the published YAMLs use 6 to 11 s), and would only end in the allocator.
MAX_CHUNK_SECONDS = 600
#: The YAML's inference values a member checks, and the config option that overrides each.
INFERENCE_KEYS = ("chunk_size", "num_overlap", "batch_size")


def check_inference_values(config, yaml_path: Path, overridden: Sequence[str] = ()) -> None:
    """Refuse inference values msst's ``demix`` would fail on, or that no
    machine could run, naming the YAML, the key and the value: ``chunk_size``,
    ``num_overlap`` and ``batch_size`` positive integers, ``num_overlap`` at
    most ``chunk_size`` (a step of at least one sample), and a chunk of at most
    :data:`MAX_CHUNK_SECONDS` at the YAML's rate. ``overridden``: the keys a
    config's member options set, named as such."""
    inference, audio = config.inference, config.audio
    values = {
        "chunk_size": inference.chunk_size if "chunk_size" in inference else audio.get("chunk_size"),
        "num_overlap": inference.get("num_overlap"),
        "batch_size": inference.get("batch_size", 1),
    }

    def where(key: str) -> str:
        section = "audio" if key == "chunk_size" and "chunk_size" not in inference else "inference"
        origin = f" (set by the config's member option {key})" if key in overridden else ""
        return f"{yaml_path}: {section}.{key}{origin}"

    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WeightsError(f"{where(key)} is {value!r}; it must be a positive integer")
    rate = int(audio.get("sample_rate", 44100))
    if values["chunk_size"] > MAX_CHUNK_SECONDS * rate:
        raise WeightsError(f"{where('chunk_size')} is {values['chunk_size']}, {values['chunk_size'] / rate:.0f} s "
                           f"at {rate} Hz; a chunk of more than {MAX_CHUNK_SECONDS} s is not a model's chunk")
    if values["num_overlap"] > values["chunk_size"]:
        raise WeightsError(f"{where('num_overlap')} is {values['num_overlap']}, more than chunk_size "
                           f"{values['chunk_size']}: the chunks would not advance")


def stem_targets(stems: Sequence[str], where: Path) -> dict[str, str]:
    """Model stem -> the target it goes to; stems absent are dropped.

    * a stem named as a target goes to it, except ``other`` of a model that has
      neither ``bass`` nor ``drums`` (a vocals/other model): there ``other`` is
      the accompaniment, bass and drums included, so it is dropped;
    * ``instrumental``/``accompaniment`` are dropped for the same reason;
    * any other stem (a six-stem model's ``guitar``, ``piano``) folds into
      ``other``, as the Demucs member folds htdemucs_6s', so that the stems
      still account for the whole mix; a model without ``other`` to hold them
      is refused.
    """
    has_rhythm = bool({"bass", "drums"} & set(stems))
    mapping = {}
    for stem in stems:
        if stem in COMPLEMENT_STEMS or (stem == "other" and not has_rhythm):
            continue
        mapping[stem] = target_of(stem)
    extra = [stem for stem, target in mapping.items() if stem != target]
    if extra and "other" not in mapping:
        raise WeightsError(f"{where}: stems {list(stems)} have no 'other' to hold {extra}")
    if not mapping:
        raise WeightsError(f"{where}: none of the stems {list(stems)} is one of {', '.join(TARGETS)}")
    return mapping


def unwrap_state(checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside what ``torch.load`` returned."""
    state = checkpoint
    for key in STATE_KEYS:  # at most one level each, in msst's order of precedence
        if isinstance(state, dict) and not _is_state_dict(state) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not _is_state_dict(state):
        keys = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise WeightsError(f"{path}: not an {CHECKPOINT}: expected a state dict of tensors, or one under "
                           f"{', '.join(STATE_KEYS)} (found {keys})")
    return state


def _is_state_dict(value: dict) -> bool:
    return bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def build_model(family: str, config, yaml_path: Path) -> torch.nn.Module:
    """The class msst's ``get_model_from_config`` builds for the model type
    ``family`` (its :class:`~demix.families.MsstModel` record names it)."""
    import importlib

    from beartype.roar import BeartypeException

    model = FAMILIES[family].msst
    module_name, class_name = model.model_class.split(":")
    kwargs = dict(config.model)
    try:
        model_class = getattr(importlib.import_module(module_name), class_name)
        return model_class(config) if model.from_whole_config else model_class(**kwargs)
    except BeartypeException as error:
        lists = [key for key, value in kwargs.items() if isinstance(value, list)]
        hint = (f"; model.{', model.'.join(lists)} must be tuples: write them as MSST's YAMLs do, "
                "with the !!python/tuple tag" if lists else "")
        raise WeightsError(f"{yaml_path}: the {family} class refuses this model section{hint} "
                           f"({first_line(error)})") from None
    except Exception as error:  # unknown keys (TypeError), impossible sizes, ...
        raise WeightsError(f"{yaml_path}: cannot build a {family} model from its model section "
                           f"({first_line(error)})") from None


class MsstMember(Member):
    def __init__(self, name: str, family: str, model: torch.nn.Module, config, origin: str, yaml_path: Path):
        """``config``: the YAML as an ``ml_collections.ConfigDict``, as msst's demix reads it."""
        from msst.utils.model_utils import prefer_target_instrument

        self.name = name
        self.family = family
        self.model = model.eval()
        self.config = config
        self.origin = origin
        self.device = torch.device("cpu")
        self.sample_rate = int(config.audio.get("sample_rate", 44100))
        if config.audio.get("num_channels", 2) != 2:
            raise WeightsError(f"{yaml_path}: audio.num_channels is {config.audio.num_channels}; "
                               "demix runs stereo MSST models only")
        self.stems = tuple(prefer_target_instrument(config))
        sources = getattr(model, "sources", None)  # SCNet names its outputs too
        if sources is not None and list(sources) != list(config.training.instruments):
            raise WeightsError(f"{yaml_path}: model.sources {list(sources)} and training.instruments "
                               f"{list(config.training.instruments)} disagree; which stem is which is ambiguous")
        heads = getattr(model, "mask_estimators", None)  # the Roformers: one head per stem
        instruments = list(config.training.instruments)
        if heads is not None and len(heads) not in {len(self.stems), len(instruments) if len(self.stems) == 1 else -1}:
            raise WeightsError(f"{yaml_path}: model.num_stems is {len(heads)}, but the YAML names the stems "
                               f"{list(self.stems)} (training.target_instrument, else training.instruments)")
        self.stem_targets = stem_targets(self.stems, yaml_path)
        self.targets = tuple(target for target in TARGETS if target in self.stem_targets.values())
        self.needs_song_statistics = bool(config.inference.get("normalize", False))
        check_inference_values(config, yaml_path)
        self.runner: ChunkRunner | None = None
        self.set_compute("eager")

    @classmethod
    def from_path(cls, name: str, path: Path, family: str | None = None, **options) -> "MsstMember":
        """A folder (YAML + ``.ckpt``) or a ``.ckpt`` with its YAML beside it.
        ``options``: a config's for the family (``chunk_size``, ``num_overlap``,
        ``batch_size``, ``zero_dc``, ``allow_globals``), at the schema's defaults where not
        given: ``chunk_size``/``num_overlap``/``batch_size`` 0 and ``zero_dc`` "yaml" mean
        as the YAML says."""
        from ml_collections import ConfigDict

        yaml_path, checkpoint_path = msst_files(Path(path))
        data = read_msst_yaml(yaml_path)
        declared = data["training"].get("model_type")
        family = family or yaml_model_type(data, yaml_path)
        if family not in MSST_FAMILIES:
            raise WeightsError(f"{yaml_path}: its model section does not say which MSST type it is; "
                               f"set family = one of {', '.join(MSST_FAMILIES)}")
        if declared is not None and declared != family:
            raise WeightsError(f"{yaml_path}: training.model_type is {declared!r}, but the member is a {family} "
                               "model; which class reads this checkpoint is ambiguous")
        if "zero_dc" in options and "zero_dc" not in FAMILIES[family].options:
            raise WeightsError(f"{yaml_path}: zero_dc is an option of the Roformers, not of {family}")
        options = family_options(family, options, str(yaml_path))
        allow_globals = options[ALLOW_GLOBALS]
        zero_dc = options.get("zero_dc", "yaml")
        if zero_dc != "yaml":
            data["model"]["zero_dc"] = bool(zero_dc)
        overridden = [key for key in INFERENCE_KEYS if options[key]]
        for key in overridden:  # msst's demix takes inference.chunk_size over audio.chunk_size
            data["inference"][key] = options[key]
        data["training"]["use_amp"] = False  # msst's own autocast stays off: ChunkRunner sets the precision
        config = ConfigDict(data)
        check_inference_values(config, yaml_path, overridden)
        model = build_model(family, config, yaml_path)
        if not checkpoint_path.is_file():
            raise WeightsError(f"{checkpoint_path}: {CHECKPOINT} not found")
        try:
            loaded = load_weights(checkpoint_path, (), allow_globals, CHECKPOINT, name)
        except (UnsafeWeightsError, WeightsError):
            raise
        except Exception as error:  # torch reports truncation and garbage in many ways
            raise WeightsError(f"{checkpoint_path}: not a loadable {CHECKPOINT} ({first_line(error)})") from None
        hint = f"Is {yaml_path.name} the config this checkpoint was trained with?"
        if family == "scnet":  # the one type whose YAML cannot tell it from another
            hint += ' (An SCNet Masked checkpoint has an SCNet YAML: set family = "scnet_masked".)'
        load_state_strictly(model, unwrap_state(loaded, checkpoint_path), checkpoint_path,
                            f"the model of {yaml_path.name}", hint=hint)
        return cls(name, family, model, config, f"MSST {family} {checkpoint_path} with {yaml_path.name}", yaml_path)

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path, family: str | None = None,
                      **options) -> "MsstMember":
        """One of MSST's published checkpoints (``python -m demix weights list``), from
        ``<models>/msst/<model_name>/`` with the YAML demix ships for it: every file is
        checked first (size, recorded sha256, the shipped YAML), then loaded strictly.
        ``family``: the catalogue's, which a config's family for an official name always is."""
        official = get_official(model_name)
        if official.family not in MSST_FAMILIES:
            raise WeightsError(f"{model_name!r} is a {official.family} model, not an MSST one")
        require_intact(official, models_dir)
        folder = (Path(models_dir) / official.files[0].path).parent
        return cls.from_path(name, folder, official.family, **options)

    @classmethod
    def config_options(cls, config, seed: int) -> dict[str, Any]:
        """The config's options and its family: one member class runs every MSST type."""
        return dict(config.options, family=config.family)

    @property
    def chunk_size(self) -> int:
        inference = self.config.inference
        return int(inference.chunk_size if "chunk_size" in inference else self.config.audio.chunk_size)

    @property
    def block_multiple(self) -> int:
        """msst's chunk step: a block of whole steps ends on a chunk boundary
        (its padding at both ends is chunk_size - step, also whole steps)."""
        return max(1, self.chunk_size // int(self.config.inference.num_overlap))

    def set_compute(self, mode: str) -> None:
        if self.runner is not None:
            self.runner.disable_compile()
        self.runner = ChunkRunner(self.model, self.family, mode, int(self.config.inference.get("batch_size", 1)),
                                  self.device)

    def disable_compile(self) -> None:
        self.runner.disable_compile()

    @property
    def compute_description(self) -> str:
        return self.runner.describe()

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        from msst.utils.model_utils import demix

        mean, std = 0.0, 1.0
        if self.needs_song_statistics:
            statistics = SongStatistics.of(mix) if statistics is None else statistics
            mean, std = statistics.mean, statistics.population_std
            if not np.isfinite(std) or std <= MIN_STD:
                std = 1.0
        model_input = ((mix - mean) / std).float().cpu().numpy()
        stems = demix(self.config, self.runner, model_input, self.device, self.family, pbar=False)
        estimates = {stem: torch.from_numpy(stems[stem] * std + mean).to(mix.device) for stem in self.stem_targets}
        return fold_stems(estimates, self.stem_targets)

    def to(self, device: torch.device) -> "MsstMember":
        """Move the model; its compute mode is set again for the new device (compiled: recompiled)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self.set_compute(self.runner.mode)
        return self
