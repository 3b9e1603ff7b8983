"""The default compute mode (`compiled`) end to end: the command line and the
MDX 2021 predictor on a real excerpt give eager's stems, and the compiling
happens in setup (`prediction_setup`), never inside a song."""

from __future__ import annotations

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
def compile_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compile-cache")


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return ensure_bundled_example(tmp_path_factory.mktemp("example") / "test")


def stems(folder: Path) -> dict[str, np.ndarray]:
    return {t: sf.read(folder / f"{t}.wav", dtype="float32")[0] for t in TARGETS}


def test_the_command_line_in_the_default_mode_gives_eagers_stems(configs, compile_cache, example, tmp_path):
    runs = {}
    for mode, config in configs.items():
        out = tmp_path / mode
        completed = subprocess.run(
            [sys.executable, "-m", "demix", "separate", str(example / "mixture.wav"), "-o", str(out),
             "--config", str(config)], cwd=PROJECT, capture_output=True, text=True, timeout=900,
            env={**os.environ, "DEMIX_COMPILE_CACHE": str(compile_cache)})
        assert completed.returncode == 0, completed.stderr
        runs[mode] = stems(out / "mixture")
    for target in TARGETS:
        assert np.max(np.abs(runs["compiled"][target] - runs["eager"][target])) <= TOLERANCE, target


def test_the_predictor_compiles_in_setup_and_not_inside_a_song(configs, compile_cache, example, tmp_path,
                                                             monkeypatch):
    import torch._dynamo.utils

    monkeypatch.setenv("DEMIX_COMPILE_CACHE", str(compile_cache))
    monkeypatch.setenv("DEMIX_CONFIG", str(configs["compiled"]))
    monkeypatch.setenv("TEST_DATASET_PATH", str(example.parent))
    monkeypatch.setenv("RESULTS_DATASET_PATH", str(tmp_path / "results"))
    monkeypatch.syspath_prepend(str(PROJECT))
    from predict import DemixPredictor

    predictor = DemixPredictor()
    predictor.prediction_setup()
    assert predictor.ensemble.compiled
    compiled_in_setup = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert compiled_in_setup > 0
    locate = predictor.get_music_file_location
    predictor.prediction(mixture_file_path=locate(example.name),
                         **{f"{t}_file_path": locate(example.name, t) for t in TARGETS})
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == compiled_in_setup, "compiled inside the song"
    assert predictor.verify_results(example.name)
