"""A model's stems into the four targets: one rule for every family.

A stem named as a target goes to it; a stem beyond the four that is part of
the music (a six-stem model's ``guitar`` and ``piano``) goes to
:data:`CATCH_ALL_TARGET`, so that the four still account for the whole mix;
several stems that go to one target are summed. What a family drops (a
two-stem model's accompaniment) it leaves out of the mapping it hands here.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .. import TARGETS

#: The target that absorbs the stems a model has beyond the four.
CATCH_ALL_TARGET = "other"


def target_of(stem: str) -> str:
    """The target a kept stem goes to."""
    return stem if stem in TARGETS else CATCH_ALL_TARGET


def unheld_stems(stems: Sequence[str]) -> list[str]:
    """The stems that would fold into :data:`CATCH_ALL_TARGET` when the model has no such stem
    to hold them; a member refuses such a model (its four targets would not add up to the mix)."""
    extra = [stem for stem in stems if stem not in TARGETS]
    return extra if extra and CATCH_ALL_TARGET not in stems else []


def fold_stems(estimates: Mapping[str, torch.Tensor], targets: Mapping[str, str] | None = None
               ) -> dict[str, torch.Tensor]:
    """``{target: waveform}`` from ``{stem: waveform}``: each stem to
    ``targets[stem]`` (default :func:`target_of`), stems not in ``targets``
    dropped, several stems of one target summed; in :data:`demix.TARGETS` order."""
    folded: dict[str, torch.Tensor] = {}
    for stem, estimate in estimates.items():
        target = target_of(stem) if targets is None else targets.get(stem)
        if target is not None:
            folded[target] = estimate if target not in folded else folded[target] + estimate
    return {target: folded[target] for target in TARGETS if target in folded}
