"""The excerpt window every player of a group plays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

#: Seconds each player plays, unless asked otherwise.
DEFAULT_WINDOW_SECONDS = 10.0
#: The loudest window is searched on this grid of start times (seconds).
WINDOW_STEP_SECONDS = 0.5


@dataclass(frozen=True)
class Window:
    """``length`` samples from ``start`` at ``rate``; ``reason`` says how it was chosen."""

    start: int
    length: int
    rate: int
    reason: str

    @property
    def start_seconds(self) -> float:
        return self.start / self.rate

    @property
    def seconds(self) -> float:
        return self.length / self.rate

    @property
    def end_seconds(self) -> float:
        return (self.start + self.length) / self.rate

    def cut(self, audio: np.ndarray) -> np.ndarray:
        """The window of (channels, frames) ``audio``, padded with silence
        where the audio ends before it (an estimate a few samples short)."""
        audio = np.atleast_2d(audio)
        piece = audio[:, self.start:self.start + self.length]
        if piece.shape[1] < self.length:
            piece = np.pad(piece, ((0, 0), (0, self.length - piece.shape[1])))
        return piece


def loudest_window(audio: np.ndarray, rate: int, seconds: float = DEFAULT_WINDOW_SECONDS,
                   step_seconds: float = WINDOW_STEP_SECONDS) -> Window:
    """The ``seconds`` of (channels, frames) ``audio`` with the most energy,
    starting on a grid of ``step_seconds`` (the earliest of equals); the
    whole audio where it is shorter than that."""
    audio = np.atleast_2d(np.asarray(audio))
    return loudest_window_of_blocks([audio], audio.shape[1], rate, seconds, step_seconds)


def loudest_window_of_blocks(blocks: Iterable[np.ndarray], frames: int, rate: int,
                             seconds: float = DEFAULT_WINDOW_SECONDS,
                             step_seconds: float = WINDOW_STEP_SECONDS) -> Window:
    """:func:`loudest_window` of audio given as consecutive (channels, n) blocks,
    ``frames`` in all, so that a long song need not be held whole: only the
    running energy at each candidate window's start and end is kept."""
    if frames == 0 or seconds <= 0:
        raise ValueError(f"no window of {seconds} s in {frames} samples")
    length = min(frames, max(1, round(seconds * rate)))
    starts = np.arange(0, frames - length + 1, max(1, round(step_seconds * rate)))
    marks = np.union1d(starts, starts + length)  # sorted sample positions
    energy_before = np.zeros(len(marks))  # energy of the samples before each mark
    total, offset, done = 0.0, 0, 0
    for block in blocks:
        cumulative = np.cumsum(np.sum(np.square(block, dtype=np.float64), axis=0))
        if len(cumulative) == 0:
            continue
        upto = int(np.searchsorted(marks, offset + len(cumulative), side="right"))
        inside = marks[done:upto] - offset  # 1..len(cumulative), or 0 for the song's first sample
        energy_before[done:upto] = total + np.where(inside > 0, cumulative[np.maximum(inside, 1) - 1], 0.0)
        total, offset, done = total + float(cumulative[-1]), offset + len(cumulative), upto
    energy = energy_before[np.searchsorted(marks, starts + length)] - energy_before[np.searchsorted(marks, starts)]
    return Window(int(starts[np.argmax(energy)]), length, int(rate), "loudest")


def fixed_window(frames: int, rate: int, start_seconds: float, seconds: float = DEFAULT_WINDOW_SECONDS) -> Window:
    """``seconds`` from ``start_seconds``, moved back to end with the audio
    where it would run past it."""
    if frames <= 0 or seconds <= 0 or start_seconds < 0:
        raise ValueError(f"no window of {seconds} s from {start_seconds} s in {frames} samples")
    length = min(frames, max(1, round(seconds * rate)))
    start = min(round(start_seconds * rate), frames - length)
    return Window(int(start), int(length), int(rate), "chosen")
