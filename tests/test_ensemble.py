"""The blend, the Wiener post-filter and block processing, checked against
members whose outputs are known, then on small real models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.config import load_config
from demix.ensemble import BlockPlan, Ensemble
from demix.errors import ConfigError
from demix.members.base import Member

from evaluation.scores import global_sdr


class KnownMember(Member):
    """A member that returns given stems (whole track: use one block)."""

    def __init__(self, name, stems: dict[str, torch.Tensor]):
        self.name, self.sample_rate, self.origin = name, SAMPLE_RATE, "test"
        self.stems = stems
        self.targets = tuple(stems)

    def separate(self, mix, statistics=None):
        return {target: stem[:, : mix.shape[-1]] for target, stem in self.stems.items()}

    def to(self, device):
        return self


class FractionMember(Member):
    """A linear member: each target is a fixed fraction of the mixture."""

    def __init__(self, name, fractions: dict[str, float]):
        self.name, self.sample_rate, self.origin = name, SAMPLE_RATE, "test"
        self.fractions = fractions
        self.targets = tuple(fractions)

    def separate(self, mix, statistics=None):
        return {target: fraction * mix for target, fraction in self.fractions.items()}

    def to(self, device):
        return self


@pytest.fixture(scope="module")
def truth(track):
    stems = track[1]
    return torch.from_numpy(stems["mixture"]), {t: torch.from_numpy(stems[t]) for t in TARGETS}


def test_blend_is_the_normalised_weighted_sum(truth):
    mix, stems = truth
    noise = {t: 0.05 * torch.randn(stems[t].shape, generator=torch.Generator().manual_seed(i))
             for i, t in enumerate(TARGETS)}
    clean = KnownMember("clean", stems)
    noisy = KnownMember("noisy", {t: stems[t] + noise[t] for t in TARGETS})
    raw = {"clean": {"bass": 3, "drums": 1, "other": 1, "vocals": 0},
           "noisy": {"bass": 1, "drums": 1, "other": 3, "vocals": 2}}
    ensemble = Ensemble([clean, noisy], raw, wiener_iterations=0, block_seconds=60, compute="eager")
    out = ensemble.separate(mix)
    noisy_share = {"bass": 0.25, "drums": 0.5, "other": 0.75, "vocals": 1.0}
    for index, target in enumerate(TARGETS):
        expected = stems[target] + noisy_share[target] * noise[target]
        assert torch.allclose(out[index], expected, atol=1e-6), target


def test_a_target_only_some_members_estimate(truth):
    mix, stems = truth
    full = KnownMember("full", stems)
    vocals_only = KnownMember("vocals_only", {"vocals": torch.zeros_like(stems["vocals"])})
    ensemble = Ensemble([full, vocals_only], {"full": dict.fromkeys(TARGETS, 1.0), "vocals_only": {"vocals": 1.0}},
                        wiener_iterations=0, compute="eager")
    assert ensemble.shares["vocals"] == {"full": 0.5, "vocals_only": 0.5}
    assert ensemble.shares["bass"] == {"full": 1.0}
    out = ensemble.separate(mix)
    assert torch.allclose(out[TARGETS.index("vocals")], 0.5 * stems["vocals"], atol=1e-6)
    assert torch.allclose(out[TARGETS.index("bass")], stems["bass"], atol=1e-6)


def test_a_target_nobody_estimates_is_a_config_error(truth):
    _, stems = truth
    with pytest.raises(ConfigError, match="no member estimates 'drums'"):
        Ensemble([KnownMember("a", {t: stems[t] for t in TARGETS if t != "drums"})], {"a": dict.fromkeys(TARGETS, 1.0)}, compute="eager")


def test_wiener_keeps_true_stems_and_sums_to_the_mixture(truth):
    mix, stems = truth
    ensemble = Ensemble([KnownMember("oracle", stems)], {"oracle": dict.fromkeys(TARGETS, 1.0)}, wiener_iterations=1, compute="eager")
    out = ensemble.separate(mix)
    for index, target in enumerate(TARGETS):
        # a Wiener filter is a mask: with true magnitudes it scores like an
        # oracle mask (7-15 dB on these excerpts), not like the stems themselves
        assert global_sdr(stems[target], out[index]) > 6, target
    assert global_sdr(mix, out.sum(0)) > 40  # the filter distributes the mixture exactly


def test_wiener_improves_noisy_blends(truth):
    mix, stems = truth
    generator = torch.Generator().manual_seed(0)
    noisy = {t: stems[t] + 0.5 * stems[t].std() * torch.randn(stems[t].shape, generator=generator) for t in TARGETS}
    weights = {"noisy": dict.fromkeys(TARGETS, 1.0)}
    plain = Ensemble([KnownMember("noisy", noisy)], weights, wiener_iterations=0, compute="eager").separate(mix)
    filtered = Ensemble([KnownMember("noisy", noisy)], weights, wiener_iterations=1, compute="eager").separate(mix)
    before = np.mean([global_sdr(stems[t], plain[i]) for i, t in enumerate(TARGETS)])
    after = np.mean([global_sdr(stems[t], filtered[i]) for i, t in enumerate(TARGETS)])
    assert after > before + 1.0, (before, after)


@pytest.mark.parametrize("wiener_iterations", [0, 1])
def test_blocks_give_the_same_result_as_one_block(truth, wiener_iterations):
    mix, _ = truth
    members = [FractionMember("a", {"bass": 0.1, "drums": 0.2, "other": 0.3, "vocals": 0.4})]
    weights = {"a": dict.fromkeys(TARGETS, 1.0)}
    whole = Ensemble(members, weights, wiener_iterations=wiener_iterations, block_seconds=60, compute="eager").separate(mix)
    blocked = Ensemble(members, weights, wiener_iterations=wiener_iterations, block_seconds=5, overlap_seconds=1, compute="eager")
    pieces = list(blocked.separate_blocks(mix))
    assert len(pieces) == 2
    blocked = torch.cat(pieces, -1)
    assert blocked.shape == whole.shape
    if wiener_iterations == 0:  # a linear member: the cross-fade is exact
        assert torch.allclose(blocked, whole, atol=1e-6)
    else:  # the filter's statistics are per window of frames, which blocks move
        assert global_sdr(whole.numpy(), blocked.numpy()) > 30


@pytest.mark.parametrize("length, block, overlap", [(10, 4, 1), (4, 4, 1), (3, 4, 1), (1_000_003, 65536, 4410)])
def test_block_plan_covers_the_track_with_the_overlap(length, block, overlap):
    blocks = list(BlockPlan(length, block, overlap))
    assert blocks[0][0] == 0 and blocks[-1][1] == length
    for (_, previous_stop), (start, stop) in zip(blocks, blocks[1:]):
        assert previous_stop - start == overlap and stop - start > overlap


@pytest.fixture(scope="module")
def tiny_ensemble(user_config):
    from demix.paths import models_dir

    return Ensemble.from_config(load_config(user_config), models_dir())


def test_block_length_is_a_whole_number_of_demucs_strides(tiny_ensemble):
    demucs = next(m for m in tiny_ensemble.members if m.name == "demucs")
    assert tiny_ensemble.block % demucs.block_multiple == 0


def test_same_input_same_output(tiny_ensemble, user_config, truth):
    mix, _ = truth
    from demix.paths import models_dir

    again = Ensemble.from_config(load_config(user_config), models_dir())
    assert torch.equal(tiny_ensemble.separate(mix), again.separate(mix))


@pytest.mark.parametrize("case", ["silence", "dc", "clipped", "100 samples", "half a second"])
def test_edge_inputs_give_finite_output_of_the_input_length(tiny_ensemble, truth, case):
    mix = truth[0]
    inputs = {
        "silence": torch.zeros(2, SAMPLE_RATE * 3),
        "dc": torch.full((2, SAMPLE_RATE * 3), 0.5),
        "clipped": (mix[:, : SAMPLE_RATE * 3] * 20).clamp(-1, 1),
        "100 samples": mix[:, 1000:1100].clone(),
        "half a second": mix[:, : SAMPLE_RATE // 2].clone(),
    }
    out = tiny_ensemble.separate(inputs[case])
    assert out.shape == (4,) + inputs[case].shape
    assert torch.isfinite(out).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine (CI has none)")
def test_cuda_matches_cpu(user_config, truth):
    from demix.paths import models_dir

    mix = truth[0][:, : SAMPLE_RATE * 4]
    cpu = Ensemble.from_config(load_config(user_config), models_dir(), "cpu").separate(mix)
    gpu = Ensemble.from_config(load_config(user_config), models_dir(), "cuda").separate(mix)
    assert global_sdr(cpu.numpy(), gpu.numpy()) > 60


def test_song_statistics_streamed_equal_those_of_the_whole_array(tmp_path, track):
    """One streaming pass over a file (at 48 kHz, so through the resampler)
    gives the statistics of the engine-rate mixture held in memory."""
    import soundfile as sf

    from demix.audio import open_audio
    from demix.statistics import SongStatistics
    from demix.stream import EngineMix, song_statistics

    mix = track[1]["mixture"]
    path = tmp_path / "song.wav"
    sf.write(path, mix.T, 48000, subtype="FLOAT")
    source = open_audio(path)
    streamed = song_statistics(source, read_seconds=0.7)
    whole = SongStatistics.of(EngineMix(source, read_seconds=100).read(0, 10**9))
    assert streamed.mean == pytest.approx(whole.mean, abs=1e-9)
    assert streamed.std == pytest.approx(whole.std, rel=1e-9)
    reference = torch.from_numpy(mix).mean(0)
    assert SongStatistics.of(torch.from_numpy(mix)).std == pytest.approx(reference.std().item(), rel=1e-5)
