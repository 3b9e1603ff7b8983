"""Files in, stems on disk out: the loop a user runs over many songs.

Each song is streamed at whatever its sample rate: read block by block,
resampled to the engine's rate as the ensemble reads it, and the stems
resampled back and written as each block is finished
(:func:`stream_stems`), so memory depends on the block length, not on the
song's. Each song is independent: a song that cannot be read or written is
reported with its file name and the run goes on. Outputs are written
atomically, so a song whose four stems exist is complete and a run started
again skips it (resume) unless asked to overwrite.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import tqdm

from . import SAMPLE_RATE, TARGETS
from .audio import Audio, AudioFile, open_audio, open_stem_writers, song_name, stem_paths
from .ensemble import Ensemble
from .errors import DemixError
from .stream import BlockResampler, EngineMix, song_statistics


@dataclass
class SongResult:
    input: Path
    output: Path
    status: str  # "done", "skipped" or "failed" ("todo" before it is run: :func:`triage`)
    seconds: float = 0.0
    error: str | None = None


def stream_stems(ensemble: Ensemble, source: Audio | AudioFile, progress: str | None = None) -> Iterator[np.ndarray]:
    """The stems of ``source`` as (targets, channels, n) float32 pieces, in
    order, at its rate and channel count: exactly ``source.frames`` in all."""
    statistics = song_statistics(source) if ensemble.needs_song_statistics else None
    return to_source(ensemble.separate_blocks(EngineMix(source), progress, statistics), source)


def to_source(blocks: Iterable[torch.Tensor], source: Audio | AudioFile) -> Iterator[np.ndarray]:
    """Engine-rate stereo pieces (targets, 2, n) of ``source``'s stems, as
    :meth:`Ensemble.separate_blocks` yields them, brought to ``source``'s
    rate and channel count (mono: the mean of the two channels)."""
    back = BlockResampler(SAMPLE_RATE, source.sample_rate, source.frames)
    for block in blocks:
        if source.channels == 1:
            block = block.mean(dim=1, keepdim=True)
        piece = back.feed(block)
        if piece.shape[-1]:
            yield piece.numpy()
    rest = back.finish()
    if rest.shape[-1]:
        yield rest.numpy()


def separate_audio(ensemble: Ensemble, audio: Audio, progress: str | None = None) -> np.ndarray:
    """In memory: (targets, channels, frames) at ``audio``'s rate and length.
    Streamed as a file is, so the only whole-song arrays are ``audio`` and the result."""
    return collect(stream_stems(ensemble, audio, progress), audio)


def collect(pieces: Iterable[np.ndarray], audio: Audio | AudioFile) -> np.ndarray:
    """The pieces of :func:`stream_stems` or :func:`to_source` in one
    (targets, channels, frames) array."""
    stems = np.empty((len(TARGETS), audio.channels, audio.frames), dtype=np.float32)
    position = 0
    for piece in pieces:
        stems[..., position:position + piece.shape[-1]] = piece
        position += piece.shape[-1]
    return stems


def separate_file(
    ensemble: Ensemble, path: Path, destinations: Mapping[str, Path], subtype: str = "FLOAT",
    progress: str | None = None,
) -> dict[str, Path]:
    """Separate one file into ``destinations[target]`` (see
    :func:`demix.audio.stem_paths`), each written atomically, block by block."""
    source = open_audio(path)
    with open_stem_writers(destinations, source.sample_rate, source.channels, subtype) as writers:
        for piece in stream_stems(ensemble, source, progress):
            writers.write(piece)
    return writers.paths


def triage(path: Path, out_root: Path, seen: dict[str, Path], overwrite: bool = False) -> SongResult:
    """What a run does with one song, before any separating: ``"todo"`` (its
    stems go to ``out_root/<song>/``), ``"skipped"`` (its four stems exist and
    ``overwrite`` is off) or ``"failed"`` (another song of the run, noted in
    ``seen``, has the same name: their stems would collide). One rule for
    :func:`separate_files` and for a catalogue run (:mod:`demix.cluster`)."""
    path = Path(path)
    name = song_name(path)
    result = SongResult(path, Path(out_root) / name, "todo")
    if name in seen:
        result.status = "failed"
        result.error = f"{path}: same song name {name!r} as {seen[name]}; their stems would collide"
        return result
    seen[name] = path
    if not overwrite and all(stem.is_file() for stem in stem_paths(result.output).values()):
        result.status = "skipped"
    return result


def skipped_message(result: SongResult) -> str:
    return f"{result.input}: stems already in {result.output}, skipped (--overwrite to redo)"


def separate_song(
    ensemble: Ensemble, path: Path, out_dir: Path, subtype: str = "FLOAT", progress: str | None = None,
) -> SongResult:
    """Separate one song into ``out_dir/<target>.wav``; a problem with this
    song is kept in the result (status ``"failed"``, the error naming the
    file) instead of raised, so that a loop over many songs goes on. The one
    step :func:`separate_files` and every worker of a catalogue run
    (:mod:`demix.cluster_worker`) take, so both write the same stems."""
    path = Path(path)
    result = SongResult(path, Path(out_dir), "done")
    started = time.perf_counter()
    try:
        separate_file(ensemble, path, stem_paths(out_dir), subtype, progress=progress)
    except DemixError as error:
        result.status, result.error = "failed", str(error)
    except (RuntimeError, ValueError, MemoryError, OSError) as error:
        # Not expected: keep the run going, but keep the trace for a bug report.
        result.status = "failed"
        result.error = f"{path}: separation failed ({type(error).__name__}: {error})\n{traceback.format_exc()}"
    result.seconds = time.perf_counter() - started
    return result


def separate_files(
    ensemble: Ensemble,
    paths: Sequence[Path],
    out_root: Path,
    overwrite: bool = False,
    subtype: str = "FLOAT",
    log: Callable[[str], None] = tqdm.tqdm.write,
    progress: bool = True,
) -> list[SongResult]:
    """Separate each file into ``out_root/<song>/<target>.wav``."""
    results = []
    seen: dict[str, Path] = {}
    bar = tqdm.tqdm(paths, desc="songs", unit="song", disable=not progress)
    for path in bar:
        result = triage(path, out_root, seen, overwrite)
        if result.status == "skipped":
            log(skipped_message(result))
        elif result.status == "todo":
            result = separate_song(ensemble, result.input, result.output, subtype,
                                   progress=result.output.name if progress else None)
            if result.status == "done":
                log(f"{result.input}: stems written to {result.output}")
        if result.error:
            tqdm.tqdm.write(f"error: {result.error}", file=sys.stderr)
        results.append(result)
    return results
