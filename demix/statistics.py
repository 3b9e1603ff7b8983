"""Whole-song statistics that some members normalise their input by.

Demucs (``demucs.api.Separator`` and its command line) and MSST's SCNet
configs (``inference.normalize: true``) scale the waveform by the mean and
the standard deviation of the whole song's mono mix,
``ref = wav.mean(0); (wav - ref.mean()) / ref.std()``, before the network
sees it, and undo it on the outputs. The ensemble hands the network one
block at a time: normalising each block by that block's own statistics
would make the stems depend on where block boundaries fall (a quiet intro
block would be boosted, a loud chorus block damped). So the statistics are
measured once, over the whole song, before separation, and every block of
that song is normalised by the same two numbers.

``mean`` and ``std`` are those of the mono mix (the mean over channels) at
the engine's rate; ``std`` is torch's default, with Bessel's correction, as
``demucs.api`` computes it. MSST (``msst.utils.audio_utils.normalize_audio``)
takes numpy's ``std()``, without it: :attr:`SongStatistics.population_std`,
which needs the number of ``frames`` measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch


@dataclass(frozen=True)
class SongStatistics:
    mean: float
    std: float
    #: Frames (per channel) the statistics were measured over; 0 where unknown.
    frames: int = 0

    @property
    def population_std(self) -> float:
        """The std without Bessel's correction (numpy's default, as MSST normalises)."""
        if self.frames < 2:
            return self.std if self.frames == 0 else 0.0
        return self.std * math.sqrt((self.frames - 1) / self.frames)

    @classmethod
    def of(cls, mix: torch.Tensor) -> "SongStatistics":
        """Of a mixture held in memory: (channels, frames)."""
        mono = mix.double().mean(dim=0)
        if mono.numel() < 2:
            return cls(float(mono.sum()), 0.0, mono.numel())
        return cls(float(mono.mean()), float(mono.std()), mono.numel())

    @classmethod
    def measure(cls, pieces: Iterable[torch.Tensor]) -> "SongStatistics":
        """In one streaming pass over consecutive (channels, n) pieces of a
        song: float64 sums per piece, merged with Chan et al.'s pairwise
        update so that long songs lose no precision. Equals :meth:`of` on
        the concatenation to float rounding."""
        count, mean, squares = 0, 0.0, 0.0  # squares: the sum of squared deviations from the mean
        for piece in pieces:
            mono = piece.double().mean(dim=0)
            n = mono.numel()
            if n == 0:
                continue
            piece_mean = float(mono.mean())
            piece_squares = float(((mono - piece_mean) ** 2).sum())
            delta = piece_mean - mean
            total = count + n
            mean += delta * n / total
            squares += piece_squares + delta * delta * count * n / total
            count = total
        return cls(mean, math.sqrt(squares / (count - 1)) if count > 1 else 0.0, count)
