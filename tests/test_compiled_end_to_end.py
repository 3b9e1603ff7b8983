"""The default compute mode (`compiled`) end to end: the command line and the
MDX 2021 predictor on a real excerpt give eager's stems, and the compiling
happens in setup (`prediction_setup`), never inside a song."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from challenge.example import ensure_bundled_example
from demix import TARGETS

PROJECT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def configs(tmp_path_factory, user_config) -> dict[str, Path]:
    """The user-trained-format ensemble with the default compute mode, and the same in eager."""
    folder = tmp_path_factory.mktemp("modes")
    text = user_config.read_text()
    assert 'compute = "eager"' in text
    paths = {"compiled": folder / "compiled.toml", "eager": folder / "eager.toml"}
    paths["compiled"].write_text(text.replace('compute = "eager"', ""))  # the default
    paths["eager"].write_text(text)
    return paths


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return ensure_bundled_example(tmp_path_factory.mktemp("example") / "test")


def stems(folder: Path) -> dict[str, np.ndarray]:
    return {t: sf.read(folder / f"{t}.wav", dtype="float32")[0] for t in TARGETS}


def test_the_command_line_in_the_default_mode_gives_eagers_stems(configs, compile_cache, example, tmp_path):
    """``python -m demix separate`` with the default mode against the same
    config in eager, separated in this process (the same separate path)."""
    from demix.audio import stem_paths
    from demix.config import load_config
    from demix.load import load_ensemble
    from demix.separate import separate_file

    completed = subprocess.run(
        [sys.executable, "-m", "demix", "separate", str(example / "mixture.wav"), "-o", str(tmp_path / "compiled"),
         "--config", str(configs["compiled"]), "--device", "cpu"], cwd=PROJECT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "DEMIX_COMPILE_CACHE": str(compile_cache)})
    assert completed.returncode == 0, completed.stderr
    compiled = stems(tmp_path / "compiled" / "mixture")
    separate_file(load_ensemble(load_config(configs["eager"]), device="cpu", threads=False, warm_up=False),
                  example / "mixture.wav", stem_paths(tmp_path / "eager"))
    eager = stems(tmp_path / "eager")
    for target in TARGETS:
        assert np.max(np.abs(compiled[target] - eager[target])) <= TOLERANCE, target


#: Run in its own process: kernels compiled in this one would stay in memory and hide a real
#: compile from later tests (tests/test_compute.py's fallback test needs one).
PREDICTOR_PROBE = """
import json, sys, torch._dynamo.utils
from predict import DemixPredictor
from demix import TARGETS
name = sys.argv[1]
predictor = DemixPredictor()
predictor.prediction_setup()
in_setup = torch._dynamo.utils.counters["stats"]["unique_graphs"]
locate = predictor.get_music_file_location
predictor.prediction(mixture_file_path=locate(name), **{f"{t}_file_path": locate(name, t) for t in TARGETS})
print(json.dumps({"compiled": predictor.ensemble.compiled, "in_setup": in_setup,
                  "after_song": torch._dynamo.utils.counters["stats"]["unique_graphs"],
                  "verified": predictor.verify_results(name)}))
"""


def test_the_predictor_compiles_in_setup_and_not_inside_a_song(configs, compile_cache, example, tmp_path):
    env = {**os.environ, "DEMIX_COMPILE_CACHE": str(compile_cache), "DEMIX_CONFIG": str(configs["compiled"]),
           "TEST_DATASET_PATH": str(example.parent), "RESULTS_DATASET_PATH": str(tmp_path / "results")}
    completed = subprocess.run([sys.executable, "-c", PREDICTOR_PROBE, example.name], cwd=PROJECT, env=env,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    assert probe["compiled"] and probe["in_setup"] > 0
    assert probe["after_song"] == probe["in_setup"], "compiled inside the song"
    assert probe["verified"]
