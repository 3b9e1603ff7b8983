"""Every input rate streams through the engine and comes back at its own
rate, channel count and exact length, with no seams where blocks meet."""

from __future__ import annotations

import julius
import numpy as np
import pytest
import soundfile as sf
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.audio import Audio, engine_length, stem_paths
from demix.ensemble import BlockPlan, Ensemble
from demix.separate import separate_audio, separate_file

from test_ensemble import FractionMember

RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000)
FRACTIONS = {"bass": 0.1, "drums": 0.2, "other": 0.3, "vocals": 0.4}
#: Output compared with the expected stems except this close to the song's two ends,
#: where the resampler's edge padding is not the song.
EDGE_SECONDS = 0.02
#: Largest difference allowed from the expected stem, relative to the song's peak.
#: Measured: at most 1.5e-5 at any rate; a resampler without context at block
#: seams gives 6e-4 to 7e-3, so a seam cannot hide under it.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def music(tracks) -> torch.Tensor:
    """Both real excerpts, one after the other (12.9 s at 44.1 kHz)."""
    return torch.from_numpy(np.concatenate([stems["mixture"] for stems in tracks.values()], axis=1))


@pytest.fixture(scope="module")
def ensemble() -> Ensemble:
    """A linear member, blocks of 5 s with 1 s cross-fades: three blocks, two seams."""
    return Ensemble([FractionMember("linear", FRACTIONS)], {"linear": dict.fromkeys(TARGETS, 1.0)},
                    wiener_iterations=0, block_seconds=5, overlap_seconds=1, compute="eager")


def at_rate(music: torch.Tensor, rate: int, channels: int) -> np.ndarray:
    """The music at ``rate``, band-limited below both Nyquist limits (so that
    the round trip through 44.1 kHz keeps it), an odd number of frames long."""
    signal = julius.resample_frac(music, SAMPLE_RATE, rate)
    signal = julius.lowpass_filter(signal, 0.3 * min(rate, SAMPLE_RATE) / rate)[:, :-3]
    return (signal.mean(0, keepdim=True) if channels == 1 else signal).numpy()


def check_stems(stems: np.ndarray, mixture: np.ndarray, rate: int) -> None:
    assert stems.shape == (len(TARGETS),) + mixture.shape
    assert np.isfinite(stems).all()
    edge = int(EDGE_SECONDS * rate)
    for index, target in enumerate(TARGETS):
        error = np.abs(stems[index, :, edge:-edge] - FRACTIONS[target] * mixture[:, edge:-edge]).max()
        assert error < TOLERANCE * np.abs(mixture).max(), (rate, target, error)


@pytest.mark.parametrize("rate", RATES)
def test_each_rate_streams_back_exactly(tmp_path, music, ensemble, rate):
    mixture = at_rate(music, rate, channels=2)
    assert len(BlockPlan(engine_length(mixture.shape[1], rate), ensemble.block, ensemble.overlap)) == 3
    path = tmp_path / "song.wav"
    sf.write(path, mixture.T, rate, subtype="FLOAT")
    written = separate_file(ensemble, path, stem_paths(tmp_path / "out"))
    stems = []
    for target in TARGETS:
        data, stem_rate = sf.read(written[target], dtype="float32", always_2d=True)
        assert stem_rate == rate
        stems.append(data.T)
    check_stems(np.stack(stems), mixture, rate)


@pytest.mark.parametrize("rate", [22050, 96000])
def test_mono_stays_mono_at_any_rate(tmp_path, music, ensemble, rate):
    mixture = at_rate(music, rate, channels=1)
    path = tmp_path / "mono.wav"
    sf.write(path, mixture[0], rate, subtype="FLOAT")
    written = separate_file(ensemble, path, stem_paths(tmp_path / "out"))
    stems = np.stack([sf.read(written[target], dtype="float32", always_2d=True)[0].T for target in TARGETS])
    check_stems(stems, mixture, rate)


def test_in_memory_protocol_gives_the_file_path_stems(tmp_path, music, ensemble):
    """SDX 2023 hands over an array: the same streaming path, the same stems."""
    rate = 48000
    mixture = at_rate(music, rate, channels=2)
    path = tmp_path / "song.wav"
    sf.write(path, mixture.T, rate, subtype="FLOAT")
    written = separate_file(ensemble, path, stem_paths(tmp_path / "out"))
    in_memory = separate_audio(ensemble, Audio(mixture, rate))
    for index, target in enumerate(TARGETS):
        assert np.array_equal(in_memory[index], sf.read(written[target], dtype="float32", always_2d=True)[0].T)
