"""Where the kit finds things, and the environment variables that move them.

Every command (``demix``, ``challenge``, ``evaluation``, ``training``, the
scripts) asks here, so a variable means the same thing everywhere:

- ``$DEMIX_MODELS``: the weights folder (default: ``models/`` in the checkout);
- ``$DEMIX_CONFIG``: the config every command runs instead of the submission's
  (set by the local grader to grade another config; never on the grader;
  :mod:`demix.config_choice` holds the whole order);
- ``$DEMIX_COMPILE_CACHE``: where compiled kernels are kept between processes
  (default: ``~/.cache/demix/torch-compile``).

Reading a path has no side effect; :func:`demix.compute.use_compile_cache`
is the explicit step that points TorchInductor at the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout: the folder above the demix package.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The checkout's weights folder.
PROJECT_MODELS_DIR = PROJECT_ROOT / "models"
#: The compiled-kernel cache unless $DEMIX_COMPILE_CACHE says otherwise.
DEFAULT_COMPILE_CACHE = Path.home() / ".cache" / "demix" / "torch-compile"


def models_dir(override: Path | None = None) -> Path:
    """``override`` (a --models option), else ``$DEMIX_MODELS``, else the checkout's ``models/``."""
    if override is not None:
        return Path(override)
    return Path(os.environ.get("DEMIX_MODELS", PROJECT_MODELS_DIR))


def config_override() -> Path | None:
    """``$DEMIX_CONFIG``, where it is set."""
    value = os.environ.get("DEMIX_CONFIG")
    return Path(value) if value else None


def compile_cache_dir() -> Path:
    return Path(os.environ.get("DEMIX_COMPILE_CACHE", DEFAULT_COMPILE_CACHE))
