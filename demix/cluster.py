"""A catalogue over several processes or machines:
``python -m demix separate SONG... -o OUT --ray ADDRESS|auto`` (a Ray
cluster) or ``--workers N`` (N processes on this machine, through a Ray
instance of its own: the same code).

This is the driver. It decides what each song needs as the one-process run
does (:func:`demix.separate.triage`: songs whose stems exist are skipped, so
a driver killed and started again does only what is left), starts the
workers (:mod:`demix.cluster_sizing` says how many and what each asks for;
:class:`demix.cluster_worker.SeparationWorker` builds the ensemble once per
process), and hands each free worker the next song. A worker lost mid-song
(its process killed, out of memory, its node gone) is restarted by Ray and
its song goes back to the queue for another worker, up to ``retries`` times
(:mod:`demix.song_queue`); a song that fails in a live worker is reported
with its error and the others go on.

Imported only for those options: ``python -m demix separate`` without them
never imports Ray.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import tqdm

from .atomic import write_bytes_atomically
from .audio import commit_stem_files, stem_paths
from .catalogue_progress import CatalogueBar, WorkerTally, workers_line
from .cluster_sizing import nodes_from_ray, plan_workers
from .cluster_worker import OutputProbe, SeparationWorker, SongJob, SongOutcome, WorkerInfo, WorkerSetup
from .compute import available_cpus
from .config import Config
from .errors import AudioError, DemixError, first_line
from .paths import PROJECT_ROOT
from .separate import SongResult, skipped_message, triage
from .song_queue import QueuedSong, SongQueue

#: Variables the workers get from the driver's environment where it sets them
#: (the kernel cache, shared by the workers that share its file system).
FORWARDED_VARIABLES = ("DEMIX_COMPILE_CACHE", "DEMIX_MODELS", "DEMIX_ALLOW_EMULATED_BF16")
#: The file the driver writes into OUT for the workers to look for (removed at the end).
PROBE_NAME = ".demix-workers-probe"
#: Songs waiting while no worker separates anything for this long are given up
#: (no worker can start: resources gone, a restart that never comes). Covers a cold compile.
STALL_SECONDS = 1800.0


@dataclass(frozen=True)
class ClusterOptions:
    address: str | None  # a Ray cluster's address or "auto"; None: a Ray instance of this process's own
    workers: int | None  # None: one per GPU, else one per node (demix.cluster_sizing)
    retries: int = 2
    driver_writes: bool = False
    device: str = "auto"
    subtype: str = "FLOAT"
    overwrite: bool = False
    progress: bool = False
    stall_seconds: float = STALL_SECONDS


def separate_on_cluster(config: Config, models_dir: Path, songs: Sequence[Path], out_root: Path,
                        options: ClusterOptions, log: Callable[[str], None] = tqdm.tqdm.write) -> list[SongResult]:
    """Separate ``songs`` into ``out_root/<song>/`` on the workers; one
    result per song, in order, as :func:`demix.separate.separate_files` gives."""
    seen: dict[str, Path] = {}
    results = [triage(Path(song), Path(out_root), seen, options.overwrite) for song in songs]
    for result in results:
        if result.status == "skipped":
            log(skipped_message(result))
        elif result.status == "failed":
            _report_error(result.error)
    todo = [index for index, result in enumerate(results) if result.status == "todo"]
    if not todo:
        log("nothing to separate: no worker started")
        return results
    ray = _connect(options)
    probe_file = Path(out_root).absolute() / PROBE_NAME
    try:
        probe = _write_probe(probe_file, [results[index] for index in todo])
        setup = WorkerSetup(config, str(Path(models_dir).absolute()), options.device, options.subtype)
        _CatalogueRun(ray, setup, probe, results, todo, options, log).run()
    finally:
        probe_file.unlink(missing_ok=True)
        ray.shutdown()
    return results


def worker_environment() -> dict[str, str]:
    """The workers' environment variables: the project importable (as
    ``python -m evaluation run --ray`` does), and :data:`FORWARDED_VARIABLES`."""
    variables = {"PYTHONPATH": str(PROJECT_ROOT)}
    variables.update({name: os.environ[name] for name in FORWARDED_VARIABLES if os.environ.get(name)})
    return variables


def _connect(options: ClusterOptions):
    import ray

    settings = dict(runtime_env={"env_vars": worker_environment()}, log_to_driver=False,
                    logging_level=logging.WARNING)
    try:
        if options.address:
            ray.init(address=options.address, **settings)
        else:  # this machine: as many CPUs as workers asked for, each worker one at least
            _token_of_its_own()
            ray.init(address="local", num_cpus=max(available_cpus(), options.workers or 1),
                     include_dashboard=False, **settings)
    except ConnectionError as error:
        raise DemixError(f"--ray {options.address}: no Ray cluster answers there ({first_line(error)}); "
                         "start one with `ray start --head` (docs/separating.md)") from None
    return ray


def _token_of_its_own() -> None:
    """A Ray instance of this command's own authenticates with a token of its own,
    in this process's environment (its Ray processes inherit it). Left to itself,
    ``ray.init()`` writes one to ``~/.ray/auth_token``, and from then on every
    ``ray start --head`` on this machine turns token authentication on, which the
    other nodes of a cluster started as docs/separating.md shows then lack."""
    if not any(os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def _write_probe(path: Path, todo: list[SongResult]) -> OutputProbe:
    token = secrets.token_hex(16)
    try:
        write_bytes_atomically(path, token.encode())
    except OSError as error:
        raise AudioError(f"{path.parent}: cannot write output here ({error})") from None
    songs = []
    for result in todo:
        try:
            songs.append((str(result.input.absolute()), result.input.stat().st_size))
        except OSError:
            pass  # it fails when its turn comes, naming the file
    return OutputProbe(str(path), token, tuple(songs))


def _report_error(error: str) -> None:
    tqdm.tqdm.write(f"error: {error}", file=sys.stderr)


def lost_reason(error: BaseException) -> str:
    """Ray's message for a lost worker: its first line and, where it says why, its last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


@dataclass
class _Worker:
    index: int
    handle: object
    tally: WorkerTally
    info: WorkerInfo | None = None
    sends_data: bool = False  # the driver sends songs and writes the stems
    losses_in_a_row: int = 0
    start_error: BaseException | None = None
    gone: bool = False
    busy: bool = False
    wrote: set[str] = field(default_factory=set)  # who wrote its stems: "worker", "driver"


class _CatalogueRun:
    """One run's dispatch: starts, songs, losses, until every song is settled."""

    def __init__(self, ray, setup: WorkerSetup, probe: OutputProbe, results: list[SongResult], todo: list[int],
                 options: ClusterOptions, log: Callable[[str], None]):
        from ray.exceptions import (LocalRayletDiedError, NodeDiedError, ObjectLostError, OutOfMemoryError,
                                    RayActorError, RayTaskError, WorkerCrashedError)

        self.ray, self.setup, self.probe, self.results, self.options, self.log = ray, setup, probe, results, options, log
        self.lost_errors = (RayActorError, WorkerCrashedError, NodeDiedError, OutOfMemoryError, ObjectLostError,
                            LocalRayletDiedError)
        self.task_error = RayTaskError
        self.queue = SongQueue([QueuedSong(index, results[index].input.absolute(), results[index].output.absolute())
                                for index in todo], options.retries)
        self.bar = CatalogueBar(len(results), len(results) - len(todo), options.progress)
        self.in_flight: dict[object, tuple[_Worker, QueuedSong | None]] = {}
        self.workers: list[_Worker] = []
        self.last_activity = time.monotonic()
        self.why_given_up: str | None = None  # set where songs waited too long for a worker

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        try:
            self._start_workers()
            while self.in_flight and (len(self.queue) or self._songs_in_flight()):
                ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=5.0)
                if ready:
                    self._settle(ready[0])
                elif self._stalled():
                    break
            self._give_up_waiting_songs()
        finally:
            self.bar.close()
            for worker in self.workers:
                self.ray.kill(worker.handle)
        self.log(workers_line([worker.tally for worker in self.workers]))
        self.log(self._who_wrote())

    def _node_address(self, node_id: str) -> str:
        """The address of the node a worker runs on, from the cluster's list of nodes."""
        for node in nodes_from_ray(self.ray.nodes()):
            if node.node_id == node_id:
                return node.address
        return f"node {node_id[:8]}"

    def _start_workers(self) -> None:
        nodes = nodes_from_ray(self.ray.nodes())
        use_gpus = self.options.device != "cpu"
        if self.options.device == "cuda" and not any(node.gpus for node in nodes):
            raise DemixError("--device cuda: the Ray cluster has no GPU")
        places = plan_workers(nodes, self.options.workers, use_gpus)
        if not places:
            raise DemixError("the Ray cluster has no CPU or GPU to start a worker on")
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote_class = self.ray.remote(SeparationWorker)
        for index, place in enumerate(places, 1):
            strategy = NodeAffinitySchedulingStrategy(place.node_id, soft=False) if place.node_id else "SPREAD"
            # Ray restarts a lost worker's process (max_restarts=-1); its song is not re-run by
            # Ray (max_task_retries=0) but goes back to the queue here, counted against --retries.
            handle = remote_class.options(num_cpus=place.cpus, num_gpus=place.gpus, max_restarts=-1,
                                          max_task_retries=0, scheduling_strategy=strategy).remote(self.setup)
            worker = _Worker(index, handle, WorkerTally(f"worker {index}"))
            self.workers.append(worker)
            self._send_start(worker)
        self.log(f"starting {len(places)} worker{'s' if len(places) > 1 else ''} "
                 f"({', '.join(f'{p.cpus} CPU' + (f' + {p.gpus:g} GPU' if p.gpus else '') for p in places)}); "
                 "each builds the ensemble once")

    def _send_start(self, worker: _Worker) -> None:
        self.in_flight[worker.handle.start.remote(self.probe)] = (worker, None)

    def _settle(self, ref) -> None:
        worker, song = self.in_flight.pop(ref)
        self.last_activity = time.monotonic()
        try:
            value = self.ray.get(ref)
        except self.lost_errors as error:
            self._lost(worker, song, error)
        except self.task_error as error:
            if song is None:
                self._could_not_start(worker, error)
            else:  # not a song's own problem (those come back as outcomes): a bug, kept whole
                self._song_settled(worker, song, SongOutcome("failed", 0.0, f"{song.path}: {error}", 0))
        else:
            if song is None:
                self._started(worker, value)
            else:
                self._song_settled(worker, song, value)
        self._feed_idle_workers()

    def _songs_in_flight(self) -> bool:
        return any(song is not None for _, song in self.in_flight.values())

    def _stalled(self) -> bool:
        """No song is being separated and none has been for ``stall_seconds``."""
        if self._songs_in_flight() or time.monotonic() - self.last_activity < self.options.stall_seconds:
            return False
        self.why_given_up = (f"no worker could take it for {self.options.stall_seconds:.0f} s "
                             f"(the cluster's free resources: {self.ray.available_resources()})")
        return True

    # ------------------------------------------------------------ workers

    def _started(self, worker: _Worker, info: WorkerInfo) -> None:
        restarted = worker.info is not None
        worker.info = info
        worker.sends_data = self.options.driver_writes or not info.sees_output
        node = self._node_address(info.node_id)
        worker.tally.where = f"{node}, {info.threads} thread{'s' if info.threads > 1 else ''}, {info.device}"
        if self.options.driver_writes:
            how = "returns its stems to this driver, which writes them (--driver-writes)"
        elif worker.sends_data:
            how = ("returns its stems to this driver, which writes them (it does not see OUT and the songs "
                   "at this driver's paths)")
        else:
            how = "writes its stems into OUT itself (it sees OUT and the songs at this driver's paths)"
        self.log(f"{worker.tally.name} {'restarted' if restarted else 'ready'} on {node} (pid {info.pid}, "
                 f"{info.threads} CPU thread{'s' if info.threads > 1 else ''}, {info.device}) in "
                 f"{info.ready_seconds:.1f} s; {how}")
        self._give_song(worker)

    def _could_not_start(self, worker: _Worker, error: BaseException) -> None:
        worker.gone, worker.start_error = True, error
        cause = getattr(error, "cause", None)
        if isinstance(cause, DemixError) and all(w.gone for w in self.workers) and not any(w.info for w in self.workers):
            raise cause  # no worker could start, before any song: said as the one-process run says it
        reason = str(cause) if isinstance(cause, DemixError) else first_line(error)
        self.log(f"{worker.tally.name} could not build the ensemble: {reason}")

    def _lost(self, worker: _Worker, song: QueuedSong | None, error: BaseException) -> None:
        """The worker's process died: Ray restarts it; its song goes back to the queue."""
        worker.busy = False
        worker.losses_in_a_row += 1
        reason = lost_reason(error)
        if song is not None:
            worker.tally.lost += 1
            result = self.results[song.index]
            if self.queue.lost(song, worker.index):
                self.log(f"{worker.tally.name} was lost while separating {result.input} ({reason}); "
                         f"the song goes to the next free worker (try {song.tries + 1} of {self.queue.retries + 1})")
            else:
                self._fail(result, f"{result.input}: its worker was lost each of the {song.tries} times it was "
                                   f"tried (--retries {self.queue.retries}); the last time: {reason}")
                worker.tally.failed += 1
        else:
            self.log(f"{worker.tally.name} was lost while building the ensemble ({reason})")
        if worker.losses_in_a_row > self.queue.retries + 1:
            worker.gone = True
            self.log(f"{worker.tally.name} given up: lost {worker.losses_in_a_row} times without finishing a song")
            self.ray.kill(worker.handle)
        else:
            self._send_start(worker)  # answered once Ray has restarted the process

    # ------------------------------------------------------------ songs

    def _feed_idle_workers(self) -> None:
        for worker in self.workers:
            if worker.info is not None and not worker.gone and not worker.busy and len(self.queue):
                if not any(w is worker for w, _ in self.in_flight.values()):
                    self._give_song(worker)

    def _give_song(self, worker: _Worker) -> None:
        while True:
            song = self.queue.next_for(worker.index)
            if song is None:
                return
            data = None
            if worker.sends_data:
                try:
                    data = song.path.read_bytes()
                except OSError as error:  # as the one-process run words it, where it can
                    result = self.results[song.index]
                    problem = "no such file" if isinstance(error, FileNotFoundError) else f"cannot be read ({error})"
                    self._fail(result, f"{result.input}: {problem}")
                    continue
            job = SongJob(str(song.path), str(song.out_dir), data)
            self.in_flight[worker.handle.separate.remote(job)] = (worker, song)
            worker.busy = True
            return

    def _song_settled(self, worker: _Worker, song: QueuedSong, outcome: SongOutcome) -> None:
        worker.busy = False
        worker.losses_in_a_row = 0
        result = self.results[song.index]
        result.seconds = outcome.seconds
        if outcome.status == "done" and outcome.stems is not None:
            try:
                commit_stem_files(stem_paths(result.output), outcome.stems)
                worker.wrote.add("driver")
            except AudioError as error:
                outcome = SongOutcome("failed", outcome.seconds, str(error), outcome.pid)
        elif outcome.status == "done":
            worker.wrote.add("worker")
        if outcome.status == "done":
            result.status = "done"
            worker.tally.done += 1
            self.log(f"{result.input}: stems written to {result.output} ({worker.tally.name}, {outcome.seconds:.1f} s)")
            self.bar.song_finished()
        else:
            worker.tally.failed += 1
            self._fail(result, (outcome.error or "failed").replace(str(song.path), str(result.input)))

    def _fail(self, result: SongResult, error: str) -> None:
        result.status, result.error = "failed", error
        _report_error(error)
        self.bar.song_finished()

    def _give_up_waiting_songs(self) -> None:
        waiting = self.queue.drain()
        if not waiting:
            return
        reason = self.why_given_up or "no worker is left to separate it"
        starts = [w for w in self.workers if w.start_error is not None]
        if starts:
            reason += f" (a worker could not start: {first_line(starts[0].start_error)})"
        for song in waiting:
            result = self.results[song.index]
            self._fail(result, f"{result.input}: {reason}")

    def _who_wrote(self) -> str:
        by_workers = [w.tally.name for w in self.workers if "worker" in w.wrote]
        for_driver = [w.tally.name for w in self.workers if "driver" in w.wrote]
        parts = []
        if by_workers:
            parts.append(f"written by the workers themselves into the shared OUT ({', '.join(by_workers)})")
        if for_driver:
            parts.append(f"returned to this driver, which wrote them ({', '.join(for_driver)})")
        return "stems: " + ("; ".join(parts) if parts else "none written")
