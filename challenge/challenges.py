"""The challenges this kit submits to, and their ``aicrowd.json``.

AIcrowd maps a submission to its challenge by ``challenge_id`` in
``aicrowd.json`` ("please remember to use the correct challenge_id", MDX 2021
kit's README): a wrong id sends the submission nowhere. Each challenge's
starter kit fixes the id and the other keys its grader reads:

- MDX 2021 (``AIcrowd/music-demixing-challenge-starter-kit``):
  ``challenge_id`` and ``grader_id`` both ``evaluations-api-music-demixing``,
  ``authors``, ``description``, ``external_dataset_used`` (leaderboard B);
- SDX 2023 music demixing track (its starter kit's ``aicrowd.json``):
  ``challenge_id`` ``music-demixing-track-mdx-23``, ``authors``,
  ``labelnoise`` and ``bleeding`` (which of its leaderboards),
  ``external_dataset_used``, ``gpu`` (a T4 for the run), ``description``.

``python -m challenge use mdx21|sdx23`` writes ``aicrowd.json`` for one of
them, keeping what the participant already filled in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from demix.atomic import write_json_atomically

#: What ``authors`` holds until the participant puts their AIcrowd user name there.
PLACEHOLDER_AUTHOR = "your-aicrowd-username"
PLACEHOLDER_DESCRIPTION = "Per-target blend of HT Demucs and Open-Unmix HQ with a multichannel Wiener post-filter"

#: aicrowd.json key -> (type, what it means), for every key either challenge reads.
KEY_MEANINGS: dict[str, tuple[type, str]] = {
    "challenge_id": (str, "the challenge's id from its starter kit"),
    "grader_id": (str, "the grader's id from the starter kit (MDX 2021: the same as challenge_id)"),
    "authors": (list, "a list of AIcrowd user names"),
    "description": (str, "a short description of the method"),
    "external_dataset_used": (bool, "true when any model was trained on data beyond the challenge's own "
                                    "(leaderboard B)"),
    "labelnoise": (bool, "true for the label-noise leaderboard (models trained on its noisy-label data)"),
    "bleeding": (bool, "true for the bleeding leaderboard (models trained on its bleeding data)"),
    "gpu": (bool, "true to ask the grader for a GPU"),
}


@dataclass(frozen=True)
class Challenge:
    #: Short name used on the command line and in the local grader: the protocol.
    key: str
    title: str
    #: aicrowd.json as its starter kit has it, but for the participant's own entries.
    template: dict

    @property
    def challenge_id(self) -> str:
        return self.template["challenge_id"]

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(self.template)


CHALLENGES: dict[str, Challenge] = {
    challenge.key: challenge for challenge in (
        Challenge("mdx21", "Music Demixing Challenge 2021 (runs run.sh -> predict.py)", {
            "challenge_id": "evaluations-api-music-demixing",
            "grader_id": "evaluations-api-music-demixing",
            "authors": [PLACEHOLDER_AUTHOR],
            "description": PLACEHOLDER_DESCRIPTION,
            "external_dataset_used": True,
        }),
        Challenge("sdx23", "Sound Demixing Challenge 2023, music demixing track "
                           "(runs my_submission/aicrowd_wrapper.py)", {
            "challenge_id": "music-demixing-track-mdx-23",
            "authors": [PLACEHOLDER_AUTHOR],
            "labelnoise": False,
            "bleeding": False,
            "external_dataset_used": True,
            "gpu": False,
            "description": PLACEHOLDER_DESCRIPTION,
        }),
    )
}


def challenge_of(challenge_id: str) -> Challenge | None:
    """The challenge an ``aicrowd.json`` id names, or None for an id no kit uses."""
    return next((c for c in CHALLENGES.values() if c.challenge_id == challenge_id), None)


def aicrowd_json_for(key: str, current: dict | None = None) -> dict:
    """``aicrowd.json`` for the challenge ``key``: its ids and keys, with the
    participant's entries from ``current`` kept where that challenge reads them."""
    challenge = CHALLENGES[key]
    data = dict(challenge.template)
    for name, value in (current or {}).items():
        if name in data and name not in ("challenge_id", "grader_id"):
            data[name] = value
    return data


def write_aicrowd_json(path: Path, key: str) -> dict:
    """Switch ``path`` to the challenge ``key`` (see :func:`aicrowd_json_for`)."""
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = None
    data = aicrowd_json_for(key, current if isinstance(current, dict) else None)
    write_json_atomically(path, data, indent=2)
    return data
