"""One worker of a catalogue run: a Ray actor that builds the ensemble once
and separates the songs the driver (:mod:`demix.cluster`) hands it, one at
a time.

It separates through :func:`demix.separate.separate_song`, the step of the
one-process ``python -m demix separate``, so its stems are the same files.
Two ways to deliver them, chosen by the driver per worker from what
:meth:`SeparationWorker.start` finds:

* the worker sees the output folder and the songs at the driver's paths (a
  shared file system, or the driver's own machine): it reads each song and
  writes its stems into ``OUT/<song>/`` itself, atomically, as the
  one-process run does;
* it does not (or ``--driver-writes``): the driver sends each song's file,
  the worker separates it into a folder of its own and returns the four stem
  files, which the driver writes (:func:`demix.audio.commit_stem_files`).

Nothing here imports Ray at module level: the module is imported in the
worker process, where Ray is running it.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs to build the ensemble the driver's run describes."""

    config: Config
    models_dir: str
    device: str
    subtype: str


@dataclass(frozen=True)
class OutputProbe:
    """What the driver can see, for a worker to check it sees the same: a
    file the driver wrote into the output folder with a random token, and
    each song's path and size."""

    marker: str
    token: str
    songs: tuple[tuple[str, int], ...]

    def seen_here(self) -> bool:
        try:
            if Path(self.marker).read_text() != self.token:
                return False
            return all(os.stat(path).st_size == size for path, size in self.songs)
        except OSError:
            return False


@dataclass(frozen=True)
class WorkerInfo:
    """A worker once its ensemble is ready."""

    node_id: str  # Ray's; the driver knows its address
    pid: int
    threads: int
    device: str
    sees_output: bool
    ready_seconds: float


@dataclass(frozen=True)
class SongJob:
    """One song for a worker: where its stems go, and its file's bytes where
    the driver writes the stems (the worker may not see the file)."""

    path: str
    out_dir: str
    data: bytes | None = None


@dataclass(frozen=True)
class SongOutcome:
    status: str  # "done" or "failed"
    seconds: float
    error: str | None
    pid: int
    #: The four stem files (target -> WAV bytes) for the driver to write; None where the worker wrote them.
    stems: dict[str, bytes] | None = None


class SeparationWorker:
    """The actor's class (the driver wraps it with ``ray.remote``). The
    ensemble is built by the first call, :meth:`start` where the driver makes
    it, or the first song after Ray restarted a lost worker's process."""

    def __init__(self, setup: WorkerSetup):
        self.setup = setup
        self._ensemble = None
        self._threads = 1

    def start(self, probe: OutputProbe) -> WorkerInfo:
        started = time.perf_counter()
        self._ready_ensemble()
        return WorkerInfo(node_id=_node_id(), pid=os.getpid(), threads=self._threads,
                          device=str(self._ensemble.device), sees_output=probe.seen_here(),
                          ready_seconds=time.perf_counter() - started)

    def separate(self, job: SongJob) -> SongOutcome:
        from .separate import separate_song

        ensemble = self._ready_ensemble()
        if job.data is None:
            result = separate_song(ensemble, Path(job.path), Path(job.out_dir), self.setup.subtype)
            return SongOutcome(result.status, result.seconds, result.error, os.getpid())
        return self._separate_sent(ensemble, job)

    def _separate_sent(self, ensemble, job: SongJob) -> SongOutcome:
        """A song whose file the driver sent: separated in a folder of the
        worker's own, the stem files returned; errors name the driver's path."""
        from .audio import stem_paths
        from .separate import separate_song

        with tempfile.TemporaryDirectory(prefix="demix-song-") as folder:
            song = Path(folder) / Path(job.path).name
            song.write_bytes(job.data)
            result = separate_song(ensemble, song, Path(folder) / "stems", self.setup.subtype)
            stems = None
            if result.status == "done":
                stems = {target: path.read_bytes() for target, path in stem_paths(result.output).items()}
        error = result.error.replace(str(song), job.path) if result.error else None
        return SongOutcome(result.status, result.seconds, error, os.getpid(), stems)

    def _ready_ensemble(self):
        """The ensemble, built once per process: threads from the CPUs Ray
        gave this actor, then :func:`demix.load.load_ensemble`'s steps
        (compile and warm-up where the config asks; the kernel cache at
        ``$DEMIX_COMPILE_CACHE``, shared by the workers that share its
        file system)."""
        if self._ensemble is None:
            import torch

            from .load import load_ensemble

            self._threads = _assigned_cpus()
            torch.set_num_threads(self._threads)
            self._ensemble = load_ensemble(self.setup.config, Path(self.setup.models_dir), self.setup.device,
                                           threads=False)
        return self._ensemble


def _assigned_cpus() -> int:
    """The CPUs Ray reserved for this actor (at least one thread)."""
    import ray

    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()
