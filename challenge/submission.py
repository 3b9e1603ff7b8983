"""The participant's ensemble, shared by both protocols.

The config is ``my_submission/config.toml`` where the participant has
one, else the engine's default; ``$DEMIX_CONFIG`` overrides both (the
local grader uses it to grade another config). Weights come from
``models/`` or ``$DEMIX_MODELS``; the device is the GPU where one is
usable, else the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from demix import paths
from demix.config import DEFAULT_CONFIG, load_config

if TYPE_CHECKING:  # torch is imported only to load the ensemble: `submit` refuses a bad manifest without it
    from demix.ensemble import Ensemble

PROJECT = Path(__file__).resolve().parents[1]
SUBMISSION_CONFIG = PROJECT / "my_submission" / "config.toml"


def submission_config_path(project: Path = PROJECT, honour_env: bool = True) -> Path:
    """The config the grader will use; ``honour_env=False`` ignores $DEMIX_CONFIG,
    which exists only on this machine."""
    if honour_env and paths.config_override():
        return paths.config_override()
    own = project / SUBMISSION_CONFIG.relative_to(PROJECT)
    return own if own.is_file() else DEFAULT_CONFIG


def load_submission_ensemble() -> "Ensemble":
    from demix.load import load_ensemble

    return load_ensemble(load_config(submission_config_path()))
