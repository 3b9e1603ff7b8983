"""Fixtures: real MUSDB18 excerpts, and small randomly initialised models
saved in the real on-disk formats so the real loading code runs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from demix import SAMPLE_RATE, TARGETS

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data" / "musdb18-excerpts"
#: MUSDB's stream order in .stem.mp4 files.
STEM_ORDER = ("mixture", "drums", "bass", "other", "vocals")


def _stem_files() -> list[Path]:
    import stempeg

    files = [Path(stempeg.example_stem_path())]
    files += sorted(SHARED_DATA.glob("*.stem.mp4"))
    return files


@pytest.fixture(scope="session")
def stem_files() -> list[Path]:
    return _stem_files()


@pytest.fixture(scope="session")
def tracks(stem_files) -> dict[str, dict[str, np.ndarray]]:
    """name -> {"mixture"|target: float32 (channels, frames)} at 44.1 kHz."""
    import stempeg

    result = {}
    for path in stem_files:
        audio, rate = stempeg.read_stems(str(path), dtype=np.float32)
        assert rate == SAMPLE_RATE
        result[path.name.replace(".stem.mp4", "")] = {
            name: np.ascontiguousarray(audio[index].T) for index, name in enumerate(STEM_ORDER)
        }
    return result


@pytest.fixture(scope="session")
def track(tracks):
    """The stempeg example: (name, stems)."""
    name = sorted(tracks)[0]
    return name, tracks[name]


@pytest.fixture(scope="session")
def mixture_wav(tmp_path_factory, track) -> Path:
    """The example's mixture as a 16-bit WAV, as a user would hand it over."""
    name, stems = track
    path = tmp_path_factory.mktemp("songs") / f"{name}.wav"
    sf.write(path, stems["mixture"].T, SAMPLE_RATE, subtype="PCM_16")
    return path


def tiny_openunmix_folder(folder: Path, targets=TARGETS, with_separator_json=True, seed=0) -> Path:
    """A folder as Open-Unmix's training writes it: <target>.pth + <target>.json
    (+ separator.json), with a tiny random model per target."""
    from openunmix.model import OpenUnmix
    from openunmix.utils import bandwidth_to_max_bin

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    for target in targets:
        model = OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=8,
                          max_bin=bandwidth_to_max_bin(44100.0, 4096, 16000))
        torch.save(model.state_dict(), folder / f"{target}.pth")
        args = {"nfft": 4096, "nhop": 1024, "nb_channels": 2, "hidden_size": 8, "target": target}
        (folder / f"{target}.json").write_text(json.dumps({"args": args, "epochs_trained": 1}))
    if with_separator_json:
        (folder / "separator.json").write_text(json.dumps(
            {"targets": list(targets), "sample_rate": 44100, "nb_channels": 2, "nfft": 4096, "nhop": 1024}
        ))
    return folder


def tiny_demucs_model(seed=0, sources=("drums", "bass", "other", "vocals")):
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(sources=list(sources), channels=8, depth=3, nfft=1024, segment=4,
                        t_layers=1, t_heads=2, dconv_comp=4)


def save_demucs_package(model, path: Path) -> Path:
    """Demucs' own serialized format (what demucs.states.load_model reads)."""
    from demucs.states import get_state

    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs,
               "state": get_state(model, None, half=False), "training_args": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(package, path)
    return path


def tiny_demucs_bag(folder: Path) -> Path:
    """A bag .yaml with two signature-named .th packages beside it."""
    save_demucs_package(tiny_demucs_model(seed=1), folder / "aaaa1111.th")
    save_demucs_package(tiny_demucs_model(seed=2), folder / "bbbb2222.th")
    bag = folder / "tinybag.yaml"
    bag.write_text("models: ['aaaa1111', 'bbbb2222']\nweights: [[1., 1., 0., 1.], [1., 1., 1., 0.]]\n")
    return bag


@pytest.fixture(scope="session")
def user_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user_models")
    return {
        "umx": tiny_openunmix_folder(root / "my_umx"),
        "demucs": save_demucs_package(tiny_demucs_model(), root / "my_demucs.th"),
        "bag": tiny_demucs_bag(root / "bag"),
    }


@pytest.fixture(scope="session")
def user_config(tmp_path_factory, user_models) -> Path:
    """A config of user-trained-format members (the real loaders run)."""
    folder = tmp_path_factory.mktemp("config")
    config = folder / "ensemble.toml"
    config.write_text(f"""
[separation]
block_seconds = 5
overlap_seconds = 1
wiener_iterations = 1
compute = "eager"   # compiling is tested on its own (tests/test_compute.py)

[[members]]
name = "demucs"
model = "{user_models['demucs']}"
weights = {{ bass = 0.7, drums = 0.8, other = 0.6, vocals = 0.6 }}

[[members]]
name = "umx"
model = "{user_models['umx']}"
weights = {{ bass = 0.3, drums = 0.2, other = 0.4, vocals = 0.4 }}
""")
    return config
