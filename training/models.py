"""The Open-Unmix target models a run trains: new ones (input scaling from
the training data, as Open-Unmix's training computes it), the official
``umxhq``/``umxl`` weights, or a model folder; loaded by the ensemble's own
member loader, so what is fine-tuned is exactly what the ensemble runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from openunmix.model import ComplexNorm, OpenUnmix
from openunmix.transforms import make_filterbanks
from openunmix.utils import bandwidth_to_max_bin

from demix import SAMPLE_RATE
from demix.errors import DemixError

from .data import Track
from .options import ARCHITECTURE_DEFAULTS, FitOptions

#: STFT frames per block when reading whole tracks for the input statistics.
STATISTICS_BLOCK_FRAMES = 1024


@dataclass(frozen=True)
class Architecture:
    """What the loaders need to rebuild a model: Open-Unmix's ``args`` keys."""

    nfft: int
    nhop: int
    hidden_size: int
    nb_channels: int
    max_bin: int
    sample_rate: float = float(SAMPLE_RATE)

    @property
    def bandwidth(self) -> float:
        """The highest frequency the model sees, in Hz."""
        return (self.max_bin - 1) * self.sample_rate / self.nfft

    def new_model(self, input_mean: np.ndarray | None = None, input_scale: np.ndarray | None = None) -> OpenUnmix:
        return OpenUnmix(nb_bins=self.nfft // 2 + 1, nb_channels=self.nb_channels, hidden_size=self.hidden_size,
                         max_bin=self.max_bin, input_mean=input_mean, input_scale=input_scale)

    def encoder(self) -> torch.nn.Module:
        """Waveform -> magnitude spectrogram, as Open-Unmix's training computes its inputs and targets."""
        stft, _ = make_filterbanks(n_fft=self.nfft, n_hop=self.nhop, sample_rate=self.sample_rate)
        return torch.nn.Sequential(stft, ComplexNorm(mono=self.nb_channels == 1))

    def to_json(self) -> dict:
        return {**asdict(self), "bandwidth": self.bandwidth}

    @classmethod
    def from_json(cls, data: dict) -> "Architecture":
        return cls(**{key: data[key] for key in ("nfft", "nhop", "hidden_size", "nb_channels", "max_bin", "sample_rate")})


def new_architecture(options: FitOptions) -> Architecture:
    values = {name: getattr(options, name) if getattr(options, name) is not None else default
              for name, default in ARCHITECTURE_DEFAULTS.items()}
    max_bin = int(bandwidth_to_max_bin(SAMPLE_RATE, values["nfft"], values["bandwidth"]))
    return Architecture(values["nfft"], values["nhop"], values["hidden_size"], values["nb_channels"], max_bin)


def new_models(architecture: Architecture, targets: tuple[str, ...], tracks: list[Track], seed: int,
               quiet: bool = True) -> dict[str, OpenUnmix]:
    """Untrained models whose input scaling is the training mixtures' own
    per-bin mean and standard deviation; initialised from ``seed``."""
    mean, scale = input_statistics(tracks, architecture, quiet)
    torch.manual_seed(seed)
    return {target: architecture.new_model(mean, scale) for target in targets}


def input_statistics(tracks: list[Track], architecture: Architecture, quiet: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation of the (channel-averaged)
    magnitude of every training track's whole mixture, the sum of its
    sources; the deviation is floored at 1e-4 of its largest value."""
    import tqdm

    encoder = architecture.encoder()
    total = torch.zeros(architecture.nfft // 2 + 1, dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    with torch.no_grad():
        for track in tqdm.tqdm(tracks, desc="input statistics", disable=quiet, leave=False):
            frames = (track.frames - architecture.nfft) // architecture.nhop + 1
            for first in range(0, frames, STATISTICS_BLOCK_FRAMES):
                block = min(STATISTICS_BLOCK_FRAMES, frames - first)
                samples = (block - 1) * architecture.nhop + architecture.nfft
                mixture = torch.from_numpy(track.read(first * architecture.nhop, samples)).sum(0)
                magnitude = encoder(mixture[None]).mean(dim=1)[0].to(torch.float64)  # (bins, frames)
                total += magnitude.sum(dim=1)
                squares += (magnitude**2).sum(dim=1)
                count += magnitude.shape[1]
    if count == 0:
        raise DemixError(f"no STFT frame in the training tracks (each must be longer than --nfft "
                         f"{architecture.nfft} samples)")
    mean = total / count
    deviation = (squares / count - mean**2).clamp_min(0).sqrt()
    deviation = torch.maximum(deviation, 1e-4 * deviation.max())
    return mean.numpy(), deviation.numpy()


def starting_models(options: FitOptions, models_dir: Path) -> tuple[dict[str, OpenUnmix], Architecture, str]:
    """The models ``--model`` names (official or a folder), the targets of
    this run only, with their architecture and where they came from."""
    from demix.members.openunmix import OpenUnmixMember
    from demix.weights.catalogue import official_models

    name = options.model
    official = official_models().get(name)
    if official is not None:
        if official.family != "openunmix":
            raise DemixError(f"--model {name} is a {official.family} model; training fine-tunes Open-Unmix models "
                             f"({', '.join(n for n, m in official_models().items() if m.family == 'openunmix')} "
                             "or a folder)")
        member = OpenUnmixMember.from_official("start", name, models_dir, niter=0)
    elif Path(name).is_dir():
        member = OpenUnmixMember.from_path("start", Path(name), niter=0)
    else:
        raise DemixError(f"--model {name}: neither an official Open-Unmix model (umxhq, umxl) nor a model folder")
    separator = member.separator
    missing = [target for target in options.targets if target not in separator.target_models]
    if missing:
        raise DemixError(f"--model {name} has no model for {', '.join(missing)} (it has "
                         f"{', '.join(separator.target_models)})")
    models = {target: separator.target_models[target].train() for target in options.targets}
    first = models[options.targets[0]]
    architecture = Architecture(
        nfft=separator.stft.n_fft, nhop=separator.stft.n_hop, hidden_size=first.hidden_size,
        nb_channels=first.fc1.in_features // first.nb_bins, max_bin=first.nb_bins,
        sample_rate=float(separator.sample_rate),
    )
    _refuse_other_architecture(options, architecture, name)
    return models, architecture, member.origin


def _refuse_other_architecture(options: FitOptions, architecture: Architecture, name: str) -> None:
    """Asking for another architecture than the starting weights' is a mistake, not a wish."""
    differ = []
    for key in ARCHITECTURE_DEFAULTS:
        asked = getattr(options, key)
        if asked is None:
            continue
        if key == "bandwidth":  # compared as the frequency bin it comes down to
            same = bandwidth_to_max_bin(architecture.sample_rate, architecture.nfft, asked) == architecture.max_bin
        else:
            same = asked == getattr(architecture, key)
        if not same:
            differ.append(f"--{key.replace('_', '-')} {asked} (the model has {getattr(architecture, key):g})")
    if differ:
        raise DemixError(f"--model {name} fixes the architecture; drop {', '.join(differ)}")
