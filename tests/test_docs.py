"""The README and docs/ stay true to the checkout: every command a shell code block
shows exists (this project's commands answer ``--help``; its shell scripts are there
and parse), and every relative link resolves to a file, and to a heading where it
names one. benchmarks/RESULTS.md's links are checked too."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
#: The pages whose code blocks are checked.
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
#: The pages whose links are checked.
LINKED_PAGES = [*PAGES, PROJECT / "benchmarks" / "RESULTS.md"]

#: Code blocks in these languages (or none) hold shell commands.
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
#: How the pages call Python.
PYTHONS = {"python", "python3", ".venv/bin/python"}
#: This project's modules with a command line, and the console scripts pyproject.toml installs for them.
MODULES = {"demix", "evaluation", "training", "challenge"}
CONSOLE_SCRIPTS = {"demix": "demix", "demix-evaluate": "evaluation", "demix-train": "training",
                   "demix-challenge": "challenge"}
#: Programs the pages show that are not this project's: whether they exist is not this test's to say.
EXTERNAL = {"git", "docker", "dockerd", "systemctl", "apt-get", "mkdir", "cp", "chmod", "cd", "export",
            "pip", "curl", "ls", "cat", "ray", ".venv/bin/ray"}
#: A subcommand word (``separate``, ``weights fetch``, ``augment-preview``), not a placeholder or a path.
SUBCOMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def code_blocks(page: Path) -> list[str]:
    return [code for language, code in FENCE.findall(page.read_text()) if language.lower() in SHELL_LANGUAGES]


def shell_commands(code: str) -> list[list[str]]:
    """Each simple command of a block, as words: continuation lines joined, comments
    dropped, split at ``&&``, ``||``, ``;`` and ``|``, leading ``VAR=value`` left out."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in (";", "&&", "||", "|", "&"):
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words.pop(0)
                if words:
                    commands.append(words)
                words = []
            elif not re.match(r"^\d?>", word):
                words.append(word)
    return commands


def what_to_check(words: list[str]) -> tuple[str, ...] | None:
    """The check a command needs, as a key to dedupe on: ("module", name, subcommands...),
    ("script", path), ("shell", path), ("importable", module); None for another program's."""
    program = words[0]
    if program in CONSOLE_SCRIPTS:
        words = ["python", "-m", CONSOLE_SCRIPTS[program], *words[1:]]
        program = "python"
    if program in PYTHONS:
        if words[1] == "-m":
            module, rest = words[2], words[3:]
            if module not in MODULES:
                return ("importable", module)
            subcommands = []
            for word in rest[:2]:
                if not SUBCOMMAND.match(word):
                    break
                subcommands.append(word)
            return ("module", module, *subcommands)
        return ("script", words[1])
    if program == "bash":
        return ("shell", words[1])
    assert program in EXTERNAL, f"{words}: an unknown program {program!r} (add it to EXTERNAL if it is not ours)"
    return None


def checks() -> dict[tuple[str, ...], str]:
    """Every check the pages need, once, with the first page and command that needs it."""
    found: dict[tuple[str, ...], str] = {}
    for page in PAGES:
        for code in code_blocks(page):
            for words in shell_commands(code):
                key = what_to_check(words)
                if key is not None:
                    found.setdefault(key, f"{page.relative_to(PROJECT)}: {' '.join(words)}")
    return found


def test_the_command_parser_finds_the_readme_s_commands():
    assert shell_commands("bash scripts/setup.sh --dev && .venv/bin/python -m pytest -q  # all\n") == [
        ["bash", "scripts/setup.sh", "--dev"], [".venv/bin/python", "-m", "pytest", "-q"]]
    found = checks()
    for key in [("shell", "scripts/setup.sh"), ("shell", "scripts/example.sh"), ("importable", "pytest"),
                ("module", "demix", "separate"), ("module", "demix", "weights", "fetch"),
                ("module", "evaluation", "run"), ("module", "training", "fit"),
                ("module", "challenge", "submit", "v1"), ("script", "test.py")]:
        assert key in found, (key, sorted(found))


def test_every_shell_script_and_module_shown_exists():
    """Without running anything: scripts are there and parse, other modules import."""
    for key, where in checks().items():
        if key[0] == "shell":
            script = PROJECT / key[1]
            assert script.is_file(), where
            parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
            assert parsed.returncode == 0, (where, parsed.stderr)
        elif key[0] == "script":
            assert (PROJECT / key[1]).is_file(), where
        elif key[0] == "importable":
            assert importlib.util.find_spec(key[1]) is not None, where


#: Runs each command's ``--help`` as ``python -m``/``python SCRIPT`` would, in one process (one
#: torch import instead of a dozen): its exit code and whether it printed a usage.
HELP_RUNNER = """
import contextlib, io, json, runpy, sys
results = []
for kind, target, *args in json.loads(sys.argv[1]):
    sys.argv = [target, *args, "--help"]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            (runpy.run_module if kind == "module" else runpy.run_path)(target, run_name="__main__")
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except Exception as error:
            code, err = 1, io.StringIO(repr(error))
    results.append([code, "usage:" in out.getvalue(), err.getvalue()[-500:]])
print(json.dumps(results))
"""


@pytest.mark.slow
def test_every_command_shown_answers_help():
    """One ``--help`` per command and subcommand shown."""
    import json

    shown = [(key, where) for key, where in checks().items() if key[0] in ("module", "script")]
    answered = subprocess.run([sys.executable, "-c", HELP_RUNNER, json.dumps([list(key) for key, _ in shown])],
                              cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert answered.returncode == 0, answered.stderr[-2000:]
    results = json.loads(answered.stdout.strip().splitlines()[-1])
    failures = [f"{where}\n  {' '.join(key[1:])} --help: exit {code}, usage printed: {usage}\n  {error}"
                for (key, where), (code, usage, error) in zip(shown, results) if code != 0 or not usage]
    assert not failures, "\n".join(failures)


def github_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation but
    ``-`` and ``_`` dropped, spaces to hyphens, repeats numbered."""
    text = FENCE.sub("", page.read_text())
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, number = slug, 0
        while anchor in anchors:
            number += 1
            anchor = f"{slug}-{number}"
        anchors.add(anchor)
    return anchors


def test_the_anchor_rule_is_github_s():
    page = PROJECT / "docs" / "graders.md"
    assert "what-python--m-challenge-submit-checks" in github_anchors(page)
    assert "aicrowdjson-which-challenge" in github_anchors(page)


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda page: str(page.relative_to(PROJECT)))
def test_every_relative_link_resolves(page):
    text = FENCE.sub("", page.read_text())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(PROJECT)}")
    assert not broken, f"{page.relative_to(PROJECT)}: " + "; ".join(broken)


#: The README is a guide a newcomer reads in minutes; the depth lives in docs/.
README_MAX_BYTES = 20_000


def test_the_readme_stays_a_short_guide_that_opens_with_the_two_commands():
    readme = (PROJECT / "README.md").read_bytes()
    assert len(readme) <= README_MAX_BYTES, f"README.md is {len(readme)} bytes; move the depth to docs/"
    first_screen = readme.decode().splitlines()[:12]
    assert "bash scripts/setup.sh && bash scripts/example.sh" in first_screen
    test_command = "bash scripts/setup.sh --dev && .venv/bin/python -m pytest -q -n 2 --dist loadfile"
    assert test_command in first_screen
    assert test_command in (PROJECT / ".ci" / "run").read_text().splitlines()  # CI runs the README's command
