"""MSST (Music-Source-Separation-Training) model files: finding the YAML and
the checkpoint of a model, and reading the YAML safely. Which model type a
YAML describes is :func:`demix.families.msst_type_of`.

It imports nothing heavier than ``yaml``: the config reader uses it to tell
a member's family before any model is built.

An MSST model is two files, as MSST's own inference takes them
(``--config_path`` and ``--start_check_point``): the training YAML and the
checkpoint. A member's ``model`` is either

* a folder holding them: ``config.yaml`` + ``model.ckpt``, or any one
  ``.yaml`` and any one ``.ckpt``; or
* a ``.ckpt`` file with its YAML of the same stem beside it
  (``model_bs_roformer_ep_17.ckpt`` + ``model_bs_roformer_ep_17.yaml``).

The YAML is read with :class:`TupleSafeLoader`: ``yaml.SafeLoader`` plus the
one tag MSST's YAMLs use, ``!!python/tuple`` (``freqs_per_bands``,
``multi_stft_resolutions_window_sizes``). ``yaml.safe_load`` refuses that tag,
and MSST's own reader (``yaml.FullLoader``) accepts far more python tags than
a config needs; this loader builds plain data and tuples, nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import WeightsError, first_line

#: The names a folder's files get first when it holds more than one candidate.
PREFERRED_YAML = "config.yaml"
PREFERRED_CHECKPOINT = "model.ckpt"
YAML_SUFFIXES = (".yaml", ".yml")
CHECKPOINT_SUFFIX = ".ckpt"

class TupleSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also builds ``!!python/tuple`` sequences as tuples."""


def _construct_tuple(loader: TupleSafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


TupleSafeLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)


def read_msst_yaml(path: Path) -> dict[str, Any]:
    """The YAML as plain data, with the sections every MSST model config has
    (``audio``, ``model``, ``training`` with ``instruments``, ``inference``)."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=TupleSafeLoader)
    except FileNotFoundError:
        raise WeightsError(f"{path}: MSST model YAML not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise WeightsError(f"{path}: not a readable MSST model YAML ({first_line(error)})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: not an MSST model YAML (expected a mapping with audio, model, "
                           "training and inference sections)")
    missing = [section for section in ("audio", "model", "training", "inference")
               if not isinstance(data.get(section), dict)]
    if missing:
        raise WeightsError(f"{path}: not an MSST model YAML: no {', '.join(missing)} section")
    instruments = data["training"].get("instruments")
    if not isinstance(instruments, (list, tuple)) or not instruments or \
            not all(isinstance(name, str) for name in instruments):
        raise WeightsError(f"{path}: training.instruments must be a list of stem names")
    return data


def _one(folder: Path, suffixes: tuple[str, ...], preferred: str, what: str) -> Path:
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)
    if (folder / preferred).is_file():
        return folder / preferred
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise WeightsError(f"{folder}: no {what} ({' or '.join(suffixes)}) in this MSST model folder")
    raise WeightsError(f"{folder}: {len(candidates)} {what}s ({', '.join(p.name for p in candidates)}); "
                       f"keep one, or name it {preferred}")


def is_msst_model(path: Path) -> bool:
    """Whether a member's ``model`` path is laid out as an MSST model: a
    ``.ckpt`` file, or a folder that holds a YAML (a folder of ``.ckpt``
    files without one is a Spleeter folder)."""
    path = Path(path)
    if path.suffix == CHECKPOINT_SUFFIX:
        return True
    return path.is_dir() and any(p.suffix in YAML_SUFFIXES for p in path.iterdir() if p.is_file())


def msst_files(path: Path) -> tuple[Path, Path]:
    """``(yaml, checkpoint)`` of the model at ``path`` (a folder or a ``.ckpt``)."""
    path = Path(path)
    if path.is_dir():
        return msst_yaml(path), _one(path, (CHECKPOINT_SUFFIX,), PREFERRED_CHECKPOINT, "checkpoint")
    return msst_yaml(path), path


def msst_yaml(path: Path) -> Path:
    """The YAML of the model at ``path`` (a folder or a ``.ckpt``), whether or not its checkpoint is
    there yet: a config is read, and its members' families told, before weights are fetched."""
    path = Path(path)
    if path.is_dir():
        return _one(path, YAML_SUFFIXES, PREFERRED_YAML, "YAML file")
    if path.suffix != CHECKPOINT_SUFFIX:
        raise WeightsError(f"{path}: an MSST model is a folder (YAML + .ckpt) or a .ckpt file")
    for suffix in YAML_SUFFIXES:
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    raise WeightsError(f"{path}: its YAML {path.with_suffix('.yaml').name} is not beside it "
                       "(MSST checkpoints are read with the training YAML of the same stem)")
