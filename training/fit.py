"""``python -m training fit``: the training loop every recipe shares.

A recipe (:mod:`training.recipe`: ``--recipe umx`` Open-Unmix, ``--recipe
vocal-mask`` the Vocal Mask CNN) brings its networks, examples, loss and
files; this loop brings the rest, the same for all: the shared augmentations
(:mod:`training.augment`), one Adam optimizer, learning-rate schedule and
early stopping per head, validation every epoch, the best weights written
when the validation loss improves, the log and curve.

Resuming: a checkpoint (weights, optimizers, schedules, early-stopping
state, step, position in the epoch, the process's random generators) is
written every epoch and every ``--checkpoint-steps`` steps. Examples are a
function of (seed, example number) and epochs are ordered by (seed, epoch)
(see :mod:`training.examples`), so a run killed at any moment and resumed
with ``--resume`` goes on exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import time
from pathlib import Path

import torch
import tqdm
from openunmix.utils import EarlyStopping

from demix.atomic import sweep_dead_temporaries
from demix.errors import DemixError
from demix.load import resolve_device

from . import folder as files
from .augment import batch_augmentations
from .curve import write_curve
from .data import Track, check_lengths, training_tracks
from .examples import EpochOrder
from .options import LoopOptions
from .recipe import Recipe, recipe_class

CHECKPOINT_VERSION = 1
#: curve.png is redrawn at most this often during a run (a drawing costs about 0.3 s, more than a
#: whole epoch of a small run), and always when the run ends.
CURVE_INTERVAL_SECONDS = 30.0


def fit(options: LoopOptions, models_dir: Path | None = None) -> Path:
    """Run (or resume) the training ``options`` describe, with the recipe they
    are the options of; returns the model folder."""
    try:
        options.check()
    except ValueError as error:
        raise DemixError(str(error)) from None
    options = _absolute_paths(options)
    output = Path(options.output)
    files.check_writable(output)
    sweep_dead_temporaries(output)  # what a killed run was writing
    checkpoint_path = output / files.CHECKPOINT
    if options.resume and not checkpoint_path.is_file():
        raise DemixError(f"{output}: no {files.CHECKPOINT} here to resume")
    if options.resume:
        trained_with = files.load_torch(checkpoint_path)["options"].get("recipe", "umx")
        if trained_with != options.RECIPE:
            raise DemixError(f"{output} was trained with --recipe {trained_with}: resume it with --recipe "
                             f"{trained_with} and its options")
    if not options.resume and checkpoint_path.is_file():
        raise DemixError(f"{output} holds a training checkpoint already: --resume to continue it, "
                         "or choose another --output")
    if options.augment.repitch_proba > 0:
        check_repitch_tools()
    device = resolve_device(options.device)
    recipe = recipe_class(options)(options, device)
    train_tracks, valid_tracks = training_tracks(options.root)
    examples = recipe.examples(train_tracks)
    check_lengths(train_tracks, examples.read_frames, "training tracks")
    if len(examples) < options.batch_size:
        raise DemixError(f"{len(examples)} examples per epoch from {len(train_tracks)} tracks (--samples-per-track "
                         f"or the tracks' lengths over --seq-dur) is less than one batch of {options.batch_size}")
    trainer = Trainer(options, recipe, examples, train_tracks, valid_tracks, device, models_dir)
    trainer.run()
    return output


def _absolute_paths(options: LoopOptions) -> LoopOptions:
    """Paths as the checkpoint keeps them, so a resume from elsewhere compares equal."""
    changes = {"root": Path(options.root).resolve()}
    model = getattr(options, "model", None)
    if model is not None and Path(model).is_dir():
        changes["model"] = str(Path(model).resolve())
    return dataclasses.replace(options, **changes)


def check_repitch_tools() -> None:
    """demucs.repitch runs ``soundstretch`` and reads its output with torchaudio.load (torchcodec)."""
    missing = []
    if shutil.which("soundstretch") is None:
        missing.append("the soundstretch program (Debian package soundstretch)")
    try:
        import torchcodec  # noqa: F401
    except Exception:  # ImportError, or its FFmpeg libraries failing to load
        missing.append("torchcodec (torchaudio.load reads with it)")
    if missing:
        raise DemixError(f"pitch/tempo augmentation needs {' and '.join(missing)}: install them with "
                         "`bash scripts/setup.sh --train`, or train without it: --repitch-proba 0")


class Trainer:
    """One run's state, which is also what its checkpoint holds."""

    def __init__(self, options: LoopOptions, recipe: Recipe, examples, train_tracks: list[Track],
                 valid_tracks: list[Track], device: torch.device, models_dir: Path | None):
        self.options, self.recipe, self.examples = options, recipe, examples
        self.valid_tracks, self.device = valid_tracks, device
        self.heads = recipe.heads
        self.output = Path(options.output)
        checkpoint = files.load_torch(self.output / files.CHECKPOINT) if options.resume else None
        if checkpoint is not None:
            self._check_same_run(checkpoint)
            models = recipe.restore_models(checkpoint["architecture"])
            self.start = checkpoint["start"]
        else:
            random.seed(options.seed)
            torch.manual_seed(options.seed)
            models, self.start = recipe.new_models(train_tracks, models_dir)
        recipe.check_data(train_tracks, valid_tracks)
        self.models = torch.nn.ModuleDict(models).to(device)
        self.augment = batch_augmentations(options.augment)
        self.optimizers = {h: torch.optim.Adam(self.models[h].parameters(), lr=options.lr,
                                               weight_decay=options.weight_decay) for h in self.heads}
        self.schedulers = {h: recipe.scheduler(self.optimizers[h]) for h in self.heads}
        self.stoppers = {h: EarlyStopping(patience=options.patience) for h in self.heads}
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # steps done in the current epoch
        self.step = 0
        self.epoch_loss = {h: [0.0, 0] for h in self.heads}  # running sum and count of this epoch
        self.epoch_seconds = 0.0
        self.log: list[dict] = []
        self.best_epoch = {h: 0 for h in self.heads}
        self.curve_drawn_at = -math.inf
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        options = self.options
        files.write_json(self.output / files.OPTIONS, options.to_json())
        self.recipe.write_run_files(self.output)
        epochs = tqdm.tqdm(total=options.epochs, initial=self.epoch, desc="epochs", disable=options.quiet,
                           unit="epoch", dynamic_ncols=True)
        while self.batch_in_epoch > 0 or not self._finished():  # an epoch begun is ended, validated
            if not self._steps_done():
                self._train_epoch()
            self._end_epoch()
            epochs.update(1)
            epochs.set_postfix({h: f"{self.log[-1]['valid_loss'][h]:.4g}" for h in self.heads}, refresh=True)
        epochs.close()
        if self.log:
            self._draw_curve()

    def _draw_curve(self) -> None:
        write_curve(self.output / files.CURVE, self.log, self.heads, self.recipe.loss_name)
        self.curve_drawn_at = time.monotonic()

    def _finished(self) -> bool:
        """Out of epochs or steps, or every head's early stopping said stop at the last epoch."""
        if self.epoch >= self.options.epochs or self._steps_done():
            return True
        return bool(self.log) and all(self.log[-1]["stop"].values())

    def _steps_done(self) -> bool:
        return self.options.steps is not None and self.step >= self.options.steps

    def _train_epoch(self) -> None:
        options = self.options
        order = EpochOrder(len(self.examples), options.seed, self.epoch, start=self.batch_in_epoch * options.batch_size)
        loader = torch.utils.data.DataLoader(
            self.examples, batch_size=options.batch_size, sampler=order, drop_last=True,
            num_workers=options.nb_workers, pin_memory=self.device.type == "cuda",
            # A generator of its own: the loader's seed draw must not advance the run's generators.
            generator=torch.Generator(),
        )
        self.models.train()
        batches = tqdm.tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False, disable=options.quiet,
                            unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        for stems in batches:
            losses = self._step(stems)
            for head, loss in losses.items():
                self.epoch_loss[head][0] += loss
                self.epoch_loss[head][1] += 1
            self.step += 1
            self.batch_in_epoch += 1
            batches.set_postfix({h: f"{s / n:.4g}" for h, (s, n) in self.epoch_loss.items()})
            if self.step % options.checkpoint_steps == 0:
                self.epoch_seconds += time.perf_counter() - started
                started = time.perf_counter()
                self._save_checkpoint()
            if self._steps_done():
                break
        self.epoch_seconds += time.perf_counter() - started
        batches.close()

    def _step(self, stems: torch.Tensor) -> dict[str, float]:
        stems = self.augment(stems.to(self.device, non_blocking=True))
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        losses = self.recipe.losses(self.models, stems)
        torch.stack(list(losses.values())).sum().backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
        return {head: loss.item() for head, loss in losses.items()}

    def validate(self) -> dict[str, float]:
        """Each head's validation loss (the recipe's), the models in eval mode."""
        self.models.eval()
        try:
            with torch.no_grad():
                return self.recipe.validation_losses(self.models, self.valid_tracks)
        finally:
            self.models.train()

    def _end_epoch(self) -> None:
        valid = self.validate()
        self.epoch += 1
        train = {h: (s / n if n else float("nan")) for h, (s, n) in self.epoch_loss.items()}
        stop = {}
        for head in self.heads:
            scheduler = self.schedulers[head]
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(valid[head])
            elif scheduler is not None:
                scheduler.step()
            stop[head] = self.stoppers[head].step(valid[head])
            if valid[head] == self.stoppers[head].best:
                self.best_epoch[head] = self.epoch
                self.recipe.save_best(self.output, head, _cpu_state(self.models[head]))
            if self.options.snapshot_epochs and self.epoch % self.options.snapshot_epochs == 0:
                files.save_torch_atomically(files.snapshot_file(self.output, head, self.epoch),
                                            _cpu_state(self.models[head]))
        entry = {
            "epoch": self.epoch, "steps": self.step, "train_loss": train, "valid_loss": valid,
            "lr": {h: self.optimizers[h].param_groups[0]["lr"] for h in self.heads},
            "seconds": self.epoch_seconds, "stop": stop,
        }
        self.models.eval()
        with torch.no_grad():
            scores = self.recipe.evaluate(self.models, self.valid_tracks, self.epoch)
        self.models.train()
        if scores is not None:
            entry["scores"] = scores
        self.log.append(entry)
        self.batch_in_epoch, self.epoch_seconds = 0, 0.0
        self.epoch_loss = {h: [0.0, 0] for h in self.heads}
        for head in self.heads:
            self.recipe.head_record(self.output, head, self._head_summary(head))
        files.write_json(self.output / files.LOG, {"start": self.start, "epochs": self.log})
        if time.monotonic() - self.curve_drawn_at >= CURVE_INTERVAL_SECONDS:
            self._draw_curve()
        self._save_checkpoint()

    def _head_summary(self, head: str) -> dict:
        return {
            "epochs_trained": self.epoch,
            "steps": self.step,
            "start": self.start,
            "best_loss": self.stoppers[head].best,
            "best_epoch": self.best_epoch[head],
            "train_loss_history": [entry["train_loss"][head] for entry in self.log],
            "valid_loss_history": [entry["valid_loss"][head] for entry in self.log],
            "train_time_history": [entry["seconds"] for entry in self.log],
            "num_bad_epochs": self.stoppers[head].num_bad_epochs,
        }

    # -- checkpoints ------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        files.save_torch_atomically(self.output / files.CHECKPOINT, {
            "version": CHECKPOINT_VERSION,
            "options": self.options.learning_options(),
            "architecture": self.recipe.architecture(),
            "start": self.start,
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "epoch_loss": self.epoch_loss, "epoch_seconds": self.epoch_seconds,
            "log": self.log, "best_epoch": self.best_epoch,
            "models": {h: _cpu_state(self.models[h]) for h in self.heads},
            "optimizers": {h: self.optimizers[h].state_dict() for h in self.heads},
            "schedulers": {h: self.schedulers[h].state_dict() for h in self.heads if self.schedulers[h] is not None},
            "stoppers": {h: {"best": self.stoppers[h].best, "num_bad_epochs": self.stoppers[h].num_bad_epochs}
                         for h in self.heads},
            "rng": _generator_states(self.device),
        })

    def _check_same_run(self, checkpoint: dict) -> None:
        if checkpoint.get("version") != CHECKPOINT_VERSION:
            raise DemixError(f"{self.output / files.CHECKPOINT}: written by another version of the training")
        saved, now = {"recipe": "umx", **checkpoint["options"]}, self.options.learning_options()
        changed = [f"--{key.replace('_', '-')} {saved.get(key)!r} -> {now.get(key)!r}"
                   for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]
        if changed:
            raise DemixError(f"{self.output}: --resume continues the same training; these options differ from "
                             f"the checkpoint's: {'; '.join(changed)} (only {', '.join(self.options.RUN_CONTROL)} "
                             "may change)")

    def _restore(self, checkpoint: dict) -> None:
        for head in self.heads:
            self.models[head].load_state_dict(checkpoint["models"][head])
            self.optimizers[head].load_state_dict(checkpoint["optimizers"][head])
            if self.schedulers[head] is not None:
                self.schedulers[head].load_state_dict(checkpoint["schedulers"][head])
            self.stoppers[head].best = checkpoint["stoppers"][head]["best"]
            self.stoppers[head].num_bad_epochs = checkpoint["stoppers"][head]["num_bad_epochs"]
        self.epoch, self.batch_in_epoch, self.step = checkpoint["epoch"], checkpoint["batch_in_epoch"], checkpoint["step"]
        self.epoch_loss = {h: list(v) for h, v in checkpoint["epoch_loss"].items()}
        self.epoch_seconds = checkpoint["epoch_seconds"]
        self.log, self.best_epoch = checkpoint["log"], dict(checkpoint["best_epoch"])
        _restore_generators(checkpoint["rng"], self.device)


def _cpu_state(model: torch.nn.Module) -> dict:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _generator_states(device: torch.device) -> dict:
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_generators(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
