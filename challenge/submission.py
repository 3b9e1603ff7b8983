"""The participant's ensemble, shared by both protocols.

The config is chosen as by every command (:mod:`demix.config_choice`):
``$DEMIX_CONFIG`` (the local grader uses it to grade another config), else
``my_submission/config.toml`` where the participant has one, else the
engine's default. Weights come from
``models/`` or ``$DEMIX_MODELS``; the device is the GPU where one is
usable, else the CPU.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from demix import paths
from demix.config import load_config
from demix.config_choice import choose_config

if TYPE_CHECKING:  # torch is imported only to load the ensemble: `submit` refuses a bad manifest without it
    from demix.ensemble import Ensemble

#: The repository the graders run (the folder above this package, as the engine computes it).
PROJECT = paths.PROJECT_ROOT


def load_submission_ensemble() -> "Ensemble":
    """The graders' one way in; says the config it loads on stderr (the
    graders' protocols own stdout and the pipe)."""
    from demix.load import load_ensemble

    choice = choose_config(project=PROJECT)
    print(choice.describe(others=None), file=sys.stderr, flush=True)
    return load_ensemble(load_config(choice.path))
