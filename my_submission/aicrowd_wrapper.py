"""The SDX 2023 grader's entry point into a submission ("DO NOT CHANGE" in the kit).

Written to the same interface as the music demixing track starter kit's
``my_submission/aicrowd_wrapper.py``, which the grader uses in place of this
file: ``AIcrowdWrapper(dataset_dir, predictions_dir)`` creates
``MySeparationModel()`` from ``my_submission/user_config.py`` once, then for
each song folder name ``separate_music_file(foldername)``:

- reads ``<dataset>/<folder>/mixture.wav`` with ``soundfile.read`` (float64,
  ``(n_samples, n_channels)``);
- calls ``model.separate_music_file(array, sample_rate)``, which returns
  ``({instrument: array}, {instrument: sample_rate})``;
- checks that the instruments are exactly bass, drums, other and vocals;
- writes ``<predictions>/<folder>/<instrument>.wav`` with ``soundfile.write``'s
  default format (16-bit PCM).

``AICROWD_DATASET_DIR`` replaces ``dataset_dir``; ``AICROWD_PUBLIC_SHARED_DIR``
replaces ``predictions_dir`` by its ``predictions`` subfolder. Both folders
must exist.
"""

import os

import soundfile

from my_submission.user_config import MySeparationModel


class AIcrowdWrapper:
    def __init__(self, dataset_dir="./public_dataset/", predictions_dir="./evaluator_outputs/"):
        self.model = MySeparationModel()
        self.instruments = ["bass", "drums", "other", "vocals"]
        shared_dir = os.getenv("AICROWD_PUBLIC_SHARED_DIR", None)
        self.predictions_dir = os.path.join(shared_dir, "predictions") if shared_dir is not None else predictions_dir
        assert os.path.exists(self.predictions_dir), f"{self.predictions_dir} - No such directory"
        self.dataset_dir = os.getenv("AICROWD_DATASET_DIR", dataset_dir)
        assert os.path.exists(self.dataset_dir), f"{self.dataset_dir} - No such directory"

    def raise_aicrowd_error(self, msg):
        """How the grader fails with a message shown to the participant."""
        raise NameError(msg)

    def check_output(self, separated_music_arrays, output_sample_rates):
        assert set(self.instruments) == set(separated_music_arrays.keys()), "All instrument not present"

    def save_prediction(self, prediction_path, separated_music_arrays, output_sample_rates):
        if not os.path.exists(prediction_path):
            os.mkdir(prediction_path)
        for instrument in self.instruments:
            soundfile.write(os.path.join(prediction_path, f"{instrument}.wav"),
                            data=separated_music_arrays[instrument],
                            samplerate=output_sample_rates[instrument])

    def separate_music_file(self, foldername):
        music_array, samplerate = soundfile.read(os.path.join(self.dataset_dir, foldername, "mixture.wav"))
        separated_music_arrays, output_sample_rates = self.model.separate_music_file(music_array, samplerate)
        self.check_output(separated_music_arrays, output_sample_rates)
        self.save_prediction(os.path.join(self.predictions_dir, foldername), separated_music_arrays,
                             output_sample_rates)
        return True
