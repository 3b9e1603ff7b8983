"""One adapter per model family, behind :class:`~demix.members.base.Member`;
which family is which is :mod:`demix.families`.

Importing this package imports no torch: the member classes are imported
where they are first used (``from demix.members import DemucsMember`` still
works), so that :mod:`demix.members.msst_files` serves the config reader.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import MemberConfig
    from .base import Member

#: The member classes this package exports, by the module that holds each.
_CLASSES = {"Member": "base", "DemucsMember": "demucs", "MsstMember": "msst", "OpenUnmixMember": "openunmix",
            "SpleeterMember": "spleeter", "VocalMaskMember": "vocal_mask", "XumxSlicqMember": "xumx_slicq"}

__all__ = [*_CLASSES, "load_member"]


def __getattr__(name: str):
    if name in _CLASSES:
        return getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_member(config: "MemberConfig", models_dir: Path, seed: int) -> "Member":
    """Build the member a config entry describes, reading weights from disk only:
    its family's member class (:mod:`demix.families`), from an official name or a path."""
    from ..families import family
    from ..weights.integrity import refuse_lfs_pointers
    from ..weights.member_files import files_of

    refuse_lfs_pointers([file.path for file in files_of(config, models_dir)])
    return family(config.family).member_class().load(config, models_dir, seed)
