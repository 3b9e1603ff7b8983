"""Reading, converting and atomically writing audio.

Inputs are decoded with libsndfile (WAV, FLAC, OGG, AIFF, MP3) through
``soundfile``; anything else (M4A/AAC, MP4, NI ``.stem.mp4`` where the first
stream is the mixture) is decoded by ffmpeg through ``stempeg``.
:func:`open_audio` gives a source that is read block by block: libsndfile
formats straight from the file (memory does not grow with the song), ffmpeg
formats decoded whole first. The engine works on stereo float32 at
:data:`demix.SAMPLE_RATE`; :mod:`demix.stream` converts a source to and from
it block by block, :func:`to_engine` and :func:`from_engine` whole arrays,
both with julius' windowed-sinc resampler.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import julius
import numpy as np
import soundfile as sf
import torch

from . import SAMPLE_RATE, TARGETS
from .atomic import TemporaryFile, atomic_path, sweep_dead_temporaries
from .errors import AudioError, first_line

#: Output sample formats accepted by :func:`open_stem_writers` (soundfile subtypes).
OUTPUT_SUBTYPES = ("FLOAT", "PCM_16", "PCM_24")

#: Seconds of input decoded at a time when a file is streamed.
READ_SECONDS = 10.0


@dataclass
class Audio:
    """Decoded audio: ``samples`` is float32 of shape (channels, frames)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """(channels, <= frames) pieces in order, as :class:`AudioFile` gives them."""
        for start in range(0, self.frames, frames):
            yield self.samples[:, start:start + frames]


@dataclass
class AudioFile:
    """A file libsndfile decodes, read block by block as it is consumed."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """(channels, <= frames) float32 pieces in order, ``self.frames`` in all;
        a NaN or infinite sample is reported when its block is read."""
        remaining = self.frames
        with sf.SoundFile(str(self.path)) as handle:
            while remaining > 0:
                data = handle.read(min(frames, remaining), dtype="float32", always_2d=True)
                if len(data) == 0:
                    raise AudioError(f"{self.path}: ends {remaining} frames before the {self.frames} its header gives")
                block = np.ascontiguousarray(data.T)
                _check_finite(self.path, block)
                remaining -= len(data)
                yield block


def song_name(path: Path) -> str:
    """The name a song's output folder gets: the file name without its
    extension, and without the ``.stem`` of NI stem files."""
    name = path.name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_audio(path: Path) -> Audio:
    """Decode ``path`` to float32 (channels, frames), checking what the
    engine needs: at least one sample, one or two channels, finite values."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        return _read_with_ffmpeg(path, sf_error)
    return _checked_audio(path, data, rate)


def _checked_audio(path: Path, data: np.ndarray, rate: int) -> Audio:
    """(frames, channels) samples as :class:`Audio`, after the engine's checks."""
    samples = np.ascontiguousarray(data.T)
    _check_shape(path, *samples.shape)
    _check_finite(path, samples)
    return Audio(samples, int(rate))


def open_audio(path: Path) -> Audio | AudioFile:
    """A source to read ``path`` from block by block: the file itself where
    libsndfile decodes it, else (ffmpeg formats) the whole decoded song."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_error:
        # not a libsndfile format: one ffprobe and one ffmpeg decode, no second libsndfile attempt
        return _read_with_ffmpeg(path, sf_error)
    _check_shape(path, info.channels, info.frames)
    return AudioFile(path, int(info.samplerate), info.channels, info.frames)


def _check_shape(path: Path, channels: int, frames: int) -> None:
    if frames == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if channels > 2:
        raise AudioError(
            f"{path}: has {channels} channels; only mono and stereo are supported "
            "(down-mix it first, e.g. `ffmpeg -i IN -ac 2 OUT.wav`)"
        )


def _check_finite(path: Path, samples: np.ndarray) -> None:
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")


def _read_with_ffmpeg(path: Path, sf_error: Exception) -> Audio:
    """The first audio stream (an NI stem file's mixture) decoded by ffmpeg:
    ffprobe once for the stream count, its result handed to the decode."""
    import stempeg  # imported lazily: it checks for the ffmpeg binary on import

    try:
        info = stempeg.Info(str(path))
        if info.nb_audio_streams == 0:
            raise AudioError(f"{path}: contains no audio stream")
        data, rate = stempeg.read_stems(
            str(path), stem_id=0, always_3d=False, dtype=np.float32, info=info
        )
    except AudioError:
        raise
    except Exception as ffmpeg_error:  # ffprobe/ffmpeg report many kinds of failure
        raise AudioError(
            f"{path}: not a readable audio file (libsndfile: {first_line(sf_error)}; ffmpeg: {first_line(ffmpeg_error)})"
        ) from None
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    return _checked_audio(path, data, rate)


def engine_length(frames: int, sample_rate: int) -> int:
    """Frames at the engine's rate for ``frames`` at ``sample_rate``, rounded
    up (julius' ``full`` length), so that resampling back can always give
    exactly ``frames`` again; rounding down loses the last input frame or two
    at rates above the engine's (96 kHz failed in julius on the way back)."""
    return -(-frames * SAMPLE_RATE // sample_rate)


def to_engine(audio: Audio) -> torch.Tensor:
    """Stereo float32 tensor at the engine's rate (mono is duplicated) of
    :func:`engine_length` frames."""
    wav = torch.from_numpy(audio.samples)
    if audio.channels == 1:
        wav = wav.expand(2, -1)
    wav = resample(wav, audio.sample_rate, SAMPLE_RATE, engine_length(audio.frames, audio.sample_rate))
    return wav.contiguous()


def from_engine(stems: torch.Tensor, like: Audio) -> np.ndarray:
    """Bring engine stems (targets, 2, frames) from :func:`to_engine` back to
    ``like``'s rate, channel count and exact length: (targets, channels, like.frames)."""
    if like.channels == 1:
        stems = stems.mean(dim=1, keepdim=True)
    stems = resample(stems, SAMPLE_RATE, like.sample_rate, like.frames)
    return stems.numpy()


def resample(wav: torch.Tensor, old_rate: int, new_rate: int, length: int | None = None) -> torch.Tensor:
    """Windowed-sinc resampling along the last axis (julius), to exactly
    ``length`` frames when given."""
    if old_rate != new_rate:
        wav = julius.resample_frac(wav, old_rate, new_rate, output_length=length)
    elif length is not None and wav.shape[-1] != length:
        wav = torch.nn.functional.pad(wav, (0, max(0, length - wav.shape[-1])))[..., :length]
    return wav


def stem_paths(out_dir: Path) -> dict[str, Path]:
    """Where a song's stems go: ``out_dir/<target>.wav``."""
    return {target: Path(out_dir) / f"{target}.wav" for target in TARGETS}


class StemWriters:
    """Four output files written block by block, each into a temporary file
    beside its destination (:class:`demix.atomic.TemporaryFile`), renamed into
    place only when all four are complete. On an error nothing is left behind
    and no earlier output is overwritten by a partial one. Opening them first
    sweeps the song's folder of the temporary files of runs that were killed."""

    def __init__(self, paths: Mapping[str, Path], sample_rate: int, channels: int, subtype: str = "FLOAT"):
        if subtype not in OUTPUT_SUBTYPES:
            raise AudioError(f"unknown output format {subtype!r}; choose one of {', '.join(OUTPUT_SUBTYPES)}")
        if set(paths) != set(TARGETS):
            raise ValueError(f"need one path per target {TARGETS}, got {sorted(paths)}")
        self.paths = {target: Path(paths[target]) for target in TARGETS}
        self._temporaries: dict[str, TemporaryFile] = {}
        self._files: dict[str, sf.SoundFile] = {}
        try:
            for folder in {path.parent for path in self.paths.values()}:
                sweep_dead_temporaries(folder)
            for target, path in self.paths.items():
                temporary = self._temporaries[target] = TemporaryFile(path)
                self._files[target] = sf.SoundFile(
                    temporary.path, "w", samplerate=sample_rate, channels=channels, subtype=subtype, format="WAV"
                )
        except (OSError, sf.LibsndfileError) as error:
            self.discard()
            raise AudioError(f"{path.parent}: cannot write output here ({error})") from None

    def write(self, stems: np.ndarray) -> None:
        """Append one block: (targets, channels, frames) in TARGETS order."""
        try:
            for index, target in enumerate(TARGETS):
                self._files[target].write(np.asarray(stems[index]).T)
        except (OSError, sf.LibsndfileError) as error:
            raise AudioError(f"{self.paths[TARGETS[0]].parent}: writing failed ({error})") from None

    def commit(self) -> dict[str, Path]:
        for handle in self._files.values():
            handle.close()
        for temporary in self._temporaries.values():
            temporary.commit()
        self._temporaries.clear()
        return dict(self.paths)

    def discard(self) -> None:
        for handle in self._files.values():
            with contextlib.suppress(Exception):
                handle.close()
        for temporary in self._temporaries.values():
            temporary.discard()
        self._temporaries.clear()
        for folder in {path.parent for path in self.paths.values()}:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when nothing else is in it


def commit_stem_files(paths: Mapping[str, Path], files: Mapping[str, bytes]) -> dict[str, Path]:
    """Put the four stem files that :class:`StemWriters` wrote elsewhere (a
    worker of a catalogue run that does not see the output folder, which
    returns them whole) at ``paths``, the way :class:`StemWriters` does: the
    folder swept of dead writers' temporary files, each file written to a
    temporary file beside its destination, all four renamed into place only
    when all are written. The bytes are the worker's files, so the samples are
    exactly what it would have written itself."""
    if set(paths) != set(TARGETS) or set(files) != set(TARGETS):
        raise ValueError(f"need one path and one file per target {TARGETS}")
    temporaries: dict[str, TemporaryFile] = {}
    folder = Path(paths[TARGETS[0]]).parent
    try:
        for parent in {Path(path).parent for path in paths.values()}:
            sweep_dead_temporaries(parent)
        for target in TARGETS:
            temporary = temporaries[target] = TemporaryFile(Path(paths[target]))
            temporary.path.write_bytes(files[target])
        for temporary in temporaries.values():
            temporary.commit()
    except OSError as error:
        raise AudioError(f"{folder}: cannot write output here ({error})") from None
    finally:
        for temporary in temporaries.values():
            temporary.discard()
    return {target: Path(paths[target]) for target in TARGETS}


def write_wav_atomically(path: Path, data: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write (frames, channels) audio to ``path`` through a temporary file
    beside it, so ``path`` is either absent or complete."""
    with atomic_path(path) as temp:
        sf.write(temp, data, sample_rate, subtype=subtype, format="WAV")
    return Path(path)


@contextlib.contextmanager
def open_stem_writers(
    paths: Mapping[str, Path], sample_rate: int, channels: int, subtype: str = "FLOAT"
) -> Iterator[StemWriters]:
    """Context manager around :class:`StemWriters`: commits on success,
    discards the temporary files on any exception."""
    writers = StemWriters(paths, sample_rate, channels, subtype)
    try:
        yield writers
    except BaseException:
        writers.discard()
        raise
    writers.commit()
