"""``--recipe vocal-mask``: the Vocal Mask CNN (:mod:`demix.members.vocal_mask_net`).

What one example is: a chunk of ``--seq-dur`` seconds of a song. An epoch
tiles every training song into such chunks (they overlap by the windows'
context, so every frame is the centre of a window of one chunk; with
pitch/tempo changes, each chunk is read a little longer and cut back after
the change, so a song's last fraction of a second may go unseen), shuffled,
``--batch-size`` chunks a step, through the shared augmentations at
44.1 kHz. Each chunk is then resampled to 22,050 Hz, its mixture turned into
features and its vocals into the 0/1 target of every frame, and the loss is
the binary cross-entropy of the windows centred on every ``--stft-stride``-th
frame (1: every window of the song).

The windows are never cut out and stored: the network is convolutional and
unpadded in time, so one pass over a chunk's spectrogram computes the
prediction of every window in it, each from its own 25 frames only (the
network's docstring). The features are computed from the augmented audio at
each step; ``benchmarks/vocal_mask_windows.py`` measures that against
features computed once and cached.

The validation loss is the same loss on the validation tracks, whole and
unaugmented, over every ``--stft-stride``-th frame, the first and last
frames too (their windows reach past the song's ends, into silence, as when
separating); every ``--eval-epochs`` epochs the first ``--eval-excerpts``
validation tracks (``--eval-seconds`` of each) are separated as the member
separates them and their vocals scored (global SDR, in the log).

The folder: ``vocal_mask.json`` (the settings the member rebuilds the
features and network from, and the run's figures) and ``vocal_mask.pth``
(the weights with the best validation loss, a plain state dict), which
``model = "<folder>"`` in a config loads as a member.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from demix import SAMPLE_RATE, TARGETS
from demix.audio import resample
from demix.errors import DemixError
from demix.members import vocal_mask_net as net
from demix.members.vocal_mask import SETTINGS_FILE, WEIGHTS_FILE

from . import folder as files
from .augment import mix
from .data import Track
from .examples import Examples, seconds_to_frames
from .options import VocalMaskOptions
from .recipe import Recipe

HEAD = "vocals"


def settings_of(options: VocalMaskOptions) -> net.VocalMaskSettings:
    return net.VocalMaskSettings(ref_level_db=options.ref_level_db, preemphasis=options.preemphasis,
                                 mask_threshold=options.mask_threshold, res_dims=tuple(options.res_dims))


class VocalMaskRecipe(Recipe):
    loss_name = "binary cross-entropy"
    options: VocalMaskOptions

    def __init__(self, options: VocalMaskOptions, device: torch.device):
        super().__init__(options, device)
        self.settings = settings_of(options)
        try:
            net.VocalMaskCNN.head_frames(self.settings.res_dims, self.settings.context_frames)
        except ValueError as error:
            raise DemixError(f"--res-dims {' '.join(map(str, self.settings.res_dims))}: {error}") from None
        to_44k = SAMPLE_RATE // net.SAMPLE_RATE
        #: A window's two sides of context, and a whole window, in samples at 44.1 kHz.
        context_samples = 2 * self.settings.context_frames * net.HOP * to_44k
        window_samples = context_samples + net.N_FFT * to_44k
        self.chunk_frames = seconds_to_frames(options.seq_dur)
        if self.chunk_frames <= window_samples:
            raise DemixError(f"--seq-dur {options.seq_dur} s is too short: a chunk must be longer than a window "
                             f"({window_samples / SAMPLE_RATE:.2f} s)")
        #: Chunks overlap by a window's context, so every frame is the centre of a window of some chunk.
        self.tile_hop = self.chunk_frames - context_samples
        self._validation: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def heads(self) -> tuple[str, ...]:
        return (HEAD,)

    def examples(self, train_tracks: list[Track]) -> Examples:
        options = self.options
        return Examples(train_tracks, 0, self.chunk_frames, options.augment, options.seed, tile_hop=self.tile_hop)

    def new_models(self, train_tracks, models_dir):
        return {HEAD: net.new_network(self.settings)}, "new"

    def restore_models(self, architecture: dict):
        self.settings = net.VocalMaskSettings.from_json(architecture)
        return {HEAD: net.new_network(self.settings)}

    def architecture(self) -> dict:
        return self.settings.to_json()

    def scheduler(self, optimizer):
        if self.options.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.options.epochs)
        return None

    def losses(self, models, stems):
        mixture, vocals = self._at_model_rate(stems)
        features = net.mixture_features(mixture, self.settings)
        wanted = net.vocals_mask(vocals, self.settings)
        logits = models[HEAD](features[:, None])
        frames = net.window_centres(features.shape[-1], self.settings, self.options.stft_stride)
        centre = self.settings.context_frames
        wanted = wanted[..., centre:centre + logits.shape[-1]]
        return {HEAD: torch.nn.functional.binary_cross_entropy_with_logits(logits[..., frames], wanted[..., frames])}

    def validation_losses(self, models, valid_tracks):
        total, count = 0.0, 0
        frames = slice(0, None, self.options.stft_stride)
        for features, wanted in self._validation_set(valid_tracks):
            logits = net.frame_logits(models[HEAD], features, self.settings)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, frames], wanted[:, frames].to(logits.dtype), reduction="sum")
            total += loss.item()
            count += wanted[:, frames].numel()
        return {HEAD: total / count}

    def _validation_set(self, valid_tracks: list[Track]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each validation track's features and 0/1 target: unaugmented, so the same
        every epoch, decoded and resampled once per run (MUSDB18's 14 validation
        tracks: about 0.75 GB)."""
        if self._validation is None:
            self._validation = []
            for track in valid_tracks:
                mixture, vocals = self._at_model_rate(torch.from_numpy(track.read())[None].to(self.device))
                self._validation.append((net.mixture_features(mixture, self.settings)[0],
                                         net.vocals_mask(vocals, self.settings)[0].bool()))
        return self._validation

    def evaluate(self, models, valid_tracks, epoch):
        """Vocals global SDR of the first validation excerpts, separated as the member does."""
        from evaluation.scores import global_sdr

        options = self.options
        if not options.eval_epochs or epoch % options.eval_epochs:
            return None
        scores = {}
        for track in valid_tracks[:options.eval_excerpts]:
            frames = min(track.frames, seconds_to_frames(options.eval_seconds))
            stems = torch.from_numpy(track.read(0, frames)).to(self.device)
            mixture = resample(mix(stems[None])[0], SAMPLE_RATE, net.SAMPLE_RATE)
            vocals = net.separate_vocals(models[HEAD], mixture, self.settings, options.mask_at_eval)
            estimate = resample(vocals, net.SAMPLE_RATE, SAMPLE_RATE, frames)
            scores[track.name] = global_sdr(stems[TARGETS.index("vocals")].T.cpu().numpy(), estimate.T.cpu().numpy())
        mean = sum(scores.values()) / len(scores) if scores else math.nan
        return {"vocals_global_sdr": scores, "mean_vocals_global_sdr": mean, "mask_at_eval": options.mask_at_eval}

    def save_best(self, output, head, state):
        files.save_torch_atomically(Path(output) / WEIGHTS_FILE, state)

    def head_record(self, output, head, summary):
        files.write_json(Path(output) / SETTINGS_FILE, {
            "settings": self.settings.to_json(), "options": self.options.to_json(), **summary})

    def _at_model_rate(self, stems: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, 4, 2, frames) at 44.1 kHz -> the mixture and the vocals at 22.05 kHz."""
        both = torch.stack([mix(stems), stems[:, TARGETS.index("vocals")]])
        both = resample(both, SAMPLE_RATE, net.SAMPLE_RATE)
        return both[0], both[1]
