"""Augmentations of a batch of stems, (batch, targets, channels, frames).

Demucs' own modules do channel swap, sign flip, remixing across songs and
gain; the two augmentations no library has are here: time reversal and a
random mix of 1-4 sources. They run in the training process on its own
generators (which the checkpoint keeps), so a resumed run draws the same.
The mixture is always the sum of the augmented sources: see :func:`mix`.
"""

from __future__ import annotations

import torch
from torch import nn

from .options import Augmentations


class TimeReverse(nn.Module):
    """Play each source of each example backwards with probability ``proba``
    (Nachmani & Wolf 2019)."""

    def __init__(self, proba: float):
        super().__init__()
        self.proba = proba

    def forward(self, stems: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return stems
        batch, sources = stems.shape[:2]
        chosen = torch.rand(batch, sources, 1, 1, device=stems.device) < self.proba
        return torch.where(chosen, stems.flip(-1), stems)


class SourceMix(nn.Module):
    """With probability ``proba`` per example, keep a random 1-4 of its
    sources, at levels drawn from N(0.5, std) clipped to [0, 1] and
    normalised to sum 1; the others are silenced (a target left out teaches
    the model to return silence)."""

    def __init__(self, proba: float, std: float):
        super().__init__()
        self.proba, self.std = proba, std

    def forward(self, stems: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return stems
        levels = source_mix_levels(stems.shape[0], stems.shape[1], self.proba, self.std, stems.device)
        return stems * levels[:, :, None, None].to(stems.dtype)


def source_mix_levels(batch: int, sources: int, proba: float, std: float, device=None) -> torch.Tensor:
    """(batch, sources) levels: ones for examples left alone; otherwise zero
    but for 1..``sources`` random sources, whose levels sum to 1."""
    keep = torch.randint(1, sources + 1, (batch, 1), device=device)
    rank = torch.rand(batch, sources, device=device).argsort(dim=1).argsort(dim=1)  # a random order of sources
    chosen = rank < keep
    levels = (0.5 + std * torch.randn(batch, sources, device=device)).clamp(0.0, 1.0) * chosen
    total = levels.sum(dim=1, keepdim=True)
    # All chosen levels clipped to 0: the chosen sources at equal levels instead.
    levels = torch.where(total > 0, levels / total.clamp_min(1e-12), chosen / chosen.sum(dim=1, keepdim=True))
    applied = torch.rand(batch, 1, device=device) < proba
    return torch.where(applied, levels, torch.ones_like(levels))


def batch_augmentations(augment: Augmentations) -> nn.Sequential:
    """The batch augmentations ``augment`` turns on, in training mode."""
    from demucs.augment import FlipChannels, FlipSign, Remix, Scale

    modules: list[nn.Module] = []
    if augment.channelswap:
        modules.append(FlipChannels())
    if augment.sign_flip:
        modules.append(FlipSign())
    if augment.reverse_proba > 0:
        modules.append(TimeReverse(augment.reverse_proba))
    if augment.remix_proba > 0:
        modules.append(Remix(proba=augment.remix_proba, group_size=augment.remix_group_size))
    if augment.gain_proba > 0:
        modules.append(Scale(proba=augment.gain_proba, min=augment.gain_min, max=augment.gain_max))
    if augment.source_mix_proba > 0:
        modules.append(SourceMix(augment.source_mix_proba, augment.source_mix_std))
    return nn.Sequential(*modules).train()


def mix(stems: torch.Tensor) -> torch.Tensor:
    """The training contract: the model hears the sum of the sources it must find."""
    return stems.sum(dim=1)
