"""MUSDB18 / MUSDB18-HQ tracks through ``musdb``."""

from __future__ import annotations

from pathlib import Path

from demix.errors import DemixError

SUBSETS = ("train", "test")
SPLITS = ("train", "valid")


def open_tracks(root: Path, subset: str = "test", split: str | None = None, names: list[str] | None = None):
    """The tracks of ``root``: MUSDB18-HQ wav folders (``<subset>/<track>/mixture.wav``)
    or MUSDB18 ``<subset>/<track>.stem.mp4`` files, whichever the folder holds.
    ``split`` (train/valid) applies to the train subset, as in musdb."""
    import musdb

    root = Path(root)
    if subset not in SUBSETS:
        raise DemixError(f"--subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if split is not None and (split not in SPLITS or subset != "train"):
        raise DemixError(f"--split ({', '.join(SPLITS)}) applies to --subset train only")
    folder = root / subset
    if not folder.is_dir():
        raise DemixError(f"{root}: no {subset}/ folder here (expected a MUSDB18 or MUSDB18-HQ root)")
    is_wav = any(folder.glob("*/mixture.wav"))
    if not is_wav and not any(folder.glob("*.stem.mp4")):
        raise DemixError(f"{folder}: neither <track>/mixture.wav folders nor <track>.stem.mp4 files")
    database = musdb.DB(root=str(root), subsets=subset, split=split, is_wav=is_wav)
    tracks = list(database.tracks)
    if names:
        by_name = {track.name: track for track in tracks}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise DemixError(f"{folder}: no track named {unknown}; available: {sorted(by_name)}")
        tracks = [by_name[name] for name in names]
    if not tracks:
        raise DemixError(f"{folder}: no tracks selected")
    return tracks
