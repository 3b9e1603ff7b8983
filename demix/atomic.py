"""Writing a file so that readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def write_json_atomically(path: Path, data: dict, indent: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place
    (``indent`` for a file people read and edit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json.part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, allow_nan=True, indent=indent)
            if indent is not None:
                handle.write("\n")
        os.chmod(temp, 0o644)  # mkstemp's 0600 would hide the file from other users (a container's)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (with the same extension, for writers that
    choose the format from it) to write to; renamed into place when the block
    completes, removed when it raises. The file gets ordinary permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(temp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
