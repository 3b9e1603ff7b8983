"""Whether a weight file is intact: one definition for every family.

:func:`problem_of` is that definition. A file is usable when it is there,
is not a git-lfs pointer, and matches everything known of it: its published
size, the sha256 prefix in its official name (or the whole sha256 measured
for a packaged file), the file the kit ships for it, and the sha256 ``fetch``
recorded beside it (``<file>.sha256``). A file nothing more is known of (a
user's own) is usable when it is there and is not a pointer. Every member
checks its official files with :func:`require_intact` (or
:func:`require_intact_packaged`) before opening them, so a damaged file is
refused with the same message whichever family reads it.

Hashing a file in full is done once per version of the file:
:func:`sha256_of` remembers each result by (resolved path, size, mtime_ns),
in this process and, for files of a models folder, in
``<models>/.sha256-cache.json`` (:data:`HASH_CACHE`), so the next command
does not hash hundreds of megabytes again. That cache guards against
accidents (a cut download, the wrong file), as the checks do, not against
someone who rewrites a file and restores its mtime. It is written atomically
(:mod:`demix.atomic`); one that cannot be read, is corrupt or cannot be
written (a read-only models folder) is ignored: the files are hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Iterable

from ..atomic import write_json_atomically
from ..errors import WeightsError
from .catalogue import ModelWeights, PackagedFile, PackagedModel, WeightFile, fetch_command

#: What :func:`problem_of` says of a file that is not there.
MISSING = "missing"
#: What ``fetch`` writes beside a file that has no checksum in its name: its sha256.
LOCK_SUFFIX = ".sha256"
#: How every git-lfs pointer file begins: what a clone without ``git lfs pull`` holds instead of the weights.
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"
#: The file in a models folder that remembers the sha256 of the files in it.
HASH_CACHE = ".sha256-cache.json"
#: A file changed less than this long ago may change again without its mtime moving (timestamps
#: are coarse: a few ms on ext4, 2 s on FAT), so its hash is remembered only once it is older.
SETTLED_SECONDS = 2

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: (resolved path, size, mtime_ns) -> sha256, for this process.
_remembered: dict[tuple[str, int, int], str] = {}


# --- hashing, once ------------------------------------------------------------------------------

def sha256_of(path: Path, cache: Path | None = None) -> str:
    """The file's sha256, hashed in full only when its (resolved path, size,
    mtime_ns) has not been hashed before, in this process or, with ``cache``
    (a :data:`HASH_CACHE` file), by an earlier one."""
    path = Path(path).resolve()
    started = time.time_ns()
    before = path.stat()
    key = (str(path), before.st_size, before.st_mtime_ns)
    if key in _remembered:
        return _remembered[key]
    recorded = _read_cache(cache).get(key[0]) if cache is not None else None
    if recorded is not None and recorded[:2] == key[1:]:
        _remembered[key] = recorded[2]
        return recorded[2]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    after = path.stat()
    settled = before.st_mtime_ns <= started - SETTLED_SECONDS * 1_000_000_000
    if settled and (after.st_size, after.st_mtime_ns) == key[1:]:  # and it did not change while being read
        _remembered[key] = sha256
        if cache is not None:
            _record(cache, key, sha256)
    return sha256


def hash_cache(models_dir: Path) -> Path:
    """Where a models folder remembers the sha256 of its files."""
    return Path(models_dir) / HASH_CACHE


def _read_cache(cache: Path) -> dict[str, tuple[int, int, str]]:
    """Resolved path -> (size, mtime_ns, sha256); empty for a cache that is absent, unreadable or corrupt,
    without its malformed entries."""
    try:
        data = json.loads(cache.read_text())
        files = data["files"]
        entries = files.items()
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    valid = {}
    for path, entry in entries:
        if (isinstance(entry, dict) and type(entry.get("size")) is int and type(entry.get("mtime_ns")) is int
                and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])):
            valid[path] = (entry["size"], entry["mtime_ns"], entry["sha256"])
    return valid


def _record(cache: Path, key: tuple[str, int, int], sha256: str) -> None:
    """Add one hash to the cache, dropping entries of files that are gone or changed since.
    Two commands that write it at once: the last one's file stands, and an entry it lacks
    only costs a later command that file's hash again."""
    if not cache.parent.is_dir():
        return  # never create a models folder only to keep a cache in it
    entries = {key[0]: (key[1], key[2], sha256)}
    for path, (size, mtime_ns, known) in _read_cache(cache).items():
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if path not in entries and (stat.st_size, stat.st_mtime_ns) == (size, mtime_ns):
            entries[path] = (size, mtime_ns, known)
    files = {path: {"size": size, "mtime_ns": mtime_ns, "sha256": known}
             for path, (size, mtime_ns, known) in sorted(entries.items())}
    try:
        write_json_atomically(cache, {"files": files}, indent=1)
    except OSError:
        pass  # a read-only models folder: the next command hashes again


# --- the one definition of a usable file --------------------------------------------------------

def is_lfs_pointer(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(LFS_POINTER_START)) == LFS_POINTER_START
    except OSError:
        return False


def lock_path(path: Path) -> Path:
    """Where ``fetch`` records the sha256 of a file with no checksum in its name."""
    return path.with_name(path.name + LOCK_SUFFIX)


def problem_of(path: Path, *, sha256: str | None = None, size: int | None = None, same_as: Path | None = None,
               check_lock: bool = False, cache: Path | None = None) -> str | None:
    """None for a file that is there and matches all that is known of it, else
    :data:`MISSING` or what is wrong with it, in words.

    ``sha256``: the file's sha256 or its leading hex digits; ``size``: its
    published size in bytes; ``same_as``: a file it must equal byte for byte;
    ``check_lock``: compare it with the sha256 recorded in its lock file, if
    one is there; ``cache``: where to remember its hash (:func:`sha256_of`)."""
    path = Path(path)
    if not path.is_file():
        return MISSING
    if is_lfs_pointer(path):
        return "it is a git-lfs pointer file, not the weights (get them with: git lfs install && git lfs pull)"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"it is {actual_size:,} bytes; the published file is {size:,}"
    if sha256:
        actual, shown = sha256_of(path, cache), min(len(sha256), 16)
        if not actual.startswith(sha256):
            return f"its sha256 starts {actual[:shown]}, not {sha256[:shown]}"
    if same_as is not None and path.read_bytes() != Path(same_as).read_bytes():
        return f"it differs from {same_as}"
    return lock_problem(path, lock_path(path), cache) if check_lock else None


def lock_problem(path: Path, lock: Path, cache: Path | None = None) -> str | None:
    """None where ``lock`` is absent or records the sha256 of ``path``, else what is wrong, in words."""
    if not lock.is_file():
        return None
    recorded = lock.read_text().split()[:1]
    if sha256_of(path, cache) not in recorded:
        return f"its sha256 differs from the one fetch recorded in {lock.name}"
    return None


def status_of(problem: str | None) -> str:
    """``present`` (and verified), ``missing`` or ``damaged``."""
    return "present" if problem is None else "missing" if problem == MISSING else "damaged"


def in_words(problem: str) -> str:
    """``is missing`` or ``is damaged (what is wrong)``, as every message about a weight file says it."""
    return "is missing" if problem == MISSING else f"is damaged ({problem})"


def worst_status(statuses: Iterable[str]) -> str:
    """``damaged`` over ``missing`` over ``present``."""
    statuses = set(statuses)
    return next((status for status in ("damaged", "missing") if status in statuses), "present")


# --- official files, in the models folder -------------------------------------------------------

def file_problem(models_dir: Path, file: WeightFile) -> str | None:
    """:func:`problem_of` for an official file under ``models_dir``."""
    return problem_of(Path(models_dir) / file.path, sha256=file.sha256_prefix, size=file.size,
                      same_as=file.bundled, check_lock=file.needs_lock, cache=hash_cache(models_dir))


def file_status(models_dir: Path, file: WeightFile) -> str:
    return status_of(file_problem(models_dir, file))


def model_status(models_dir: Path, model: ModelWeights) -> str:
    """The worst status over the model's files."""
    return worst_status(file_status(models_dir, file) for file in model.files)


def official_file_error(model: ModelWeights, file: WeightFile, models_dir: Path, problem: str) -> WeightsError:
    """The message for an official file that is not usable, :func:`problem_of`'s words or a loader's."""
    return unusable_file_error(
        f"{file.path} of model {model.name!r}", Path(models_dir) / file.path, problem, file.origin,
        f"fetch it with: {fetch_command(model.name)} (or `... --from DIR` to copy it from a mirror folder)")


def require_intact(model: ModelWeights, models_dir: Path) -> None:
    """Refuse the first file of ``model`` that is missing or damaged, before anything opens it."""
    for file in model.files:
        problem = file_problem(models_dir, file)
        if problem is not None:
            raise official_file_error(model, file, models_dir, problem)


# --- official files, inside their wheel ---------------------------------------------------------

def packaged_problems(model: PackagedModel) -> list[tuple[PackagedFile, Path, str | None]]:
    """Each file of a packaged model, where it is, and :func:`problem_of`'s verdict on it (its hash is
    remembered in this process only: nothing is written beside an installed package)."""
    paths = model.paths()
    return [(file, paths[file.stem], problem_of(paths[file.stem], sha256=file.sha256)) for file in model.files]


def packaged_status(model: PackagedModel) -> str:
    return worst_status(status_of(problem) for _, _, problem in packaged_problems(model))


def require_intact_packaged(model: PackagedModel) -> None:
    """:func:`require_intact` for a model read inside its wheel."""
    for file, path, problem in packaged_problems(model):
        if problem is not None:
            raise unusable_file_error(f"{file.path} of model {model.name!r}", path, problem, model.describe(),
                                      model.reinstall_hint())


# --- the message --------------------------------------------------------------------------------

def unusable_file_error(what: str, path: Path, problem: str, origin: str, remedy: str) -> WeightsError:
    """The one message for a weight file that is not usable, whatever its family:
    which file, what is wrong, where it was looked for, where it officially
    comes from, how to get it."""
    return WeightsError(f"weight file {what} {in_words(problem)}\n  looked for: {path}\n"
                        f"  official source: {origin}\n  {remedy}")


def refuse_lfs_pointers(paths: list[Path]) -> None:
    """A git-lfs pointer where weights should be fails deep inside torch.load
    with "invalid load key"; say what it is instead, naming all of them at once."""
    pointers = [str(path) for path in paths if is_lfs_pointer(path)]
    if pointers:
        raise WeightsError(
            "these are git-lfs pointer files, not weights (the repository was cloned without its "
            "LFS objects): " + ", ".join(pointers) + "\n  get them with: git lfs install && git lfs pull"
        )
