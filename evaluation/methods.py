"""What can be evaluated: the configured ensemble, each of its members
alone, and the oracles (the STFT's and the sliCQT's). Each method turns a
musdb track into estimates ``{target: (n_samples, n_channels)}``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demix import TARGETS
from demix.audio import Audio
from demix.config import load_config
from demix.errors import DemixError
from evaluation.oracles import ORACLES, oracle_estimates
from evaluation.slicq_oracles import DEFAULT_SLICQ, SLICQ_ORACLES, SlicqParams, slicq_oracle_estimates

MEMBER_PREFIX = "member:"


def method_names(config_path: Path | None) -> list[str]:
    """Every method this config offers."""
    config = load_config(config_path)
    members = [MEMBER_PREFIX + member.name for member in config.members]
    return ["ensemble", *members, *ORACLES, *SLICQ_ORACLES]


class EnsembleMethod:
    """The ensemble of a config, or one member alone: the same loading and
    blocks, weight 1 and no post-filter, i.e. the member's own output.

    A member alone is scored on the targets it estimates. A vocals-only
    member is scored as museval scores singing-voice separation: its vocals
    and the accompaniment, the mixture minus its vocals (museval's
    vocals/accompaniment scenario; BSSEval needs two estimates)."""

    def __init__(self, config_path: Path | None, models_dir: Path, member: str | None = None):
        from dataclasses import replace

        from demix.load import load_ensemble

        config = load_config(config_path)
        if member is not None:
            chosen = [m for m in config.members if m.name == member]
            if not chosen:
                raise DemixError(f"no member {member!r} in {config.path}; members: "
                                 f"{', '.join(m.name for m in config.members)}")
            config = replace(config, members=(replace(chosen[0], shares=dict.fromkeys(TARGETS, 1.0)),),
                             wiener_iterations=0)
        self.ensemble = load_ensemble(config, models_dir, "cpu", threads=False, partial=member is not None)
        estimated = {target for m in self.ensemble.members for target in m.targets}
        self.targets = tuple(target for target in TARGETS if target in estimated)
        if len(self.targets) == 1 and self.targets != ("vocals",):
            raise DemixError(f"member {member!r} estimates only {self.targets[0]}: museval scores two estimates "
                             "or more (a vocals-only member with the accompaniment); score it in an ensemble")

    def separate(self, track) -> dict[str, np.ndarray]:
        from demix.separate import separate_audio

        audio = Audio(np.ascontiguousarray(track.audio.T, dtype=np.float32), int(track.rate))
        stems = separate_audio(self.ensemble, audio)
        estimates = {target: stems[TARGETS.index(target)].T for target in self.targets}
        if self.targets == ("vocals",):
            estimates["accompaniment"] = track.audio.astype(np.float32) - estimates["vocals"]
        return estimates


class OracleMethod:
    def __init__(self, kind: str, n_fft: int):
        self.kind, self.n_fft = kind, n_fft

    def separate(self, track) -> dict[str, np.ndarray]:
        stems = {target: track.targets[target].audio for target in TARGETS}
        return oracle_estimates(self.kind, track.audio, stems, self.n_fft)


class SlicqOracleMethod:
    """An oracle in xumx-sliCQ-V2's sliCQT domain (evaluation/slicq_oracles.py)."""

    def __init__(self, kind: str, params: SlicqParams):
        self.kind, self.params = kind, params

    def separate(self, track) -> dict[str, np.ndarray]:
        stems = {target: track.targets[target].audio for target in TARGETS}
        return slicq_oracle_estimates(self.kind, track.audio, stems, self.params, rate=track.rate, name=track.name)


def build_method(name: str, config_path: Path | None, models_dir: Path, oracle_nfft: int,
                 slicq: SlicqParams | str = DEFAULT_SLICQ):
    if name == "ensemble":
        return EnsembleMethod(config_path, models_dir)
    if name.startswith(MEMBER_PREFIX):
        return EnsembleMethod(config_path, models_dir, member=name[len(MEMBER_PREFIX):])
    if name in ORACLES:
        return OracleMethod(name, oracle_nfft)
    if name in SLICQ_ORACLES:
        return SlicqOracleMethod(name, slicq if isinstance(slicq, SlicqParams) else SlicqParams.parse(slicq))
    raise DemixError(f"unknown method {name!r}; methods: {', '.join(method_names(config_path))}")
