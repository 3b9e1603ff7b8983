"""`python -m demix separate` end to end on real audio, with bad inputs mixed in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demix import SAMPLE_RATE, TARGETS
from demix.compute import ALLOW_EMULATED_BF16, cpu_has_native_bf16

from evaluation.scores import global_sdr

PROJECT = Path(__file__).resolve().parents[1]


def run_demix(*args):
    return subprocess.run([sys.executable, "-m", "demix", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory, user_config, stem_files, track):
    """One run over both real excerpts, a 48 kHz mono FLAC, and three bad files."""
    songs = tmp_path_factory.mktemp("inputs")
    mono = songs / "mono at 48k.flac"
    import julius
    import torch

    mono_audio = julius.resample_frac(torch.from_numpy(track[1]["mixture"][0]), SAMPLE_RATE, 48000).numpy()
    sf.write(mono, mono_audio, 48000, subtype="PCM_24")
    (songs / "empty.wav").write_bytes(b"")
    (songs / "notes.mp3").write_text("not audio\n" * 100)
    sf.write(songs / "surround.wav", np.zeros((4410, 6), np.float32), SAMPLE_RATE)
    inputs = [*stem_files, songs / "empty.wav", mono, songs / "notes.mp3", songs / "surround.wav"]
    out = tmp_path_factory.mktemp("out")
    result = run_demix("separate", *inputs, "-o", out, "--config", user_config, "--device", "cpu")
    return result, out, mono


def test_good_songs_are_separated_despite_bad_ones(run, tracks):
    result, out, _ = run
    assert result.returncode == 1, result.stderr
    assert "3 failed" in result.stdout
    for name, stems in tracks.items():
        for target in TARGETS:
            data, rate = sf.read(out / name / f"{target}.wav", dtype="float32")
            assert rate == SAMPLE_RATE and data.shape == stems["mixture"].T.shape
            assert np.isfinite(data).all()
        total = sum(sf.read(out / name / f"{t}.wav", dtype="float32")[0] for t in TARGETS)
        # the Wiener post-filter distributes the whole mixture over the four stems
        assert global_sdr(stems["mixture"].T, total) > 30


def test_each_bad_file_is_named_with_its_problem(run):
    result, out, _ = run
    assert "empty.wav: not a readable audio file" in result.stderr
    assert "notes.mp3: not a readable audio file" in result.stderr
    assert "surround.wav: has 6 channels" in result.stderr
    assert not (out / "empty").exists() and not (out / "surround").exists()


def test_mono_48k_in_gives_mono_48k_stems_of_the_same_length(run):
    _, out, mono = run
    info = sf.info(mono)
    for target in TARGETS:
        stem = sf.info(out / mono.stem / f"{target}.wav")
        assert (stem.samplerate, stem.channels, stem.frames) == (48000, 1, info.frames)


def test_a_second_run_resumes_and_skips_finished_songs(run, user_config, stem_files):
    _, out, _ = run
    before = (out / stem_files[0].name.replace(".stem.mp4", "") / "vocals.wav").stat().st_mtime_ns
    result = run_demix("separate", stem_files[0], "-o", out, "--config", user_config)
    assert result.returncode == 0 and "1 skipped" in result.stdout
    assert (out / stem_files[0].name.replace(".stem.mp4", "") / "vocals.wav").stat().st_mtime_ns == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder(tmp_path, user_config, mixture_wav):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_demix("separate", mixture_wav, "-o", locked, "--config", user_config)
    assert result.returncode == 1 and "cannot write output here" in result.stderr


def test_output_folder_that_is_a_file(tmp_path, user_config, mixture_wav):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    result = run_demix("separate", mixture_wav, "-o", blocker, "--config", user_config)
    assert result.returncode == 1 and "cannot write output here" in result.stderr
    assert blocker.read_text().startswith("a file")


def test_info_shows_members_files_and_blend(user_config, user_models):
    result = run_demix("info", "--config", user_config)
    assert result.returncode == 0, result.stderr
    assert str(user_models["demucs"]) in result.stdout and str(user_models["umx"]) in result.stdout
    assert "vocals  demucs 0.600, umx 0.400" in result.stdout
    assert "Wiener post-filter: 1 EM iteration(s)" in result.stdout


def test_default_config_without_weights_says_what_to_fetch(tmp_path, mixture_wav):
    result = run_demix("separate", mixture_wav, "-o", tmp_path / "out", "--models", tmp_path / "empty_models")
    assert result.returncode == 1
    assert "955717e8-8726e21a.th" in result.stderr and "python -m demix weights fetch htdemucs" in result.stderr


BF16_REFUSED = 'compute = "bf16" is refused: this CPU has no native bfloat16 arithmetic'
needs_a_cpu_that_would_emulate_bf16 = pytest.mark.skipif(
    cpu_has_native_bf16(), reason="this CPU computes in bf16: nothing to refuse")


@needs_a_cpu_that_would_emulate_bf16
def test_bf16_where_the_cpu_would_emulate_it_is_refused_in_one_line(tmp_path, mixture_wav, monkeypatch):
    """Before any weights are read: the models folder is empty, yet the refusal comes first."""
    monkeypatch.delenv(ALLOW_EMULATED_BF16, raising=False)
    config = tmp_path / "bf16.toml"
    config.write_text('[separation]\ncompute = "bf16"\n\n[[members]]\nname = "htdemucs"\nmodel = "htdemucs"\n'
                      'weights = 1\n')
    result = run_demix("separate", mixture_wav, "-o", tmp_path / "out", "--config", config,
                       "--models", tmp_path / "empty_models", "--device", "cpu")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {BF16_REFUSED}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'Use compute = "compiled"' in result.stderr and f"{ALLOW_EMULATED_BF16}=1" in result.stderr
    assert not (tmp_path / "out").exists()


@needs_a_cpu_that_would_emulate_bf16
def test_info_names_the_members_then_the_bf16_refusal(tmp_path, user_config, user_models, monkeypatch):
    monkeypatch.delenv(ALLOW_EMULATED_BF16, raising=False)
    config = tmp_path / "bf16.toml"
    config.write_text(user_config.read_text().replace('compute = "eager"', 'compute = "bf16"'))
    result = run_demix("info", "--config", config)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(user_models["demucs"]) in result.stdout
    assert f"the ensemble cannot be loaded here:\n  {BF16_REFUSED}" in result.stdout
