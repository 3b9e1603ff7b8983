"""``python -m training fit``: train or fine-tune Open-Unmix target models.

Open-Unmix's recipe (its model, STFT, magnitude MSE loss, Adam, learning
rate decay on a validation plateau, early stopping) with the published
augmentations. Several targets train side by side on the same batches, each
with its own optimizer, schedule and early stopping, exactly as separate
runs would but reading and augmenting the data once.

Resuming: a checkpoint (weights, optimizers, schedules, early-stopping
state, step, position in the epoch, the process's random generators) is
written every epoch and every ``--checkpoint-steps`` steps. Examples are a
function of (seed, example number) and epochs are ordered by (seed, epoch)
(see :mod:`training.examples`), so a run killed at any moment and resumed
with ``--resume`` goes on exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import time
from pathlib import Path

import torch
import tqdm
from openunmix.utils import EarlyStopping

from demix import TARGETS
from demix.atomic import sweep_dead_temporaries
from demix.errors import DemixError
from demix.load import resolve_device

from . import folder as files
from .augment import batch_augmentations, mix
from .curve import write_curve
from .data import Track, check_lengths, training_tracks
from .examples import EpochOrder, Examples, seconds_to_frames
from .models import Architecture, new_architecture, new_models, starting_models
from .options import FitOptions

#: Open-Unmix's training waits this many epochs after a learning-rate decay.
LR_DECAY_COOLDOWN = 10
CHECKPOINT_VERSION = 1


def fit(options: FitOptions, models_dir: Path | None = None) -> Path:
    """Run (or resume) the training ``options`` describe; returns the model folder."""
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
    if not options.resume and checkpoint_path.is_file():
        raise DemixError(f"{output} holds a training checkpoint already: --resume to continue it, "
                         "or choose another --output")
    if options.augment.repitch_proba > 0:
        check_repitch_tools()
    train_tracks, valid_tracks = training_tracks(options.root)
    examples = Examples(train_tracks, options.samples_per_track, seconds_to_frames(options.seq_dur),
                        options.augment, options.seed)
    check_lengths(train_tracks, examples.read_frames, "training tracks")
    if examples.examples_per_epoch < options.batch_size:
        raise DemixError(f"{examples.examples_per_epoch} examples per epoch (--samples-per-track x "
                         f"{len(train_tracks)} tracks) is less than one batch of {options.batch_size}")
    device = resolve_device(options.device)
    trainer = Trainer(options, examples, valid_tracks, device, models_dir)
    trainer.run()
    return output


def _absolute_paths(options: FitOptions) -> FitOptions:
    """Paths as the checkpoint keeps them, so a resume from elsewhere compares equal."""
    model = options.model
    if model is not None and Path(model).is_dir():
        model = str(Path(model).resolve())
    return dataclasses.replace(options, root=Path(options.root).resolve(), model=model)


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

    def __init__(self, options: FitOptions, examples: Examples, valid_tracks: list[Track], device: torch.device,
                 models_dir: Path | None):
        self.options, self.examples, self.valid_tracks, self.device = options, examples, valid_tracks, device
        self.targets = options.targets
        self.output = Path(options.output)
        checkpoint = files.load_torch(self.output / files.CHECKPOINT) if options.resume else None
        if checkpoint is not None:
            self._check_same_run(checkpoint)
            self.architecture = Architecture.from_json(checkpoint["architecture"])
            self.start = checkpoint["start"]
            models = {target: self.architecture.new_model() for target in self.targets}
        else:
            random.seed(options.seed)
            torch.manual_seed(options.seed)
            if options.model is None:
                self.architecture = new_architecture(options)
                models = new_models(self.architecture, self.targets, examples.tracks, options.seed,
                                    quiet=options.quiet)
                self.start = "new"
            else:
                from demix import paths

                models, self.architecture, self.start = starting_models(options, paths.models_dir(models_dir))
        check_lengths(valid_tracks, self.architecture.nfft, "validation tracks")
        self.models = torch.nn.ModuleDict(models).to(device)
        self.encoder = self.architecture.encoder().to(device)
        self.augment = batch_augmentations(options.augment)
        self.optimizers = {t: torch.optim.Adam(self.models[t].parameters(), lr=options.lr,
                                               weight_decay=options.weight_decay) for t in self.targets}
        self.schedulers = {t: torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizers[t], factor=options.lr_decay_gamma, patience=options.lr_decay_patience,
            cooldown=LR_DECAY_COOLDOWN) for t in self.targets}
        self.stoppers = {t: EarlyStopping(patience=options.patience) for t in self.targets}
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # steps done in the current epoch
        self.step = 0
        self.epoch_loss = {t: [0.0, 0] for t in self.targets}  # running sum and count of this epoch
        self.epoch_seconds = 0.0
        self.log: list[dict] = []
        self.best_epoch = {t: 0 for t in self.targets}
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        options = self.options
        files.write_json(self.output / files.OPTIONS, options.to_json())
        files.write_json(self.output / files.SEPARATOR, {
            "nfft": self.architecture.nfft, "nhop": self.architecture.nhop,
            "sample_rate": self.architecture.sample_rate, "nb_channels": self.architecture.nb_channels,
            "targets": list(self.targets),
        })
        epochs = tqdm.tqdm(total=options.epochs, initial=self.epoch, desc="epochs", disable=options.quiet,
                           unit="epoch", dynamic_ncols=True)
        while self.batch_in_epoch > 0 or not self._finished():  # an epoch begun is ended, validated
            if not self._steps_done():
                self._train_epoch()
            self._end_epoch()
            epochs.update(1)
            epochs.set_postfix({t: f"{self.log[-1]['valid_loss'][t]:.4g}" for t in self.targets}, refresh=True)
        epochs.close()

    def _finished(self) -> bool:
        """Out of epochs or steps, or every target's early stopping said stop at the last epoch."""
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
            for target, loss in losses.items():
                self.epoch_loss[target][0] += loss
                self.epoch_loss[target][1] += 1
            self.step += 1
            self.batch_in_epoch += 1
            batches.set_postfix({t: f"{s / n:.4g}" for t, (s, n) in self.epoch_loss.items()})
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
        mixture = self._magnitude(mix(stems))
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        losses = {}
        with self._autocast():
            for target in self.targets:
                wanted = self._magnitude(stems[:, TARGETS.index(target)])
                losses[target] = torch.nn.functional.mse_loss(self.models[target](mixture), wanted)
        torch.stack(list(losses.values())).sum().backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
        return {target: loss.item() for target, loss in losses.items()}

    def _magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, channels, frames) -> Open-Unmix's magnitude spectrogram (its STFT needs contiguous input)."""
        return self.encoder(audio.contiguous())

    def _autocast(self):
        enabled = self.device.type == "cuda" and self.options.bf16
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def validate(self) -> dict[str, float]:
        """Mean magnitude MSE per target over the validation tracks, whole, unaugmented."""
        self.models.eval()
        totals = {target: 0.0 for target in self.targets}
        with torch.no_grad():
            for track in self.valid_tracks:
                stems = torch.from_numpy(track.read())[None].to(self.device)
                mixture = self._magnitude(mix(stems))
                with self._autocast():
                    for target in self.targets:
                        wanted = self._magnitude(stems[:, TARGETS.index(target)])
                        estimate = self.models[target](mixture)
                        totals[target] += torch.nn.functional.mse_loss(estimate.float(), wanted).item()
        self.models.train()
        return {target: total / len(self.valid_tracks) for target, total in totals.items()}

    def _end_epoch(self) -> None:
        valid = self.validate()
        self.epoch += 1
        train = {t: (s / n if n else float("nan")) for t, (s, n) in self.epoch_loss.items()}
        stop = {}
        for target in self.targets:
            self.schedulers[target].step(valid[target])
            stop[target] = self.stoppers[target].step(valid[target])
            if valid[target] == self.stoppers[target].best:
                self.best_epoch[target] = self.epoch
                files.save_torch_atomically(files.weights_file(self.output, target),
                                            _cpu_state(self.models[target]))
        self.log.append({
            "epoch": self.epoch, "steps": self.step, "train_loss": train, "valid_loss": valid,
            "lr": {t: self.optimizers[t].param_groups[0]["lr"] for t in self.targets},
            "seconds": self.epoch_seconds, "stop": stop,
        })
        self.batch_in_epoch, self.epoch_seconds = 0, 0.0
        self.epoch_loss = {t: [0.0, 0] for t in self.targets}
        for target in self.targets:
            files.write_json(files.target_json(self.output, target), self._target_record(target))
        files.write_json(self.output / files.LOG, {"start": self.start, "epochs": self.log})
        write_curve(self.output / files.CURVE, self.log, self.targets)
        self._save_checkpoint()

    def _target_record(self, target: str) -> dict:
        """``<target>.json`` with Open-Unmix's keys (its loaders read ``args``)."""
        return {
            "args": {**self.options.to_json(), **self.architecture.to_json(), "target": target},
            "epochs_trained": self.epoch,
            "steps": self.step,
            "start": self.start,
            "best_loss": self.stoppers[target].best,
            "best_epoch": self.best_epoch[target],
            "train_loss_history": [entry["train_loss"][target] for entry in self.log],
            "valid_loss_history": [entry["valid_loss"][target] for entry in self.log],
            "train_time_history": [entry["seconds"] for entry in self.log],
            "num_bad_epochs": self.stoppers[target].num_bad_epochs,
        }

    # -- checkpoints ------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        files.save_torch_atomically(self.output / files.CHECKPOINT, {
            "version": CHECKPOINT_VERSION,
            "options": self.options.learning_options(),
            "architecture": self.architecture.to_json(),
            "start": self.start,
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "epoch_loss": self.epoch_loss, "epoch_seconds": self.epoch_seconds,
            "log": self.log, "best_epoch": self.best_epoch,
            "models": {t: _cpu_state(self.models[t]) for t in self.targets},
            "optimizers": {t: self.optimizers[t].state_dict() for t in self.targets},
            "schedulers": {t: self.schedulers[t].state_dict() for t in self.targets},
            "stoppers": {t: {"best": self.stoppers[t].best, "num_bad_epochs": self.stoppers[t].num_bad_epochs}
                         for t in self.targets},
            "rng": _generator_states(self.device),
        })

    def _check_same_run(self, checkpoint: dict) -> None:
        if checkpoint.get("version") != CHECKPOINT_VERSION:
            raise DemixError(f"{self.output / files.CHECKPOINT}: written by another version of the training")
        saved, now = checkpoint["options"], self.options.learning_options()
        changed = [f"--{key.replace('_', '-')} {saved.get(key)!r} -> {now.get(key)!r}"
                   for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]
        if changed:
            raise DemixError(f"{self.output}: --resume continues the same training; these options differ from "
                             f"the checkpoint's: {'; '.join(changed)} (only {', '.join(FitOptions.RUN_CONTROL)} "
                             "may change)")

    def _restore(self, checkpoint: dict) -> None:
        for target in self.targets:
            self.models[target].load_state_dict(checkpoint["models"][target])
            self.optimizers[target].load_state_dict(checkpoint["optimizers"][target])
            self.schedulers[target].load_state_dict(checkpoint["schedulers"][target])
            self.stoppers[target].best = checkpoint["stoppers"][target]["best"]
            self.stoppers[target].num_bad_epochs = checkpoint["stoppers"][target]["num_bad_epochs"]
        self.epoch, self.batch_in_epoch, self.step = checkpoint["epoch"], checkpoint["batch_in_epoch"], checkpoint["step"]
        self.epoch_loss = {t: list(v) for t, v in checkpoint["epoch_loss"].items()}
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
