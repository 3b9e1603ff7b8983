"""The local grader: a submission run the way AIcrowd runs it.

It goes through the graders' own interfaces, so that what passes here runs
online: for MDX 2021 the predictor class of ``predict.py`` (a subclass of
``evaluator.music_demixing.MusicDemixingPredictor``), set up and called
through that class's methods; for SDX 2023 ``my_submission/aicrowd_wrapper.py``,
which reads the mixture, calls the model and writes the stems as the
grader's copy does (16-bit WAV, where MDX 2021 leaves the format to the
submission). Only the kit's public interface is used, so the grader's own
copies of those two files can be dropped in.

The submission runs in a worker process, as on the grader: set up once
under the setup limit, then one song at a time under the per-song limit.
A song over its limit is stopped by ending the worker (nothing else can
stop a model in the middle of a tensor operation); a fresh worker is set up
for the songs after it. A song whose prediction raises is reported with
the error and the run goes on. Every output is then verified (present,
readable, the mixture's length, channels and rate, finite) and, where the
song folder holds reference stems, scored with the global SDR.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from challenge import MIXTURE_FILE
from demix import TARGETS
from demix.errors import DemixError
from evaluation.scores import global_sdr

#: Environment variables of the MDX 2021 grader, with its defaults (the SDX 2023
#: grader's limit is 1.57 × each song's duration: ``--time-factor``).
TEST_DATASET_PATH = ("TEST_DATASET_PATH", "data/test/")
RESULTS_DATASET_PATH = ("RESULTS_DATASET_PATH", "data/results/")
SETUP_TIMEOUT = ("INFERENCE_SETUP_TIMEOUT_SECONDS", 900)
PER_MUSIC_TIMEOUT = ("INFERENCE_PER_MUSIC_TIMEOUT_SECONDS", 240)
PARTIAL_RUN = "PARTIAL_RUN_MUSIC_NAMES"

#: The graders' protocols: what the graded class is in each.
PROTOCOLS = {
    "mdx21": "a subclass of evaluator.music_demixing.MusicDemixingPredictor (predict.py's DemixPredictor)",
    "sdx23": "a model class run by the kit's my_submission/aicrowd_wrapper.py (user_config.MySeparationModel)",
}


@dataclass
class SongReport:
    name: str
    duration: float
    limit: float
    seconds: float | None = None
    #: ok, timeout, error, crashed or invalid (outputs failed verification)
    status: str = "ok"
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    scores: dict[str, float] | None = None

    @property
    def score(self) -> float | None:
        return float(np.mean(list(self.scores.values()))) if self.scores else None


@dataclass
class GradeReport:
    protocol: str
    submission: str
    setup_seconds: float | None
    setup_error: str | None
    songs: list[SongReport]

    @property
    def failed(self) -> list[SongReport]:
        return [song for song in self.songs if song.status != "ok"]

    @property
    def mean_score(self) -> float | None:
        scores = [song.score for song in self.songs if song.score is not None]
        return float(np.mean(scores)) if scores else None

    @property
    def passed(self) -> bool:
        return self.setup_error is None and not self.failed

    def to_json(self) -> dict:
        data = asdict(self)
        for song_data, song in zip(data["songs"], self.songs):
            song_data["score"] = song.score
        data["mean_score"] = self.mean_score
        data["passed"] = self.passed
        return data


def env_path(setting: tuple[str, str]) -> Path:
    return Path(os.getenv(setting[0], setting[1]))


def env_seconds(setting: tuple[str, int]) -> float:
    return float(os.getenv(setting[0], setting[1]))


# ---------------------------------------------------------------- the worker


def load_class(spec: str):
    """``MODULE:CLASS`` (imported by name) or ``FILE.py:CLASS`` (loaded from that file)."""
    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise ValueError(f"{spec!r}: expected MODULE:CLASS or FILE.py:CLASS")
    module = _load_file(Path(where)) if where.endswith(".py") else importlib.import_module(where)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{where} has no {attribute!r}") from None


def _load_file(path: Path):
    """A module executed from ``path``, private to the caller (not in ``sys.modules``)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(f"_graded_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _MdxRunner:
    """MDX 2021: the predictor class (a subclass of the grader's
    ``evaluator.music_demixing.MusicDemixingPredictor``), driven through that
    class's own interface as its ``evaluation()`` drives it."""

    def __init__(self, graded: type, wrapper: Path | None, test_dir: Path, results_dir: Path):
        os.environ["TEST_DATASET_PATH"] = str(test_dir)
        os.environ["RESULTS_DATASET_PATH"] = str(results_dir)
        self.predictor = graded()
        try:
            self.predictor.prediction_setup()
        except NotImplementedError:  # the grader skips a missing setup
            pass

    def predict(self, name: str):
        locate = self.predictor.get_music_file_location
        self.predictor.prediction(mixture_file_path=locate(name),
                                  **{f"{target}_file_path": locate(name, target) for target in TARGETS})
        if not self.predictor.verify_results(name):
            raise RuntimeError("verification failed, demixed files not found.")


class _SdxRunner:
    """SDX 2023: the kit's ``aicrowd_wrapper.py`` (``wrapper``), whose
    ``AIcrowdWrapper`` reads the mixture, calls ``MySeparationModel()``'s
    ``separate_music_file`` and writes the stems. The wrapper takes no model: it
    instantiates the class its module-level name ``MySeparationModel`` holds
    (imported from ``my_submission.user_config``). It is loaded here as a private
    copy, so when another class is graded only that copy's name is pointed at it."""

    def __init__(self, graded: type, wrapper: Path | None, test_dir: Path, results_dir: Path):
        if wrapper is None:
            raise ValueError("the sdx23 protocol needs the kit's aicrowd_wrapper.py to run the model through")
        module = _load_file(Path(wrapper))
        module.MySeparationModel = graded
        # the wrapper prefers these variables to its arguments; here the local grader's folders count
        os.environ.pop("AICROWD_PUBLIC_SHARED_DIR", None)
        os.environ["AICROWD_DATASET_DIR"] = str(test_dir)
        self.wrapper = module.AIcrowdWrapper(dataset_dir=str(test_dir), predictions_dir=str(results_dir))

    def predict(self, name: str):
        self.wrapper.separate_music_file(name)


_RUNNERS = {"mdx21": _MdxRunner, "sdx23": _SdxRunner}


def _worker(protocol: str, spec: str, wrapper: str | None, test_dir: str, results_dir: str, connection) -> None:
    try:
        runner = _RUNNERS[protocol](load_class(spec), Path(wrapper) if wrapper else None,
                                    Path(test_dir), Path(results_dir))
    except BaseException as error:  # reported to the parent, which decides
        connection.send(("setup-failed", _describe(error)))
        return
    connection.send(("ready", None))
    while True:
        name = connection.recv()
        if name is None:
            return
        try:
            runner.predict(name)
            connection.send(("ok", None))
        except BaseException as error:
            connection.send(("error", _describe(error)))


def _describe(error: BaseException) -> str:
    if isinstance(error, DemixError):  # a message written for the user: no traceback
        return f"{type(error).__name__}: {error}"
    return "".join(traceback.format_exception_only(type(error), error)).strip() + \
        "\n" + "".join(traceback.format_tb(error.__traceback__)[-3:])


class _Worker:
    """One submission process: started, set up, then fed songs."""

    def __init__(self, protocol: str, spec: str, wrapper: Path | None, test_dir: Path, results_dir: Path,
                 setup_limit: float):
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_worker,
                                       args=(protocol, spec, str(wrapper) if wrapper else None, str(test_dir),
                                             str(results_dir), child_end),
                                       daemon=True)
        started = time.perf_counter()
        self.process.start()
        child_end.close()
        message = self._receive(setup_limit)
        self.setup_seconds = time.perf_counter() - started
        if message is None:
            self.stop()
            raise SetupFailed(f"setup took longer than its limit of {setup_limit:.0f} s")
        if message[0] != "ready":
            self.stop()
            raise SetupFailed(message[1] or "the submission process ended during setup")

    def _receive(self, limit: float):
        """The next message, ("crashed", ...) if the process died, None on timeout."""
        try:
            if not self.connection.poll(limit):
                return None
            return self.connection.recv()
        except (EOFError, ConnectionError):
            self.process.join(5)
            return ("crashed", f"the submission process died (exit code {self.process.exitcode})")

    def predict(self, name: str, limit: float):
        self.connection.send(name)
        return self._receive(limit)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.connection.close()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(30)
        self.stop()


class SetupFailed(Exception):
    pass


# ---------------------------------------------------------------- grading


def song_names(test_dir: Path) -> list[str]:
    """The song folders the graders run: every folder of ``test_dir`` (sorted),
    limited by ``PARTIAL_RUN_MUSIC_NAMES`` as the MDX 2021 grader reads it
    (split at commas, nothing stripped)."""
    wanted = os.getenv(PARTIAL_RUN)
    return sorted(entry.name for entry in Path(test_dir).iterdir()
                  if entry.is_dir() and (not wanted or entry.name in wanted.split(",")))


def song_duration(song_dir: Path) -> float:
    info = sf.info(song_dir / MIXTURE_FILE)
    return info.frames / info.samplerate


def grade(
    protocol: str,
    test_dir: Path,
    names: list[str],
    results_dir: Path,
    setup_limit: float,
    per_song_limit: float | None,
    submission: str,
    wrapper: Path | None = None,
    time_factor: float | None = None,
    log=print,
) -> GradeReport:
    """Run the class ``submission`` names (``MODULE:CLASS`` or ``FILE.py:CLASS``,
    loaded in the worker; see :data:`PROTOCOLS`) over the songs ``names`` of
    ``test_dir``; for ``sdx23`` through the kit's ``wrapper`` file. The per-song
    limit is ``time_factor`` × duration when given, else ``per_song_limit``."""
    spec = submission
    song_dirs = [Path(test_dir) / name for name in names]
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    songs = []
    for song_dir in song_dirs:
        duration = song_duration(song_dir)
        limit = time_factor * duration if time_factor else per_song_limit
        songs.append(SongReport(song_dir.name, duration, limit))
    result = GradeReport(protocol, spec, None, None, songs)
    worker = None
    try:
        for song, song_dir in zip(songs, song_dirs):
            if worker is None:
                try:
                    worker = _Worker(protocol, spec, wrapper, test_dir, results_dir, setup_limit)
                except SetupFailed as error:
                    result.setup_error = str(error)
                    log(f"setup failed: {error}")
                    for later in songs[songs.index(song):]:
                        later.status, later.error = "error", "not run: setup failed"
                    break
                if result.setup_seconds is None:
                    result.setup_seconds = worker.setup_seconds
            _clear_outputs(results_dir / song.name)
            started = time.perf_counter()
            message = worker.predict(song.name, song.limit)
            song.seconds = time.perf_counter() - started
            if message is None:
                worker.stop()
                worker = None
                song.status, song.error = "timeout", f"stopped after its limit of {song.limit:.1f} s"
            elif message[0] != "ok":
                song.status, song.error = ("crashed" if message[0] == "crashed" else "error"), message[1]
                if message[0] == "crashed":
                    worker = None
            if song.status == "ok":
                song.problems = verify_outputs(song_dir, results_dir / song.name)
                if song.problems:
                    song.status = "invalid"
                else:
                    song.scores = score_song(song_dir, results_dir / song.name)
            log(_song_line(song))
    finally:
        if worker is not None:
            worker.close()
    return result


def _clear_outputs(folder: Path) -> None:
    """Outputs of an earlier run must not pass for this run's."""
    for target in TARGETS:
        (folder / f"{target}.wav").unlink(missing_ok=True)


def verify_outputs(song_dir: Path, output_dir: Path) -> list[str]:
    """What the grader would reject: each stem present, readable, with the
    mixture's length, channel count and sample rate, and finite."""
    mixture = sf.info(song_dir / MIXTURE_FILE)
    problems = []
    for target in TARGETS:
        path = output_dir / f"{target}.wav"
        if not path.is_file():
            problems.append(f"{target}.wav missing")
            continue
        try:
            data, rate = sf.read(path, dtype="float32", always_2d=True)
        except Exception as error:
            problems.append(f"{target}.wav unreadable ({error})")
            continue
        if len(data) != mixture.frames:
            problems.append(f"{target}.wav has {len(data)} samples, the mixture {mixture.frames}")
        if data.shape[1] != mixture.channels:
            problems.append(f"{target}.wav has {data.shape[1]} channels, the mixture {mixture.channels}")
        if rate != mixture.samplerate:
            problems.append(f"{target}.wav is at {rate} Hz, the mixture at {mixture.samplerate} Hz")
        if not np.isfinite(data).all():
            problems.append(f"{target}.wav contains NaN or infinite samples")
    return problems


def score_song(song_dir: Path, output_dir: Path) -> dict[str, float] | None:
    """Global SDR per target where the song folder has all reference stems."""
    if not all((song_dir / f"{target}.wav").is_file() for target in TARGETS):
        return None
    scores = {}
    for target in TARGETS:
        reference, _ = sf.read(song_dir / f"{target}.wav", dtype="float32", always_2d=True)
        estimate, _ = sf.read(output_dir / f"{target}.wav", dtype="float32", always_2d=True)
        scores[target] = global_sdr(reference, estimate)
    return scores


def _song_line(song: SongReport) -> str:
    took = f"{song.seconds:.1f}" if song.seconds is not None else "-"
    return f"{song.name}: {song.status} in {took} s of {song.limit:.1f} s" + (
        f", SDR {song.score:.2f} dB" if song.score is not None else "")


def format_table(result: GradeReport) -> str:
    """The per-song table: time against limit, verification, scores."""
    width = max([len("song")] + [len(song.name) for song in result.songs])
    header = f"{'song':<{width}}  {'time / limit (s)':>16}  {'result':<8}" + "".join(
        f"{target:>8}" for target in TARGETS) + f"{'mean':>8}"
    lines = [f"protocol {result.protocol} ({result.submission}); setup "
             + (f"{result.setup_seconds:.1f} s" if result.setup_seconds is not None else "failed"),
             header, "-" * len(header)]
    for song in result.songs:
        took = f"{song.seconds:.1f}" if song.seconds is not None else "-"
        scores = "".join(f"{song.scores[t]:8.2f}" if song.scores else f"{'-':>8}" for t in TARGETS)
        mean = f"{song.score:8.2f}" if song.score is not None else f"{'-':>8}"
        lines.append(f"{song.name:<{width}}  {took + ' / ' + format(song.limit, '.1f'):>16}  {song.status:<8}"
                     + scores + mean)
        for problem in song.problems + ([song.error.splitlines()[0]] if song.error else []):
            lines.append(f"{'':<{width}}    {problem}")
    lines.append("-" * len(header))
    mean = f"{result.mean_score:.2f} dB" if result.mean_score is not None else "-"
    lines.append(f"mean global SDR over scored songs: {mean}; "
                 f"{len(result.songs) - len(result.failed)} of {len(result.songs)} songs ok")
    if result.setup_error:
        lines.append(f"setup failed: {result.setup_error.splitlines()[0]}")
    return "\n".join(lines)
