"""Writing a file so that readers see the old file or the whole new one, never a part,
and sweeping away the temporary files of writers that died.

Every file the project writes goes through :class:`TemporaryFile`: a hidden file beside
its destination, named ``.<destination name>.<writer's PID>.<random>.part<extension>``
(the extension kept for writers that choose the format from it), renamed over the
destination when complete. It is created the way a plain ``open()`` creates a file,
mode ``0666`` less the umask, so the renamed file has ordinary permissions.

A writer killed outright (SIGKILL, the machine's OOM killer, a grader's timeout) cannot
remove its temporary file. To tell such a leftover from a file that a live writer is
still filling, the writer holds an exclusive ``flock`` on its temporary file for as long
as the file exists; the kernel releases it when the process ends, however it ends.
:func:`sweep_dead_temporaries` removes only files with our naming whose lock it can take.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# .<name>.<pid>.<random>.part[<extension>]
_TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.part(\.[^./]+)?$")

# A live writer's file is unlocked only between its creation and the flock call just
# after it; a sweep spares an unlocked file younger than this whose writer is alive.
_CREATION_GRACE_SECONDS = 10.0


class TemporaryFile:
    """A locked, empty hidden file beside ``destination`` (``.path``), for a writer to
    fill by name; :meth:`commit` renames it over ``destination``, :meth:`discard`
    removes it. Raises ``OSError`` when the folder cannot be written."""

    def __init__(self, destination: Path):
        self.destination = Path(destination)
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        while True:
            name = (f".{self.destination.stem}.{os.getpid()}.{secrets.token_hex(4)}"
                    f".part{self.destination.suffix}")
            self.path = self.destination.parent / name
            try:
                self._lock = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def commit(self) -> Path:
        """Rename the finished file into place (replacing any earlier one)."""
        os.replace(self.path, self.destination)
        self._release()
        return self.destination

    def discard(self) -> None:
        """Remove the temporary file; safe to call after :meth:`commit` or twice."""
        if self._lock is not None:
            self.path.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to by name; renamed into place when the
    block completes, removed when it raises."""
    temporary = TemporaryFile(path)
    try:
        yield temporary.path
        temporary.commit()
    finally:
        temporary.discard()


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def write_json_atomically(path: Path, data: dict, indent: int | None = None) -> None:
    """``data`` as JSON (``indent`` for a file people read and edit)."""
    with atomic_path(path) as temp, open(temp, "w") as handle:
        json.dump(data, handle, allow_nan=True, indent=indent)
        if indent is not None:
            handle.write("\n")


def sweep_dead_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` (not below it) that writers which are no
    longer running left behind; return them. Other files, and temporary files a live
    process is writing, are left alone. A missing folder has nothing to sweep."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if match and entry.is_file(follow_symlinks=False) and _writer_is_gone(Path(entry.path), int(match["pid"])):
            removed.append(Path(entry.path))
    return removed


def _writer_is_gone(path: Path, pid: int) -> bool:
    """Take the file's lock without waiting; if it is free and the file is not one a
    live writer has only just created, remove the file (still holding the lock)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # committed or discarded meanwhile
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        just_created = time.time() - os.fstat(handle).st_mtime < _CREATION_GRACE_SECONDS
        if just_created and pid != os.getpid() and _is_running(pid):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(handle)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
