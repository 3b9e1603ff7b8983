"""One adapter per model family, behind :class:`~demix.members.base.Member`."""

from __future__ import annotations

from pathlib import Path

from ..config import MemberConfig
from ..msst_files import MSST_FAMILIES
from ..weights.integrity import refuse_lfs_pointers
from ..weights.member_files import files_of
from .base import Member
from .demucs import DemucsMember
from .msst import MsstMember
from .openunmix import OpenUnmixMember
from .spleeter import SpleeterMember

__all__ = ["Member", "DemucsMember", "MsstMember", "OpenUnmixMember", "SpleeterMember", "load_member"]


def load_member(config: MemberConfig, models_dir: Path, seed: int) -> Member:
    """Build the member a config entry describes, reading weights from disk only."""
    refuse_lfs_pointers([file.path for file in files_of(config, models_dir)])
    if config.family == "demucs":
        options = dict(config.options, seed=seed)
        if config.is_official:
            return DemucsMember.from_official(config.name, config.model, models_dir, **options)
        return DemucsMember.from_file(config.name, Path(config.model), **options)
    if config.family in MSST_FAMILIES:
        if config.is_official:
            return MsstMember.from_official(config.name, config.model, models_dir, **config.options)
        return MsstMember.from_path(config.name, Path(config.model), config.family, **config.options)
    if config.family == "spleeter":
        if config.is_packaged:
            return SpleeterMember.from_packaged(config.name, config.model, **config.options)
        return SpleeterMember.from_folder(config.name, Path(config.model), **config.options)
    if config.is_official:
        return OpenUnmixMember.from_official(config.name, config.model, models_dir, **config.options)
    return OpenUnmixMember.from_training_folder(config.name, Path(config.model), **config.options)
