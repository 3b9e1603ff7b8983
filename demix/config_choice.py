"""Which config a command runs: one order for every command.

1. ``--config FILE``, where the command was given one;
2. else ``$DEMIX_CONFIG`` (the local grader sets it to grade another config);
3. else the repository's ``my_submission/config.toml``, where it exists: what
   the graders and ``python -m challenge submit`` run;
4. else the engine's default, ``demix/default.toml``.

``python -m demix``, ``python -m evaluation``, ``python -m challenge submit``,
the graders' entry points, ``test.py`` and ``scripts/example.py`` all choose
here, and each says what it chose, and why, in its first line
(:meth:`ConfigChoice.describe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import DEFAULT_CONFIG

#: The participant's config, relative to the repository root.
SUBMISSION_CONFIG = Path("my_submission") / "config.toml"

#: Why a config was chosen, in the order they are tried.
BY_OPTION = "--config"
BY_ENV = "$DEMIX_CONFIG"
BY_SUBMISSION = "the submission's config"
BY_DEFAULT = "the engine's default"

#: The order, for --help texts.
ORDER_HELP = (f"default: $DEMIX_CONFIG, else the repository's {SUBMISSION_CONFIG.as_posix()} where it exists "
              f"(what the graders run), else demix/default.toml")


@dataclass(frozen=True)
class ConfigChoice:
    path: Path
    why: str  # one of the BY_* reasons

    @property
    def shown(self) -> str:
        """The path relative to the working folder where it is under it, else as it is."""
        path = Path(self.path)
        if path.is_absolute():
            try:
                return path.relative_to(Path.cwd()).as_posix()
            except (ValueError, OSError):  # not under it, or no working folder
                pass
        return str(path)

    def describe(self, others: str | None = "--config or $DEMIX_CONFIG") -> str:
        """``config: PATH (WHY...)``, the first line of every command; ``others``:
        how this command would run another config (None: it cannot)."""
        notes = [self.why]
        if self.why == BY_DEFAULT:
            notes[0] += f", as there is no {SUBMISSION_CONFIG.as_posix()}"
        if others and self.why in (BY_SUBMISSION, BY_DEFAULT):
            notes.append(f"{others} for another")
        return f"config: {self.shown} ({'; '.join(notes)})"


def choose_config(option: Path | None = None, project: Path = paths.PROJECT_ROOT,
                  honour_env: bool = True) -> ConfigChoice:
    """``option`` (a --config), else $DEMIX_CONFIG, else ``project``'s
    my_submission/config.toml where it is a file, else demix/default.toml.
    ``honour_env=False`` ignores $DEMIX_CONFIG, which exists only on this
    machine (``challenge submit`` checks what the grader will run)."""
    if option is not None:
        return ConfigChoice(Path(option), BY_OPTION)
    override = paths.config_override() if honour_env else None
    if override is not None:
        return ConfigChoice(override, BY_ENV)
    own = Path(project) / SUBMISSION_CONFIG
    if own.is_file():
        return ConfigChoice(own, BY_SUBMISSION)
    return ConfigChoice(DEFAULT_CONFIG, BY_DEFAULT)
