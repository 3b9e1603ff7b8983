"""Small real submissions for the local grader's tests: each writes a
quarter of the mixture as every stem, and misbehaves on the song named in
$MISBEHAVE_SONG. MDX 2021 predictors and SDX 2023 models."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluator.music_demixing import MusicDemixingPredictor


def _misbehaves(mixture_file_path) -> bool:
    return Path(mixture_file_path).parent.name == os.environ.get("MISBEHAVE_SONG")


class QuarterPredictor(MusicDemixingPredictor):
    # parameters in another order than the grader's: only keyword calls work
    def prediction(self, vocals_file_path, other_file_path, drums_file_path, bass_file_path, mixture_file_path):
        mixture, rate = sf.read(mixture_file_path, dtype="float32")
        for path in (bass_file_path, drums_file_path, other_file_path, vocals_file_path):
            sf.write(path, mixture / 4, rate, subtype="FLOAT")


class SlowPredictor(QuarterPredictor):
    def prediction(self, **paths):
        if _misbehaves(paths["mixture_file_path"]):
            time.sleep(120)
        super().prediction(**paths)


class RaisingPredictor(QuarterPredictor):
    def prediction(self, **paths):
        if _misbehaves(paths["mixture_file_path"]):
            raise RuntimeError("model exploded on this song")
        super().prediction(**paths)


class BadOutputPredictor(QuarterPredictor):
    def prediction(self, **paths):
        super().prediction(**paths)
        if _misbehaves(paths["mixture_file_path"]):
            data, rate = sf.read(paths["vocals_file_path"], dtype="float32")
            sf.write(paths["vocals_file_path"], data[:-10], rate, subtype="FLOAT")
            data[100] = np.nan
            sf.write(paths["drums_file_path"], data, rate, subtype="FLOAT")


class SlowSetupPredictor(QuarterPredictor):
    def prediction_setup(self):
        time.sleep(120)


class QuarterSeparationModel:
    """SDX 2023: a quarter of the mixture for every instrument."""

    def separate_music_file(self, mixed_sound_array, sample_rate):
        return ({target: mixed_sound_array / 4 for target in ("bass", "drums", "other", "vocals")},
                dict.fromkeys(("bass", "drums", "other", "vocals"), sample_rate))


class WrongKeysSeparationModel(QuarterSeparationModel):
    """Names the vocals "voice" on the song $MISBEHAVE_SONG (the wrapper cannot see the song's name,
    so it misbehaves on every song when the variable is set)."""

    def separate_music_file(self, mixed_sound_array, sample_rate):
        separated, rates = super().separate_music_file(mixed_sound_array, sample_rate)
        if os.environ.get("MISBEHAVE_SONG"):
            separated["voice"] = separated.pop("vocals")
        return separated, rates
