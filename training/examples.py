"""Training examples: random chunks of the tracks' stems, pitch/tempo
changed by Demucs' own wrapper, each example a pure function of the seed and
its number.

Example number ``key`` (``epoch * examples_per_epoch + i``) is drawn with
every random generator the libraries use (``random`` for the chunk start and
``demucs.repitch``; torch's) seeded from ``(seed, key)`` and put back
afterwards. So an example does not depend on which process or worker builds
it, nor on what came before: a resumed run gets exactly the examples an
uninterrupted one would, and the training process's own generators (which
the checkpoint keeps) are never touched by data loading.
"""

from __future__ import annotations

import contextlib
import math
import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from demix import SAMPLE_RATE, TARGETS

from .data import Track
from .options import Augmentations


#: Tags that keep the seeds of examples and of epoch orders apart.
_EXAMPLE, _ORDER = 0, 1


def mixed_seed(*numbers: int) -> int:
    """A well-mixed 32-bit seed from non-negative integers."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1)[0])


def example_seed(seed: int, key: int) -> int:
    """The seed of example ``key`` of a run seeded ``seed``."""
    return mixed_seed(seed, key, _EXAMPLE)


@contextlib.contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """Seed Python's and torch's CPU generators for a block, then restore them."""
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


class Chunks(Dataset):
    """``samples_per_track`` chunks of ``frames`` samples per track, each at a
    uniformly random start (Open-Unmix's random chunking): (targets, 2, frames)."""

    def __init__(self, tracks: list[Track], samples_per_track: int, frames: int):
        self.tracks, self.samples_per_track, self.frames = tracks, samples_per_track, frames

    def __len__(self) -> int:
        return len(self.tracks) * self.samples_per_track

    def __getitem__(self, key: int) -> torch.Tensor:
        track = self.tracks[(key % len(self)) // self.samples_per_track]
        start = random.randint(0, track.frames - self.frames)
        return torch.from_numpy(track.read(start, self.frames))


class Tiles(Dataset):
    """Every track cut into chunks of ``frames`` samples, one every ``hop``
    samples (the last ends at the track's end): (targets, 2, frames). Each
    example is a fixed piece of one song, so an epoch covers every song."""

    def __init__(self, tracks: list[Track], frames: int, hop: int):
        self.tracks, self.frames = tracks, frames
        self.starts = []  # (track index, first sample) of every tile
        for index, track in enumerate(tracks):
            starts = list(range(0, track.frames - frames + 1, hop))
            if starts and starts[-1] != track.frames - frames:
                starts.append(track.frames - frames)
            self.starts += [(index, start) for start in starts]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, key: int) -> torch.Tensor:
        index, start = self.starts[key % len(self)]
        return torch.from_numpy(self.tracks[index].read(start, self.frames))


class Examples(Dataset):
    """The training set: chunks, pitch/tempo changed on some (``demucs.repitch.
    RepitchedWrapper``, the same change for all sources of an example so
    they still mix into one song), cut to ``frames``; seeded per example.
    The chunks are ``samples_per_track`` random ones per track, or, with
    ``tile_hop``, every track tiled (:class:`Tiles`)."""

    def __init__(self, tracks: list[Track], samples_per_track: int, frames: int, augment: Augmentations, seed: int,
                 read_frames: int | None = None, tile_hop: int | None = None):
        self.tracks, self.frames, self.seed = tracks, frames, seed
        #: Samples read per example (more may be asked for, to read the same chunks as another run).
        self.read_frames = max(read_frames or frames, repitch_read_frames(frames, augment))
        chunks = (Chunks(tracks, samples_per_track, self.read_frames) if tile_hop is None
                  else Tiles(tracks, self.read_frames, tile_hop))
        if augment.repitch_proba > 0:
            from demucs.repitch import RepitchedWrapper

            self.inner = RepitchedWrapper(
                chunks, proba=augment.repitch_proba,
                max_pitch=augment.max_pitch, max_tempo=augment.max_tempo, tempo_std=augment.tempo_std,
                vocals=[TARGETS.index("vocals")], same=True,
            )
        else:
            self.inner = chunks
        self.examples_per_epoch = len(self.inner)

    def __len__(self) -> int:
        return self.examples_per_epoch

    def __getitem__(self, key: int) -> torch.Tensor:
        with seeded_generators(example_seed(self.seed, key)):
            stems = self.inner[key]
        return stems[..., : self.frames].contiguous()


def repitch_read_frames(frames: int, augment: Augmentations) -> int:
    """What to read for ``frames`` after pitch/tempo: Demucs' wrapper always
    returns (1 - max_tempo %) of what it reads."""
    if augment.repitch_proba <= 0:
        return frames
    return math.ceil((frames + 1) / (1 - augment.max_tempo / 100))


class EpochOrder(Sampler):
    """The keys of one epoch in a shuffled order fixed by (seed, epoch),
    from position ``start`` on (a resumed epoch skips what was trained)."""

    def __init__(self, examples_per_epoch: int, seed: int, epoch: int, start: int = 0):
        generator = torch.Generator().manual_seed(mixed_seed(seed, epoch, _ORDER))
        order = torch.randperm(examples_per_epoch, generator=generator) + epoch * examples_per_epoch
        self.keys = order[start:].tolist()

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys)


def seconds_to_frames(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))
