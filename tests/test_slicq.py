"""The sliCQT oracles (evaluation/slicq_oracles.py) and the sliCQT search
(evaluation/slicq_search.py) on the real excerpts. The floors were measured
on the first 6 s of each (2026-12-07): the model's transform's MPI oracle
8.0 dB mean global SDR on Falcon 69, 10.8 dB on 80s Rock and 7.9 dB on the
rearranged Falcon 69 (where 80s Rock is absent), against 5.3, 6.1 and 5.3 dB
for a coarse one (bark, 24 bins); its IRM's estimates sum to the mixture
within 2.4e-7."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from demix import SAMPLE_RATE, TARGETS
from demix.errors import DemixError
from evaluation.scores import global_sdr
from evaluation.slicq_oracles import DEFAULT_SLICQ, SlicqParams, slice_length, slicq_oracle_estimates, transform

from conftest import STEM_ORDER

PROJECT = Path(__file__).resolve().parents[1]
#: The oracles' excerpts: the first seconds of each track.
SECONDS = 6.0
#: The commands' excerpts: shorter, since museval and worker start-up are what they spend.
COMMAND_SECONDS = 4.0
#: A transform of coarse resolution: 24 bark bins from 21.3 Hz (slices of 1588 samples).
COARSE = SlicqParams("bark", 24, 21.3)


def cut(stems: dict[str, np.ndarray], seconds: float) -> dict[str, np.ndarray]:
    """{"mixture"|target: (samples, channels)} of the first ``seconds``."""
    return {name: audio[:, :int(seconds * SAMPLE_RATE)].T for name, audio in stems.items()}


@pytest.fixture(scope="module")
def excerpts(tracks) -> dict[str, dict[str, np.ndarray]]:
    return {name: cut(stems, SECONDS) for name, stems in tracks.items()}


@pytest.fixture(scope="module")
def short_root(tmp_path_factory, tracks) -> Path:
    """Both excerpts as MUSDB18-HQ test tracks (16-bit WAV), cut to :data:`COMMAND_SECONDS`."""
    from demix.audio import write_wav_atomically

    root = tmp_path_factory.mktemp("slicq-musdb18hq")
    for name, stems in tracks.items():
        for stream, audio in cut(stems, COMMAND_SECONDS).items():
            write_wav_atomically(root / "test" / name / f"{stream}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    return root


def mean_sdr(stems: dict[str, np.ndarray], estimates: dict[str, np.ndarray]) -> float:
    return float(np.mean([global_sdr(stems[target], estimates[target]) for target in TARGETS]))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "evaluation", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True)


def test_the_mpi_oracle_of_the_model_s_transform_is_near_the_truth(excerpts):
    assert slice_length(DEFAULT_SLICQ) == transform(DEFAULT_SLICQ)[2].sllen == 18060  # as the package prints
    for name, audio in excerpts.items():
        stems = {target: audio[target] for target in TARGETS}
        estimates = slicq_oracle_estimates("slicq-mpi", audio["mixture"], stems)
        assert all(estimates[t].shape == audio["mixture"].shape and estimates[t].dtype == np.float32
                   for t in TARGETS)
        score = mean_sdr(stems, estimates)
        coarse = mean_sdr(stems, slicq_oracle_estimates("slicq-mpi", audio["mixture"], stems, COARSE))
        assert score > 7.0 and score > coarse + 2.0, (name, score, coarse)
        # the estimates have the mixture's phase and magnitudes Σ|S_k| >= |X|: their sum is the mixture
        # made louder where stems cancel (measured 1.29 x its energy on 80s Rock, 1.54 x on Falcon 69)
        total, mixture = sum(estimates.values()).astype(np.float64).ravel(), audio["mixture"].astype(np.float64).ravel()
        energy = total @ total / (mixture @ mixture)
        cosine = total @ mixture / np.sqrt((total @ total) * (mixture @ mixture))
        assert 1.0 < energy < 2.0 and cosine > 0.95, (name, energy, cosine)


def test_irm_estimates_sum_to_the_mixture(excerpts):
    for name, audio in excerpts.items():
        stems = {target: audio[target] for target in TARGETS}
        estimates = slicq_oracle_estimates("slicq-irm", audio["mixture"], stems)
        assert np.abs(sum(estimates.values()) - audio["mixture"]).max() < 2e-6, name
        assert mean_sdr(stems, estimates) > 7.0, name


@pytest.mark.parametrize("value, message", [
    ("bark,262", "expected SCALE,BINS,FMIN"),
    ("erb,262,32.9", "scale 'erb': choose one of bark, mel, cqlog"),
    ("bark,many,32.9", "BINS 'many' is not a whole number"),
    ("bark,1,32.9", "bins 1: must be at least 2"),
    ("bark,262,0", "fmin 0 Hz: must be above 0"),
    ("mel,100,30k", "FMIN '30k' is not a frequency in Hz"),
])
def test_a_bad_slicq_value_is_a_clear_error(value, message, capsys):
    from evaluation.__main__ import main

    with pytest.raises(SystemExit) as exit:
        main(["run", "--root", "unused", "--method", "slicq-mpi", "--slicq", value])
    assert exit.value.code == 2
    assert f"argument --slicq: --slicq '{value}': " in capsys.readouterr().err
    with pytest.raises(DemixError, match=message):
        SlicqParams.parse(value)


@pytest.mark.parametrize("option, value, message", [
    ("--scales", "bark,erb", "--scales bark,erb: choose among bark, mel, cqlog"),
    ("--bins", "300,10", "--bins 300,10: need 2 <= LO <= HI"),
    ("--fmin", "10", "--fmin '10': expected LO,HI"),
])
def test_a_bad_search_range_is_a_clear_error(option, value, message, tmp_path, capsys):
    from evaluation.__main__ import main

    code = None
    try:
        code = main(["slicq-search", "--root", str(tmp_path), "--out", str(tmp_path / "out"), option, value])
    except SystemExit as exit:
        code = exit.code
    assert code in (1, 2) and message in capsys.readouterr().err


def test_a_track_at_another_rate_is_named(tmp_path, capsys):
    import soundfile as sf

    from evaluation.__main__ import main
    from evaluation.dataset import open_tracks
    from evaluation.methods import SlicqOracleMethod

    noise = np.random.default_rng(0).standard_normal((4800, 2)).astype(np.float32) * 0.1
    folder = tmp_path / "test" / "At 48k"
    folder.mkdir(parents=True)
    for stream in STEM_ORDER:
        sf.write(folder / f"{stream}.wav", noise, 48000)
    track = open_tracks(tmp_path, "test")[0]
    with pytest.raises(DemixError, match="At 48k: sampled at 48000 Hz; the sliCQT oracles .* need 44100 Hz"):
        SlicqOracleMethod("slicq-mpi", DEFAULT_SLICQ).separate(track)
    assert main(["slicq-search", "--root", str(tmp_path), "--out", str(tmp_path / "out"), "--trials", "1"]) == 1
    assert "At 48k: sampled at 48000 Hz" in capsys.readouterr().err


def test_random_trials_are_seeded_and_grids_span_the_ranges():
    from evaluation.slicq_search import SearchSpace, grid_trials, random_trials

    space = SearchSpace()
    chosen, skipped = random_trials(space, 8, seed=0)
    assert (chosen, skipped) == random_trials(space, 8, seed=0) and chosen != random_trials(space, 8, seed=1)[0]
    assert random_trials(space, 12, seed=0)[0][:8] == chosen  # more trials extend the same list
    assert len(set(chosen)) == 8 and all(slice_length(params) <= space.max_sllen for params in chosen)
    assert all(sllen == slice_length(params) > space.max_sllen for params, sllen in skipped)
    assert all(10 <= p.bins <= 300 and 10 <= p.fmin <= 130 and round(p.fmin, 1) == p.fmin for p in chosen)
    kept, over = grid_trials(space, 12)
    points = kept + [params for params, _ in over]
    assert len(points) == 12 and {p.scale for p in points} == {"bark", "mel", "cqlog"}
    assert {p.bins for p in points} == {10, 300} and {p.fmin for p in points} == {10.0, 130.0}


def test_run_scores_the_slicq_oracle_with_its_transform(short_root, tmp_path, tracks):
    """What each worker of ``python -m evaluation run --method slicq-mpi`` computes
    (``evaluate_task``, in this process: museval's cost is the same, a process
    start is spared; the command line is the same for every method): a score
    file that records the transform, with the oracle's global SDR called directly."""
    from evaluation.run import RunSpec, evaluate_task, score_file

    name = next(iter(tracks))
    out = tmp_path / "out"
    spec = RunSpec(root=str(short_root), subset="test", split=None, config=None, models_dir=str(tmp_path),
                   oracle_nfft=4096, out_dir=str(out), keep_estimates=False, slicq="bark,100,40")
    evaluate_task(spec, "slicq-mpi", name)
    slicq = json.loads(score_file(out, "slicq-mpi", name).read_text())
    assert slicq["slicq"] == "bark,100,40" and set(slicq["museval"]["targets"][0]) >= {"name", "frames"}
    audio = {stream: sf_read(short_root / "test" / name / f"{stream}.wav") for stream in STEM_ORDER}
    stems = {target: audio[target] for target in TARGETS}
    direct = slicq_oracle_estimates("slicq-mpi", audio["mixture"], stems, SlicqParams("bark", 100, 40.0))
    for target in TARGETS:
        assert slicq["global_sdr"][target] == pytest.approx(global_sdr(stems[target], direct[target]), abs=1e-3)


def sf_read(path: Path) -> np.ndarray:
    import soundfile as sf

    return sf.read(path, dtype="float32")[0]


@pytest.mark.slow
def test_the_search_resumes_and_reports_against_the_stft(short_root, tmp_path):
    from evaluation.slicq_search import SearchSpace, random_trials, trial_file

    out = tmp_path / "search"
    options = ["slicq-search", "--root", short_root, "--trials", 4, "--workers", 2, "--bins", "20,100",
               "--fmin", "30,100", "--seed", 3, "--out", out]
    first = run_cli(*options)
    assert first.returncode == 0, first.stderr[-3000:]
    chosen, skipped = random_trials(SearchSpace(bins=(20, 100), fmin=(30.0, 100.0)), 4, seed=3)
    trials = {path: json.loads(path.read_text()) for path in (out / "trials").glob("*.json")}
    assert {trial_file(out, params) for params in chosen} | {trial_file(out, params) for params, _ in skipped} \
        == set(trials)
    scored = [trial for trial in trials.values() if "score" in trial]
    assert len(scored) == 4 and all(trial["sllen"] <= 44100 for trial in scored)
    best = json.loads((out / "best.json").read_text())
    stft = json.loads((out / "stft-mpi.json").read_text())
    assert best["best"]["score"] == max(trial["score"] for trial in scored)
    assert best["stft_mpi"]["score"] == stft["score"] and stft["n_fft"] == 4096
    for text in ("STFT 4096", f"best: --slicq {best['best']['slicq']}", "against the STFT MPI oracle's"):
        assert text in first.stdout, first.stdout
    mtimes = {path: path.stat().st_mtime_ns for path in [*trials, out / "stft-mpi.json"]}

    second = run_cli(*options)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "4 of 4 trials already done: kept" in second.stdout + second.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in mtimes.items())
    assert json.loads((out / "best.json").read_text())["best"] == best["best"]
    assert not [line for line in second.stdout.splitlines() if line.endswith(" s)") and " dB (" in line]
    assert table(second.stdout) == table(first.stdout)


def table(stdout: str) -> list[str]:
    """The search's table and verdict, without the last line (its time)."""
    lines = stdout.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("best sliCQT MPI oracles")):-1]
