"""The evaluation harness against expectations computed another way: the
oracles from their formulas with scipy's STFT, the summary from results.csv
with pandas, and the report over several runs. (The tune command line
finishing from its cache is checked in test_tune_matches_separate.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal

from demix import TARGETS
from evaluation.oracles import oracle_estimates
from evaluation.scores import global_sdr

from conftest import ORACLE_RUN_MEMBER, ORACLE_RUN_METHODS

PROJECT = Path(__file__).resolve().parents[1]
N_FFT = 2048


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "evaluation", *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=900)


def scipy_oracle(kind: str, mixture: np.ndarray, stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The module docstring's formulas with scipy.signal's STFT (periodic Hann,
    hop n_fft/4, even extension at the edges)."""
    def stft(audio):
        return signal.stft(audio.T, nperseg=N_FFT, noverlap=3 * N_FFT // 4, window="hann", boundary="even")[2]

    def istft(spectrogram):
        wave = signal.istft(spectrogram, nperseg=N_FFT, noverlap=3 * N_FFT // 4, window="hann")[1]
        return wave[:, : len(mixture)].T

    mix = stft(mixture.astype(np.float64))
    spectra = {t: stft(stems[t].astype(np.float64)) for t in TARGETS}
    magnitudes = {t: np.abs(spectra[t]) for t in TARGETS}
    total = sum(magnitudes.values()) + 1e-10

    def against_the_rest(t):  # |S_t| / (|S_t| + |Σ_{k≠t} S_k|), the rest summed as complex spectra
        rest = np.abs(sum(spectra[k] for k in TARGETS if k != t))
        return magnitudes[t] / (magnitudes[t] + rest + 1e-10) * mix

    masks = {
        "irm": lambda t: magnitudes[t] / total * mix,
        "ibm": lambda t: (magnitudes[t] / total > 0.5) * mix,
        "mpi": lambda t: magnitudes[t] * np.exp(1j * np.angle(mix)),
        "irm-complex": against_the_rest,
    }
    return {t: istft(masks[kind](t)) for t in TARGETS}


@pytest.mark.parametrize("kind", ["irm", "ibm", "mpi", "irm-complex"])
def test_oracles_equal_their_formulas_computed_with_scipy(track, kind):
    stems = {t: track[1][t].T for t in TARGETS}
    ours = oracle_estimates(kind, track[1]["mixture"].T, stems, n_fft=N_FFT)
    expected = scipy_oracle(kind, track[1]["mixture"].T, stems)
    inner = slice(N_FFT, -N_FFT)  # the two STFTs pad the last frame differently
    for target in TARGETS:
        agreement = global_sdr(expected[target][inner], ours[target][inner])
        assert agreement > 60, f"{kind} {target}: {agreement:.1f} dB"


def test_summary_is_the_median_of_medians_and_the_mean_global_sdr_of_results(oracle_runs):
    _, out = oracle_runs
    results = pd.read_csv(out / "results.csv")
    summary = pd.read_csv(out / "summary.csv").set_index(["method", "target"])
    museval_rows = results[results["metric"] != "global_SDR"]
    medians = museval_rows.groupby(["method", "target", "metric"])["score"].median()
    global_means = results[results["metric"] == "global_SDR"].groupby(["method", "target"])["score"].mean()
    methods = (*ORACLE_RUN_METHODS, ORACLE_RUN_MEMBER)
    assert set(results["method"]) == set(methods) and results["track"].nunique() == 2
    for method in methods:
        for target in TARGETS:
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                assert summary.loc[(method, target), metric] == pytest.approx(medians[(method, target, metric)],
                                                                              abs=1e-3)
            assert summary.loc[(method, target), "global_SDR"] == pytest.approx(global_means[(method, target)],
                                                                                abs=1e-3)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, oracle_runs):
    """irm in one results folder, mpi in another: the shared oracle run's score files, split."""
    _, out = oracle_runs
    runs = {}
    for method in ORACLE_RUN_METHODS:
        runs[method] = tmp_path_factory.mktemp(method)
        shutil.copytree(out / "scores" / method, runs[method] / "scores" / method)
    return runs


def test_report_over_several_result_folders(two_runs, tmp_path):
    runs = two_runs
    completed = run_cli("report", runs["irm"], runs["mpi"], "--out", tmp_path, "--no-page")
    assert completed.returncode == 0, completed.stderr
    markdown = (tmp_path / "report.md").read_text()
    # one row per method, labelled with its folder when several are compared
    assert f"| irm ({runs['irm'].name}) |" in markdown and f"| mpi ({runs['mpi'].name}) |" in markdown
    assert (tmp_path / "sdr_boxplot.png").read_bytes().startswith(b"\x89PNG")
