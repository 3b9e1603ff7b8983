"""The songs of a catalogue run waiting for a worker, and the retry rule for
a song whose worker was lost.

A worker is lost when its process dies while it separates a song (killed,
out of memory, its node gone): the song itself may be fine, so it goes back
to the front of the queue, for another worker where another is free, until
it has been tried ``1 + retries`` times; then it fails with the last error.
A song that fails inside a live worker (a file that cannot be read, say) is
not retried: it would fail again. Kept apart from Ray so the rule is plain
to read and test.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class QueuedSong:
    index: int  # its place in the run's song list
    path: Path
    out_dir: Path
    tries: int = 0
    #: The workers that were lost while separating it.
    lost_on: set[int] = field(default_factory=set)


class SongQueue:
    def __init__(self, songs: list[QueuedSong], retries: int):
        if retries < 0:
            raise ValueError(f"retries must be at least 0, not {retries}")
        self.retries = retries
        self._waiting = deque(songs)

    def __len__(self) -> int:
        return len(self._waiting)

    def next_for(self, worker: int) -> QueuedSong | None:
        """The next song for ``worker``: the first one it was not lost on, else
        the first one (a restarted worker is a fresh process); its try counted."""
        if not self._waiting:
            return None
        song = next((song for song in self._waiting if worker not in song.lost_on), self._waiting[0])
        self._waiting.remove(song)
        song.tries += 1
        return song

    def lost(self, song: QueuedSong, worker: int) -> bool:
        """``worker`` was lost while separating ``song``: back to the front of
        the queue where it has tries left (True), else False (it has failed)."""
        song.lost_on.add(worker)
        if song.tries > self.retries:
            return False
        self._waiting.appendleft(song)
        return True

    def drain(self) -> list[QueuedSong]:
        """Every waiting song, taken out of the queue (no worker is left for them)."""
        songs = list(self._waiting)
        self._waiting.clear()
        return songs
