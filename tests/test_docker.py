"""The submission image, built and run for real: from a local Debian bookworm base image
made with debootstrap, the local grader runs inside the container (no network) on the
bundled example with a user-trained-format ensemble mounted in, and its stems match a run
on the host. Skipped where no Docker daemon is reachable (docs/docker.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from challenge.example import ensure_bundled_example
from conftest import save_demucs_package, tiny_demucs_model, tiny_openunmix_folder
from demix import TARGETS

PROJECT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "demix-base:bookworm"
IMAGE = "demix-submission:test"
BUILD_TIMEOUT = 3600  # the first build downloads torch with its CUDA libraries (about 2.6 GB)


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def _daemon_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("info", timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


pytestmark = pytest.mark.skipif(
    not _daemon_reachable(),
    reason="no Docker daemon reachable: apt-get install -y docker.io debootstrap, start dockerd (docs/docker.md)",
)

CONFIG = """
[separation]
block_seconds = 5
compute = "eager"

[[members]]
name = "demucs"
model = "./my_demucs.th"
weights = 0.6

[[members]]
name = "umx"
model = "./my_umx"
weights = 0.4
"""


@pytest.fixture(scope="module")
def image() -> str:
    if docker("image", "inspect", BASE_IMAGE).returncode != 0:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            pytest.skip(f"{BASE_IMAGE} is missing and building it needs root and debootstrap")
        built = subprocess.run(["bash", "scripts/docker_base_image.sh", BASE_IMAGE], cwd=PROJECT,
                               capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    result = docker("build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", IMAGE, str(PROJECT),
                    timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return IMAGE


@pytest.fixture(scope="module")
def submission(tmp_path_factory) -> Path:
    """A user-trained-format ensemble in one folder, as a participant mounts it."""
    folder = tmp_path_factory.mktemp("submission")
    tiny_openunmix_folder(folder / "my_umx")
    save_demucs_package(tiny_demucs_model(), folder / "my_demucs.th")
    (folder / "config.toml").write_text(CONFIG)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the image's user aicrowd
    return folder


def read_stems(folder: Path) -> dict[str, np.ndarray]:
    return {target: sf.read(folder / f"{target}.wav", dtype="float32")[0] for target in TARGETS}


def test_image_runs_the_grader_offline_and_matches_the_host(image, submission, tmp_path):
    test_dir = tmp_path / "test"
    song = ensure_bundled_example(test_dir).name
    container_results, host_results = tmp_path / "container", tmp_path / "host"
    container_results.mkdir()
    container_results.chmod(0o777)  # the container writes as uid 1001
    for path in [tmp_path, *test_dir.rglob("*"), test_dir]:
        path.chmod(0o777 if path.is_dir() else 0o644)

    run = docker(
        "run", "--rm", "--network", "none",
        "-v", f"{submission}:/mnt/submission:ro", "-v", f"{test_dir}:/data/test:ro",
        "-v", f"{container_results}:/data/results",
        "-e", "DEMIX_CONFIG=/mnt/submission/config.toml",
        "-e", "TEST_DATASET_PATH=/data/test", "-e", "RESULTS_DATASET_PATH=/data/results",
        image, "python", "test.py",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 of 1 songs ok" in run.stdout

    env = dict(os.environ, DEMIX_CONFIG=str(submission / "config.toml"),
               TEST_DATASET_PATH=str(test_dir), RESULTS_DATASET_PATH=str(host_results))
    host = subprocess.run([sys.executable, "test.py"], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert host.returncode == 0, host.stdout[-3000:] + host.stderr[-3000:]

    inside, outside = read_stems(container_results / song), read_stems(host_results / song)
    for target in TARGETS:
        assert inside[target].shape == outside[target].shape
        assert np.max(np.abs(inside[target] - outside[target])) <= 1e-5, target


def test_image_default_command_is_the_grader_entrypoint(image, submission, tmp_path):
    """`docker run IMAGE` alone runs run.sh (python predict.py) over TEST_DATASET_PATH, as AIcrowd starts it."""
    test_dir = tmp_path / "test"
    song = ensure_bundled_example(test_dir).name
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)
    for path in [tmp_path, test_dir, *test_dir.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o644)
    inspect = docker("image", "inspect", "--format", "{{.Config.User}} {{json .Config.Cmd}}", image)
    assert inspect.stdout.strip() == 'aicrowd ["bash","run.sh"]'
    run = docker(
        "run", "--rm", "--network", "none",
        "-v", f"{submission}:/mnt/submission:ro", "-v", f"{test_dir}:/data/test:ro", "-v", f"{results}:/data/results",
        "-e", "DEMIX_CONFIG=/mnt/submission/config.toml",
        "-e", "TEST_DATASET_PATH=/data/test", "-e", "RESULTS_DATASET_PATH=/data/results",
        image,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    uid = docker("run", "--rm", image, "id", "-u").stdout.strip()
    assert uid == "1001"
    stems = read_stems(results / song)
    assert all(np.isfinite(stem).all() and np.abs(stem).max() > 0 for stem in stems.values())
