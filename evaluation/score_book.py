"""The museval scores that tuning has measured, kept on disk so that no blend
is scored twice: not within one run, and not in a later run over the same
cache (one with more candidates, or one that resumes after being stopped).

A score is filed under what determines it, its key: the weights the blend
applies (:attr:`demix.ensemble.Blend.shares`, per target the members' shares
normalised over those that estimate it, so raw shares that blend alike are
one key), and

- with the post-filter off (0 Wiener iterations), only the target's own
  weights: each target's estimate is blended on its own, and its BSSEval
  metrics depend only on its own estimate (and the references). So the weight
  grid's scores answer the chosen weights at 0 iterations, and any blend that
  gives a target the weights of an earlier one.
- with the post-filter on, which couples the targets, every target's weights
  and the number of iterations.

One file per track, ``OUT/blend-scores/<track>.json`` (beside the member cache,
not in it, where a member may be called anything), rewritten atomically
after each scored blend: ``{"key": ..., "length": ..., "scores": {key: SDR}}``.
Its ``key`` names what the scores are of (tuning's cache key of the member
estimates, and museval's version) and ``length`` the track's engine frames; a
file written for anything else, or unreadable, is not used and gets replaced.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from demix import TARGETS
from demix.atomic import write_json_atomically

SCORES_FOLDER = "blend-scores"

#: Per target, each member's weight: what a :class:`~demix.ensemble.Blend` applies (its ``shares``).
Weights = dict[str, dict[str, float]]


def scores_key(estimates_key: dict) -> dict:
    """What a track's scores are of: the cached member estimates (tuning's
    cache key) as museval, this version of it, scores them."""
    return {"estimates": estimates_key, "museval": version("museval")}


def score_key(weights: Weights, iterations: int, target: str) -> str:
    """What ``target``'s score depends on (see the module docstring), as a string."""
    determining = weights[target] if iterations == 0 else weights
    return json.dumps([target, iterations, determining], sort_keys=True)


class ScoreBook:
    """One track's scores, read from ``path`` if it was written for ``key``
    and ``length``, and written there again on every :meth:`add`."""

    def __init__(self, path: Path, key: dict, length: int):
        self.path, self.key, self.length = Path(path), key, length
        self.scores = self._read()

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("key") != self.key or data.get("length") != self.length:
            return {}
        scores = data.get("scores")
        if not isinstance(scores, dict) or not all(isinstance(v, (int, float)) for v in scores.values()):
            return {}
        return {k: float(v) for k, v in scores.items()}

    def get(self, weights: Weights, iterations: int) -> dict[str, float] | None:
        """Every target's score of this blend, or None if one was never measured."""
        found = {t: self.scores.get(score_key(weights, iterations, t)) for t in TARGETS}
        return None if any(score is None for score in found.values()) else found

    def add(self, weights: Weights, iterations: int, scores: dict[str, float]) -> None:
        """File the blend's scores (NaN, museval's answer for a silent reference, included)."""
        self.scores.update({score_key(weights, iterations, t): float(scores[t]) for t in TARGETS})
        write_json_atomically(self.path, {"key": self.key, "length": self.length, "scores": self.scores})
