"""Both grader protocols end to end, and the local grader's judgement."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demix import TARGETS
from challenge import grader
from challenge.example import lay_out_stem_file
from evaluation.scores import global_sdr

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory, stem_files) -> Path:
    folder = tmp_path_factory.mktemp("grader") / "test"
    for stem_file in stem_files:
        lay_out_stem_file(stem_file, folder)
    return folder


def song_dirs(test_dir):
    return sorted(path for path in test_dir.iterdir() if path.is_dir())


def run_test_py(*args, env=None, cwd=PROJECT):
    return subprocess.run([sys.executable, str(PROJECT / "test.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_global_sdr_by_hand():
    reference = np.array([[3.0, 4.0], [0.0, 0.0]])
    estimate = np.array([[3.0, 3.0], [0.0, 0.0]])
    assert global_sdr(reference, estimate) == pytest.approx(10 * math.log10((25 + 1e-7) / (1 + 1e-7)))
    assert global_sdr(reference, reference) == pytest.approx(10 * math.log10((25 + 1e-7) / 1e-7))


@pytest.fixture(scope="module")
def protocol_runs(tmp_path_factory, test_dir, user_config_with_msst):
    """test.py in each protocol on both real songs, grading a blend of a tiny MSST
    SCNet, a tiny Demucs and a tiny Open-Unmix (conftest's ``user_config_with_msst``)."""
    runs = {}
    for protocol in ("mdx21", "sdx23"):
        results = tmp_path_factory.mktemp(protocol)
        completed = run_test_py("--protocol", protocol, "--data", test_dir, "--results", results,
                                "--config", user_config_with_msst, "--time-factor", "20")
        runs[protocol] = (completed, json.loads((results / "grader_report.json").read_text()), results)
    return runs


@pytest.mark.parametrize("protocol", ["mdx21", "sdx23"])
def test_protocol_end_to_end_on_real_audio(protocol_runs, test_dir, protocol):
    completed, report, results = protocol_runs[protocol]
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert report["passed"] and report["setup_error"] is None
    assert [song["name"] for song in report["songs"]] == [p.name for p in song_dirs(test_dir)]
    for song in report["songs"]:
        assert song["status"] == "ok" and song["problems"] == []
        assert song["limit"] == pytest.approx(20 * song["duration"])
        assert set(song["scores"]) == set(TARGETS) and all(np.isfinite(list(song["scores"].values())))
        mixture = sf.info(test_dir / song["name"] / "mixture.wav")
        for target in TARGETS:
            stem = sf.info(results / song["name"] / f"{target}.wav")
            assert (stem.frames, stem.channels, stem.samplerate) == (mixture.frames, mixture.channels,
                                                                    mixture.samplerate)
    assert "mean global SDR over scored songs" in completed.stdout


def test_both_protocols_score_the_same(protocol_runs):
    mdx, sdx = protocol_runs["mdx21"][1], protocol_runs["sdx23"][1]
    for mdx_song, sdx_song in zip(mdx["songs"], sdx["songs"]):
        for target in TARGETS:
            assert mdx_song["scores"][target] == pytest.approx(sdx_song["scores"][target], abs=1e-3)


#: Smallest difference asked, in every target, between a stem the grader scored and the
#: same song through the same config without the MSST member. Measured (MSST's share a third):
#: 0.015 (drums) to 0.039 (bass) on Falcon 69, the shorter song; 0.018 to 0.044 on 80s Rock;
#: the scored stems differ from this process's run of the graded config by 0 (mdx21's float
#: WAV) and 3e-5 (sdx23's 16-bit WAV).
MSST_CHANGES_STEMS_BY = 5e-3


def test_the_msst_member_is_in_the_blend_the_grader_scored(protocol_runs, test_dir, user_config,
                                                           user_config_with_msst, monkeypatch, tmp_path):
    """The predictor the graders run, set up on the graded config, holds the MSST
    member as msst's SCNet (normalising by the song's statistics) with a third of
    every target; and the stems both protocols scored are not those of the same
    config without it (``user_config``: Demucs and Open-Unmix alone)."""
    from msst.models.scnet import SCNet

    from demix.config import load_config
    from demix.ensemble import Ensemble
    from demix.members import MsstMember
    from demix.separate import separate_file
    from predict import DemixPredictor

    monkeypatch.setenv("DEMIX_CONFIG", str(user_config_with_msst))
    predictor = DemixPredictor()
    predictor.prediction_setup()
    members = {member.name: member for member in predictor.ensemble.members}
    assert sorted(members) == ["demucs", "scnet", "umx"]
    scnet = members["scnet"]
    assert isinstance(scnet, MsstMember) and scnet.family == "scnet" and type(scnet.model) is SCNet
    assert scnet.targets == TARGETS and scnet.needs_song_statistics
    for target in TARGETS:
        assert predictor.ensemble.shares[target]["scnet"] == pytest.approx(1 / 3)

    song = min(song_dirs(test_dir), key=lambda path: sf.info(path / "mixture.wav").frames)  # the cheaper one
    plain = Ensemble.from_config(load_config(user_config), tmp_path)
    assert sorted(member.name for member in plain.members) == ["demucs", "umx"]
    without = separate_file(plain, song / "mixture.wav", {t: tmp_path / f"{t}.wav" for t in TARGETS})
    for protocol, (_, _, results) in protocol_runs.items():
        apart = {}
        for target in TARGETS:
            scored, _ = sf.read(results / song.name / f"{target}.wav", dtype="float32", always_2d=True)
            plain_stem, _ = sf.read(without[target], dtype="float32", always_2d=True)
            apart[target] = float(np.abs(scored - plain_stem).max())
        print(protocol, song.name, "scored vs without the MSST member:", apart)
        assert min(apart.values()) >= MSST_CHANGES_STEMS_BY, (protocol, apart)


def _grade(test_dir, results, submission, limit=240.0, setup_limit=60.0, protocol="mdx21"):
    return grader.grade(protocol, test_dir, [p.name for p in song_dirs(test_dir)], results, setup_limit=setup_limit,
                        per_song_limit=limit, submission=f"grader_predictors:{submission}",
                        wrapper=PROJECT / "my_submission" / "aicrowd_wrapper.py", log=lambda _: None)


def test_scores_are_the_global_sdr_of_what_was_written(tmp_path, test_dir):
    result = _grade(test_dir, tmp_path, "QuarterPredictor")
    assert result.passed
    for song in result.songs:
        mixture, _ = sf.read(test_dir / song.name / "mixture.wav", dtype="float32")
        for target in TARGETS:
            reference, _ = sf.read(test_dir / song.name / f"{target}.wav", dtype="float32")
            by_hand = 10 * np.log10((np.sum(reference.astype(np.float64) ** 2) + 1e-7)
                                    / (np.sum((reference.astype(np.float64) - mixture / 4) ** 2) + 1e-7))
            assert song.scores[target] == pytest.approx(by_hand, abs=1e-4)
        assert song.score == pytest.approx(np.mean([song.scores[t] for t in TARGETS]))
    assert result.mean_score == pytest.approx(np.mean([song.score for song in result.songs]))


def test_a_song_over_its_limit_is_stopped_and_the_run_goes_on(tmp_path, test_dir, monkeypatch):
    slow = song_dirs(test_dir)[0].name
    monkeypatch.setenv("MISBEHAVE_SONG", slow)
    result = _grade(test_dir, tmp_path, "SlowPredictor", limit=4.0)
    by_name = {song.name: song for song in result.songs}
    assert by_name[slow].status == "timeout" and by_name[slow].seconds < 30
    others = [song for song in result.songs if song.name != slow]
    assert others and all(song.status == "ok" and song.scores for song in others)
    assert not result.passed
    assert "timeout" in grader.format_table(result)


def test_a_song_that_raises_leaves_the_others_scored(tmp_path, test_dir, monkeypatch):
    bad = song_dirs(test_dir)[0].name
    monkeypatch.setenv("MISBEHAVE_SONG", bad)
    result = _grade(test_dir, tmp_path, "RaisingPredictor")
    by_name = {song.name: song for song in result.songs}
    assert by_name[bad].status == "error" and "model exploded on this song" in by_name[bad].error
    assert all(song.scores for song in result.songs if song.name != bad)


def test_wrong_length_and_nan_outputs_are_caught(tmp_path, test_dir, monkeypatch):
    bad = song_dirs(test_dir)[-1].name
    monkeypatch.setenv("MISBEHAVE_SONG", bad)
    result = _grade(test_dir, tmp_path, "BadOutputPredictor")
    song = {song.name: song for song in result.songs}[bad]
    assert song.status == "invalid" and song.scores is None
    assert any("vocals.wav has" in problem and "samples" in problem for problem in song.problems)
    assert any("drums.wav contains NaN" in problem for problem in song.problems)


def test_sdx_runs_through_the_wrapper_and_its_key_check(tmp_path, test_dir, monkeypatch):
    good = _grade(test_dir, tmp_path / "good", "QuarterSeparationModel", protocol="sdx23")
    assert good.passed and all(song.scores for song in good.songs)
    song = good.songs[0]
    assert sf.info(tmp_path / "good" / song.name / "vocals.wav").subtype == "PCM_16"  # the wrapper wrote it
    monkeypatch.setenv("MISBEHAVE_SONG", "any")
    bad = _grade(test_dir, tmp_path / "bad", "WrongKeysSeparationModel", protocol="sdx23")
    assert not bad.passed
    assert all(song.status == "error" and "All instrument not present" in song.error for song in bad.songs)


def test_setup_over_its_limit_fails_the_run(tmp_path, test_dir):
    result = _grade(test_dir, tmp_path, "SlowSetupPredictor", setup_limit=3.0)
    assert "setup took longer than its limit of 3 s" in result.setup_error
    assert not result.passed and all(song.status == "error" for song in result.songs)


def test_mdx_base_run_follows_the_grader_variables(tmp_path, test_dir, monkeypatch):
    from grader_predictors import QuarterPredictor

    only = song_dirs(test_dir)[-1].name
    monkeypatch.setenv("TEST_DATASET_PATH", str(test_dir))
    monkeypatch.setenv("RESULTS_DATASET_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("PARTIAL_RUN_MUSIC_NAMES", only)
    QuarterPredictor().run()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [only]
    mixture, _ = sf.read(test_dir / only / "mixture.wav", dtype="float32")
    vocals, _ = sf.read(tmp_path / "results" / only / "vocals.wav", dtype="float32")
    assert np.allclose(vocals, mixture / 4)


@pytest.mark.parametrize("shape", [(44100 * 3, 2), (44100 * 3,), (44100 * 3, 1)])
def test_sdx_adapter_keys_and_shapes(monkeypatch, user_config, track, shape):
    monkeypatch.setenv("DEMIX_CONFIG", str(user_config))
    from my_submission.user_config import MySeparationModel

    model = MySeparationModel()
    assert sorted(model.instruments) == sorted(TARGETS)
    mixture = track[1]["mixture"].T[: shape[0]].astype(np.float64)
    mixture = mixture[:, 0] if len(shape) == 1 else mixture[:, : shape[1]]
    separated, rates = model.separate_music_file(mixture, 44100)
    assert sorted(separated) == sorted(TARGETS) and rates == dict.fromkeys(TARGETS, 44100)
    for target in TARGETS:
        assert separated[target].shape == mixture.shape and separated[target].dtype == np.float64
        assert np.isfinite(separated[target]).all()
    with pytest.raises(NameError, match="6 channels"):
        model.separate_music_file(np.zeros((1000, 6)), 44100)


def test_test_py_without_weights_says_which_and_how(tmp_path):
    default = PROJECT / "demix" / "default.toml"  # whatever my_submission/config.toml a participant has
    completed = run_test_py(cwd=tmp_path, env={"DEMIX_MODELS": str(tmp_path / "no_models"), "DEMIX_CONFIG": str(default)})
    assert completed.returncode == 1
    assert "955717e8-8726e21a.th" in completed.stdout and "python -m demix weights fetch" in completed.stdout
    # the bundled example was laid out on first use
    assert (tmp_path / "data" / "test" / "The Easton Ellises - Falcon 69" / "vocals.wav").is_file()


def test_test_py_exits_1_on_a_failed_song_and_follows_the_grader_variables(tmp_path, test_dir):
    """The limits come from the grader's variables (defaults 900 s and 240 s); a song that raises fails the run."""
    env = {"PYTHONPATH": str(PROJECT / "tests"), "MISBEHAVE_SONG": song_dirs(test_dir)[0].name}
    failed = run_test_py("--data", test_dir, "--results", tmp_path / "a", "--submission",
                         "grader_predictors:RaisingPredictor", env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    report = json.loads((tmp_path / "a" / "grader_report.json").read_text())
    assert [song["status"] for song in report["songs"]] == ["error", "ok"]
    assert all(song["limit"] == 240 for song in report["songs"]) and not report["passed"]
    passed = run_test_py("--data", test_dir, "--results", tmp_path / "b", "--submission",
                         "grader_predictors:QuarterPredictor",
                         env={**env, "INFERENCE_PER_MUSIC_TIMEOUT_SECONDS": "77"})
    assert passed.returncode == 0, passed.stdout + passed.stderr
    report = json.loads((tmp_path / "b" / "grader_report.json").read_text())
    assert all(song["limit"] == 77 for song in report["songs"]) and report["passed"]


def test_the_evaluator_reads_the_grader_limits_and_folders(monkeypatch, tmp_path):
    from evaluator.music_demixing import MusicDemixingPredictor

    for name in ("INFERENCE_SETUP_TIMEOUT_SECONDS", "INFERENCE_PER_MUSIC_TIMEOUT_SECONDS", "TEST_DATASET_PATH",
                 "RESULTS_DATASET_PATH", "PARTIAL_RUN_MUSIC_NAMES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    predictor = MusicDemixingPredictor()
    assert (predictor.inference_setup_timeout, predictor.inference_per_music_timeout) == (900, 240)
    assert predictor.test_data_path == f"{tmp_path}/data/test/"
    assert predictor.results_data_path == f"{tmp_path}/data/results/"
    monkeypatch.setenv("INFERENCE_SETUP_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("INFERENCE_PER_MUSIC_TIMEOUT_SECONDS", "30")
    (tmp_path / "data" / "test" / "a").mkdir(parents=True)
    (tmp_path / "data" / "test" / "b").mkdir()
    (tmp_path / "data" / "test" / "notes.txt").write_text("not a song")
    monkeypatch.setenv("PARTIAL_RUN_MUSIC_NAMES", "b")
    predictor = MusicDemixingPredictor()
    assert (predictor.inference_setup_timeout, predictor.inference_per_music_timeout) == (60, 30)
    assert predictor.get_all_music_names() == ["b"]
    assert predictor.get_music_file_location("b").endswith("data/test/b/mixture.wav")
    assert predictor.get_music_file_location("b", "drums").endswith("data/results/b/drums.wav")
    assert (tmp_path / "data" / "results" / "b").is_dir()
