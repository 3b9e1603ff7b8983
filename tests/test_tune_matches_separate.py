"""The score ``python -m evaluation tune`` reports for the weights it chose
is the score of separating the same tracks with the config it writes,
through the real separate path (issue 19: tuning once scored a pipeline of
its own, normalised and post-filtered differently from the one that ships).

Real audio: the stempeg example (6.1 s) in a MUSDB18-HQ-shaped folder. The
tiny Demucs' stride makes the 5 s blocks 6 s, so the track has two blocks
(the second shorter than a second, hence padded) and a cross-fade. A
vocals-only member, a tiny MSST Mel-Band RoFormer (so tuning and separating
run an MSST family too), checks that a member gets no share of a target it
does not estimate. The original config, also compared, runs the Wiener
post-filter (1 iteration); the tuned one runs without it, so its score is
the grid's. museval takes most of the time (about ten seconds per run here),
so there is one track, a coarse grid and five runs: two grid points, the
original config, and separating with each config.

The same tuning is then run again through ``python -m evaluation tune`` with
the models taken away: the command line can only finish from the cache the
first run left, and it scores nothing again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import stempeg

from challenge.example import lay_out_stem_file
from conftest import MEL_BAND_ROFORMER_YAML, save_demucs_package, tiny_demucs_model, tiny_msst_model, write_msst_model
from demix import TARGETS
from demix.audio import stem_paths
from demix.config import load_config
from demix.ensemble import Ensemble
from demix.separate import separate_file
from evaluation.dataset import open_tracks
from evaluation.tune import PLAN_FILE, SCORES_FOLDER, median_sdr_per_target, tune

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def setup(tmp_path):
    root = tmp_path / "musdb18hq"
    lay_out_stem_file(Path(stempeg.example_stem_path()), root / "test")
    models = tmp_path / "models"
    save_demucs_package(tiny_demucs_model(seed=3), models / "demucs.th")
    _, vocals_model = tiny_msst_model("mel_band_roformer", MEL_BAND_ROFORMER_YAML, tmp_path, seed=4)
    write_msst_model(models / "mel_vocals", MEL_BAND_ROFORMER_YAML, vocals_model.state_dict())
    config = models / "ensemble.toml"
    config.write_text('[separation]\nblock_seconds = 5\noverlap_seconds = 1\nwiener_iterations = 1\n'
                      'compute = "eager"\n\n'
                      '[[members]]\nname = "demucs"\nmodel = "./demucs.th"\nweights = 0.6\n\n'
                      '[[members]]\nname = "mel"\nmodel = "./mel_vocals"\nweights = { vocals = 0.4 }\n')
    return root, models, config, tmp_path / "tuning"


def tune_command_line(root, track_name, config, models, out):
    """``python -m evaluation tune`` as a user types it, with the in-process call's settings."""
    arguments = ("tune", "--root", root, "--subset", "test", "--tracks", track_name, "--config", config,
                 "--models", models, "--out", out, "--steps", 1, "--wiener", 0, "--workers", 2)
    return subprocess.run([sys.executable, "-m", "evaluation", *map(str, arguments)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=900)


def separate_and_score(config_path, models, tracks, out):
    """``python -m demix separate``'s path (a file in, stems on disk) scored as tune scores."""
    ensemble = Ensemble.from_config(load_config(config_path), models)
    per_track = []
    for track in tracks:
        destinations = stem_paths(out / track.name)
        separate_file(ensemble, track.path, destinations)
        estimates = {t: sf.read(destinations[t], dtype="float32", always_2d=True)[0] for t in TARGETS}
        per_track.append(median_sdr_per_target(track, estimates))
    return {t: float(np.nanmedian([scores[t] for scores in per_track])) for t in TARGETS}


def test_tuned_score_is_the_score_of_separating_with_the_tuned_config(setup, tmp_path):
    root, models, config, out = setup
    tracks = open_tracks(root, "test")
    path, scores = tune(config, models, tracks, out, steps=1, wiener_candidates=(0,), workers=1,
                        log=lambda _: None)
    plan = json.loads((out / "cache" / "demucs" / tracks[0].name / PLAN_FILE).read_text())
    assert plan["length"] > plan["block"] and plan["overlap"] > 0  # two blocks, cross-faded

    tuned = load_config(path)
    assert tuned.wiener_iterations == 0 and scores["museval_runs"] == 2 + 1
    mel = next(member for member in tuned.members if member.name == "mel")
    assert all(mel.shares[t] == 0.0 for t in TARGETS if t != "vocals")  # no share of what it cannot estimate

    separated = separate_and_score(path, models, tracks, tmp_path / "tuned")
    differences = {t: abs(scores["tuned"][t] - separated[t]) for t in TARGETS}
    print(f"tuned config, no Wiener: |tune - separate| in dB: {differences}")
    assert max(differences.values()) < 0.01, (scores["tuned"], separated)

    original = separate_and_score(config, models, tracks, tmp_path / "original")
    differences = {t: abs(scores["default"][t] - original[t]) for t in TARGETS}
    print(f"original config, 1 Wiener iteration: |tune - separate| in dB: {differences}")
    assert max(differences.values()) < 0.01, (scores["default"], original)

    # the command line again, models taken away: it can only finish from the cache and the kept scores
    track = tracks[0].name
    cache = out / "cache"
    cached = sorted(cache.rglob("*.wav"))
    blocks = len(list((cache / "demucs" / track).glob("block-*")))
    assert blocks == 2 and len(cached) == blocks * (len(TARGETS) + 1)  # per block: Demucs' four, the RoFormer's vocals
    cached += sorted(cache.rglob(PLAN_FILE))
    kept_scores = sorted((out / SCORES_FOLDER).glob("*.json"))
    assert [file.name for file in kept_scores] == [f"{track}.json"]
    cached += kept_scores
    stamps = [file.stat().st_mtime_ns for file in cached]
    written = path.read_text()
    weights = ("demucs.th", "mel_vocals/model.ckpt")  # the RoFormer's YAML stays: it tells its family
    away = tmp_path / "weights-away"
    away.mkdir()
    for name in weights:
        (models / name).rename(away / Path(name).name)
    try:
        again = tune_command_line(root, track, config, models, out)
    finally:
        for name in weights:
            (away / Path(name).name).rename(models / name)
    assert again.returncode == 0, again.stderr
    # no model ran and no blend was scored again (each score written rewrites its track's file)
    assert [file.stat().st_mtime_ns for file in cached] == stamps
    assert "museval: 0 track runs, 4 answered" in again.stdout + again.stderr
    assert path.read_text() == written
