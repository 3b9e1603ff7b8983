"""MDX 2021 entry point: the AIcrowd grader executes ``run.sh``, which runs
``python predict.py``.

``DemixPredictor`` subclasses the grader's own
``evaluator.music_demixing.MusicDemixingPredictor`` (the grader writes its
copy of ``evaluator/`` over ours), whose ``run()`` is the grading loop: it
reads ``TEST_DATASET_PATH/<song>/mixture.wav``, calls ``prediction`` with
keyword arguments, writes ``RESULTS_DATASET_PATH/<song>/<target>.wav`` and
reports to the grading infrastructure. The ensemble is the one configured in
``my_submission/`` (see challenge/submission.py).
"""

from pathlib import Path

from challenge.submission import load_submission_ensemble
from demix.separate import separate_file
from evaluator.music_demixing import MusicDemixingPredictor


class DemixPredictor(MusicDemixingPredictor):
    def prediction_setup(self):
        self.ensemble = load_submission_ensemble()

    def prediction(self, mixture_file_path, bass_file_path, drums_file_path, other_file_path, vocals_file_path):
        destinations = {"bass": bass_file_path, "drums": drums_file_path,
                        "other": other_file_path, "vocals": vocals_file_path}
        separate_file(self.ensemble, Path(mixture_file_path), {t: Path(p) for t, p in destinations.items()})


if __name__ == "__main__":
    DemixPredictor().run()
