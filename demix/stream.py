"""From the input's sample rate to the engine's and back, block by block.

``julius.ResampleFrac`` resamples a whole signal: after reducing the rates
to ``old:new`` by their gcd, each group of ``new`` output samples is one
windowed-sinc filter over ``old`` input samples plus ``width`` on each side,
and the signal's two ends are padded by repeating the edge sample.
:class:`BlockResampler` runs that same julius module on pieces of a stream,
keeping ``width`` samples of context (rounded up to whole groups) before
each piece and holding back the outputs whose filter reaches past the input
received so far. Every output sample is therefore computed from exactly the
input samples, and the same edge padding, as in one call on the whole
signal, so there are no seams: the stream equals
``julius.resample_frac(whole, old, new, full=True)`` to float rounding,
while memory holds one piece.

:class:`EngineMix` uses it to give the ensemble the mixture at the engine's
rate as a window that moves forward through the song; the stems go back to
the input's rate through another :class:`BlockResampler` as each block is
finished (:func:`demix.separate.stream_stems`).
"""

from __future__ import annotations

import math

import julius
import torch

from . import SAMPLE_RATE
from .audio import READ_SECONDS, Audio, AudioFile, engine_length
from .statistics import SongStatistics


class BlockResampler:
    """Resample a stream of pieces (..., time) from ``old_rate`` to
    ``new_rate``; :meth:`feed` returns the output that is final so far and
    :meth:`finish` the rest, ``length`` frames in all."""

    def __init__(self, old_rate: int, new_rate: int, length: int):
        self.length = length
        self._emitted = 0
        self._resampler = julius.ResampleFrac(int(old_rate), int(new_rate)) if old_rate != new_rate else None
        if self._resampler is not None:
            self._old, self._new = self._resampler.old_sr, self._resampler.new_sr  # reduced by their gcd
            # the filter spans `width` input samples on each side of its group of `old`
            self._width = (self._resampler.kernel.shape[-1] - self._old) // 2
            self._context = math.ceil(self._width / self._old) * self._old
        self._buffer: torch.Tensor | None = None  # input not consumed yet, from input frame self._start
        self._start = 0
        self._next_group = 0  # the first output group not returned yet

    def feed(self, piece: torch.Tensor) -> torch.Tensor:
        if self._resampler is None:
            return self._take(piece)
        self._buffer = piece if self._buffer is None else torch.cat([self._buffer, piece], dim=-1)
        received = self._start + self._buffer.shape[-1]
        # group g reads input frames [g*old - width, (g+1)*old + width)
        complete = (received - self._width) // self._old
        if complete <= self._next_group:
            return piece.new_zeros(piece.shape[:-1] + (0,))
        return self._resample(stop_group=complete)

    def finish(self) -> torch.Tensor:
        """The remaining output, up to exactly ``length`` frames in all."""
        if self._resampler is None or self._buffer is None:
            rest = torch.zeros(0)
        else:
            rest = self._resample(stop_group=None)  # julius pads the true end, as for the whole signal
        if self._emitted != self.length:
            raise ValueError(f"the stream gave {self._emitted} frames; {self.length} were asked for")
        return rest

    def _resample(self, stop_group: int | None) -> torch.Tensor:
        output = self._resampler(self._buffer, full=True)
        first = (self._next_group * self._old - self._start) // self._old * self._new
        if stop_group is None:
            output = output[..., first:]
        else:
            output = output[..., first:(stop_group * self._old - self._start) // self._old * self._new]
            self._next_group = stop_group
            keep_from = max(self._start, self._next_group * self._old - self._context)
            self._buffer = self._buffer[..., keep_from - self._start:]
            self._start = keep_from
        return self._take(output)

    def _take(self, output: torch.Tensor) -> torch.Tensor:
        output = output[..., : self.length - self._emitted]
        self._emitted += output.shape[-1]
        return output


class EngineMix:
    """The mixture of ``source`` (an :class:`~demix.audio.Audio` or
    :class:`~demix.audio.AudioFile`) as stereo at the engine's rate,
    :func:`~demix.audio.engine_length` frames long, read as a window that only
    moves forward: what the ensemble's :meth:`~demix.ensemble.Ensemble.separate_blocks`
    takes. Memory holds the current window and one piece of input."""

    def __init__(self, source: Audio | AudioFile, read_seconds: float = READ_SECONDS):
        self.length = engine_length(source.frames, source.sample_rate)
        self._pieces = source.blocks(max(1, int(read_seconds * source.sample_rate)))
        self._resampler = BlockResampler(source.sample_rate, SAMPLE_RATE, self.length)
        self._buffer = torch.zeros(2, 0)
        self._offset = 0  # engine frame of self._buffer[:, 0]
        self._finished = False

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Engine frames [start, stop) as a (2, stop - start) tensor; ``start``
        never goes back before an earlier call's."""
        if start < self._offset:
            raise ValueError(f"EngineMix reads forward only: frame {start} is behind {self._offset}")
        while self._offset + self._buffer.shape[-1] < stop and not self._finished:
            piece = next(self._pieces, None)
            if piece is None:
                resampled = self._resampler.finish()
                self._finished = True
            else:
                resampled = self._resampler.feed(torch.from_numpy(piece))
            if resampled.shape[-1]:
                self._buffer = torch.cat([self._buffer, resampled.expand(2, -1)], dim=-1)
        self._buffer = self._buffer[:, start - self._offset:]
        self._offset = start
        return self._buffer[:, : stop - start].clone()


def song_statistics(source: Audio | AudioFile, read_seconds: float = READ_SECONDS) -> SongStatistics:
    """The whole song's :class:`~demix.statistics.SongStatistics` at the
    engine's rate, in one streaming pass over ``source`` before separation
    (a file is decoded once more for it; memory holds one piece)."""
    mix = EngineMix(source, read_seconds)
    step = max(1, int(read_seconds * SAMPLE_RATE))
    return SongStatistics.measure(mix.read(start, min(start + step, mix.length)) for start in range(0, mix.length, step))
