"""Vocal Mask CNN members: a vocals-only model trained with the kit
(``python -m training fit --recipe vocal-mask``), loaded from the folder its
training writes.

The folder holds ``vocal_mask.json`` (``settings``: the features and network
the model was trained with, :class:`demix.members.vocal_mask_net.VocalMaskSettings`)
and ``vocal_mask.pth`` (a plain state dict), opened with
:func:`demix.safe_load.load_weights` and loaded strictly, so a file never
runs code and a file of another network is refused by name. Separation is
:func:`demix.members.vocal_mask_net.separate_vocals` at 22,050 Hz: the
ensemble resamples each block to it and the vocals back. The member
estimates only the vocals; in a blend they combine with other members'
vocals by the shares, like any vocals-only member.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import family_options
from ..errors import WeightsError, first_line
from ..safe_load import load_weights
from ..statistics import SongStatistics
from ..weights.integrity import refuse_lfs_pointers
from . import vocal_mask_net as net
from .base import Member
from .networks import load_state_strictly

SETTINGS_FILE = "vocal_mask.json"
WEIGHTS_FILE = "vocal_mask.pth"


class VocalMaskMember(Member):
    family = "vocal_mask"
    sample_rate = net.SAMPLE_RATE
    targets = ("vocals",)

    def __init__(self, name: str, network: net.VocalMaskCNN, settings: net.VocalMaskSettings, origin: str, *,
                 mask_at_eval: str, frames_per_pass: int):
        self.name, self.network, self.settings, self.origin = name, network.eval(), settings, origin
        self.mask_at_eval, self.frames_per_pass = mask_at_eval, frames_per_pass

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path, **options) -> "VocalMaskMember":
        raise WeightsError(f"{model_name}: there are no official Vocal Mask CNN weights; train a model with "
                           "`python -m training fit --recipe vocal-mask` and name its folder")

    @classmethod
    def from_path(cls, name: str, path: Path, **options) -> "VocalMaskMember":
        """The folder ``python -m training fit --recipe vocal-mask`` writes
        (``vocal_mask.json`` and ``vocal_mask.pth``). ``options``: a config's
        (``mask_at_eval``, ``frames_per_pass``), at their defaults where not given."""
        folder = Path(path)
        options = family_options("vocal_mask", options, str(folder))
        settings_path, weights_path = folder / SETTINGS_FILE, folder / WEIGHTS_FILE
        for needed in (settings_path, weights_path):
            if not needed.is_file():
                raise WeightsError(f"{needed}: not found (a Vocal Mask CNN folder holds {SETTINGS_FILE} and "
                                   f"{WEIGHTS_FILE}, as `python -m training fit --recipe vocal-mask` writes them)")
        try:
            settings = net.VocalMaskSettings.from_json(json.loads(settings_path.read_text())["settings"])
        except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
            what = f"no {error.args[0]!r}" if isinstance(error, KeyError) else first_line(error)
            raise WeightsError(f"{settings_path}: not the settings of a Vocal Mask CNN ({what})") from None
        refuse_lfs_pointers([weights_path])
        try:
            state = load_weights(weights_path, what="Vocal Mask CNN state dict", member=name)
        except WeightsError:
            raise
        except Exception as error:  # torch reports truncation and garbage in many ways
            raise WeightsError(f"{weights_path}: not a readable state dict ({first_line(error)})") from None
        if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
            raise WeightsError(f"{weights_path}: expected a state dict of tensors, got {type(state).__name__}")
        network = net.new_network(settings)
        load_state_strictly(network, state, weights_path, f"the Vocal Mask CNN of {settings_path.name}")
        return cls(name, network, settings, f"Vocal Mask CNN folder {folder}", **options)

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            vocals = net.separate_vocals(self.network, mix, self.settings, self.mask_at_eval, self.frames_per_pass)
        return {"vocals": vocals}

    def to(self, device: torch.device) -> "VocalMaskMember":
        self.network.to(device)
        return self
