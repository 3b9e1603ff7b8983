"""What the README and docs/separating.md promise about `python -m demix separate` and `weights fetch --from`,
each checked from the command line on real audio."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import example_stem_file
from demix import SAMPLE_RATE, TARGETS
from evaluation.scores import global_sdr

PROJECT = Path(__file__).resolve().parents[1]
SECONDS = 4


def run_demix(*args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "demix", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=600)


def stems_of(folder: Path) -> dict[str, np.ndarray]:
    return {target: sf.read(folder / f"{target}.wav", dtype="float32", always_2d=True)[0] for target in TARGETS}


def without_network() -> tuple[str, ...]:
    """``unshare -n``: the command runs with no network interface at all (root only)."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True) if shutil.which("unshare") else None
    return ("unshare", "-n") if probe is not None and probe.returncode == 0 else ()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, track):
    folder = tmp_path_factory.mktemp("promises")
    mixture = track[1]["mixture"][:, : SAMPLE_RATE * SECONDS].T  # (frames, 2)
    mono = mixture.mean(axis=1)
    sf.write(folder / "mono.wav", mono, SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "doubled.wav", np.stack([mono, mono], axis=1), SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "silence.wav", np.zeros((SAMPLE_RATE * SECONDS, 2), np.float32), SAMPLE_RATE, subtype="PCM_16")
    sf.write(folder / "song.ogg", mixture, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    # the same NI stems file as .stem.m4a (MUSDB18's files are AAC in an MP4 container either way)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(example_stem_file()), "-map", "0", "-c", "copy",
                    str(folder / "other song.stem.m4a")], check=True)
    return folder


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, inputs, user_config):
    out = tmp_path_factory.mktemp("first")
    names = ("mono.wav", "doubled.wav", "silence.wav", "song.ogg", "other song.stem.m4a")
    result = run_demix("separate", *(inputs / name for name in names), "-o", out, "--config", user_config)
    assert result.returncode == 0, result.stderr
    assert "5 separated, 0 skipped, 0 failed" in result.stdout
    return out


def test_mono_stems_are_the_mean_of_the_stereo_stems(first_run):
    """Mono is separated as two equal channels and folded back by their mean."""
    mono, doubled = stems_of(first_run / "mono"), stems_of(first_run / "doubled")
    for target in TARGETS:
        assert mono[target].shape[1] == 1 and doubled[target].shape[1] == 2
        assert np.max(np.abs(mono[target][:, 0] - doubled[target].mean(axis=1))) <= 1e-5, target


def test_silence_in_gives_silence_out(first_run):
    for target, stem in stems_of(first_run / "silence").items():
        assert np.isfinite(stem).all() and np.max(np.abs(stem)) <= 1e-6, target


@pytest.mark.parametrize("name, decoded_with", [("song", "libsndfile"), ("other song", "ffmpeg")])
def test_ogg_and_stem_m4a_inputs_are_decoded_and_separated(first_run, inputs, name, decoded_with):
    """The stems add up to the input as its own decoder reads it (the post-filter keeps the mixture)."""
    if decoded_with == "libsndfile":
        decoded, rate = sf.read(inputs / "song.ogg", dtype="float32", always_2d=True)
    else:
        import stempeg  # reads the mixture stream through ffmpeg

        audio, rate = stempeg.read_stems(str(inputs / "other song.stem.m4a"), dtype=np.float32)
        decoded = audio[0]
    stems = stems_of(first_run / name)
    assert rate == SAMPLE_RATE and all(stem.shape == decoded.shape for stem in stems.values())
    assert global_sdr(decoded, sum(stems.values())) > 30


def test_the_same_input_gives_bit_identical_samples_in_another_process_offline(first_run, inputs, user_config,
                                                                            tmp_path):
    out = tmp_path / "again"
    result = run_demix("separate", inputs / "song.ogg", "-o", out, "--config", user_config, prefix=without_network())
    assert result.returncode == 0, result.stderr
    again, before = stems_of(out / "song"), stems_of(first_run / "song")
    for target in TARGETS:  # every sample; the files' headers differ (libsndfile's PEAK chunk has a timestamp)
        assert again[target].tobytes() == before[target].tobytes(), target


def test_format_and_overwrite(inputs, user_config, tmp_path):
    song = inputs / "mono.wav"
    first = run_demix("separate", song, "-o", tmp_path, "--config", user_config, "--format", "PCM_24")
    assert first.returncode == 0, first.stderr
    assert {sf.info(tmp_path / "mono" / f"{t}.wav").subtype for t in TARGETS} == {"PCM_24"}
    kept = run_demix("separate", song, "-o", tmp_path, "--config", user_config, "--format", "PCM_16")
    assert kept.returncode == 0 and "0 separated, 1 skipped" in kept.stdout
    assert {sf.info(tmp_path / "mono" / f"{t}.wav").subtype for t in TARGETS} == {"PCM_24"}
    redone = run_demix("separate", song, "-o", tmp_path, "--config", user_config, "--format", "PCM_16",
                       "--overwrite")
    assert redone.returncode == 0 and "1 separated, 0 skipped" in redone.stdout
    assert {sf.info(tmp_path / "mono" / f"{t}.wav").subtype for t in TARGETS} == {"PCM_16"}


def test_weights_fetch_from_a_mirror_names_what_it_lacks_and_refuses_damaged_copies(tmp_path):
    from demix.weights.catalogue import get_official

    mirror, models = tmp_path / "mirror", tmp_path / "models"
    mirror.mkdir()
    missing = run_demix("weights", "fetch", "umxhq", "--from", mirror, "--models", models)
    assert missing.returncode == 1
    files = get_official("umxhq").files
    assert all(Path(file.path).name in missing.stderr for file in files)
    assert str(mirror) in missing.stderr
    for file in files:  # the right names, the wrong bytes
        (mirror / file.path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / file.path).write_bytes(b"not the weights")
    damaged = run_demix("weights", "fetch", "umxhq", "--from", mirror, "--models", models)
    assert damaged.returncode == 1 and "sha256" in damaged.stderr
    assert not any(path.is_file() for path in models.rglob("*.pth"))
