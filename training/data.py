"""Training tracks: MUSDB18-HQ folders, MUSDB18 ``.stem.mp4`` files, and any
folder in the MUSDB18-HQ layout (a participant's own stems).

Layouts::

    ROOT/train/<track>/{bass,drums,other,vocals}.wav   MUSDB18-HQ (mixture.wav is not needed:
                                                       training mixes the stems itself)
    ROOT/train/<track>.stem.mp4                        MUSDB18 (read through musdb/stempeg)
    ROOT/valid/<track>/...                             optional: your own validation tracks

Without ``ROOT/valid/`` the validation tracks are MUSDB18's own split of
``train/`` (musdb's list of 14 tracks), as Open-Unmix trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demix import SAMPLE_RATE, TARGETS
from demix.errors import DemixError

#: What a track folder must hold, and what a .stem.mp4 file is called.
SOURCE_FILES = tuple(f"{target}.wav" for target in TARGETS)
STEM_SUFFIX = ".stem.mp4"
#: The streams of a MUSDB18 stem file: the mixture, then the four sources.
STEM_STREAMS = 5


@dataclass(frozen=True)
class Track:
    """One song's four sources, read in chunks as (targets, channels, frames)."""

    name: str
    path: Path  # the track folder, or the .stem.mp4 file
    frames: int
    #: Stream index of each target in a .stem.mp4 file (TARGETS order); None for WAV folders.
    stem_ids: tuple[int, ...] | None = None

    @property
    def seconds(self) -> float:
        return self.frames / SAMPLE_RATE

    def read(self, start: int = 0, frames: int | None = None) -> np.ndarray:
        """float32 (targets, 2, frames) from ``start``; mono sources are doubled to stereo."""
        frames = self.frames - start if frames is None else frames
        if self.stem_ids is None:
            import soundfile as sf

            sources = [sf.read(self.path / name, start=start, stop=start + frames, dtype="float32",
                               always_2d=True)[0].T for name in SOURCE_FILES]
        else:
            import stempeg

            streams, _ = stempeg.read_stems(str(self.path), start=start / SAMPLE_RATE, duration=frames / SAMPLE_RATE,
                                            dtype=np.float32, always_3d=True)
            sources = [streams[index].T for index in self.stem_ids]
        return np.stack([_stereo(_exact_length(source, frames)) for source in sources])


def _exact_length(audio: np.ndarray, frames: int) -> np.ndarray:
    """ffmpeg's seeking in compressed files may give a few samples more or less."""
    if audio.shape[-1] >= frames:
        return audio[:, :frames]
    return np.pad(audio, ((0, 0), (0, frames - audio.shape[-1])))


def _stereo(audio: np.ndarray) -> np.ndarray:
    return np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio


def training_tracks(root: Path) -> tuple[list[Track], list[Track]]:
    """(train, valid) tracks of ``root``, every one checked: a wrong layout is
    an error naming the folder and what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise DemixError(f"{root}: data folder not found")
    train_folder = root / "train"
    if not train_folder.is_dir():
        raise DemixError(f"{root}: no train/ folder here (expected a MUSDB18-HQ or MUSDB18 root: "
                         f"train/<track>/{{{','.join(TARGETS)}}}.wav or train/<track>{STEM_SUFFIX})")
    if (root / "valid").is_dir():
        train = _open_folder(train_folder, split=None)
        valid = _open_folder(root / "valid", split=None)
        where = root / "valid"
    else:
        train = _open_folder(train_folder, split="train")
        valid = _open_folder(train_folder, split="valid")
        where = train_folder
    if not train:
        raise DemixError(f"{train_folder}: no training tracks left once the validation tracks are set aside")
    if not valid:
        raise DemixError(
            f"{where}: no validation tracks (MUSDB18's validation split names 14 tracks of train/, none of "
            f"which is here): put some of your tracks in {root / 'valid'}/ in the same layout")
    return train, valid


def _open_folder(folder: Path, split: str | None) -> list[Track]:
    """The tracks of one folder, through musdb (which knows MUSDB18's train/valid split)."""
    import musdb

    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    stem_files = [p for p in entries if p.is_file() and p.name.endswith(STEM_SUFFIX)]
    track_folders = [p for p in entries if p.is_dir()]
    if stem_files and track_folders:
        raise DemixError(f"{folder}: holds both track folders and {STEM_SUFFIX} files; keep one layout")
    if not stem_files and not track_folders:
        raise DemixError(f"{folder}: no tracks (expected <track>/{{{','.join(TARGETS)}}}.wav folders "
                         f"or <track>{STEM_SUFFIX} files)")
    is_wav = bool(track_folders)
    for track_folder in track_folders:
        _check_track_folder(track_folder)
    try:
        database = musdb.DB(root=str(folder.parent), subsets=folder.name, split=split, is_wav=is_wav)
    except Exception as error:  # stempeg's probe of a damaged file, for one
        raise DemixError(f"{folder}: musdb cannot read these tracks ({error})") from None
    on_top = {p.name.removesuffix(STEM_SUFFIX) for p in (track_folders or stem_files)}
    tracks = [track for track in database.tracks if track.name in on_top]  # musdb also walks sub-folders
    stem_ids = tuple(database.setup["stem_ids"][target] for target in TARGETS)
    return [_wav_track(folder / t.name) if is_wav else _stem_track(Path(t.path), t.name, stem_ids, t.info)
            for t in tracks]


def open_track_folder(path: Path) -> Track:
    """One track folder of the MUSDB18-HQ layout, on its own."""
    path = Path(path)
    if not path.is_dir():
        raise DemixError(f"{path}: not a folder (expected a track folder with {', '.join(SOURCE_FILES)})")
    _check_track_folder(path)
    return _wav_track(path)


def _check_track_folder(track_folder: Path) -> None:
    missing = [name for name in SOURCE_FILES if not (track_folder / name).is_file()]
    if missing:
        raise DemixError(f"{track_folder}: not a track folder of the MUSDB18-HQ layout: {', '.join(missing)} missing")


def _wav_track(track_folder: Path) -> Track:
    import soundfile as sf

    frames = []
    for name in SOURCE_FILES:
        path = track_folder / name
        try:
            info = sf.info(path)
        except Exception as error:  # libsndfile's own message says what is wrong
            raise DemixError(f"{path}: not readable audio ({error})") from None
        _check_format(path, info.samplerate, info.channels)
        frames.append(info.frames)
    return Track(track_folder.name, track_folder, min(frames))


def _stem_track(path: Path, name: str, stem_ids: tuple[int, ...], info) -> Track:
    """``info``: stempeg's probe of the file, which musdb already made."""
    if info.nb_audio_streams < STEM_STREAMS:
        raise DemixError(f"{path}: {info.nb_audio_streams} audio streams; a MUSDB18 stem file has "
                         f"{STEM_STREAMS} (mixture, drums, bass, other, vocals)")
    for stream in stem_ids:
        _check_format(path, info.rate(stream), info.channels(stream))
    return Track(name, path, min(int(info.samples(stream)) for stream in stem_ids), stem_ids)


def _check_format(path: Path, rate: float, channels: int) -> None:
    if int(rate) != SAMPLE_RATE:
        raise DemixError(f"{path}: {rate:g} Hz; training reads {SAMPLE_RATE} Hz stems (resample them first)")
    if channels not in (1, 2):
        raise DemixError(f"{path}: {channels} channels; training reads mono or stereo stems")


def check_lengths(tracks: list[Track], frames: int, what: str) -> None:
    """Every track must hold the ``frames`` samples one example reads."""
    short = [f"{track.name} ({track.seconds:.2f} s)" for track in tracks if track.frames < frames]
    if short:
        raise DemixError(f"{what} too short: an example reads {frames / SAMPLE_RATE:.2f} s (--seq-dur, and more "
                         f"with pitch/tempo changes); {', '.join(short)} (use a smaller --seq-dur, or leave these "
                         "tracks out)")
