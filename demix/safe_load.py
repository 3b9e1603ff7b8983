"""Opening weight files without letting them run code.

A PyTorch weight file is a pickle, and unpickling may call any function the
file names: a shared "model" can run a shell command the moment it is opened.
Every loader in the engine therefore goes through :func:`load_weights`, which
is ``torch.load(weights_only=True)``: its unpickler builds tensors and plain
containers, and any other global only when it is on an allowlist given with
``torch.serialization.safe_globals``. A model family allowlists exactly the
classes its files are written with (for Demucs,
``demix.members.demucs.demucs_package_globals()``); a file
that names anything else is refused before any of it runs, with the names it
wanted. A user who trusts such a file allows exactly those names for that
member in the config (``allow_globals``, empty by default).

Official files get no wider trust than the allowlist. Their names carry only
the first 8 hex digits of their sha256: that catches a damaged download, but a
crafted file with the same prefix costs about 2^32 hashes (minutes on a GPU),
so a matching prefix does not prove that a file is harmless.
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from .config import ALLOW_GLOBALS
from .errors import WeightsError

#: How torch's weights-only unpickler names what it refused: a global (listed
#: up front for zip checkpoints, only here for the legacy format), or the type
#: of an object it was asked to build (not in the pickle's text: numpy 2 builds
#: a ``numpy.dtypes.Float64DType`` from the global ``numpy.dtype``).
_REFUSED = re.compile(r"GLOBAL (\S+) was not an allowed global|but got <class '([\w.]+)'>")


class UnsafeWeightsError(WeightsError):
    """A weight file that names globals outside its family's allowlist."""

    def __init__(self, message: str, globals_wanted: Sequence[str]):
        super().__init__(message)
        self.globals_wanted = tuple(globals_wanted)


def resolve_globals(names: Sequence[str]) -> list[tuple[Any, str]]:
    """``["module.Name", ...]`` -> ``[(object, "module.Name"), ...]`` as
    ``torch.serialization.safe_globals`` takes them. The object is registered
    under the exact name the user wrote (and the file names), so aliases such
    as numpy 1's ``numpy.core`` for numpy 2's ``numpy._core`` work."""
    resolved = []
    for name in names:
        parts = name.split(".")
        target = None
        for split in range(len(parts) - 1, 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    target = getattr(target, attribute)
            except AttributeError:
                target = None
            break
        if target is None:
            raise WeightsError(f"{ALLOW_GLOBALS}: cannot find {name!r} (write it as module.Name, "
                               "exactly as the refusal message printed it)")
        resolved.append((target, name))
    return resolved


def load_weights(
    path: Path,
    family_globals: Iterable[Any] = (),
    allow_globals: Sequence[str] = (),
    what: str = "weight file",
    member: str | None = None,
) -> Any:
    """``torch.load(path, weights_only=True)`` with ``family_globals`` (objects,
    or ``(object, "module.Name")`` pairs) and the user's ``allow_globals``
    allowlisted. Raises :class:`UnsafeWeightsError` naming the file and every
    global it wanted beyond those; other failures propagate as torch raises them."""
    path = Path(path)
    allowed = list(family_globals) + resolve_globals(allow_globals)
    with torch.serialization.safe_globals(allowed):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            wanted = _refused_globals(path, error)
            if not wanted:
                raise
    where = f"member {member!r}" if member else "the member that loads it"
    listed = ", ".join(wanted)
    suggestion = ", ".join(f'"{name}"' for name in sorted(set(wanted) | set(allow_globals)))
    raise UnsafeWeightsError(
        f"{path}: refused to load this {what}: it names {listed}, which a {what} does not need, "
        "and unpickling a file that names such things can run any code it carries. Nothing in it was run.\n"
        f"  If you trust this file and where it came from, allow exactly these for {where} in the config:\n"
        f"    {ALLOW_GLOBALS} = [{suggestion}]",
        wanted,
    )


def _refused_globals(path: Path, error: Exception) -> list[str]:
    """Every global in the file outside the current allowlist, read from the
    pickle's opcodes without running them, and whatever torch's error names."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: torch's legacy format or a bare pickle
        names = []
    names += [name for match in _REFUSED.findall(str(error)) for name in match if name]
    return sorted(set(names))

