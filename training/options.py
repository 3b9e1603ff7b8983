"""The options of ``python -m training``, each with its default in one place.

Where an option exists in Open-Unmix's own training script
(``scripts/train.py`` of open-unmix-pytorch) it has the same name and
default. The augmentation defaults are the published ones; the two
augmentations no paper gives a rate for are off unless asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from demix import TARGETS


def _option(default: Any, help: str, **argparse_kwargs) -> Any:
    """A dataclass field that also describes its command-line option."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass(frozen=True)
class Augmentations:
    """What is done to each training example, in this order: pitch/tempo on
    the example's stems (in the data loader), then, on each batch, channel
    swap, sign flip, time reversal, remix across songs, gain, random source mix."""

    repitch_proba: float = _option(
        0.2, "pitch/tempo change on this share of examples (Défossez et al. 2021; demucs.repitch."
             "RepitchedWrapper, needs the soundstretch program); 0 turns it off")
    max_pitch: int = _option(2, "pitch change drawn from -N..+N semitones")
    max_tempo: float = _option(12.0, "tempo change clipped to +-N %%")
    tempo_std: float = _option(5.0, "standard deviation of the tempo change in %%")
    channelswap: bool = _option(
        True, "swap left/right of each source with probability 1/2 (Uhlich et al. 2017; demucs.augment.FlipChannels)",
        action=argparse.BooleanOptionalAction)
    sign_flip: bool = _option(
        True, "multiply each source by -1 with probability 1/2 (Défossez et al.; Nachmani & Wolf 2019; "
              "demucs.augment.FlipSign)", action=argparse.BooleanOptionalAction)
    reverse_proba: float = _option(
        0.0, "play each source backwards with this probability (Nachmani & Wolf 2019, who give no rate: "
             "off unless set)")
    remix_proba: float = _option(
        1.0, "mix sources from different songs: shuffle sources between the examples of a group "
             "(Uhlich's random track mix; demucs.augment.Remix)")
    remix_group_size: int = _option(
        4, "examples per remix group (Demucs: 4); the batch size must be a multiple of it")
    gain_proba: float = _option(1.0, "random gain per source on this share of batches (demucs.augment.Scale)")
    gain_min: float = _option(0.25, "lowest gain (Uhlich et al. 2017; Défossez et al. 2021)")
    gain_max: float = _option(1.25, "highest gain")
    source_mix_proba: float = _option(
        0.0, "with this probability, keep a random 1-4 of the sources with levels drawn from "
             "N(0.5, SOURCE_MIX_STD) clipped to [0, 1] and normalised to sum 1 (no published rate: off unless set)")
    source_mix_std: float = _option(
        1.0, "standard deviation of those levels (N(0.5) read as unit variance)")

    def check(self) -> None:
        for name in ("repitch_proba", "reverse_proba", "remix_proba", "gain_proba", "source_mix_proba"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{_flag(name)} is a probability: between 0 and 1, got {value}")
        if not 0.0 < self.gain_min <= self.gain_max:
            raise ValueError(f"need 0 < --gain-min <= --gain-max, got {self.gain_min} and {self.gain_max}")
        if not 0.0 <= self.max_tempo < 100.0 or self.max_pitch < 0 or self.tempo_std < 0:
            raise ValueError("--max-tempo must be in [0, 100), --max-pitch and --tempo-std not negative")
        if self.remix_group_size < 1 or self.source_mix_std <= 0:
            raise ValueError("--remix-group-size must be >= 1 and --source-mix-std positive")


#: Architecture defaults of a model trained from scratch (Open-Unmix's own).
#: A model fine-tuned from existing weights takes its architecture from them.
ARCHITECTURE_DEFAULTS = {"nfft": 4096, "nhop": 1024, "hidden_size": 512, "nb_channels": 2, "bandwidth": 16000.0}


@dataclass(frozen=True)
class FitOptions:
    root: Path = _option(None, "MUSDB18-HQ root (train/<track>/<source>.wav), MUSDB18 root "
                               "(train/<track>.stem.mp4), or your own stems in the MUSDB18-HQ layout", required=True)
    target: tuple[str, ...] = _option(("vocals",), f"targets to train: some of {', '.join(TARGETS)}, or all",
                                      nargs="+")
    output: Path = _option(Path("open-unmix"), "the model folder to write (Open-Unmix's layout)")
    model: str | None = _option(None, "start from these weights: umxhq, umxl (official, from --models) or an "
                                      "Open-Unmix model folder (None: from scratch)")
    models: Path | None = _option(None, "weights folder for umxhq/umxl (None: $DEMIX_MODELS or models/)")
    epochs: int = _option(1000, "stop after this many epochs")
    steps: int | None = _option(None, "stop after this many optimizer steps in all (None: no limit)")
    batch_size: int = _option(16, "examples per step")
    seq_dur: float = _option(6.0, "length of each training example in seconds")
    samples_per_track: int = _option(64, "examples drawn from each training track per epoch")
    lr: float = _option(0.001, "Adam learning rate")
    weight_decay: float = _option(0.00001, "Adam weight decay")
    patience: int = _option(140, "early stopping: epochs without a better validation loss")
    lr_decay_patience: int = _option(80, "epochs without improvement before the learning rate decays")
    lr_decay_gamma: float = _option(0.3, "learning-rate decay factor")
    seed: int = _option(42, "random seed: the same seed, data and options give the same weights on the CPU")
    hidden_size: int | None = _option(None, "hidden size of the model (None: 512 from scratch, else the model's)")
    nfft: int | None = _option(None, "STFT size (None: 4096 from scratch, else the model's)")
    nhop: int | None = _option(None, "STFT hop (None: 1024 from scratch, else the model's)")
    bandwidth: float | None = _option(None, "highest frequency the model sees, Hz (None: 16000 from scratch, "
                                            "else the model's)")
    nb_channels: int | None = _option(None, "channels the model sees: 1 or 2 (None: 2 from scratch, else the model's)")
    nb_workers: int = _option(0, "data loader worker processes")
    device: str = _option("auto", "where to train", choices=("auto", "cpu", "cuda"))
    bf16: bool = _option(True, "bfloat16 autocast on CUDA (the CPU always trains in float32)",
                         action=argparse.BooleanOptionalAction)
    checkpoint_steps: int = _option(200, "write a checkpoint every N steps, besides every epoch")
    resume: bool = _option(False, "continue the training checkpointed in --output", action="store_true")
    quiet: bool = _option(False, "no progress bars", action="store_true")
    augment: Augmentations = field(default_factory=Augmentations)

    #: Options a resumed run may change: they do not change what is learned
    #: (``device`` and ``bf16`` change rounding only, as docs/training.md says).
    RUN_CONTROL = ("epochs", "steps", "nb_workers", "device", "bf16", "checkpoint_steps", "resume", "quiet", "output")

    @property
    def targets(self) -> tuple[str, ...]:
        return TARGETS if tuple(self.target) == ("all",) else tuple(self.target)

    def check(self) -> None:
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"--target: each of {', '.join(TARGETS)} at most once, or all; got {' '.join(self.target)}")
        positive = ("epochs", "batch_size", "seq_dur", "samples_per_track", "lr", "checkpoint_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{_flag(name)} must be positive, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 0:
            raise ValueError("--steps must not be negative")
        if self.nb_workers < 0 or self.patience < 1 or self.lr_decay_patience < 0 or self.seed < 0:
            raise ValueError("--nb-workers, --lr-decay-patience and --seed must be >= 0, --patience >= 1")
        if self.nb_channels not in (None, 1, 2):
            raise ValueError(f"--nb-channels must be 1 or 2, got {self.nb_channels}")
        self.augment.check()
        group = self.augment.remix_group_size
        if self.augment.remix_proba > 0 and self.batch_size % group:
            raise ValueError(f"--batch-size {self.batch_size} must be a multiple of --remix-group-size {group} "
                             "(or --remix-proba 0)")

    def to_json(self) -> dict:
        """Every option and its value, as written into the output folder."""
        data = dataclasses.asdict(self)
        data["target"] = list(self.targets)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        return data

    def learning_options(self) -> dict:
        """The options that decide what is learned: a resumed run must keep them."""
        return {k: v for k, v in self.to_json().items() if k not in self.RUN_CONTROL}


def _flag(name: str) -> str:
    return name.replace("_", "-")


def add_arguments(parser, options_class: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of ``options_class`` (an Augmentations field adds its own)."""
    for item in fields(options_class):
        if item.name in skip:
            continue
        if item.name == "augment":
            group = parser.add_argument_group("augmentations")
            add_arguments(group, Augmentations)
            continue
        kwargs = dict(item.metadata)
        if kwargs.get("action") is None and "nargs" not in kwargs:
            kwargs["type"] = _type_of(item)
        kwargs["default"] = argparse.SUPPRESS if kwargs.get("required") else item.default
        parser.add_argument(f"--{_flag(item.name)}", **kwargs)


def _type_of(item) -> type:
    annotation = str(item.type)
    for name, kind in (("Path", Path), ("float", float), ("int", int), ("str", str)):
        if annotation.startswith(name):
            return kind
    raise TypeError(f"no command-line type for {item.name}: {annotation}")


def from_namespace(options_class: type, namespace: argparse.Namespace, **overrides):
    """Build ``options_class`` from parsed arguments (with its Augmentations)."""
    values = {}
    for item in fields(options_class):
        if item.name == "augment":
            values["augment"] = from_namespace(Augmentations, namespace)
        elif hasattr(namespace, item.name):
            value = getattr(namespace, item.name)
            values[item.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    return options_class(**values)
