"""Open-Unmix members: official ``umxhq`` / ``umxl`` weights, or a folder
written by Open-Unmix's own training script.

The models, STFT and Wiener filter are openunmix's own
(:class:`openunmix.model.Separator`); this adapter only finds the weights on
disk, never on the network, opens each state dict with
:func:`demix.safe_load.load_weights` (openunmix's own loader leaves
``weights_only`` to torch's default, which an environment variable can turn
off), and maps outputs to target names.
"""

from __future__ import annotations

import json
from pathlib import Path

import openunmix
import torch
from openunmix import model as umx_model

from .. import TARGETS
from ..config import ALLOW_GLOBALS, family_options
from ..errors import WeightsError, first_line
from ..postfilter import WIENER_WINDOW_FRAMES
from ..safe_load import load_weights
from ..statistics import SongStatistics
from ..weights.catalogue import ModelWeights, get_official
from ..weights.integrity import official_file_error, require_intact
from .base import Member
from .networks import load_state_strictly

#: What an Open-Unmix state dict is called in messages.
STATE_DICT = "Open-Unmix state dict"


class OpenUnmixMember(Member):
    family = "openunmix"

    def __init__(self, name: str, separator: umx_model.Separator, channels: int, origin: str):
        self.name = name
        self.separator = separator.eval()
        self.sample_rate = int(separator.sample_rate)
        self.targets = tuple(separator.target_models.keys())
        self.origin = origin
        self._channels = channels

    @classmethod
    def from_official(cls, name: str, model_name: str | ModelWeights, models_dir: Path,
                      **options) -> "OpenUnmixMember":
        """``umxhq`` or ``umxl`` from ``models_dir/<model_name>/<target>-<hash>.pth``:
        the architecture openunmix builds for the name with the state dicts the
        catalogue row lists (``model_name`` may be the row itself), each file
        checked against the row first. ``options``: a config's (``niter``,
        ``allow_globals``), at their defaults where not given."""
        official = get_official(model_name) if isinstance(model_name, str) else model_name
        options = family_options("openunmix", options, official.name)
        niter, allow_globals = options["niter"], options[ALLOW_GLOBALS]
        if official.family != "openunmix":
            raise WeightsError(f"{official.name!r} is a {official.family} model, not an Open-Unmix one")
        require_intact(official, models_dir)
        builder = getattr(openunmix, official.name)
        # pretrained=False: the package builds the exact architecture without
        # touching torch hub; the weights are loaded from our folder below.
        separator = builder(niter=niter, pretrained=False, device="cpu", wiener_win_len=WIENER_WINDOW_FRAMES)
        for file in official.files:
            path = Path(models_dir) / file.path
            target = path.name.split("-", 1)[0]
            try:
                state = load_weights(path, allow_globals=allow_globals, what=STATE_DICT, member=name)
                missing, _ = separator.target_models[target].load_state_dict(state, strict=False)
            except WeightsError:
                raise
            except Exception as error:  # torch reports garbage in many ways
                raise official_file_error(official, file, models_dir, first_line(error)) from None
            if missing:
                raise official_file_error(official, file, models_dir, f"lacks {', '.join(missing)}")
        return cls(name, separator.eval(), channels=2,
                   origin=f"{official.name} from {Path(models_dir) / official.name}")

    @classmethod
    def from_path(cls, name: str, folder: Path, **options) -> "OpenUnmixMember":
        """A folder written by Open-Unmix's training: ``<target>.pth`` +
        ``<target>.json`` for each target it has, optional ``separator.json``;
        built as ``openunmix.utils.load_separator`` builds it. ``options``: a
        config's (``niter``, ``allow_globals``), at the schema's defaults where not given."""
        folder = Path(folder)
        options = family_options("openunmix", options, str(folder))
        niter, allow_globals = options["niter"], options[ALLOW_GLOBALS]
        if not folder.is_dir():
            raise WeightsError(f"{folder}: Open-Unmix model folder not found")
        targets = [target for target in TARGETS if (folder / f"{target}.json").is_file()]
        if not targets:
            raise WeightsError(
                f"{folder}: no Open-Unmix target model here (expected <target>.json and <target>.pth "
                f"for some of {', '.join(TARGETS)})"
            )
        models = {}
        try:
            for target in targets:
                weights = sorted(folder.glob(f"{target}*.pth"))
                if not weights:
                    raise WeightsError(f"{folder}: {target}.json has no {target}.pth beside it")
                args = json.loads((folder / f"{target}.json").read_text())["args"]
                state = load_weights(weights[0], allow_globals=allow_globals, what=STATE_DICT, member=name)
                models[target] = umx_model.OpenUnmix(
                    nb_bins=args["nfft"] // 2 + 1, nb_channels=args["nb_channels"],
                    hidden_size=args["hidden_size"], max_bin=state["input_mean"].shape[0],
                )
                # extra tensors are tolerated as openunmix.utils.load_separator tolerates them
                load_state_strictly(models[target], state, weights[0], f"the Open-Unmix model of {target}.json",
                                    may_add=True)
            if (folder / "separator.json").is_file():
                settings = json.loads((folder / "separator.json").read_text())
            else:  # older training folders: the first target's settings, at MUSDB's rate
                first = json.loads((folder / f"{targets[0]}.json").read_text())["args"]
                settings = {**first, "sample_rate": 44100.0}
            separator = umx_model.Separator(
                models, niter=niter, wiener_win_len=WIENER_WINDOW_FRAMES, sample_rate=settings["sample_rate"],
                n_fft=settings["nfft"], n_hop=settings["nhop"], nb_channels=settings["nb_channels"],
            )
        except WeightsError:
            raise
        except Exception as error:
            raise WeightsError(f"{folder}: not a loadable Open-Unmix model folder ({first_line(error)})") from None
        return cls(name, separator, channels=settings["nb_channels"], origin=f"Open-Unmix folder {folder}")

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        model_input = mix.mean(dim=0, keepdim=True) if self._channels == 1 else mix
        with torch.no_grad():
            estimates = self.separator(model_input[None])[0]
        return {target: estimates[index].expand_as(mix) for index, target in enumerate(self.targets)}

    def to(self, device: torch.device) -> "OpenUnmixMember":
        self.separator.to(device)
        return self

