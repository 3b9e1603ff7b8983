"""What a catalogue run shows: one bar for the whole catalogue (songs done of
the total, songs per hour, time left) and, at the end, one line with what
each worker did."""

from __future__ import annotations

import time
from dataclasses import dataclass

import tqdm


@dataclass
class WorkerTally:
    """One worker's share of the run, for the final line."""

    name: str
    where: str = "not started"
    done: int = 0
    failed: int = 0
    lost: int = 0  # songs it was separating when its process was lost


def pace(finished: int, seconds: float, left: int) -> str:
    """``"N songs/hour, H:MM:SS left"`` from the songs finished in ``seconds``."""
    if finished <= 0 or seconds <= 0:
        return "songs/hour: measuring"
    per_hour = finished / seconds * 3600
    remaining = round(left / per_hour * 3600)
    hours, rest = divmod(remaining, 3600)
    return f"{per_hour:.1f} songs/hour, {hours}:{rest // 60:02d}:{rest % 60:02d} left"


def workers_line(tallies: list[WorkerTally]) -> str:
    parts = []
    for tally in tallies:
        counts = [f"{tally.done} separated"]
        if tally.failed:
            counts.append(f"{tally.failed} failed")
        if tally.lost:
            counts.append(f"lost {tally.lost} time{'s' if tally.lost > 1 else ''} mid-song")
        parts.append(f"{tally.name} ({tally.where}): {', '.join(counts)}")
    return "per worker: " + "; ".join(parts)


class CatalogueBar:
    """The catalogue's bar, starting at the songs already done (skipped)."""

    def __init__(self, total: int, already_done: int, enabled: bool):
        self._started = time.perf_counter()
        self._finished = 0
        self._left = total - already_done
        self._bar = tqdm.tqdm(total=total, initial=already_done, desc="songs", unit="song", disable=not enabled,
                              bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {postfix}")
        self._bar.set_postfix_str(pace(0, 0, self._left))

    def song_finished(self) -> None:
        self._finished += 1
        self._left -= 1
        self._bar.set_postfix_str(pace(self._finished, time.perf_counter() - self._started, self._left),
                                  refresh=False)
        self._bar.update()

    def close(self) -> None:
        self._bar.close()
