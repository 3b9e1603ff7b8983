"""Weight files never run code when they are opened: a file that names
anything beyond its family's allowlist is refused, naming the file and the
globals; packages Demucs itself writes still load."""

from __future__ import annotations

import argparse
import fractions
import os
import warnings

import numpy as np
import pytest
import torch

from demix.cli import main as demix_main
from demix.config import load_config
from demix.errors import ConfigError, WeightsError
from demix.members import DemucsMember, OpenUnmixMember, load_member
from demix.safe_load import UnsafeWeightsError

from conftest import save_demucs_package, tiny_openunmix_folder

SOURCES = ["drums", "bass", "other", "vocals"]


class ShellPayload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def small_htdemucs(seed=0):
    """A small HTDemucs with the official depth (4) and a Fraction segment, as HTDemucs' own may be."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(sources=SOURCES, channels=4, depth=4, segment=fractions.Fraction(39, 10),
                        t_layers=1, t_heads=2, dconv_comp=4)


@pytest.fixture()
def payload_package(tmp_path):
    """A real Demucs package whose training_args would run a command, a bag
    naming it, and the marker file the command would create."""
    marker = tmp_path / "pwned"
    path = save_demucs_package(small_htdemucs(), tmp_path / "bag" / "feed1234.th")
    package = torch.load(path, weights_only=False)
    package["training_args"] = ShellPayload(marker)
    torch.save(package, path)
    bag = tmp_path / "bag" / "evil.yaml"
    bag.write_text("models: ['feed1234']\n")
    return path, bag, marker


def test_the_payload_is_live(payload_package):
    """The control: loaded the way demucs.states.load_model loads, the file runs its command."""
    path, _, marker = payload_package
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("which", ["package", "bag"])
def test_a_package_that_would_run_code_is_refused(payload_package, which):
    path, bag, marker = payload_package
    with pytest.raises(UnsafeWeightsError) as error:
        DemucsMember.from_path("shared", bag if which == "bag" else path)
    message = str(error.value)
    assert str(path) in message and "posix.system" in message
    assert 'allow_globals = ["posix.system"]' in message and "'shared'" in message
    assert not marker.exists()


def test_info_refuses_it_too(payload_package, tmp_path, capsys):
    """The path the issue was found on: `python -m demix info` with the file in a config."""
    path, _, marker = payload_package
    config = tmp_path / "shared.toml"
    config.write_text(f'[[members]]\nname = "shared"\nmodel = "{path}"\n')
    assert demix_main(["info", "--config", str(config), "--models", str(tmp_path)]) == 1
    assert "posix.system" in capsys.readouterr().out
    assert not marker.exists()


def test_an_open_unmix_state_that_would_run_code_is_refused(tmp_path):
    folder = tiny_openunmix_folder(tmp_path / "umx", targets=("vocals",))
    state = torch.load(folder / "vocals.pth", weights_only=True)
    state["extra"] = ShellPayload(tmp_path / "pwned")
    torch.save(state, folder / "vocals.pth")
    with pytest.raises(UnsafeWeightsError, match="posix.system") as error:
        OpenUnmixMember.from_path("umx", folder, niter=0)
    assert str(folder / "vocals.pth") in str(error.value)
    assert not (tmp_path / "pwned").exists()


def test_what_demucs_training_writes_loads(tmp_path):
    """serialize_model (half precision, OmegaConf training_args), the metrics
    Demucs' release script adds (numpy scalars), and save_with_checksum's
    checksummed name, alone and in a bag."""
    from demucs.states import save_with_checksum, serialize_model
    from omegaconf import OmegaConf

    model = small_htdemucs(seed=3)
    training_args = OmegaConf.create({"dset": {"segment": 11, "sources": SOURCES, "channels": 2},
                                      "optim": {"lr": 3e-4, "betas": [0.9, 0.999]}, "continue_from": None,
                                      "model": "htdemucs", "htdemucs": {"channels": 4, "t_layers": 1}})
    package = serialize_model(model, training_args)
    package["metrics"] = ({"nsdr": np.median(np.array([5.0, 6.5]))}, {"sdr": np.float64(7.1)})
    save_with_checksum(package, tmp_path / "cafe0042.th")
    (path,) = tmp_path.glob("cafe0042-*.th")
    expected = {name: value.half().float() for name, value in model.state_dict().items()}

    loaded = DemucsMember.from_path("trained", path).model
    assert loaded.segment == fractions.Fraction(39, 10)
    assert all(torch.equal(value, expected[name]) for name, value in loaded.state_dict().items())

    bag = tmp_path / "mine.yaml"
    bag.write_text("models: ['cafe0042']\nsegment: 3\n")
    in_bag = DemucsMember.from_path("trained", bag).model.models[0]
    assert all(torch.equal(value, expected[name]) for name, value in in_bag.state_dict().items())

    data = bytearray(path.read_bytes())  # its checksum is still verified
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="damaged"):
        DemucsMember.from_path("trained", bag)


def test_a_user_may_allow_globals_they_trust(tmp_path):
    """training_args as an argparse.Namespace (older training scripts) is not
    on the allowlist; the member's allow_globals lets this one file load."""
    path = tmp_path / "older.th"
    save_demucs_package(small_htdemucs(), path)
    package = torch.load(path, weights_only=False)
    package["training_args"] = argparse.Namespace(epochs=360, lr=3e-4)
    torch.save(package, path)

    def member(extra: str):
        config = tmp_path / "config.toml"
        config.write_text(f'[[members]]\nname = "older"\nmodel = "{path}"\n{extra}\n')
        loaded = load_config(config)
        return load_member(loaded.members[0], tmp_path, loaded.seed)

    with pytest.raises(UnsafeWeightsError, match=r'allow_globals = \["argparse.Namespace"\]'):
        member("")
    assert member('allow_globals = ["argparse.Namespace"]').targets == tuple(sorted(SOURCES))
    with pytest.raises(ConfigError, match="allow_globals"):
        member('allow_globals = "argparse.Namespace"')
