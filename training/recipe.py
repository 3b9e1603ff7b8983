"""What a model brings to the shared training loop: a recipe.

The loop (:mod:`training.fit`) owns what every model needs: seeded,
resumable epochs over the examples, the shared augmentations, one Adam
optimizer, schedule and early stopping per *head* (a separately trained
network: Open-Unmix's targets, the Vocal Mask CNN's one network), atomic
checkpoints, the log and the curve. A recipe owns the rest: its options,
its networks and how a new one starts, what one training example is and its
sample rate, the loss, the validation, and the files the engine loads the
trained model from.

``python -m training fit --recipe NAME`` picks one of
:data:`training.options.RECIPE_OPTIONS`.
"""

from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from .data import Track
from .options import LoopOptions

def recipe_class(options: LoopOptions) -> type["Recipe"]:
    """The recipe ``options`` are for (:data:`training.options.RECIPE_OPTIONS`), imported now."""
    module, attribute = options.RECIPE_CLASS.split(":")
    return getattr(importlib.import_module(module), attribute)


class Recipe(abc.ABC):
    """One model's part of a training run. The loop calls, in order:
    :meth:`examples`, then :meth:`new_models` (or :meth:`restore_models` on
    ``--resume``), :meth:`check_data`, :meth:`scheduler` for each head,
    :meth:`write_run_files`; per step :meth:`losses`; per epoch
    :meth:`validation_losses`, :meth:`save_best` (where a head improved),
    :meth:`evaluate`, :meth:`head_record`; and :meth:`architecture` for
    each checkpoint."""

    #: How the curve's axis names the loss.
    loss_name: ClassVar[str]

    def __init__(self, options: LoopOptions, device: torch.device):
        self.options, self.device = options, device

    @property
    @abc.abstractmethod
    def heads(self) -> tuple[str, ...]:
        """The networks trained side by side, each with its own optimizer, schedule and early stopping."""

    def check_data(self, train_tracks: list[Track], valid_tracks: list[Track]) -> None:
        """Refuse data this recipe cannot train on, saying why, before any training
        (the networks are built: their architecture is known)."""

    @abc.abstractmethod
    def examples(self, train_tracks: list[Track]) -> Dataset:
        """The examples of one epoch: key ``epoch * len + i`` -> stems (4, 2, frames) at 44.1 kHz,
        a pure function of the seed and the key (:class:`training.examples.Examples`)."""

    @abc.abstractmethod
    def new_models(self, train_tracks: list[Track], models_dir: Path | None) -> tuple[dict[str, torch.nn.Module], str]:
        """The networks a new run starts from, and where they came from (for the log)."""

    @abc.abstractmethod
    def restore_models(self, architecture: dict) -> dict[str, torch.nn.Module]:
        """Networks of the architecture a checkpoint recorded (their weights are loaded after)."""

    @abc.abstractmethod
    def architecture(self) -> dict:
        """What :meth:`restore_models` needs, as plain data (kept in the checkpoint)."""

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """The learning-rate schedule of one head, or None for a fixed rate. It is
        stepped once per epoch, with the validation loss where it is a
        :class:`torch.optim.lr_scheduler.ReduceLROnPlateau`."""
        return None

    def write_run_files(self, output: Path) -> None:
        """Files written once a run starts (what the engine needs besides the weights)."""

    @abc.abstractmethod
    def losses(self, models: torch.nn.ModuleDict, stems: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss of each head on a batch of augmented stems (batch, 4, 2, frames) at 44.1 kHz."""

    @abc.abstractmethod
    def validation_losses(self, models: torch.nn.ModuleDict, valid_tracks: list[Track]) -> dict[str, float]:
        """Each head's mean loss over the validation tracks, unaugmented (models in eval mode)."""

    def evaluate(self, models: torch.nn.ModuleDict, valid_tracks: list[Track], epoch: int) -> dict[str, Any] | None:
        """Scores of separated validation excerpts after epoch ``epoch``, or None when not due."""
        return None

    @abc.abstractmethod
    def save_best(self, output: Path, head: str, state: dict) -> None:
        """Write the weights of ``head`` with the best validation loss so far, where the engine loads them."""

    @abc.abstractmethod
    def head_record(self, output: Path, head: str, summary: dict) -> None:
        """Write what describes the trained ``head`` beside its weights. ``summary``:
        the loop's figures of it (epochs, steps, best loss and epoch, histories)."""
