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
from typing import Any, ClassVar

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
class LoopOptions:
    """The options of the shared training loop (:mod:`training.fit`), the same for every recipe."""

    root: Path = _option(None, "MUSDB18-HQ root (train/<track>/<source>.wav), MUSDB18 root "
                               "(train/<track>.stem.mp4), or your own stems in the MUSDB18-HQ layout", required=True)
    output: Path = _option(Path("model"), "the model folder to write")
    epochs: int = _option(1000, "stop after this many epochs")
    steps: int | None = _option(None, "stop after this many optimizer steps in all (None: no limit)")
    batch_size: int = _option(16, "examples per step")
    seq_dur: float = _option(6.0, "length of each training example in seconds")
    lr: float = _option(0.001, "Adam learning rate")
    weight_decay: float = _option(0.00001, "Adam weight decay")
    patience: int = _option(140, "early stopping: epochs without a better validation loss")
    seed: int = _option(42, "random seed: the same seed, data and options give the same weights on the CPU")
    nb_workers: int = _option(0, "data loader worker processes")
    device: str = _option("auto", "where to train", choices=("auto", "cpu", "cuda"))
    checkpoint_steps: int = _option(200, "write a checkpoint every N steps, besides every epoch")
    snapshot_epochs: int = _option(0, "also keep the weights of every N-th epoch in snapshots/ (0: off)")
    resume: bool = _option(False, "continue the training checkpointed in --output", action="store_true")
    quiet: bool = _option(False, "no progress bars", action="store_true")
    augment: Augmentations = field(default_factory=Augmentations)

    #: The recipe these options are for (its ``--recipe`` name), and its class, ``"module:Class"``.
    RECIPE: ClassVar[str] = ""
    RECIPE_CLASS: ClassVar[str] = ""
    #: Options a resumed run may change: they do not change what is learned
    #: (``device`` changes rounding only, as docs/training.md says).
    RUN_CONTROL: ClassVar[tuple[str, ...]] = (
        "epochs", "steps", "nb_workers", "device", "checkpoint_steps", "snapshot_epochs", "resume", "quiet",
        "output")
    #: Options that must be positive numbers.
    POSITIVE: ClassVar[tuple[str, ...]] = ("epochs", "batch_size", "seq_dur", "lr", "checkpoint_steps")

    def check(self) -> None:
        for name in self.POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{_flag(name)} must be positive, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 0:
            raise ValueError("--steps must not be negative")
        if self.nb_workers < 0 or self.patience < 1 or self.seed < 0 or self.snapshot_epochs < 0:
            raise ValueError("--nb-workers, --seed and --snapshot-epochs must be >= 0, --patience >= 1")
        self.augment.check()
        group = self.augment.remix_group_size
        if self.augment.remix_proba > 0 and self.batch_size % group:
            raise ValueError(f"--batch-size {self.batch_size} must be a multiple of --remix-group-size {group} "
                             "(or --remix-proba 0)")

    def to_json(self) -> dict:
        """Every option and its value, as written into the output folder."""
        data = {"recipe": self.RECIPE, **dataclasses.asdict(self)}
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data

    def learning_options(self) -> dict:
        """The options that decide what is learned: a resumed run must keep them."""
        return {k: v for k, v in self.to_json().items() if k not in self.RUN_CONTROL}


@dataclass(frozen=True)
class FitOptions(LoopOptions):
    """Open-Unmix target models (train or fine-tune)."""

    output: Path = _option(Path("open-unmix"), "the model folder to write (Open-Unmix's layout)")
    target: tuple[str, ...] = _option(("vocals",), f"targets to train: some of {', '.join(TARGETS)}, or all",
                                      nargs="+")
    model: str | None = _option(None, "start from these weights: umxhq, umxl (official, from --models) or an "
                                      "Open-Unmix model folder (None: from scratch)")
    models: Path | None = _option(None, "weights folder for umxhq/umxl (None: $DEMIX_MODELS or models/)")
    samples_per_track: int = _option(64, "examples drawn from each training track per epoch")
    lr_decay_patience: int = _option(80, "epochs without improvement before the learning rate decays")
    lr_decay_gamma: float = _option(0.3, "learning-rate decay factor")
    hidden_size: int | None = _option(None, "hidden size of the model (None: 512 from scratch, else the model's)")
    nfft: int | None = _option(None, "STFT size (None: 4096 from scratch, else the model's)")
    nhop: int | None = _option(None, "STFT hop (None: 1024 from scratch, else the model's)")
    bandwidth: float | None = _option(None, "highest frequency the model sees, Hz (None: 16000 from scratch, "
                                            "else the model's)")
    nb_channels: int | None = _option(None, "channels the model sees: 1 or 2 (None: 2 from scratch, else the model's)")
    bf16: bool = _option(True, "bfloat16 autocast on CUDA (the CPU always trains in float32)",
                         action=argparse.BooleanOptionalAction)

    RECIPE: ClassVar[str] = "umx"
    RECIPE_CLASS: ClassVar[str] = "training.umx_recipe:OpenUnmixRecipe"
    RUN_CONTROL: ClassVar[tuple[str, ...]] = LoopOptions.RUN_CONTROL + ("bf16",)  # rounding only
    POSITIVE: ClassVar[tuple[str, ...]] = LoopOptions.POSITIVE + ("samples_per_track",)

    @property
    def targets(self) -> tuple[str, ...]:
        return TARGETS if tuple(self.target) == ("all",) else tuple(self.target)

    def check(self) -> None:
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"--target: each of {', '.join(TARGETS)} at most once, or all; got {' '.join(self.target)}")
        super().check()
        if self.lr_decay_patience < 0:
            raise ValueError("--lr-decay-patience must be >= 0")
        if self.nb_channels not in (None, 1, 2):
            raise ValueError(f"--nb-channels must be 1 or 2, got {self.nb_channels}")

    def to_json(self) -> dict:
        return {**super().to_json(), "target": list(self.targets)}


@dataclass(frozen=True)
class VocalMaskOptions(LoopOptions):
    """The Vocal Mask CNN: a vocals-only binary-mask CNN at 22.05 kHz (:mod:`training.vocal_mask`)."""

    output: Path = _option(Path("vocal-mask"), "the model folder to write (vocal_mask.json, vocal_mask.pth)")
    epochs: int = _option(100, "stop after this many epochs (an epoch is every training song, in chunks)")
    batch_size: int = _option(8, "chunks of song per step; every window of each chunk is in the step")
    seq_dur: float = _option(3.0, "length of each chunk of song the windows are cut from, seconds")
    patience: int = _option(20, "early stopping: epochs without a better validation loss")
    lr_schedule: str = _option("fixed", "learning rate: fixed, or cosine (from --lr down to 0 over --epochs)",
                               choices=("fixed", "cosine"))
    stft_stride: int = _option(1, "a window every N STFT frames (1: every frame; 12: about a twelfth of them)")
    mask_threshold: float = _option(0.8, "a bin of the vocals' weighted, normalised spectrogram above this is "
                                         "vocals (1) in the target mask")
    ref_level_db: float = _option(20.0, "reference level of the normalisation: a weighted magnitude this many dB "
                                        "above 1 (the STFT's own scale) maps to 1, 100 dB below it to 0")
    preemphasis: bool = _option(True, "pre-emphasis (0.97) of the mixture before its features",
                                action=argparse.BooleanOptionalAction)
    res_dims: tuple[int, ...] = _option((16, 32, 64), "width of each residual stage of the CNN", nargs="+",
                                        type=int)
    eval_epochs: int = _option(5, "every N epochs, separate validation excerpts and score their vocals (0: never)")
    eval_excerpts: int = _option(2, "how many validation tracks the evaluation separates")
    eval_seconds: float = _option(30.0, "seconds of each, from its start")
    mask_at_eval: str = _option("soft", "how the evaluation applies the mask: the soft probability or hard 0/1",
                                choices=("soft", "hard"))

    RECIPE: ClassVar[str] = "vocal-mask"
    RECIPE_CLASS: ClassVar[str] = "training.vocal_mask:VocalMaskRecipe"
    RUN_CONTROL: ClassVar[tuple[str, ...]] = LoopOptions.RUN_CONTROL + (
        "eval_epochs", "eval_excerpts", "eval_seconds", "mask_at_eval")
    POSITIVE: ClassVar[tuple[str, ...]] = LoopOptions.POSITIVE + ("stft_stride", "eval_excerpts", "eval_seconds")

    def check(self) -> None:
        super().check()
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f"--mask-threshold is on the normalised 0-1 scale: between 0 and 1, got "
                             f"{self.mask_threshold}")
        if not self.res_dims or min(self.res_dims) < 1:
            raise ValueError(f"--res-dims: one positive width per residual stage, got {list(self.res_dims)}")
        if self.eval_epochs < 0:
            raise ValueError("--eval-epochs must be >= 0")

    def learning_options(self) -> dict:
        """As every recipe's, and a cosine schedule's length: ``--epochs`` is its period."""
        options = super().learning_options()
        if self.lr_schedule == "cosine":
            options["epochs"] = self.epochs
        return options


#: Every recipe, by its ``--recipe`` name: its options class, which names the recipe's class
#: (``RECIPE_CLASS``, :mod:`training.recipe`) and says what it trains (its docstring's first line).
RECIPE_OPTIONS: dict[str, type[LoopOptions]] = {"umx": FitOptions, "vocal-mask": VocalMaskOptions}


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
        if kwargs.get("action") is None and "nargs" not in kwargs and "type" not in kwargs:
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
