"""The packaging files agree with their one source: requirements.txt and apt.txt for
versions, the weights manifest for models/README.md, .gitattributes for git-lfs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from demix.weights import official_models
from evaluation.submit import check_aicrowd_json, protocol_of

PROJECT = Path(__file__).resolve().parents[1]


def test_environment_yml_is_generated_from_requirements():
    result = subprocess.run([sys.executable, "scripts/write_environment_yml.py", "--check"], cwd=PROJECT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pins = [line.split("#")[0].strip() for line in (PROJECT / "requirements.txt").read_text().splitlines()]
    environment = (PROJECT / "environment.yml").read_text()
    assert all(f"- {pin}\n" in environment for pin in pins if pin)
    assert "torch==2.11.0" in environment and "torchaudio==2.11.0" in environment


def test_dockerfile_installs_through_the_same_files_as_a_host():
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert "COPY apt.txt requirements.txt ./" in dockerfile and "RUN bash scripts/setup.sh" in dockerfile
    assert "--uid 1001" in dockerfile and re.search(r"^USER aicrowd$", dockerfile, re.M)
    assert re.search(r'^CMD \["python", "predict.py"\]$', dockerfile, re.M)
    ignored = (PROJECT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and not any(line.startswith("models") for line in ignored)
    setup = (PROJECT / "scripts" / "setup.sh").read_text()
    assert "apt.txt" in setup and "requirements.txt" in setup


def test_models_readme_lists_every_official_file_with_its_licence():
    readme = (PROJECT / "models" / "README.md").read_text()
    for name, model in official_models().items():
        for file in model.files:
            row = next((line for line in readme.splitlines() if f"`{file.path}`" in line), None)
            assert row is not None, f"{file.path} of {name} is not in models/README.md"
            assert f"`{name}`" in row and (file.url is None or file.url in row)
            assert ("CC BY-NC-SA" in row) == model.licence.startswith("CC BY-NC-SA")


@pytest.mark.parametrize("path, on_lfs", [
    ("models/demucs/955717e8-8726e21a.th", True),
    ("models/umxl/vocals-bccbd9aa.pth", True),
    ("models/mine/my_umx/vocals.json", True),
    ("models/README.md", False),
    ("predict.py", False),
])
def test_weights_under_models_go_to_git_lfs(path, on_lfs):
    attributes = subprocess.run(["git", "check-attr", "filter", "--", path], cwd=PROJECT,
                                capture_output=True, text=True, check=True).stdout
    assert attributes.strip().endswith("lfs") == on_lfs, attributes


def test_aicrowd_json_checks(tmp_path):
    shipped = check_aicrowd_json(PROJECT / "aicrowd.json")
    assert [r.problem for r in shipped] == [f"{PROJECT / 'aicrowd.json'}: 'authors' is ['your-aicrowd-username']"]
    path = tmp_path / "aicrowd.json"
    path.write_text('{"challenge_id": "x", "authors": ["me"], "description": "d", '
                    '"external_dataset_used": "yes", "gpu": false}')
    (refusal,) = check_aicrowd_json(path)
    assert "'external_dataset_used' must be bool" in refusal.problem
    path.write_text('{"challenge_id": "x", ')
    assert "not valid JSON" in check_aicrowd_json(path)[0].problem
    assert "missing" in check_aicrowd_json(tmp_path / "none.json")[0].problem


def test_protocol_follows_the_challenge():
    assert protocol_of("music-demixing-challenge") == "mdx21"
    assert protocol_of("sound-demixing-challenge-2023-music-demixing-track") == "sdx23"
