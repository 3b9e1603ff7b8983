"""Demucs members: official names (``htdemucs``, ``htdemucs_ft``,
``mdx_extra``, ...) from ``models/demucs``, a user-trained ``.th`` package,
or a bag ``.yaml`` next to its ``.th`` files.

Loading is demucs' own (:func:`demucs.pretrained.get_model` with a local
``repo``, which also verifies the checksum in each file name, and
:func:`demucs.states.load_model`); inference is :func:`demucs.apply.apply_model`
with its split, overlap and shift trick. Input normalisation follows
``demucs.api.Separator``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from demucs import pretrained, states
from demucs.apply import BagOfModels, apply_model

from .. import TARGETS
from ..compute import AUTOCAST_DTYPES, COMPILED_MODES
from ..errors import WeightsError, first_line
from ..weights import file_status, get_official, missing_file_error
from .base import Member
from .segment_batches import SegmentBatcher

#: The target that absorbs sources a model has beyond the four (htdemucs_6s:
#: guitar, piano), so that the four stems still sum to the mixture.
CATCH_ALL_TARGET = "other"


class DemucsMember(Member):
    def __init__(self, name: str, model, source: str, shifts: int = 1, overlap: float = 0.25, seed: int = 0,
                 segment_batch: int = 1):
        self.name = name
        self.model = model.eval()
        self.source = source
        self.shifts = shifts
        self.overlap = overlap
        #: Segments per forward pass (demix.members.segment_batches); 1 is apply_model's own loop.
        self.segment_batch = segment_batch
        self.seed = seed
        self.sample_rate = int(model.samplerate)
        self.compute = "eager"
        known = [source_name for source_name in model.sources if source_name in TARGETS]
        extra = [source_name for source_name in model.sources if source_name not in TARGETS]
        if extra and CATCH_ALL_TARGET not in known:
            raise WeightsError(
                f"{source}: model sources {model.sources} have no {CATCH_ALL_TARGET!r} to hold {extra}"
            )
        self.targets = tuple(target for target in TARGETS if target in known)

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path, **options) -> "DemucsMember":
        official = get_official(model_name)
        if official.family != "demucs":
            raise WeightsError(f"{model_name!r} is an {official.family} model, not a Demucs one")
        for file in official.files:
            if file_status(models_dir, file) == "missing":
                raise missing_file_error(official, file, models_dir)
        repo = Path(models_dir) / "demucs"
        try:
            model = _get_model(model_name, repo)
        except WeightsError as error:
            raise WeightsError(
                f"{error}\n  fetch it again with: python -m demix weights fetch {model_name}"
            ) from None
        return cls(name, model, f"{model_name} from {repo}", **options)

    @classmethod
    def from_file(cls, name: str, path: Path, **options) -> "DemucsMember":
        """A ``.th`` package as Demucs' training saves it, or a bag ``.yaml``."""
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"{path}: Demucs model file not found")
        if path.suffix == ".yaml":
            model = _get_model(path.stem, path.parent)
        else:
            try:
                model = states.load_model(path)
            except Exception as error:
                raise WeightsError(f"{path}: not a loadable Demucs model package ({first_line(error)})") from None
        return cls(name, model, f"Demucs {path}", **options)

    @property
    def segment_model(self):
        return self.model.models[0] if isinstance(self.model, BagOfModels) else self.model

    @property
    def block_multiple(self) -> int:
        """apply_model's stride: blocks of a whole number of strides need no
        extra, mostly padded, segment at their end."""
        segment_length = int(self.sample_rate * self.segment_model.segment)
        return int((1 - self.overlap) * segment_length)

    @property
    def networks(self) -> list[torch.nn.Module]:
        return list(self.model.models) if isinstance(self.model, BagOfModels) else [self.model]

    def set_compute(self, mode: str) -> None:
        """``compiled``, ``bf16`` and ``fp16`` compile each network in place
        (Module.compile keeps its class, which apply_model checks); ``bf16``
        and ``fp16`` also run it under autocast to that dtype."""
        self.compute = mode
        if mode in COMPILED_MODES:
            for network in self.networks:
                network.compile()
        else:
            self.disable_compile()

    def disable_compile(self) -> None:
        for network in self.networks:
            network._compiled_call_impl = None  # how nn.Module.compile is undone

    def separate(self, mix: torch.Tensor) -> dict[str, torch.Tensor]:
        channels = self.model.audio_channels
        model_input = mix.mean(dim=0, keepdim=True) if channels == 1 else mix
        reference = model_input.mean(0)
        mean, std = reference.mean(), reference.std() + 1e-8
        saved_state = random.getstate()
        random.seed(self.seed)  # apply_model draws its shifts from `random`
        try:
            autocast_dtype = getattr(torch, AUTOCAST_DTYPES.get(self.compute, "bfloat16"))
            with torch.no_grad(), torch.autocast(mix.device.type, autocast_dtype,
                                                 enabled=self.compute in AUTOCAST_DTYPES):
                pool = SegmentBatcher(self.segment_batch, mix.device) if self.segment_batch > 1 else None
                estimates = apply_model(
                    self.model, ((model_input - mean) / std)[None], shifts=self.shifts,
                    split=True, overlap=self.overlap, progress=False, device=mix.device, pool=pool,
                )[0]
        finally:
            random.setstate(saved_state)
        estimates = (estimates.float() * std + mean).expand(-1, mix.shape[0], -1)
        outputs = {target: None for target in self.targets}
        for index, source_name in enumerate(self.model.sources):
            target = source_name if source_name in TARGETS else CATCH_ALL_TARGET
            outputs[target] = estimates[index] if outputs[target] is None else outputs[target] + estimates[index]
        return outputs

    def to(self, device: torch.device) -> "DemucsMember":
        self.model.to(device)
        return self


def _get_model(name: str, repo: Path):
    """demucs.pretrained.get_model on a local folder, with its failures (some
    of which call sys.exit) turned into WeightsError."""
    try:
        return pretrained.get_model(name, repo=Path(repo))
    except SystemExit:
        raise WeightsError(
            f"{repo}: model {name!r} needs the diffq package (pip install diffq), "
            "or the folder is not readable"
        ) from None
    except Exception as error:
        raise WeightsError(f"{repo}: cannot load Demucs model {name!r} ({first_line(error)})") from None

