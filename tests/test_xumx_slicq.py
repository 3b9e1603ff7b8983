"""xumx-sliCQ-V2 members (demix/members/xumx_slicq.py): a folder in the real
on-disk format (the training's ``xumx_slicq_v2.json`` with its real keys, and
``Unmix(...).state_dict()`` saved as ``xumx_slicq_v2.pth``) separates exactly as
the package's own ``Separator.load(model_path=folder)`` does, source by named
source, offline and realtime; it runs in the ensemble from a config that names
the folder; bad files are refused naming them; nothing touches the network;
the catalogue rows pin the published files.

The models are random and small: the published transform's scale and lowest
frequency (bark from 32.9 Hz) with 40 bins instead of 262, 4.4 M parameters
(the published model has 15.1 M). Torch runs on one thread here: on the
2-core test machine, busy with other work, two threads took 15 times longer
(the package's many small convolutions and its per-block Wiener step wait on
each other's threads); one thread separates 2 s of audio in 0.35 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.errors import WeightsError
from demix.members.xumx_slicq import JSON_NAME, WEIGHTS_NAME, XumxSlicqMember
from demix.safe_load import UnsafeWeightsError
from demix.weights.catalogue import ModelWeights, WeightFile, get_official, official_families, official_models
from demix.weights.integrity import sha256_of

#: The tiny model's transform: the published one's scale and fmin, fewer bins.
FSCALE, FBINS, FMIN = "bark", 40, 32.9
#: Measured: 0.0 for both variants (the same package code on the same tensors).
TOLERANCE = 1e-6
SECONDS = 3


def training_json(realtime: bool) -> dict:
    """A ``xumx_slicq_v2.json`` as the package's training writes it: the published file's keys
    (pretrained_model/xumx_slicq_v2.json at the pinned commit), the tiny model's transform."""
    return {
        "args": {"batch_size": 64, "batch_size_valid": 1, "cuda_device": -1, "debug": False, "epochs": 1000,
                 "fbins": FBINS, "fgamma": 15.0, "fmin": FMIN, "fscale": FSCALE, "lr": 0.001,
                 "lr_decay_gamma": 0.3, "lr_decay_patience": 80, "nb_channels": 2, "nb_workers": 8,
                 "patience": 1000, "quiet": False, "realtime": realtime, "samples_per_track": 64,
                 "sample_rate": 44100.0, "seed": 42, "seq_dur": 2.0, "weight_decay": 1e-05},
        "best_epoch": 1, "best_loss": 0.04, "epochs_trained": 2, "num_bad_epochs": 0,
        "train_loss_history": [0.17, 0.03], "train_time_history": [200.0, 167.0], "valid_loss_history": [0.06, 0.05],
    }


def tiny_state(realtime: bool, seed: int, fbins: int = FBINS) -> dict[str, torch.Tensor]:
    """``Unmix(...).state_dict()`` as the training saves it, with BatchNorm statistics and input
    whitening away from their initial values, so that a member that dropped them would differ."""
    from xumx_slicq_v2.model import Unmix
    from xumx_slicq_v2.transforms import ComplexNorm, NSGTBase

    with contextlib.redirect_stdout(io.StringIO()):
        base = NSGTBase(FSCALE, fbins, FMIN, fs=44100.0, device="cpu")
    jagged, _ = base.predict_input_size(1, 2, 2.0)
    torch.manual_seed(seed)
    state = Unmix(ComplexNorm()(jagged), realtime=realtime).state_dict()
    for name, tensor in state.items():
        if name.endswith(("running_mean", "input_mean")):
            tensor.normal_(0.0, 0.1)
        elif name.endswith(("running_var", "input_scale")):
            tensor.uniform_(0.5, 2.0)
    return state


def write_folder(folder: Path, realtime: bool, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JSON_NAME).write_text(json.dumps(training_json(realtime), indent=4, sort_keys=True))
    torch.save(tiny_state(realtime, seed), folder / WEIGHTS_NAME)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("xumx_slicq")
    return {"offline": write_folder(root / "offline", realtime=False, seed=1),
            "realtime": write_folder(root / "realtime", realtime=True, seed=2)}


@pytest.fixture(scope="module")
def mix(track):
    return torch.from_numpy(track[1]["mixture"][:, : SECONDS * SAMPLE_RATE]).contiguous()


@pytest.fixture
def no_network(monkeypatch):
    """Any connection, and the package's own downloaders, raise."""
    import requests
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def package_separation(folder: Path, mix: torch.Tensor, chunk_size: int | None = 2621440) -> dict[str, torch.Tensor]:
    """The package alone: ``Separator.load(model_path=folder)`` (its default chunk_size), as its
    inference script runs it, then ``Separator.to_dict``."""
    from xumx_slicq_v2.separator import Separator

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        separator = Separator.load(model_path=str(folder), chunk_size=chunk_size)
    separator.quiet = True
    with torch.no_grad():
        return {source: estimate[0] for source, estimate in Separator.to_dict(separator(mix[None])).items()}


@pytest.mark.parametrize("variant", ["offline", "realtime"])
def test_the_member_equals_the_package_separator_per_named_source(folders, mix, no_network, variant):
    member = XumxSlicqMember.from_path("x", folders[variant])
    ours = member.separate(mix)
    assert member.realtime == (variant == "realtime") and member.targets == TARGETS
    first_conv = type(member.separator.xumx_model.sliced_umx[0].cdaes[0][0]).__name__
    assert first_conv == ("_CausalConv2d" if variant == "realtime" else "Conv2d")
    reference = package_separation(folders[variant], mix)
    assert tuple(ours) == TARGETS
    differences = {target: (ours[target] - reference[target]).abs().max().item() for target in TARGETS}
    print(variant, "max abs difference per target:", differences)
    assert max(differences.values()) <= TOLERANCE, differences
    for target in TARGETS:
        assert ours[target].shape == mix.shape and torch.isfinite(ours[target]).all()
    # the sources differ from one another: a swapped label would not go unseen
    assert min((ours[a] - ours[b]).abs().max().item() for a in TARGETS for b in TARGETS if a < b) > 1e-3


def test_chunk_size_cuts_the_input_as_the_package_s_separator_does(folders, mix):
    chunk = int(1.25 * SAMPLE_RATE)
    ours = XumxSlicqMember.from_path("x", folders["realtime"], chunk_size=chunk).separate(mix)
    reference = package_separation(folders["realtime"], mix, chunk_size=chunk)
    whole = XumxSlicqMember.from_path("x", folders["realtime"]).separate(mix)
    for target in TARGETS:
        assert (ours[target] - reference[target]).abs().max().item() <= TOLERANCE
    assert max((ours[target] - whole[target]).abs().max().item() for target in TARGETS) > 1e-4  # it did cut


@pytest.mark.parametrize("rate, channels", [(44100, 1), (48000, 2)])
def test_a_config_naming_the_folder_separates_mono_and_48khz_files(tmp_path, track, folders, no_network, rate,
                                                                    channels):
    from demix.audio import stem_paths
    from demix.config import load_config
    from demix.ensemble import Ensemble
    from demix.separate import separate_file

    config_path = tmp_path / "ensemble.toml"
    config_path.write_text(f'[separation]\nblock_seconds = 5\ncompute = "eager"\n\n'
                           f'[[members]]\nname = "slicq"\nmodel = "{folders["offline"]}"\n')
    config = load_config(config_path)
    assert config.members[0].family == "xumx_slicq"  # recognised by its files
    ensemble = Ensemble.from_config(config, tmp_path)
    assert "member slicq: xumx-sliCQ-V2 folder" in ensemble.describe()[0]
    audio = track[1]["mixture"][:, : SECONDS * SAMPLE_RATE]
    audio = audio.mean(axis=0, keepdims=True) if channels == 1 else audio
    path = tmp_path / "song.wav"
    sf.write(path, audio.T, rate, subtype="PCM_16")
    written = separate_file(ensemble, path, stem_paths(tmp_path / "out"))
    stems = {}
    for target in TARGETS:
        stems[target], stem_rate = sf.read(written[target], always_2d=True)
        assert stem_rate == rate and stems[target].shape == (audio.shape[1], channels)
        assert np.isfinite(stems[target]).all() and np.abs(stems[target]).max() > 1e-3


class ShellPayload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def test_a_truncated_pth_and_one_that_would_run_code_are_refused_naming_the_file(tmp_path, folders):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / JSON_NAME).write_bytes((folders["offline"] / JSON_NAME).read_bytes())
    weights = folder / WEIGHTS_NAME
    weights.write_bytes((folders["offline"] / WEIGHTS_NAME).read_bytes()[:100_000])  # a download cut short
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(weights))}: not a readable xumx-sliCQ-V2 state dict \("):
        XumxSlicqMember.from_path("x", folder)

    marker = tmp_path / "pwned"
    torch.save({"sliced_umx.0.input_mean": ShellPayload(marker)}, weights)
    with pytest.raises(UnsafeWeightsError) as error:
        XumxSlicqMember.from_path("x", folder)
    assert str(error.value).startswith(f"{weights}: refused to load this xumx-sliCQ-V2 state dict: it names "
                                       "posix.system")
    assert not marker.exists()


def test_files_that_do_not_describe_a_model_are_refused_naming_them(tmp_path, folders):
    """A JSON that is missing, malformed or asks for what the package cannot run; a .pth that
    is missing, lacks a tensor, belongs to another transform or is a training checkpoint."""
    folder = tmp_path / "model"
    folder.mkdir()
    json_path, weights = folder / JSON_NAME, folder / WEIGHTS_NAME

    def refused(path: Path, message: str) -> None:
        """``message``: a regular expression for what follows the file's name."""
        with pytest.raises(WeightsError, match=rf"^{re.escape(str(path))}: {message}"):
            XumxSlicqMember.from_path("x", folder)

    refused(json_path, rf"not found \(an xumx-sliCQ-V2 model folder holds {JSON_NAME} and {WEIGHTS_NAME}")
    json_path.write_text('{"args": {"fscale": "bark",')
    refused(json_path, "not a readable JSON file")
    for change, message in [({"fbins": None}, r"args\.fbins must be an integer >= 1, got missing"),
                            ({"fscale": "erb"}, r"args\.fscale must be one of bark, mel, .*, got 'erb'"),
                            ({"sample_rate": 48000.0}, r"args\.sample_rate must be 44100 .*, got 48000\.0"),
                            ({"realtime": None}, r"args\.realtime must be true or false, got missing"),
                            ({"lstm": True}, r"args\.lstm is true: a model of the Bi-LSTM variant")]:
        data = training_json(realtime=False)
        data["args"].update(change)
        data["args"] = {key: value for key, value in data["args"].items() if value is not None}
        json_path.write_text(json.dumps(data))
        refused(json_path, message)

    json_path.write_text(json.dumps(training_json(realtime=False)))
    refused(weights, "not found")
    state = tiny_state(realtime=False, seed=0)
    torch.save({name: tensor for name, tensor in state.items() if name != "sliced_umx.3.input_scale"}, weights)
    refused(weights, rf"this file and the offline xumx-sliCQ-V2 model its {JSON_NAME} describes \(bark scale, 40 bins "
                     r"from 32\.9 Hz\) disagree: 1 tensors the model has are missing \(sliced_umx\.3\.input_scale\)")
    torch.save(tiny_state(realtime=False, seed=0, fbins=48), weights)
    refused(weights, "this file and .* disagree: .*another shape")
    torch.save({"state_dict": state, "optimizer": {"state": {}}}, weights)
    refused(weights, r"a training checkpoint \(state_dict, optimizer, \.\.\.\), not a state dict")
    # BatchNorm's counters are read only in training: a file without them is the same model
    torch.save({name: tensor for name, tensor in state.items() if not name.endswith("num_batches_tracked")}, weights)
    assert XumxSlicqMember.from_path("x", folder).targets == TARGETS


def test_the_catalogue_pins_the_published_files():
    commit = "a15c8f0ed6f34e0931183633bee193ebe51e67cc"
    published = {
        "xumx_slicq_v2": ("pretrained_model", "05048513b3ad4fefbc687916ad75a9f2ade4407430ddd3d34b8ecc42f01cfff7",
                          23_850, "48c86f90083c8417c47e236b12a848518c3e29d46b1a34d7e275d27b1e3203f8", 62_466_945),
        "xumx_slicq_v2_realtime": ("pretrained_model_realtime",
                                   "c9e7167650dac9fa26d4e8973c7cc93a6b098410d9e6c7c9241631d8b5442fe8", 48_854,
                                   "12e25e8b7289117a1edc95fa898d40c074a56bfa9057f0b36b2d4c7c3bafe5c1", 62_467_137),
    }
    for name, (folder, json_sha256, json_size, pth_sha256, pth_size) in published.items():
        row = get_official(name)
        assert row.family == official_families()[name] == "xumx_slicq" and name in official_models()
        assert row.licence.startswith("MIT") and "Sevag H" in row.licence
        config, weights = row.files
        assert (config.path, config.sha256_prefix, config.size) == (f"{name}/{JSON_NAME}", json_sha256, json_size)
        assert (weights.path, weights.sha256_prefix, weights.size) == (f"{name}/{WEIGHTS_NAME}", pth_sha256, pth_size)
        assert config.url == f"https://raw.githubusercontent.com/sevagh/xumx-sliCQ/{commit}/{folder}/{JSON_NAME}"
        assert weights.url == \
            f"https://media.githubusercontent.com/media/sevagh/xumx-sliCQ/{commit}/{folder}/{WEIGHTS_NAME}"
        assert not config.needs_lock and not weights.needs_lock  # the whole sha256 is known


def test_weights_list_shows_them_and_fetch_checks_them(tmp_path, capsys):
    from demix.cli import main
    from demix.weights.fetch import FetchError, fetch

    models = tmp_path / "models"
    assert main(["weights", "list", "--models", str(models)]) in (0, 1)
    rows = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}
    assert rows["xumx_slicq_v2"] == rows["xumx_slicq_v2_realtime"] == ["xumx_slicq", "missing"]

    mirror = tmp_path / "mirror" / "xumx_slicq_v2"
    mirror.mkdir(parents=True)
    (mirror / JSON_NAME).write_text(json.dumps(training_json(realtime=False)))  # not the published file
    with pytest.raises(FetchError) as error:
        fetch([get_official("xumx_slicq_v2")], models, mirror=mirror.parent, report=lambda _: None)
    message = str(error.value)
    assert f"xumx_slicq_v2/{JSON_NAME} (xumx_slicq_v2): " in message
    assert "the published file is 23,850: truncated, damaged or not the official file" in message
    assert f"xumx_slicq_v2/{WEIGHTS_NAME} (xumx_slicq_v2): not in the mirror folder" in message
    assert not (models / "xumx_slicq_v2" / JSON_NAME).exists()


def test_an_official_layout_loads_after_its_checks_and_a_changed_byte_is_refused(tmp_path, folders):
    """The official path: files under ``<models>/<name>/``, checked against their row (here a row
    with the tiny files' sha256 and sizes) before anything opens them."""
    files = []
    for source in (folders["realtime"] / JSON_NAME, folders["realtime"] / WEIGHTS_NAME):
        path = tmp_path / "xumx_slicq_v2_realtime" / source.name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(source.read_bytes())
        files.append(WeightFile(f"xumx_slicq_v2_realtime/{source.name}", f"https://example.invalid/{source.name}",
                                sha256_of(path), size=path.stat().st_size))
    row = ModelWeights("xumx_slicq_v2_realtime", "xumx_slicq", tuple(files), "MIT")
    member = XumxSlicqMember.from_official("rt", row, tmp_path)
    assert member.realtime and member.origin.startswith("xumx_slicq_v2_realtime (realtime) from ")

    weights = tmp_path / files[1].path
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=rf"weight file {files[1].path} of model 'xumx_slicq_v2_realtime' is "
                                           r"damaged \(its sha256 starts "):
        XumxSlicqMember.from_official("rt", row, tmp_path)
    with pytest.raises(WeightsError, match=r"xumx_slicq_v2/xumx_slicq_v2\.json of model 'xumx_slicq_v2' is missing"
                                           r"[\s\S]*python -m demix weights fetch xumx_slicq_v2"):
        XumxSlicqMember.from_official("off", "xumx_slicq_v2", tmp_path)
