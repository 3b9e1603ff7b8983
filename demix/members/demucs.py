"""Demucs members: official names (``htdemucs``, ``htdemucs_ft``,
``mdx_extra``, ...) from ``models/demucs``, a user-trained ``.th`` package,
or a bag ``.yaml`` next to its ``.th`` files.

Loading never runs code from a file: demucs' own loader
(``demucs.states.load_model`` on a path, reached through
``demucs.pretrained.get_model``) unpickles with ``weights_only=False``. Here
each package is opened by :func:`demix.safe_load.load_weights` with exactly
the globals Demucs packages are written with allowlisted
(:func:`demucs_package_globals`), and the model is then built from that dict
by ``demucs.states.load_model`` itself. Bags are read as demucs'
``BagOnlyRepo``/``LocalRepo`` read them (YAML, ``<sig>.th`` or
``<sig>-<checksum>.th`` with the checksum verified). Inference is
:func:`demucs.apply.apply_model` with its split, overlap and shift trick;
input normalisation follows ``demucs.api.Separator``.
"""

from __future__ import annotations

import fractions
import random
import warnings
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Sequence

import torch
import yaml
from demucs import states
from demucs.apply import BagOfModels, apply_model

from .. import TARGETS
from ..compute import AUTOCAST_DTYPES, COMPILED_MODES
from ..config import ALLOW_GLOBALS, SEPARATION_DEFAULTS, family_options
from ..errors import WeightsError, first_line
from ..safe_load import UnsafeWeightsError, load_weights
from ..statistics import SongStatistics
from ..weights.catalogue import fetch_command, get_official
from ..weights.integrity import problem_of, require_intact
from ..weights.member_files import user_model_files
from .base import Member
from .networks import compile_network, uncompile_network
from .segment_batches import SegmentBatcher
from .stems import CATCH_ALL_TARGET, fold_stems, unheld_stems

#: What a Demucs package is called in messages.
PACKAGE = "Demucs model package"
NEEDS_DIFFQ = "this quantized Demucs model needs the diffq package (pip install diffq)"


@lru_cache(maxsize=None)
def demucs_package_globals() -> tuple:
    """Every global a Demucs package is written with, and nothing else.

    ``demucs.states.serialize_model`` stores ``klass`` (the model class),
    ``args``/``kwargs`` (plain values; HTDemucs' ``segment`` may be a
    ``fractions.Fraction``), ``state`` (tensors; for the quantized ``mdx_q``
    and ``mdx_extra_q``, diffq's packed state, whose ``meta`` names the
    quantizer class) and ``training_args`` (``OmegaConf.to_container``: plain
    containers). Demucs' release script (``tools/export.py``) adds ``metrics``,
    numpy scalars from ``np.median``: numpy's ``scalar`` (``numpy.core`` in
    numpy 1 pickles, ``numpy._core`` in numpy 2's) and ``numpy.dtype``, which
    builds a ``numpy.dtypes.Float64DType`` (or ``Float32DType``) object.
    ``demucs.wdemucs.WDemucs`` is demucs' own alias of ``HDemucs`` for old files.
    """
    import numpy
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import scalar
    allowed = [HTDemucs, HDemucs, Demucs, (HDemucs, "demucs.wdemucs.WDemucs"), fractions.Fraction,
               (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
               numpy.dtype, numpy.dtypes.Float64DType, numpy.dtypes.Float32DType]
    try:
        from diffq import DiffQuantizer, UniformQuantizer
    except ImportError:  # quantized packages then fail with NEEDS_DIFFQ
        pass
    else:
        allowed += [DiffQuantizer, UniformQuantizer]
    return tuple(allowed)


def load_package(path: Path, allow_globals: Sequence[str] = (), member: str | None = None) -> torch.nn.Module:
    """A ``.th`` package as ``demucs.states.serialize_model`` writes it, built
    as ``demucs.states.load_model`` builds it, opened without running code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: Demucs model file not found")
    try:
        package = load_weights(path, demucs_package_globals(), allow_globals, PACKAGE, member)
    except UnsafeWeightsError as error:
        if any(name.startswith("diffq.") for name in error.globals_wanted) and find_spec("diffq") is None:
            raise WeightsError(f"{path}: {NEEDS_DIFFQ}") from None
        raise
    except WeightsError:
        raise
    except Exception as error:  # torch reports truncation and garbage in many ways
        raise WeightsError(f"{path}: not a loadable {PACKAGE} ({first_line(error)})") from None
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise WeightsError(f"{path}: not a {PACKAGE} (demucs.states.serialize_model writes a dict with "
                           "klass, args, kwargs and state)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # load_model warns for each kwarg this demucs version dropped
            return states.load_model(package)
    except SystemExit:  # demucs calls sys.exit when a quantized package needs diffq
        raise WeightsError(f"{path}: {NEEDS_DIFFQ}") from None
    except Exception as error:
        raise WeightsError(f"{path}: not a loadable {PACKAGE} ({first_line(error)})") from None


def load_bag(path: Path, allow_globals: Sequence[str] = (), member: str | None = None) -> BagOfModels:
    """A bag ``.yaml`` (``models``, optional ``weights`` and ``segment``) and
    the packages it names beside it, found as demucs' ``LocalRepo`` finds them
    (:func:`demix.weights.member_files.user_model_files`), each checked
    against the checksum its name carries."""
    path = Path(path)
    try:
        bag = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise WeightsError(f"{path}: not a readable Demucs bag ({first_line(error)})") from None
    signatures = bag.get("models") if isinstance(bag, dict) else None
    if not isinstance(signatures, list) or not signatures or not all(isinstance(s, str) for s in signatures):
        raise WeightsError(f"{path}: not a Demucs bag (expected `models: [signature, ...]`)")
    models = []
    for signature, (file, checksum) in zip(signatures, user_model_files(path)[1:]):
        if not file.is_file():
            raise WeightsError(f"{path}: names model {signature!r}, but neither {signature}.th nor "
                               f"{signature}-<checksum>.th is in {path.parent}")
        problem = problem_of(file, sha256=checksum)
        if problem is not None:
            raise WeightsError(f"{file}: damaged: {problem} (the checksum in its name)")
        models.append(load_package(file, allow_globals, member))
    try:
        return BagOfModels(models, bag.get("weights"), bag.get("segment"))
    except AssertionError:  # BagOfModels asserts that its models agree
        raise WeightsError(f"{path}: its models differ in sources, sample rate or channels, "
                           "or its weights do not match them") from None


def demucs_options(options: dict, where: str) -> tuple[list[str], dict]:
    """(``allow_globals``, the member's other options): a config's Demucs
    options (``shifts``, ``overlap``, ``segment_batch``, ``allow_globals``)
    and ``seed`` (the config's ``[separation]`` seed), each one not given at
    the config schema's default, as a config that leaves it out runs."""
    options = dict(options)
    seed = options.pop("seed", SEPARATION_DEFAULTS["seed"])
    checked = family_options("demucs", options, where)
    return checked.pop(ALLOW_GLOBALS), dict(checked, seed=seed)


class DemucsMember(Member):
    family = "demucs"

    def __init__(self, name: str, model, origin: str, **options):
        """``model``: a Demucs model or bag; ``options``: as :func:`demucs_options` takes them."""
        _, options = demucs_options(options, origin)
        self.name = name
        self.model = model.eval()
        self.origin = origin
        self.shifts = options["shifts"]
        self.overlap = options["overlap"]
        #: Segments per forward pass (demix.members.segment_batches); 1 is apply_model's own loop.
        self.segment_batch = options["segment_batch"]
        self.seed = options["seed"]
        self.sample_rate = int(model.samplerate)
        self.compute = "eager"
        unheld = unheld_stems(model.sources)
        if unheld:
            raise WeightsError(f"{origin}: model sources {model.sources} have no {CATCH_ALL_TARGET!r} to hold {unheld}")
        self.targets = tuple(target for target in TARGETS if target in model.sources)

    @classmethod
    def from_official(cls, name: str, model_name: str, models_dir: Path, **options) -> "DemucsMember":
        """Every file is checked against the catalogue first (:func:`demix.weights.integrity.require_intact`).
        ``options``: as :func:`demucs_options` takes them."""
        allow_globals, options = demucs_options(options, model_name)
        official = get_official(model_name)
        if official.family != "demucs":
            raise WeightsError(f"{model_name!r} is an {official.family} model, not a Demucs one")
        require_intact(official, models_dir)
        repo = Path(models_dir) / "demucs"
        try:
            model = load_bag(repo / f"{model_name}.yaml", allow_globals, name)
        except UnsafeWeightsError:
            raise
        except WeightsError as error:
            raise WeightsError(
                f"{error}\n  fetch it again with: {fetch_command(model_name)}"
            ) from None
        return cls(name, model, f"{model_name} from {repo}", **options)

    @classmethod
    def from_path(cls, name: str, path: Path, **options) -> "DemucsMember":
        """A ``.th`` package as Demucs' training saves it, or a bag ``.yaml``.
        ``options``: as :func:`demucs_options` takes them."""
        path = Path(path)
        allow_globals, options = demucs_options(options, str(path))
        if not path.is_file():
            raise WeightsError(f"{path}: Demucs model file not found")
        if path.suffix == ".yaml":
            model = load_bag(path, allow_globals, name)
        else:
            model = load_package(path, allow_globals, name)
        return cls(name, model, f"Demucs {path}", **options)

    @classmethod
    def config_options(cls, config, seed: int) -> dict:
        """The config's options and its ``[separation]`` seed (the shift trick's)."""
        return dict(config.options, seed=seed)

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
        (demix.members.networks: the class stays, which apply_model checks); ``bf16``
        and ``fp16`` also run it under autocast to that dtype."""
        self.compute = mode
        if mode in COMPILED_MODES:
            for network in self.networks:
                compile_network(network)
        else:
            self.disable_compile()

    def disable_compile(self) -> None:
        for network in self.networks:
            uncompile_network(network)

    needs_song_statistics = True

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        """Normalised as ``demucs.api.Separator`` does, by the whole song's
        mono mean and std (:mod:`demix.statistics`), not the block's."""
        channels = self.model.audio_channels
        model_input = mix.mean(dim=0, keepdim=True) if channels == 1 else mix
        statistics = SongStatistics.of(mix) if statistics is None else statistics
        mean, std = statistics.mean, statistics.std + 1e-8
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
        return fold_stems(dict(zip(self.model.sources, estimates)))

    def to(self, device: torch.device) -> "DemucsMember":
        self.model.to(device)
        return self

