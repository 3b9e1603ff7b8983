"""The one interface every model family implements."""

from __future__ import annotations

import abc

import torch

from ..statistics import SongStatistics


class Member(abc.ABC):
    """A pretrained separator: a stereo mixture at ``sample_rate`` in, one
    waveform per target it knows out.

    Members are applied by :class:`demix.ensemble.Ensemble` to one block of
    the song at a time, so they never see a whole long track.
    """

    #: Name shown to the user (the config's member name).
    name: str
    #: Sample rate the model was trained at.
    sample_rate: int
    #: Targets this member estimates, a subset of :data:`demix.TARGETS`.
    targets: tuple[str, ...]
    #: Where the weights came from, for ``python -m demix info``.
    source: str
    #: Whether :meth:`separate` normalises by the whole song's statistics
    #: (:mod:`demix.statistics`); the ensemble measures them before the first block.
    needs_song_statistics: bool = False

    @property
    def block_multiple(self) -> int:
        """Blocks whose length is a multiple of this many samples cost this
        member no padding (Demucs: its segment stride). 1 means any length."""
        return 1

    def set_compute(self, mode: str) -> None:
        """Switch to a compute mode of :mod:`demix.compute`. Members for
        which a mode changes nothing keep running as they are."""

    def disable_compile(self) -> None:
        """Run uncompiled (keeping the precision of the mode)."""

    @property
    def compute_description(self) -> str:
        """How the model really runs in its mode (precision; compiled, in
        parts or not), for ``python -m demix info``; "" where the mode's name
        says it all."""
        return ""

    @abc.abstractmethod
    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        """``mix``: (2, frames) float32 on the member's device, one block of
        a song whose :class:`~demix.statistics.SongStatistics` are
        ``statistics`` (None: ``mix`` is the whole song). Returns
        ``{target: (2, frames)}`` for each of :attr:`targets`."""

    @abc.abstractmethod
    def to(self, device: torch.device) -> "Member":
        """Move the model to ``device``; returns self."""
