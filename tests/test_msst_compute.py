"""MSST members in every compute mode: compiled gives msst's own stems (one
graph set per member, never compiled again for another block or song), bf16
stays close and comes back float32, a member's own ``compute`` overrides the
config's, and a YAML's inference values that msst would fail on are refused
when the member is built, naming the YAML, the key and the value.

Tiny random models written as MSST publishes them (``conftest.py``,
``test_msst.py``); the real architectures' speed is the benchmark's
(``benchmarks/engine.py --msst-modes``), not a test's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from demix import SAMPLE_RATE, TARGETS
from demix.compute import ALLOW_EMULATED_BF16, cpu_has_native_bf16, use_compile_cache
from demix.config import load_config, parse_config
from demix.ensemble import Ensemble
from demix.errors import DemixError, WeightsError
from demix.members import MsstMember, load_member

from evaluation.scores import global_sdr

from conftest import GRADER_SCNET_YAML, tiny_msst_model, tiny_openunmix_folder, write_msst_model
from test_msst import YAMLS, expected_targets, msst_reference

PROJECT = Path(__file__).resolve().parents[1]
#: Compiled float32 against msst's eager demix, per sample (the issue's bound for float32 paths).
COMPILED_TOLERANCE = 1e-4
#: bf16 against float32, global SDR per target: the floor asked of the real architectures on real
#: music (the tiny models measured 47 to 51 dB).
BF16_FLOOR_DB = 40


def _member(family: str, folder: Path, text: str | None = None, seed: int = 0) -> MsstMember:
    config, model = tiny_msst_model(family, text or YAMLS[family], folder, seed)
    return MsstMember("m", family, model, config, "tiny", folder / "reference.yaml")


@pytest.fixture(scope="module")
def song(track) -> torch.Tensor:
    """3.5 s of the real excerpt: several chunks of every tiny YAML, and a ragged tail."""
    return torch.from_numpy(track[1]["mixture"][:, : int(3.5 * SAMPLE_RATE)]).contiguous()


@pytest.mark.slow
def test_compiled_scnet_gives_msst_stems_with_one_set_of_graphs(tmp_path, song):
    """SCNet is the family that does not compile whole (its FeatureConversion FFTs stay eager).
    msst hands over batches of up to 4 chunks (the YAML's batch_size); on a CPU the graph takes
    one at a time. A second block of another length and a second song compile nothing again."""
    use_compile_cache()
    member = _member("scnet", tmp_path, GRADER_SCNET_YAML)
    reference = expected_targets(member, msst_reference(member.config, member.model, song, "scnet"))
    member.set_compute("compiled")
    assert "compiled but for one part" in member.compute_description
    assert "FeatureConversion" in member.compute_description
    assert member.runner.graph_batch == 1
    compiled = member.separate(song)
    for target, expected in reference.items():
        assert np.abs(compiled[target].numpy() - expected).max() <= COMPILED_TOLERANCE, target
    import torch._dynamo.config as dynamo_config

    with dynamo_config.patch(error_on_recompile=True):
        member.separate(song[:, : 2 * SAMPLE_RATE])
        member.separate(song.flip(-1))


@pytest.mark.parametrize("family", list(YAMLS))
def test_bf16_stays_close_to_float32_and_returns_float32(tmp_path, song, family, monkeypatch):
    """Numerics of the autocast, not speed (so uncompiled here: compiling a tiny Roformer costs
    minutes): every family, every target."""
    member = _member(family, tmp_path)
    reference = member.separate(song)
    member.set_compute("bf16")
    member.disable_compile()
    assert member.compute_description == "bfloat16 autocast, eager"
    bf16 = member.separate(song)
    assert set(bf16) == set(reference)
    for target, estimate in bf16.items():
        assert estimate.dtype == torch.float32 and torch.isfinite(estimate).all()
        assert global_sdr(reference[target].numpy(), estimate.numpy()) >= BF16_FLOOR_DB, target


def test_eager_is_msst_own_inference(tmp_path, song):
    member = _member("mdx23c", tmp_path)
    assert member.compute_description == "float32, eager"
    reference = expected_targets(member, msst_reference(member.config, member.model, song, "mdx23c"))
    for target, estimate in member.separate(song).items():
        assert np.abs(estimate.numpy() - reference[target]).max() <= 1e-6


def _config_with_two_members(tmp_path: Path, scnet_compute: str | None) -> Path:
    _, model = tiny_msst_model("scnet", GRADER_SCNET_YAML, tmp_path)
    scnet = write_msst_model(tmp_path / "scnet", GRADER_SCNET_YAML, model.state_dict())
    umx = tiny_openunmix_folder(tmp_path / "umx")
    compute_line = f'compute = "{scnet_compute}"' if scnet_compute else ""
    path = tmp_path / "config.toml"
    path.write_text(f"""[separation]
compute = "eager"

[[members]]
name = "scnet"
model = "{scnet}"
{compute_line}

[[members]]
name = "umx"
model = "{umx}"
""")
    return path


@pytest.mark.slow
def test_a_member_compute_overrides_the_config_and_info_says_how_it_runs(tmp_path, monkeypatch):
    if not cpu_has_native_bf16():
        monkeypatch.setenv(ALLOW_EMULATED_BF16, "1")
    config = load_config(_config_with_two_members(tmp_path, "bf16"))
    assert [member.compute for member in config.members] == ["bf16", None]
    assert config.compute_modes == {"eager", "bf16"}
    ensemble = Ensemble.from_config(config, tmp_path)
    assert ensemble.member_compute == {"scnet": "bf16", "umx": "eager"}
    assert ensemble.compiled
    scnet = ensemble.members[0]
    assert scnet.runner.mode == "bf16" and scnet.runner.compiled
    result = subprocess.run([sys.executable, "-m", "demix", "info", "--config", str(config.path)], cwd=PROJECT,
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, ALLOW_EMULATED_BF16: "1"})
    assert result.returncode == 0, result.stderr
    assert "compute bf16: bfloat16 autocast, compiled but for one part (the FFTs of SCNet's FeatureConversion" \
        in result.stdout
    assert "compute eager" in result.stdout  # the ensemble's line; umx has no line of its own


def test_a_bad_member_compute_is_refused_naming_the_member(tmp_path):
    with pytest.raises(Exception, match=r"members\[0\]\.compute: must be one of eager, compiled, bf16, fp16, "
                                        r"got 'float8'"):
        parse_config({"members": [{"model": "./x.th", "compute": "float8"}]}, tmp_path / "c.toml")


def test_a_member_in_bf16_is_refused_where_the_cpu_would_emulate_it(tmp_path, monkeypatch):
    import demix.compute

    monkeypatch.delenv(ALLOW_EMULATED_BF16, raising=False)
    monkeypatch.setattr(demix.compute, "cpu_has_native_bf16", lambda: False)
    from demix.load import load_ensemble

    with pytest.raises(DemixError, match=r'compute = "bf16" is refused'):
        load_ensemble(load_config(_config_with_two_members(tmp_path, "bf16")), tmp_path, "cpu", threads=False)


def _scnet_folder_with(tmp_path: Path, section: str, key: str, value) -> Path:
    data = yaml.safe_load(GRADER_SCNET_YAML)
    data[section][key] = value
    _, model = tiny_msst_model("scnet", GRADER_SCNET_YAML, tmp_path)
    return write_msst_model(tmp_path / "scnet", yaml.safe_dump(data), model.state_dict())


@pytest.mark.parametrize("section, key, value, message", [
    ("inference", "num_overlap", 0, r"inference\.num_overlap is 0; it must be a positive integer"),
    ("audio", "chunk_size", 1_000_000_000_000,
     r"audio\.chunk_size is 1000000000000, 22675737 s at 44100 Hz; a chunk of more than 600 s"),
    ("inference", "batch_size", -2, r"inference\.batch_size is -2; it must be a positive integer"),
    ("inference", "num_overlap", "4", r"inference\.num_overlap is '4'; it must be a positive integer"),
    ("inference", "num_overlap", 40000, r"inference\.num_overlap is 40000, more than chunk_size 32768"),
])
def test_inference_values_msst_would_fail_on_are_refused_when_the_member_is_built(tmp_path, section, key, value,
                                                                                 message):
    folder = _scnet_folder_with(tmp_path, section, key, value)
    config = parse_config({"members": [{"name": "m", "model": str(folder)}]}, tmp_path / "c.toml")
    with pytest.raises(WeightsError, match=rf"{folder / 'config.yaml'}: {message}"):
        load_member(config.members[0], tmp_path, config.seed)


def test_a_config_option_that_breaks_the_inference_is_named_as_the_config_s(tmp_path):
    _, model = tiny_msst_model("scnet", GRADER_SCNET_YAML, tmp_path)
    folder = write_msst_model(tmp_path / "scnet", GRADER_SCNET_YAML, model.state_dict())
    config = parse_config({"members": [{"name": "m", "model": str(folder), "num_overlap": 99999}]},
                          tmp_path / "c.toml")
    with pytest.raises(WeightsError, match=r"inference\.num_overlap \(set by the config's member option "
                                           r"num_overlap\) is 99999, more than chunk_size 32768"):
        load_member(config.members[0], tmp_path, config.seed)


@pytest.mark.slow
def test_separate_refuses_a_broken_yaml_with_exit_1_and_no_traceback(tmp_path, mixture_wav):
    folder = _scnet_folder_with(tmp_path, "inference", "num_overlap", 0)
    config = tmp_path / "c.toml"
    config.write_text(f'[separation]\ncompute = "eager"\n\n[[members]]\nmodel = "{folder}"\n')
    result = subprocess.run([sys.executable, "-m", "demix", "separate", str(mixture_wav), "-o", str(tmp_path / "out"),
                             "--config", str(config)], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{folder / 'config.yaml'}: inference.num_overlap is 0; it must be a positive integer" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the check runs for real instead")
def test_the_gpu_check_skips_cleanly_without_cuda():
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=PROJECT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gpu_check: skipped: no CUDA device here (torch.cuda.is_available() is False)"
