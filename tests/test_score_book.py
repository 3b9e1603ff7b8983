"""Tuning's kept scores (evaluation/score_book.py): filed under what
determines them, read back only for the estimates they were measured on."""

import json
import math

from demix import TARGETS
from evaluation.score_book import ScoreBook, score_key, scores_key

KEY = scores_key({"members": ["demucs", "umx"], "block_seconds": 5})
SHARES = {"demucs": {t: 0.5 for t in TARGETS}, "umx": {t: 0.5 for t in TARGETS}}
SCORES = {"bass": 4.25, "drums": 5.5, "other": float("nan"), "vocals": 7.0}


def other_vocals_shares():
    changed = {member: dict(of_member) for member, of_member in SHARES.items()}
    changed["demucs"]["vocals"], changed["umx"]["vocals"] = 1.0, 0.0
    return changed


def test_without_the_post_filter_a_target_is_keyed_by_its_own_shares_only():
    changed = other_vocals_shares()
    assert score_key(changed, 0, "bass") == score_key(SHARES, 0, "bass")
    assert score_key(changed, 0, "vocals") != score_key(SHARES, 0, "vocals")
    # the post-filter couples the targets: every share counts, and the iterations
    assert score_key(changed, 1, "bass") != score_key(SHARES, 1, "bass")
    assert score_key(SHARES, 1, "bass") != score_key(SHARES, 2, "bass")


def test_scores_read_back_exactly_and_a_changed_target_is_unknown(tmp_path):
    path = tmp_path / "blend-scores" / "track.json"
    ScoreBook(path, KEY, 1000).add(SHARES, 0, SCORES)
    again = ScoreBook(path, KEY, 1000)
    found = again.get(SHARES, 0)
    assert {t: found[t] for t in ("bass", "drums", "vocals")} == {t: SCORES[t] for t in ("bass", "drums", "vocals")}
    assert math.isnan(found["other"])  # a silent reference's NaN is a score too, not a gap
    assert again.get(SHARES, 1) is None
    assert again.get(other_vocals_shares(), 0) is None  # vocals was never scored with these shares
    assert not list(path.parent.glob(".*"))  # written atomically: no temporary left


def test_scores_of_other_estimates_or_a_damaged_file_are_not_used(tmp_path):
    path = tmp_path / "track.json"
    ScoreBook(path, KEY, 1000).add(SHARES, 0, SCORES)
    assert ScoreBook(path, scores_key({"members": ["other"]}), 1000).get(SHARES, 0) is None
    assert ScoreBook(path, KEY, 999).get(SHARES, 0) is None  # another length of the track
    for damaged in ("{not json", json.dumps([1, 2]), json.dumps({"key": KEY, "length": 1000, "scores": {"x": "y"}})):
        path.write_text(damaged)
        book = ScoreBook(path, KEY, 1000)
        assert book.get(SHARES, 0) is None
        book.add(SHARES, 1, SCORES)  # and is replaced by the next score written
        assert ScoreBook(path, KEY, 1000).get(SHARES, 1) is not None
