"""The MDX 2021 grader's predictor protocol, with the grader's own names.

The AIcrowd grader imports the participant's ``predict.py``, which
subclasses :class:`MusicDemixingPredictor`, and calls ``run()``: setup once
(``prediction_setup``), then ``prediction(...)`` once per song, always with
keyword arguments, under the time limits below. An extra positional
parameter in ``prediction`` broke a public baseline online, so the signature
here is the grader's exactly.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

from demix import TARGETS

#: Environment variables the grader sets, with its defaults.
TEST_DATASET_PATH = ("TEST_DATASET_PATH", "data/test/")
RESULTS_DATASET_PATH = ("RESULTS_DATASET_PATH", "data/results/")
SETUP_TIMEOUT = ("INFERENCE_SETUP_TIMEOUT_SECONDS", 900)
PER_MUSIC_TIMEOUT = ("INFERENCE_PER_MUSIC_TIMEOUT_SECONDS", 240)
PARTIAL_RUN = "PARTIAL_RUN_MUSIC_NAMES"
MIXTURE_FILE = "mixture.wav"


def env_path(setting: tuple[str, str]) -> Path:
    return Path(os.getenv(setting[0], setting[1]))


def env_seconds(setting: tuple[str, int]) -> float:
    return float(os.getenv(setting[0], setting[1]))


def music_names(test_data_path: Path) -> list[str]:
    """Song folders holding a mixture, limited by PARTIAL_RUN_MUSIC_NAMES."""
    wanted = os.getenv(PARTIAL_RUN)
    wanted_names = {name.strip() for name in wanted.split(",") if name.strip()} if wanted else None
    names = sorted(
        entry.name for entry in Path(test_data_path).iterdir()
        if entry.is_dir() and (entry / MIXTURE_FILE).is_file()
    )
    return [name for name in names if wanted_names is None or name in wanted_names]


@contextmanager
def time_limit(seconds: float, what: str):
    """Raise TimeoutError in the main thread after ``seconds`` (as the grader does)."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class MusicDemixingPredictor:
    """Base class of an MDX 2021 submission (``predict.py``)."""

    def __init__(self):
        self.test_data_path = env_path(TEST_DATASET_PATH)
        self.results_data_path = env_path(RESULTS_DATASET_PATH)
        self.inference_setup_timeout = env_seconds(SETUP_TIMEOUT)
        self.inference_per_music_timeout = env_seconds(PER_MUSIC_TIMEOUT)

    def prediction_setup(self):
        """Load models once. May be left as it is."""

    def prediction(self, mixture_file_path, bass_file_path, drums_file_path, other_file_path, vocals_file_path):
        """Read ``mixture_file_path``, write the four stems to the given paths."""
        raise NotImplementedError

    def get_all_music_names(self) -> list[str]:
        return music_names(self.test_data_path)

    def get_music_file_location(self, music_name: str, instrument: str | None = None) -> Path:
        """The mixture's path (instrument None), or where a stem must be written."""
        if instrument is None:
            return self.test_data_path / music_name / MIXTURE_FILE
        folder = self.results_data_path / music_name
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{instrument}.wav"

    def prediction_arguments(self, music_name: str) -> dict[str, str]:
        """The keyword arguments the grader passes for one song."""
        arguments = {"mixture_file_path": str(self.get_music_file_location(music_name))}
        for target in TARGETS:
            arguments[f"{target}_file_path"] = str(self.get_music_file_location(music_name, target))
        return arguments

    def run(self):
        """What the grader does: setup, then every song, each under its limit."""
        with time_limit(self.inference_setup_timeout, "prediction_setup"):
            self.prediction_setup()
        names = self.get_all_music_names()
        for index, name in enumerate(names, 1):
            started = time.perf_counter()
            with time_limit(self.inference_per_music_timeout, f"prediction of {name!r}"):
                self.prediction(**self.prediction_arguments(name))
            print(f"[{index}/{len(names)}] {name}: {time.perf_counter() - started:.1f} s", flush=True)
