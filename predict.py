"""MDX 2021 entrypoint: the AIcrowd grader runs ``python predict.py``.

Reads ``TEST_DATASET_PATH/<song>/mixture.wav`` and writes
``RESULTS_DATASET_PATH/<song>/<target>.wav`` with the ensemble configured
in ``my_submission/`` (see evaluation/submission.py).
"""

from pathlib import Path

from demix.separate import separate_file
from evaluation.protocol import MusicDemixingPredictor
from evaluation.submission import load_submission_ensemble


class DemixPredictor(MusicDemixingPredictor):
    def prediction_setup(self):
        self.ensemble = load_submission_ensemble()

    def prediction(self, mixture_file_path, bass_file_path, drums_file_path, other_file_path, vocals_file_path):
        destinations = {"bass": bass_file_path, "drums": drums_file_path,
                        "other": other_file_path, "vocals": vocals_file_path}
        separate_file(self.ensemble, Path(mixture_file_path), {t: Path(p) for t, p in destinations.items()})


if __name__ == "__main__":
    DemixPredictor().run()
