"""Evaluation on MUSDB18-shaped folders built from the real excerpts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from challenge.example import lay_out_stem_file
from demix import TARGETS
from evaluation.dataset import open_tracks
from evaluation.oracles import oracle_estimates
from evaluation.run import score_file

from conftest import ORACLE_RUN_MEMBER, ORACLE_RUN_METHODS, RAY_ENV, ROCK, ROCK_FILE, SHARED_DATA

PROJECT = Path(__file__).resolve().parents[1]
#: museval's own scores of seeded random estimates of 80s Rock, kept beside the excerpt.
REFERENCE = SHARED_DATA / f"{ROCK}.museval-random-estimates.json" if SHARED_DATA else None


@pytest.fixture(scope="module")
def hq_root(tmp_path_factory, stem_files) -> Path:
    """A MUSDB18-HQ-shaped root: test/<track>/{mixture,bass,drums,other,vocals}.wav."""
    root = tmp_path_factory.mktemp("musdb18hq")
    for stem_file in stem_files:
        lay_out_stem_file(stem_file, root / "test")
    return root


def run_cli(*args, **popen):
    return subprocess.run([sys.executable, "-m", "evaluation", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True, **popen)


@pytest.mark.second_track
@pytest.mark.skipif(not (REFERENCE and REFERENCE.is_file() and ROCK_FILE.is_file()), reason=(
    f"needs {REFERENCE or 'the excerpts folder ($DEMIX_TEST_EXCERPTS)'} and 80s Rock's .stem.mp4 beside it: "
    "museval's scores of seeded random estimates of the MUSDB18-7 preview, which a plain clone does not have"))
def test_museval_reference_is_reproduced(tmp_path):
    import museval

    (tmp_path / "train").mkdir()
    shutil.copy(ROCK_FILE, tmp_path / "train")
    track = open_tracks(tmp_path, "train", names=[ROCK])[0]
    np.random.seed(0)
    estimates = {"vocals": np.random.random(track.audio.shape), "accompaniment": np.random.random(track.audio.shape)}
    scores = json.loads(museval.eval_mus_track(track, estimates).json)
    reference = json.loads(REFERENCE.read_text())
    for ours, theirs in zip(scores["targets"], reference["targets"]):
        assert ours["name"] == theirs["name"]
        for frame, expected in zip(ours["frames"], theirs["frames"]):
            for metric, value in expected["metrics"].items():
                assert frame["metrics"][metric] == pytest.approx(value, abs=0.05), (ours["name"], metric)


@pytest.mark.parametrize("kind, floor", [("irm", 5.0), ("ibm", 3.0), ("mpi", 5.0), ("irm-complex", 5.0)])
def test_oracles_are_near_the_truth(track, kind, floor):
    from evaluation.scores import global_sdr

    stems = {t: track[1][t].T for t in TARGETS}
    mixture = track[1]["mixture"].T
    estimates = oracle_estimates(kind, mixture, stems)
    scores = {t: global_sdr(stems[t], estimates[t]) for t in TARGETS}
    assert all(estimates[t].shape == mixture.shape for t in TARGETS)
    assert np.mean(list(scores.values())) > floor, scores


def test_scores_equal_museval_called_directly(oracle_runs):
    """The shared ``run`` of the oracles (conftest.oracle_runs): its score file
    of a track holds what museval gives for that oracle called directly."""
    import museval

    root, out = oracle_runs
    track = open_tracks(root, "test")[0]
    stems = {t: track.targets[t].audio for t in TARGETS}
    direct = json.loads(museval.eval_mus_track(track, oracle_estimates("irm", track.audio, stems)).json)
    assert json.loads(score_file(out, "irm", track.name).read_text())["museval"] == direct
    assert (out / "estimates" / "irm" / track.name / "vocals.wav").is_file()


def test_two_workers_end_to_end_and_the_oracle_beats_a_member(oracle_runs, tmp_path):
    """The shared run (conftest.oracle_runs: two workers, two oracles and a
    member of the user-trained ensemble over two tracks), then ``report`` on a copy."""
    root, shared = oracle_runs
    table = pd.read_csv(shared / "results.csv")
    tracks = {path.name for path in (root / "test").iterdir()}
    methods = {*ORACLE_RUN_METHODS, ORACLE_RUN_MEMBER}
    assert set(table["track"]) == tracks and set(table["target"]) == set(TARGETS)
    assert set(table["method"]) == methods
    assert set(table["metric"]) == {"SDR", "SIR", "ISR", "SAR", "global_SDR"}
    assert len(table) == len(tracks) * len(methods) * 4 * 5
    summary = pd.read_csv(shared / "summary.csv").set_index(["method", "target"])
    for target in TARGETS:
        assert summary.loc[("irm", target), "SDR"] > summary.loc[(ORACLE_RUN_MEMBER, target), "SDR"] + 3
        assert summary.loc[("irm", target), "global_SDR"] > summary.loc[(ORACLE_RUN_MEMBER, target), "global_SDR"]
    log = (shared.parent / "run.log").read_text()
    assert "irm" in log and ORACLE_RUN_MEMBER in log and "tables:" in log

    out = tmp_path / "results"
    shutil.copytree(shared, out, ignore=shutil.ignore_patterns("estimates"))
    report = run_cli("report", out, "--no-page")
    assert report.returncode == 0, report.stderr
    markdown = (out / "report.md").read_text()
    assert "| irm |" in markdown and f"| {ORACLE_RUN_MEMBER} |" in markdown
    # columns in TARGETS order (bass, drums, other, vocals), then the mean
    assert "| *UMXHQ: published, 50 test tracks* | 5.07 | 6.04 | 4.28 | 6.25 | 5.41 | – |" in markdown
    png = (out / "sdr_boxplot.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_a_killed_run_resumes_without_recomputing(tmp_path, hq_root):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "evaluation", "run", "--root", str(hq_root), "--method", "ibm",
               "--workers", "1", "--out", str(out)]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "scores").glob("*/*.json")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the whole run, workers included, mid-way
    process.wait()
    finished = {path: path.stat().st_mtime_ns for path in (out / "scores").glob("*/*.json")}
    assert len(finished) == 1  # of the two tracks
    completed = run_cli("run", "--root", hq_root, "--method", "ibm", "--workers", 1, "--out", out)
    assert completed.returncode == 0, completed.stderr
    assert "1 of 2 (method, track) scores already done: kept" in completed.stdout + completed.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    assert len(list((out / "scores").glob("*/*.json"))) == 2
    umask = os.umask(0)
    os.umask(umask)
    for table in ("results.csv", "summary.csv"):  # the mode a plain open() gives, not mkstemp's 0600
        assert (out / table).stat().st_mode & 0o777 == 0o666 & ~umask


def test_bad_root_and_unknown_method_are_named(tmp_path, hq_root):
    completed = run_cli("run", "--root", tmp_path / "absent")
    assert completed.returncode == 1 and "no test/ folder here" in completed.stderr
    completed = run_cli("run", "--root", hq_root, "--method", "irn")
    assert completed.returncode == 1 and "unknown methods ['irn']" in completed.stderr


def test_tuning_finds_the_weights_that_are_best_by_construction(tmp_path, hq_root, user_config):
    """Cached estimates of known quality: member "demucs" is nearly right on
    vocals and bass and noise elsewhere, member "umx" the other way round."""
    from demix import SAMPLE_RATE
    from demix.config import load_config
    from demix.ensemble import BlockPlan
    from evaluation.tune import cache_key, tune, write_member_cache

    tracks = open_tracks(hq_root, "test")[:1]
    for track in tracks:  # museval runs per candidate: 3 s of one track keeps this quick
        track.chunk_start, track.chunk_duration = 0.0, 3.0
    rng = np.random.default_rng(0)
    good_for = {"demucs": ("vocals", "bass"), "umx": ("drums", "other")}
    key = cache_key(load_config(user_config))
    for member, targets in good_for.items():
        for track in tracks:
            # one block (the config's 5 s are longer than the track), so the cache is the track itself
            plan = BlockPlan(track.audio.shape[0], 5 * SAMPLE_RATE, SAMPLE_RATE)
            estimates = {}
            for target in TARGETS:
                truth = track.targets[target].audio
                noise = rng.standard_normal(truth.shape) * (0.01 if target in targets else 1.0) * truth.std()
                estimates[target] = (truth + noise).T.astype(np.float32)
            write_member_cache(tmp_path / "cache" / member / track.name, plan, TARGETS, [estimates], key)
    path, scores = tune(user_config, tmp_path / "no-models", tracks, tmp_path, steps=2, wiener_candidates=(0,),
                        workers=2, log=lambda _: None)
    assert scores["weights"]["vocals"] == [1.0, 0.0] and scores["weights"]["bass"] == [1.0, 0.0]
    assert scores["weights"]["drums"] == [0.0, 1.0] and scores["weights"]["other"] == [0.0, 1.0]
    assert np.mean(list(scores["tuned"].values())) > np.mean(list(scores["default"].values())) + 3

    tuned = load_config(path)
    assert tuned.members[0].shares["vocals"] == 1.0 and tuned.members[1].shares["drums"] == 1.0
    assert tuned.wiener_iterations == scores["wiener_iterations"]
    assert "the original config on the same tracks" in path.read_text()
    # museval ran for the 3 grid points and the original config (1 Wiener iteration); the chosen
    # weights at 0 iterations were the grid's scores
    assert scores["museval_runs"] == 3 + 1

    # a second run with one more candidate scores only that one, and chooses from the same scores
    _, again = tune(user_config, tmp_path / "no-models", tracks, tmp_path, steps=2, wiener_candidates=(0, 1),
                    workers=1, log=lambda _: None)
    assert again["museval_runs"] == 1
    assert again["weights"] == scores["weights"] and again["default"] == scores["default"]
    assert again["by_wiener_iterations"][0] == scores["by_wiener_iterations"][0]
    assert again["wiener_iterations"] == load_config(Path(path)).wiener_iterations


def test_a_run_on_a_local_ray_cluster(tmp_path, hq_root, ray_cluster):
    """The session's Ray cluster on the loopback address (conftest.py: a head and a second node)."""
    out = tmp_path / "out"
    completed = run_cli("run", "--root", hq_root, "--method", "irm", "--ray", ray_cluster, "--out", out, env=RAY_ENV)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(list((out / "scores" / "irm").glob("*.json"))) == len(list((hq_root / "test").iterdir()))
    assert "irm" in pd.read_csv(out / "summary.csv")["method"].tolist()
