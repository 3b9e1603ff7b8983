"""The MDX 2021 grading loop: the base class ``predict.py`` subclasses.

Same names, signatures, variables and behaviour as the starter kit's
``evaluator/music_demixing.py``, which replaces this file on the grader:

- ``TEST_DATASET_PATH`` (default ``./data/test/``): one folder per song with
  ``mixture.wav``; ``RESULTS_DATASET_PATH`` (default ``./data/results/``):
  ``<song>/<instrument>.wav`` is written there; ``PARTIAL_RUN_MUSIC_NAMES``:
  comma-separated song folders to run (exactly as split by the grader: no
  spaces after the commas);
- ``INFERENCE_SETUP_TIMEOUT_SECONDS`` (900) bounds ``prediction_setup``,
  ``INFERENCE_PER_MUSIC_TIMEOUT_SECONDS`` (240) each ``prediction``, through
  ``SIGALRM`` in whole seconds;
- ``prediction`` is always called with keyword arguments;
- ``run()`` reports to the grading infrastructure (``aicrowd_helpers``): the
  start, the end of setup, then success (after every song's four files
  exist) or the error's traceback. The error is re-raised only outside
  grading; on the grader the process then ends normally.
"""

import os
import signal
import traceback
from contextlib import contextmanager

import numpy as np
import soundfile as sf

from evaluator import aicrowd_helpers

INSTRUMENTS = ["bass", "drums", "other", "vocals"]


class TimeoutException(Exception):
    pass


@contextmanager
def time_limit(seconds):
    """Raise :class:`TimeoutException` in the main thread after ``seconds`` (an int)."""

    def on_alarm(signum, frame):
        raise TimeoutException("Prediction timed out!")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


def global_sdr(references, estimates):
    """Per source, over all samples and channels: 10 log10((Σ s² + δ) / (Σ (s − ŝ)² + δ)).
    Arrays are (sources, samples, channels). Written here rather than imported from
    ``evaluation.scores`` because the grader's copy of this package stands alone; a test
    holds the two to 0.01 dB."""
    delta = 1e-7
    signal_energy = np.sum(np.square(references), axis=(1, 2)) + delta
    error_energy = np.sum(np.square(references - estimates), axis=(1, 2)) + delta
    return 10 * np.log10(signal_energy / error_energy)


class MusicDemixingPredictor:
    def __init__(self):
        self.test_data_path = os.getenv("TEST_DATASET_PATH", os.getcwd() + "/data/test/")
        self.results_data_path = os.getenv("RESULTS_DATASET_PATH", os.getcwd() + "/data/results/")
        self.inference_setup_timeout = int(os.getenv("INFERENCE_SETUP_TIMEOUT_SECONDS", "900"))
        self.inference_per_music_timeout = int(os.getenv("INFERENCE_PER_MUSIC_TIMEOUT_SECONDS", "240"))
        self.partial_run = os.getenv("PARTIAL_RUN_MUSIC_NAMES", None)
        self.results = []
        self.current_music_name = None

    # ------------------------------------------------------------ the participant's part

    def prediction_setup(self):
        """Load models once. Left unimplemented, it is skipped."""
        raise NotImplementedError

    def prediction(self, mixture_file_path, bass_file_path, drums_file_path, other_file_path, vocals_file_path):
        """Read ``mixture_file_path``, write the four stems to the other paths."""
        raise NotImplementedError

    # ------------------------------------------------------------ locations

    def get_all_music_names(self):
        """Folders of the test set (sorted), limited by ``PARTIAL_RUN_MUSIC_NAMES``."""
        wanted = self.partial_run.split(",") if self.partial_run else None
        return [
            name for name in sorted(os.listdir(self.test_data_path))
            if not os.path.isfile(os.path.join(self.test_data_path, name))
            and (wanted is None or name in wanted)
        ]

    def get_music_folder_location(self, music_name):
        return os.path.join(self.test_data_path, music_name)

    def get_music_file_location(self, music_name, instrument=None):
        """The mixture's path (``instrument`` None), or where a stem goes (its folder is created)."""
        if instrument is None:
            return os.path.join(self.test_data_path, music_name, "mixture.wav")
        os.makedirs(os.path.join(self.results_data_path, music_name), exist_ok=True)
        return os.path.join(self.results_data_path, music_name, instrument + ".wav")

    # ------------------------------------------------------------ grading

    def verify_results(self, music_name):
        """The four stems exist."""
        return all(os.path.isfile(self.get_music_file_location(music_name, instrument))
                   for instrument in INSTRUMENTS)

    def scoring(self):
        """Global SDR of every song's stems against the reference stems beside
        its mixture: ``{song: {"sdr_bass": ..., ..., "sdr": mean of the four}}``."""
        scores = {}
        for music_name in self.get_all_music_names():
            print("Evaluating for: %s" % music_name)
            references, estimates = [], []
            for instrument in INSTRUMENTS:
                reference, _ = sf.read(os.path.join(self.test_data_path, music_name, instrument + ".wav"),
                                       always_2d=True)
                estimate, _ = sf.read(self.get_music_file_location(music_name, instrument), always_2d=True)
                references.append(reference)
                estimates.append(estimate)
            song_scores = global_sdr(np.stack(references).astype(np.float32),
                                     np.stack(estimates).astype(np.float32)).tolist()
            scores[music_name] = {f"sdr_{instrument}": score for instrument, score in zip(INSTRUMENTS, song_scores)}
            scores[music_name]["sdr"] = float(np.mean(song_scores))
        return scores

    def evaluation(self):
        """Setup, then every song under its limit, each verified; events on the way."""
        aicrowd_helpers.execution_start()
        try:
            with time_limit(self.inference_setup_timeout):
                self.prediction_setup()
        except NotImplementedError:
            print("prediction_setup doesn't exist for this run, skipping...")
        aicrowd_helpers.execution_running()

        for music_name in self.get_all_music_names():
            self.current_music_name = music_name
            with time_limit(self.inference_per_music_timeout):
                self.prediction(
                    mixture_file_path=self.get_music_file_location(music_name),
                    bass_file_path=self.get_music_file_location(music_name, "bass"),
                    drums_file_path=self.get_music_file_location(music_name, "drums"),
                    other_file_path=self.get_music_file_location(music_name, "other"),
                    vocals_file_path=self.get_music_file_location(music_name, "vocals"),
                )
            if not self.verify_results(music_name):
                raise Exception("verification failed, demixed files not found.")
        aicrowd_helpers.execution_success()

    def run(self):
        try:
            self.evaluation()
        except Exception as error:
            report = traceback.format_exc()
            print(report)
            aicrowd_helpers.execution_error(report)
            if not aicrowd_helpers.is_grading():
                raise error
