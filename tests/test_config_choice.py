"""One order for the config every command runs (demix/config_choice.py):
--config, else $DEMIX_CONFIG, else the repository's my_submission/config.toml,
else demix/default.toml; and each command says which in its first line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demix.config import DEFAULT_CONFIG
from demix.config_choice import BY_DEFAULT, BY_ENV, BY_OPTION, BY_SUBMISSION, choose_config

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A repository root without my_submission/config.toml, and no $DEMIX_CONFIG."""
    monkeypatch.delenv("DEMIX_CONFIG", raising=False)
    (tmp_path / "my_submission").mkdir()
    return tmp_path


def _submission(project: Path) -> Path:
    own = project / "my_submission" / "config.toml"
    own.write_text(DEFAULT_CONFIG.read_text())
    return own


def test_without_a_submission_config_the_engines_default(project):
    choice = choose_config(project=project)
    assert (choice.path, choice.why) == (DEFAULT_CONFIG, BY_DEFAULT)
    assert choice.describe().startswith(f"config: {choice.shown} (the engine's default, as there is no "
                                        "my_submission/config.toml; --config or $DEMIX_CONFIG for another)")


def test_the_submissions_config_where_it_exists(project):
    own = _submission(project)
    choice = choose_config(project=project)
    assert (choice.path, choice.why) == (own, BY_SUBMISSION)
    assert choice.describe(others=None) == f"config: {choice.shown} (the submission's config)"


def test_a_folder_named_config_toml_is_not_a_config(project):
    (project / "my_submission" / "config.toml").mkdir()
    assert choose_config(project=project).why == BY_DEFAULT


def test_demix_config_comes_before_the_submissions_unless_ignored(project, monkeypatch, tmp_path):
    own = _submission(project)
    other = tmp_path / "other.toml"
    monkeypatch.setenv("DEMIX_CONFIG", str(other))
    choice = choose_config(project=project)
    assert (choice.path, choice.why) == (other, BY_ENV)
    assert choice.describe() == f"config: {choice.shown} ($DEMIX_CONFIG)"
    # challenge submit: the committed config the grader runs, not this machine's variable
    assert choose_config(project=project, honour_env=False).path == own
    monkeypatch.setenv("DEMIX_CONFIG", "")  # set but empty: not set
    assert choose_config(project=project).path == own


def test_the_option_comes_first(project, monkeypatch, tmp_path):
    _submission(project)
    monkeypatch.setenv("DEMIX_CONFIG", str(tmp_path / "other.toml"))
    given = Path("mine.toml")
    choice = choose_config(given, project=project)
    assert (choice.path, choice.why) == (given, BY_OPTION)
    assert choice.describe() == "config: mine.toml (--config)"


def test_the_default_project_is_the_folder_above_demix(monkeypatch):
    monkeypatch.delenv("DEMIX_CONFIG", raising=False)
    own = PROJECT / "my_submission" / "config.toml"
    assert choose_config().path == (own if own.is_file() else DEFAULT_CONFIG)


@pytest.mark.slow
def test_info_says_the_chosen_config_first_without_weights(tmp_path):
    """`python -m demix info` from the repository, with an empty models folder:
    the first line names the config it chose, and it ends without a traceback."""
    env = {key: value for key, value in os.environ.items() if key != "DEMIX_CONFIG"}
    own = PROJECT / "my_submission" / "config.toml"
    expected = ("config: my_submission/config.toml (the submission's config;" if own.is_file() else
                "config: demix/default.toml (the engine's default, as there is no my_submission/config.toml;")
    result = subprocess.run([sys.executable, "-m", "demix", "info", "--models", str(tmp_path / "no_models")],
                            cwd=PROJECT, capture_output=True, text=True, env=env)
    assert result.stdout.splitlines()[0].startswith(expected), result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr

    env["DEMIX_CONFIG"] = str(DEFAULT_CONFIG)
    result = subprocess.run([sys.executable, "-m", "demix", "info", "--models", str(tmp_path / "no_models")],
                            cwd=PROJECT, capture_output=True, text=True, env=env)
    assert result.stdout.splitlines()[0] == "config: demix/default.toml ($DEMIX_CONFIG)", result.stdout
    assert result.returncode == 1 and "the ensemble cannot be loaded here" in result.stdout
