"""``--recipe umx``: Open-Unmix's training recipe.

Open-Unmix's model (:mod:`training.models`), its STFT and magnitude MSE
loss, learning-rate decay on a validation plateau (with Open-Unmix's
cooldown), random chunks of ``--seq-dur`` seconds, ``--samples-per-track``
per track and epoch. Each ``--target`` is a head of the loop: they train
side by side on the same batches, exactly as separate runs would but reading
and augmenting the data once. The folder is Open-Unmix's own layout
(:mod:`training.folder`), which ``openunmix.utils.load_separator`` and the
ensemble's Open-Unmix member read.
"""

from __future__ import annotations

from pathlib import Path

import torch

from demix import TARGETS

from . import folder as files
from .augment import mix
from .data import Track, check_lengths
from .examples import Examples, seconds_to_frames
from .models import Architecture, new_architecture, new_models, starting_models
from .options import FitOptions
from .recipe import Recipe

#: Open-Unmix's training waits this many epochs after a learning-rate decay.
LR_DECAY_COOLDOWN = 10


class OpenUnmixRecipe(Recipe):
    loss_name = "magnitude MSE"
    options: FitOptions

    @property
    def heads(self) -> tuple[str, ...]:
        return self.options.targets

    def examples(self, train_tracks: list[Track]) -> Examples:
        options = self.options
        return Examples(train_tracks, options.samples_per_track, seconds_to_frames(options.seq_dur),
                        options.augment, options.seed)

    def new_models(self, train_tracks, models_dir):
        if self.options.model is None:
            self._architecture = new_architecture(self.options)
            models = new_models(self._architecture, self.heads, train_tracks, self.options.seed,
                                quiet=self.options.quiet)
            return models, "new"
        from demix import paths

        models, self._architecture, start = starting_models(self.options, paths.models_dir(models_dir))
        return models, start

    def check_data(self, train_tracks, valid_tracks):
        check_lengths(valid_tracks, self._architecture.nfft, "validation tracks")

    def restore_models(self, architecture: dict):
        self._architecture = Architecture.from_json(architecture)
        return {target: self._architecture.new_model() for target in self.heads}

    def architecture(self) -> dict:
        return self._architecture.to_json()

    def scheduler(self, optimizer):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=self.options.lr_decay_gamma, patience=self.options.lr_decay_patience,
            cooldown=LR_DECAY_COOLDOWN)

    def write_run_files(self, output: Path) -> None:
        architecture = self._architecture
        files.write_json(output / files.SEPARATOR, {
            "nfft": architecture.nfft, "nhop": architecture.nhop, "sample_rate": architecture.sample_rate,
            "nb_channels": architecture.nb_channels, "targets": list(self.heads),
        })

    def losses(self, models, stems):
        mixture = self._magnitude(mix(stems))
        with self._autocast():
            return {target: torch.nn.functional.mse_loss(models[target](mixture),
                                                         self._magnitude(stems[:, TARGETS.index(target)]))
                    for target in self.heads}

    def validation_losses(self, models, valid_tracks):
        """Mean magnitude MSE per target over the validation tracks, whole."""
        totals = {target: 0.0 for target in self.heads}
        with torch.no_grad():
            for track in valid_tracks:
                stems = torch.from_numpy(track.read())[None].to(self.device)
                mixture = self._magnitude(mix(stems))
                with self._autocast():
                    for target in self.heads:
                        wanted = self._magnitude(stems[:, TARGETS.index(target)])
                        totals[target] += torch.nn.functional.mse_loss(models[target](mixture).float(), wanted).item()
        return {target: total / len(valid_tracks) for target, total in totals.items()}

    def save_best(self, output, head, state):
        files.save_torch_atomically(files.weights_file(output, head), state)

    def head_record(self, output, head, summary):
        """``<target>.json`` with Open-Unmix's keys (its loaders read ``args``)."""
        files.write_json(files.target_json(output, head), {
            "args": {**self.options.to_json(), **self.architecture(), "target": head}, **summary})

    def _magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, channels, frames) -> Open-Unmix's magnitude spectrogram (its STFT needs contiguous input)."""
        if not hasattr(self, "_encoder"):
            self._encoder = self._architecture.encoder().to(self.device)
        return self._encoder(audio.contiguous())

    def _autocast(self):
        enabled = self.device.type == "cuda" and self.options.bf16
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)
