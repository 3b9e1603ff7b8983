"""xumx-sliCQ-V2 members: Sevag Hanssian's Open-Unmix adaptation on the sliced
constant-Q transform (sliCQT), as the ``xumx-slicq-v2`` wheel (MIT) carries it.

A model is a folder as its training writes it and the package's
``Separator.load(model_path=...)`` reads it: ``xumx_slicq_v2.json`` (its
``args`` give the transform: ``fscale``, ``fbins``, ``fmin``, ``fgamma``,
``sample_rate``, ``seq_dur``, and ``realtime``) beside ``xumx_slicq_v2.pth``, the
state dict of :class:`xumx_slicq_v2.model.Unmix`. The official models are two
catalogue rows (:mod:`demix.weights.catalogue`): ``xumx_slicq_v2`` (offline: a
Wiener-EM step inside each block's network) and ``xumx_slicq_v2_realtime``
(causal first convolutions, the mixture's phase). ``realtime`` in the JSON says
which one a folder is.

Everything that computes is the package's own: its sliCQT (``NSGTBase``,
``make_filterbanks``, ``ComplexNorm``), its ``Unmix`` and its ``Separator``,
built here as ``xumx_slicq_v2.separator.load_target_models`` builds them, so
that ``Separator.forward`` runs as it does in the package. What differs is only
how the files are found and opened:

- the package's loader downloads from GitHub (``requests``, ``torch.hub``) when
  it is given no folder; nothing here ever calls it. Official files come from
  the models folder, checked against their catalogue rows first;
- the state dict is opened with :func:`demix.safe_load.load_weights` (nothing
  beyond tensors is allowed) and loaded strictly. The package loads it with
  ``strict=False``, which would accept a file missing any tensor (the network
  then runs with that tensor's random initial value) or holding tensors the
  network has no place for. Every parameter and buffer of ``Unmix`` is used by
  its forward in eval mode except BatchNorm's ``num_batches_tracked`` (read only
  in training, when ``momentum`` is None), so that counter alone may be absent;
- the transform is built with the JSON's ``fgamma``, as training builds it (the
  package's loader leaves it at 15, which changes only the ``vqlog`` scale);
- a JSON that asks for what the package's ``Separator`` cannot run (another
  sample rate, the Bi-LSTM variant that ``--lstm`` trains) is an error naming it.

The sources come out in the package's order (``Separator.sources``: bass,
vocals, other, drums) and are mapped to the targets by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import torch

from .. import TARGETS
from ..config import ALLOW_GLOBALS, family_options
from ..errors import WeightsError, first_line
from ..safe_load import UnsafeWeightsError, load_weights
from ..statistics import SongStatistics
from ..weights.catalogue import ModelWeights, get_official
from ..weights.integrity import refuse_lfs_pointers, require_intact
from .base import Member
from .networks import load_state_strictly

#: The two files of a model folder, as the package's training writes them and its loader reads them.
JSON_NAME = "xumx_slicq_v2.json"
WEIGHTS_NAME = "xumx_slicq_v2.pth"
#: What the state dict is called in messages.
STATE_DICT = "xumx-sliCQ-V2 state dict"
#: The frequency scales the package's training offers (``--fscale``).
SCALES = ("bark", "mel", "cqlog", "vqlog", "linear", "mrstft")
#: ``NSGTBase``'s default, which the package's loader always uses.
DEFAULT_FGAMMA = 15.0
#: The rate the package's sliCQT is written for (``make_filterbanks`` refuses any other).
MODEL_RATE = 44100


def read_settings(json_path: Path) -> dict[str, Any]:
    """The transform and variant a model's ``xumx_slicq_v2.json`` describes, checked:
    ``fscale``, ``fbins``, ``fmin``, ``fgamma``, ``sample_rate``, ``seq_dur``,
    ``realtime``. Anything missing, malformed or that the package cannot run is
    an error naming the file."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise WeightsError(f"{json_path}: not found (an xumx-sliCQ-V2 model folder holds {JSON_NAME} and "
                           f"{WEIGHTS_NAME}, as the package's training writes them)")
    try:
        data = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsError(f"{json_path}: not a readable JSON file ({first_line(error)})") from None
    args = data.get("args") if isinstance(data, dict) else None
    if not isinstance(args, dict):
        raise WeightsError(f"{json_path}: expected an object with an \"args\" object (the training's "
                           f"settings), as the package's training writes {JSON_NAME}")

    def bad(key: str, wanted: str) -> WeightsError:
        shown = repr(args[key]) if key in args else "missing"
        return WeightsError(f"{json_path}: args.{key} must be {wanted}, got {shown}")

    def number(key: str, default: float | None = None) -> float:
        value = args.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise bad(key, "a number")
        return float(value)

    if args.get("fscale") not in SCALES:
        raise bad("fscale", f"one of {', '.join(SCALES)}")
    fbins = args.get("fbins")
    if not isinstance(fbins, int) or isinstance(fbins, bool) or fbins < 1:
        raise bad("fbins", "an integer >= 1")
    fmin, fgamma, sample_rate, seq_dur = number("fmin"), number("fgamma", DEFAULT_FGAMMA), \
        number("sample_rate"), number("seq_dur")
    if not 0 < fmin < MODEL_RATE / 2:
        raise bad("fmin", f"a frequency in (0, {MODEL_RATE // 2}) Hz")
    if sample_rate != MODEL_RATE:
        raise bad("sample_rate", f"{MODEL_RATE} (xumx_slicq_v2's sliCQT is written for that rate only)")
    if seq_dur <= 0:
        raise bad("seq_dur", "a duration > 0 s")
    if not isinstance(args.get("realtime"), bool):
        raise bad("realtime", "true or false")
    if args.get("lstm"):
        raise WeightsError(f"{json_path}: args.lstm is true: a model of the Bi-LSTM variant, which the "
                           "package's Separator does not build (it builds the convolutional one only)")
    return {"fscale": args["fscale"], "fbins": fbins, "fmin": fmin, "fgamma": fgamma,
            "sample_rate": sample_rate, "seq_dur": seq_dur, "realtime": args["realtime"]}


def describe(settings: dict[str, Any]) -> str:
    """The architecture a JSON describes, in words, for messages."""
    variant = "realtime" if settings["realtime"] else "offline"
    return (f"the {variant} xumx-sliCQ-V2 model its {JSON_NAME} describes ({settings['fscale']} scale, "
            f"{settings['fbins']} bins from {settings['fmin']:g} Hz)")


def read_state(weights_path: Path, allow_globals=(), member: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict in ``weights_path``, opened without running code from it."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise WeightsError(f"{weights_path}: not found (an xumx-sliCQ-V2 model folder holds {JSON_NAME} and "
                           f"{WEIGHTS_NAME}, as the package's training writes them)")
    refuse_lfs_pointers([weights_path])
    try:
        state = load_weights(weights_path, allow_globals=allow_globals, what=STATE_DICT, member=member)
    except UnsafeWeightsError:
        raise
    except Exception as error:  # torch reports truncation and garbage in many ways
        raise WeightsError(f"{weights_path}: not a readable {STATE_DICT} ({first_line(error)})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        raise WeightsError(f"{weights_path}: a training checkpoint (state_dict, optimizer, ...), not a state "
                           f"dict; the training writes the model's state dict alone as {WEIGHTS_NAME}")
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise WeightsError(f"{weights_path}: expected a state dict (names to tensors), got "
                           f"{type(state).__name__}")
    return state


def build_separator(settings: dict[str, Any], state: dict[str, torch.Tensor], weights_path: Path,
                    chunk_size: int = 0):
    """The package's ``Separator`` for a model: its sliCQT and ``Unmix`` built as
    ``load_target_models`` builds them, ``state`` loaded strictly, frozen for
    inference. ``chunk_size``: samples per forward pass (0: the whole input)."""
    from xumx_slicq_v2.model import Unmix
    from xumx_slicq_v2.separator import Separator
    from xumx_slicq_v2.transforms import ComplexNorm, NSGTBase, make_filterbanks

    # the package prints the transform and draws a random waveform to size the network: keep both
    # out of the caller's standard output and random state
    try:
        with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(io.StringIO()):
            base = NSGTBase(settings["fscale"], settings["fbins"], settings["fmin"], fgamma=settings["fgamma"],
                            fs=settings["sample_rate"], device="cpu")
            jagged_slicq, _ = base.predict_input_size(1, 2, settings["seq_dur"])
            cnorm = ComplexNorm()
            nsgt, insgt = make_filterbanks(base, settings["sample_rate"])
            unmix = Unmix(cnorm(jagged_slicq), realtime=settings["realtime"])
    except Exception as error:
        raise WeightsError(f"{Path(weights_path).with_name(JSON_NAME)}: the sliCQT it describes cannot be built "
                           f"({first_line(error)})") from None
    load_state_strictly(unmix, state, weights_path, describe(settings),
                        hint=f"A {WEIGHTS_NAME} belongs with the {JSON_NAME} its training run wrote beside it.",
                        may_lack=lambda name: name.endswith("num_batches_tracked"))
    separator = Separator(xumx_model=unmix, encoder=(nsgt, insgt, cnorm), runtime_backend="torch",
                          sample_rate=settings["sample_rate"], chunk_size=chunk_size or None, device="cpu",
                          quiet=True)
    separator.freeze()
    return separator


def load_folder(folder: Path, chunk_size: int = 0, allow_globals=(), member: str | None = None):
    """``(separator, settings)`` for the model in ``folder`` (its JSON and its state dict)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"{folder}: xumx-sliCQ-V2 model folder not found (it holds {JSON_NAME} and "
                           f"{WEIGHTS_NAME}, as the package's training writes them)")
    settings = read_settings(folder / JSON_NAME)
    weights_path = folder / WEIGHTS_NAME
    state = read_state(weights_path, allow_globals, member)
    return build_separator(settings, state, weights_path, chunk_size), settings


class XumxSlicqMember(Member):
    family = "xumx_slicq"

    def __init__(self, name: str, separator, realtime: bool, origin: str):
        """``separator``: the package's ``Separator`` (:func:`build_separator`)."""
        self.name = name
        self.separator = separator
        self.realtime = realtime
        self.sample_rate = int(separator.sample_rate)  # 44100: read_settings refuses any other
        self.sources = tuple(separator.sources)
        self.targets = tuple(target for target in TARGETS if target in self.sources)
        self.origin = origin

    @classmethod
    def from_official(cls, name: str, model_name: str | ModelWeights, models_dir: Path,
                      **options) -> "XumxSlicqMember":
        """``xumx_slicq_v2`` or ``xumx_slicq_v2_realtime`` from ``models_dir/<model_name>/``,
        each file checked against its catalogue row first (``model_name`` may be the row
        itself). ``options``: a config's (``chunk_size``, ``allow_globals``), at their
        defaults where not given."""
        official = get_official(model_name) if isinstance(model_name, str) else model_name
        options = family_options(cls.family, options, official.name)
        if official.family != cls.family:
            raise WeightsError(f"{official.name!r} is a {official.family} model, not an xumx-sliCQ-V2 one")
        require_intact(official, models_dir)
        folder = Path(models_dir) / official.name  # the catalogue puts both files there
        separator, settings = load_folder(folder, options["chunk_size"], options[ALLOW_GLOBALS], name)
        variant = "realtime" if settings["realtime"] else "offline"
        return cls(name, separator, settings["realtime"], origin=f"{official.name} ({variant}) from {folder}")

    @classmethod
    def from_path(cls, name: str, folder: Path, **options) -> "XumxSlicqMember":
        """A folder as the package's training writes it: ``xumx_slicq_v2.json`` and
        ``xumx_slicq_v2.pth``. ``options``: as :meth:`from_official` takes them."""
        folder = Path(folder)
        options = family_options(cls.family, options, str(folder))
        separator, settings = load_folder(folder, options["chunk_size"], options[ALLOW_GLOBALS], name)
        variant = "realtime" if settings["realtime"] else "offline"
        return cls(name, separator, settings["realtime"], origin=f"xumx-sliCQ-V2 folder {folder} ({variant})")

    def separate(self, mix: torch.Tensor, statistics: SongStatistics | None = None) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            estimates = self.separator(mix[None])  # (sources, 1, channels, frames)
        return {target: estimates[self.sources.index(target), 0] for target in self.targets}

    def to(self, device: torch.device) -> "XumxSlicqMember":
        self.separator.to(device)
        return self
