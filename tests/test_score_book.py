"""Tuning's kept scores (evaluation/score_book.py): filed under what
determines them, read back only for the estimates they were measured on."""

import json
import math

from demix import TARGETS
from evaluation.score_book import ScoreBook, score_key, scores_key

KEY = scores_key({"members": ["demucs", "umx"], "block_seconds": 5})
#: Per target, each member's weight, as a Blend applies them.
WEIGHTS = {t: {"demucs": 0.5, "umx": 0.5} for t in TARGETS}
SCORES = {"bass": 4.25, "drums": 5.5, "other": float("nan"), "vocals": 7.0}


def other_vocals_weights():
    return {**WEIGHTS, "vocals": {"demucs": 1.0}}


def test_without_the_post_filter_a_target_is_keyed_by_its_own_weights_only():
    changed = other_vocals_weights()
    assert score_key(changed, 0, "bass") == score_key(WEIGHTS, 0, "bass")
    assert score_key(changed, 0, "vocals") != score_key(WEIGHTS, 0, "vocals")
    # the post-filter couples the targets: every weight counts, and the iterations
    assert score_key(changed, 1, "bass") != score_key(WEIGHTS, 1, "bass")
    assert score_key(WEIGHTS, 1, "bass") != score_key(WEIGHTS, 2, "bass")


def test_raw_shares_that_blend_alike_are_one_key():
    """The key is what the blend applies: shares normalised over the members
    that estimate a target, a member without the target or weight left out."""
    from demix.ensemble import Blend

    member_targets = {"demucs": TARGETS, "umx": ("vocals",)}
    one = Blend(member_targets, {"demucs": {t: 0.6 for t in TARGETS}, "umx": {t: 0.4 for t in TARGETS}}, 0)
    other = Blend(member_targets, {"demucs": {t: 1.0 for t in TARGETS}, "umx": {t: 0.0 for t in TARGETS}}, 0)
    assert score_key(one.shares, 0, "bass") == score_key(other.shares, 0, "bass")
    assert score_key(one.shares, 0, "vocals") != score_key(other.shares, 0, "vocals")


def test_scores_read_back_exactly_and_a_changed_target_is_unknown(tmp_path):
    path = tmp_path / "blend-scores" / "track.json"
    ScoreBook(path, KEY, 1000).add(WEIGHTS, 0, SCORES)
    again = ScoreBook(path, KEY, 1000)
    found = again.get(WEIGHTS, 0)
    assert {t: found[t] for t in ("bass", "drums", "vocals")} == {t: SCORES[t] for t in ("bass", "drums", "vocals")}
    assert math.isnan(found["other"])  # a silent reference's NaN is a score too, not a gap
    assert again.get(WEIGHTS, 1) is None
    assert again.get(other_vocals_weights(), 0) is None  # vocals was never scored with these weights
    assert not list(path.parent.glob(".*"))  # written atomically: no temporary left


def test_scores_of_other_estimates_or_a_damaged_file_are_not_used(tmp_path):
    path = tmp_path / "track.json"
    ScoreBook(path, KEY, 1000).add(WEIGHTS, 0, SCORES)
    assert ScoreBook(path, scores_key({"members": ["other"]}), 1000).get(WEIGHTS, 0) is None
    assert ScoreBook(path, KEY, 999).get(WEIGHTS, 0) is None  # another length of the track
    for damaged in ("{not json", json.dumps([1, 2]), json.dumps({"key": KEY, "length": 1000, "scores": {"x": "y"}})):
        path.write_text(damaged)
        book = ScoreBook(path, KEY, 1000)
        assert book.get(WEIGHTS, 0) is None
        book.add(WEIGHTS, 1, SCORES)  # and is replaced by the next score written
        assert ScoreBook(path, KEY, 1000).get(WEIGHTS, 1) is not None
