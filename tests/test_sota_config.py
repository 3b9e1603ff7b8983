"""demix/sota.toml, the blend to start a competitive submission from: it parses, it names only
catalogued files, and its weights follow the rule its comment states from the published figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from demix import TARGETS
from demix.config import load_config
from demix.weights.catalogue import official_models

SOTA = Path(__file__).resolve().parents[1] / "demix" / "sota.toml"

#: Published MUSDB18-HQ test SDR per target (MSST's model table), the rule's input.
PUBLISHED = {
    "scnet_xl_ihf": {"bass": 9.23, "drums": 11.81, "other": 7.88, "vocals": 11.42},
    "bs_roformer_ep17": {"bass": 8.48, "drums": 11.61, "other": 7.44, "vocals": 11.08},
}
#: htdemucs_ft: only its mean is published here.
HTDEMUCS_FT_MEAN = 9.0


def rule_weights() -> dict[str, dict[str, float]]:
    """The comment's rule: htdemucs_ft per target = its mean + the MSST models' average offset
    from their own means; weight proportional to 10^(SDR/10), normalised per target."""
    sdr = dict(PUBLISHED)
    offsets = {t: sum(s[t] - sum(s.values()) / len(s) for s in PUBLISHED.values()) / len(PUBLISHED)
               for t in TARGETS}
    sdr["htdemucs_ft"] = {t: HTDEMUCS_FT_MEAN + offsets[t] for t in TARGETS}
    weights = {}
    for target in TARGETS:
        powers = {name: 10 ** (s[target] / 10) for name, s in sdr.items()}
        total = sum(powers.values())
        for name, power in powers.items():
            weights.setdefault(name, {})[target] = power / total
    return weights


def test_it_parses_and_names_only_catalogued_models():
    config = load_config(SOTA)
    assert [m.model for m in config.members] == ["scnet_xl_ihf", "bs_roformer_ep17", "htdemucs_ft"]
    assert all(member.is_official and member.model in official_models() for member in config.members)
    assert config.wiener_iterations == 0


def test_its_weights_follow_the_stated_rule():
    expected = rule_weights()
    for member in load_config(SOTA).members:
        for target in TARGETS:
            assert member.shares[target] == pytest.approx(expected[member.model][target], abs=0.005), \
                (member.model, target)


SDX23_CPU = SOTA.with_name("sdx23_cpu.toml")


def test_the_sdx23_cpu_config_is_scnet_small_in_bf16_for_every_target():
    """demix/sdx23_cpu.toml, the strongest catalogued checkpoint measured to fit SDX 2023's CPU
    limit on a CPU with bf16: it parses, it names a catalogued file, and it runs bf16."""
    config = load_config(SDX23_CPU)
    assert [m.model for m in config.members] == ["scnet_small"]
    assert config.members[0].is_official and config.members[0].family == "scnet"
    assert config.compute_modes == {"bf16"}
    assert all(config.members[0].shares[target] > 0 for target in TARGETS)
    assert config.wiener_iterations == 0
