"""`python -m challenge submit`: refusals that say what to fix, the dry run, and a real
push (tag and git-lfs weights) to a local bare repository standing in for AIcrowd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from challenge.challenges import aicrowd_json_for
from demix.weights.catalogue import get_official
from conftest import save_demucs_package, tiny_demucs_model, tiny_openunmix_folder

PROJECT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("git-lfs") is None,
                                reason="git-lfs is not installed (scripts/setup.sh installs it)")

SUBMISSION_CONFIG = """
[separation]
block_seconds = 5
compute = "eager"

[[members]]
name = "demucs"
model = "../models/mine/my_demucs.th"
weights = 0.6

[[members]]
name = "umx"
model = "../models/mine/my_umx"
weights = 0.4
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def copy_project(destination: Path) -> Path:
    """The kit's files as a participant's repository has them (tracked and new, not ignored)."""
    listed = git(PROJECT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, listed):
        source = PROJECT / name
        if source.is_file() and not (name.startswith("models/") and name != "models/README.md"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def submit(repo: Path, home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEMIX_CONFIG", "DEMIX_MODELS")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **extra_env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "challenge", "submit", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def log_in(home: Path) -> None:
    """What `aicrowd login` leaves behind (it verifies the key online, which this machine cannot)."""
    folder = home / ".config" / "aicrowd-cli"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text('aicrowd_api_key = "0123456789abcdef"\n')


@pytest.fixture
def participant_repo(tmp_path):
    """A participant's repository with user-trained weights in models/mine/, not yet committed,
    the placeholder author in aicrowd.json and no aicrowd remote."""
    repo = copy_project(tmp_path / "repo")
    (repo / "aicrowd.json").write_text(json.dumps(aicrowd_json_for("mdx21")))  # as shipped, whatever this kit holds
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "participant@example.com")
    git(repo, "config", "user.name", "Participant")
    git(repo, "lfs", "install", "--local")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the kit")
    tiny_openunmix_folder(repo / "models" / "mine" / "my_umx")
    save_demucs_package(tiny_demucs_model(), repo / "models" / "mine" / "my_demucs.th")
    (repo / "my_submission" / "config.toml").write_text(SUBMISSION_CONFIG)
    home = tmp_path / "home"
    home.mkdir()
    return repo, home


def test_submit_refuses_and_says_what_to_fix(participant_repo):
    repo, home = participant_repo
    result = submit(repo, home, "first", "--dry-run")
    assert result.returncode == 1
    message = result.stderr
    assert "no git remote named 'aicrowd'" in message and "git remote add aicrowd" in message
    assert "uncommitted changes" in message and "my_submission/config.toml" in message
    assert "your AIcrowd user name" in message
    assert "member demucs: models/mine/my_demucs.th not committed through git-lfs" in message
    assert "not logged in" in message and "aicrowd login" in message
    assert git(repo, "tag") == ""


def test_submit_dry_run_then_push_to_a_bare_remote(participant_repo, tmp_path):
    repo, home = participant_repo
    remote = tmp_path / "aicrowd.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "aicrowd", str(remote))
    manifest = json.loads((repo / "aicrowd.json").read_text())
    manifest["authors"] = ["participant"]
    (repo / "aicrowd.json").write_text(json.dumps(manifest, indent=2))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "my submission")
    assert "my_demucs.th" in git(repo, "lfs", "ls-files", "--name-only")
    log_in(home)

    dry = submit(repo, home, "first", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 of 1 songs ok" in dry.stdout  # the local grader ran on the bundled example
    assert "git push aicrowd refs/tags/submission-first" in dry.stdout
    assert git(repo, "tag") == "" and git(remote, "tag") == ""

    real = submit(repo, home, "first")
    assert real.returncode == 0, real.stderr
    assert git(remote, "tag").split() == ["submission-first"]
    assert git(remote, "rev-parse", "submission-first^{commit}") == git(repo, "rev-parse", "HEAD")

    # The weights reached the remote through git-lfs: a fresh clone gets the real bytes.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", "submission-first", str(remote), str(clone))
    git(clone, "lfs", "install", "--local")
    git(clone, "lfs", "pull")
    weights = Path("models/mine/my_demucs.th")
    assert (clone / weights).read_bytes() == (repo / weights).read_bytes()

    again = submit(repo, home, "first", "--dry-run")
    assert again.returncode == 1 and "submission-first already exists" in again.stderr


def test_weights_committed_as_plain_files_earlier_are_refused_until_migrated(participant_repo, tmp_path):
    """A pushed tag carries its history: a weight once committed as a plain file still goes up."""
    repo, home = participant_repo
    weights = "models/mine/my_demucs.th"
    git(repo, "-c", "filter.lfs.clean=", "-c", "filter.lfs.process=", "-c", "filter.lfs.required=false",
        "add", "-A")
    git(repo, "commit", "-q", "-m", "weights as plain files, by mistake")
    git(repo, "rm", "-q", "-r", "--cached", "models/mine")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "weights through git-lfs")
    assert weights in git(repo, "lfs", "ls-files", "--name-only")

    refused = submit(repo, home, "first", "--dry-run")
    assert refused.returncode == 1
    assert "committed as a plain file earlier in the history" in refused.stderr
    assert "git lfs migrate import --include=" in refused.stderr and weights in refused.stderr

    git(repo, "lfs", "migrate", "import", "--include=models/mine/**", "--yes")
    again = submit(repo, home, "first", "--dry-run")
    assert "committed as a plain file" not in again.stderr


@pytest.mark.parametrize("challenge", ["mdx21", "sdx23"])
def test_submit_refuses_the_placeholder_and_each_missing_key_of_the_challenge(participant_repo, challenge):
    repo, home = participant_repo
    required = [key for key in aicrowd_json_for(challenge) if key != "challenge_id"]
    for missing in required:
        manifest = {k: v for k, v in aicrowd_json_for(challenge).items() if k != missing}
        (repo / "aicrowd.json").write_text(json.dumps(manifest))
        result = submit(repo, home, "first", "--dry-run")
        assert result.returncode == 1
        assert f"key {missing!r} is missing ({challenge} needs it)" in result.stderr
        if missing != "authors":
            assert "'authors' is ['your-aicrowd-username']" in result.stderr
    assert git(repo, "tag") == ""


def test_submit_refuses_an_id_no_challenge_uses(participant_repo):
    repo, home = participant_repo
    manifest = {**aicrowd_json_for("mdx21"), "authors": ["participant"], "challenge_id": "music-demixing-challenge"}
    (repo / "aicrowd.json").write_text(json.dumps(manifest))
    result = submit(repo, home, "first", "--dry-run")
    assert result.returncode == 1
    assert "'music-demixing-challenge' is not the id of a challenge this kit knows" in result.stderr
    assert "python -m challenge use mdx21|sdx23" in result.stderr


def _commit_filled_in(repo: Path, config: str | None = None) -> None:
    """aicrowd.json filled in, an aicrowd remote (unless one is there), everything committed."""
    if git(repo, "remote") == "":
        remote = repo.parent / "aicrowd.git"
        git(repo.parent, "init", "-q", "--bare", str(remote))
        git(repo, "remote", "add", "aicrowd", str(remote))
    manifest = {**aicrowd_json_for("mdx21"), "authors": ["participant"]}
    (repo / "aicrowd.json").write_text(json.dumps(manifest))
    if config is not None:
        (repo / "my_submission" / "config.toml").write_text(config)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "my submission")


def test_submit_refuses_missing_damaged_and_outside_weights(participant_repo, tmp_path):
    repo, home = participant_repo
    outside = save_demucs_package(tiny_demucs_model(), tmp_path / "elsewhere" / "outside.th")
    (repo / "models" / "umxhq").mkdir(parents=True)
    for file in get_official("umxhq").files:  # the official names, the wrong bytes
        (repo / "models" / file.path).write_bytes(b"not the weights")
    _commit_filled_in(repo, SUBMISSION_CONFIG + f"""
[[members]]
name = "gone"
model = "../models/mine/absent.th"
weights = 0.1

[[members]]
name = "far"
model = "{outside}"
weights = 0.1

[[members]]
name = "hq"
model = "umxhq"
weights = 0.1
""")
    log_in(home)
    result = submit(repo, home, "first", "--dry-run")
    assert result.returncode == 1
    message = result.stderr
    assert "absent.th (member gone) is missing" in message
    assert "outside.th (member far) is outside the repository" in message
    assert "(member hq) is damaged (its sha256 starts " in message and "python -m demix weights fetch umxhq" in message
    assert "local grader" not in message  # not run while the weights are not in order


def test_submit_refuses_when_git_lfs_filters_are_not_set_up(participant_repo):
    repo, home = participant_repo
    _commit_filled_in(repo)
    log_in(home)
    for key in ("filter.lfs.clean", "filter.lfs.smudge", "filter.lfs.process", "filter.lfs.required"):
        git(repo, "config", "--local", "--unset-all", key)
    # a machine where nobody ran `git lfs install` (Debian's git-lfs package may set it up system-wide)
    result = submit(repo, home, "first", "--dry-run", GIT_CONFIG_NOSYSTEM="1")
    assert result.returncode == 1
    assert "git-lfs is installed but not set up" in result.stderr and "git lfs install" in result.stderr


def test_submit_refuses_when_the_local_grader_fails(participant_repo):
    repo, home = participant_repo
    broken = repo / "models" / "mine" / "my_demucs.th"
    broken.write_bytes(b"truncated" * 100)  # present and on git-lfs, but not a model
    _commit_filled_in(repo)
    log_in(home)
    result = submit(repo, home, "first", "--dry-run")
    assert result.returncode == 1, result.stdout
    assert "python test.py --protocol mdx21 failed on the commit" in result.stderr
    assert "my_demucs.th" in result.stdout + result.stderr
    assert git(repo, "tag") == ""


def test_a_failed_push_removes_the_local_tag(participant_repo, tmp_path):
    repo, home = participant_repo
    git(repo, "remote", "add", "aicrowd", str(tmp_path / "no-such-remote.git"))
    _commit_filled_in(repo)
    log_in(home)
    result = submit(repo, home, "first")
    assert result.returncode == 1
    assert "failed" in result.stderr and "the local tag submission-first was removed" in result.stderr
    assert git(repo, "tag") == ""
