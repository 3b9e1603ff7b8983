"""`python -m demix separate --ray / --workers`: a catalogue spread over workers,
on the session's real Ray cluster (conftest.py: a head and a second node on
127.0.0.1, one CPU each), with the small random members of ``user_config``
on short cuts of the real excerpt."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from demix import SAMPLE_RATE, TARGETS
from demix.audio import stem_paths

from conftest import RAY_ENV

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
#: Seconds of music per song: short, so the run is quick, but several blocks of work.
SONG_SECONDS = 3.0
SONGS = 5
#: The threads of each worker: the CPUs of a node of the session's cluster.
WORKER_THREADS = 1
PART_FILE = re.compile(r"^\.(?P<target>\w+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.part\.wav$")


def demix_command(*args) -> list[str]:
    return [sys.executable, "-m", "demix", "separate", *map(str, args)]


@pytest.fixture(scope="module")
def songs(tmp_path_factory, track) -> list[Path]:
    """Short, different songs: cuts of the example's mixture (6 s), each starting
    elsewhere in it and looping round, as 16-bit WAV."""
    folder = tmp_path_factory.mktemp("catalogue")
    mixture = track[1]["mixture"]
    frames = mixture.shape[1]
    paths = []
    for index in range(SONGS):
        start = index * frames // SONGS
        cut = np.take(mixture, np.arange(start, start + int(SONG_SECONDS * SAMPLE_RATE)) % frames, axis=1)
        path = folder / f"song {index}.wav"
        sf.write(path, cut.T, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def bad_song(songs) -> Path:
    path = songs[0].parent / "notes.wav"
    path.write_text("not audio\n" * 100)
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, songs, user_config) -> Path:
    """The songs separated one after another in one process, as `separate` without
    --ray does, with the workers' one thread: torch's CPU reductions round by the
    thread count (the tiny Demucs: up to 1.5e-8 between 1 and 2 threads), so that
    is the one-process run a one-CPU worker must equal."""
    import torch

    from demix.config import load_config
    from demix.load import load_ensemble
    from demix.separate import separate_files

    out = tmp_path_factory.mktemp("one-process")
    threads = torch.get_num_threads()
    torch.set_num_threads(WORKER_THREADS)
    try:
        ensemble = load_ensemble(load_config(user_config), device="cpu", threads=False)
        results = separate_files(ensemble, songs, out, progress=False, log=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    assert [result.status for result in results] == ["done"] * len(songs)
    return out


def kill_a_worker_mid_song(run: subprocess.Popen, out: Path) -> tuple[str, int]:
    """Watch OUT for the temporary stem files a worker writes (named with its
    PID) and SIGKILL a worker while it writes its second song: its first is
    then its own, and the one it loses must go to another worker. Returns the
    song and the PID killed."""
    first_song_of: dict[int, str] = {}
    deadline = time.monotonic() + 240
    while run.poll() is None and time.monotonic() < deadline:
        for folder in (out.iterdir() if out.is_dir() else []):
            if not folder.is_dir():
                continue
            for name in os.listdir(folder):
                match = PART_FILE.match(name)
                if not match:
                    continue
                pid = int(match["pid"])
                first = first_song_of.setdefault(pid, folder.name)
                if first != folder.name:
                    os.kill(pid, signal.SIGKILL)
                    return folder.name, pid
        time.sleep(0.01)
    pytest.fail(f"no worker was seen writing a second song (first songs: {first_song_of})")


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, ray_cluster, songs, bad_song, user_config):
    """One run over the songs and a bad one on two workers, one of them
    killed mid-song: (stdout, stderr, exit code, out, song lost, PID killed)."""
    out = tmp_path_factory.mktemp("cluster") / "out"
    run = subprocess.Popen(demix_command(*songs[:2], bad_song, *songs[2:], "-o", out, "--config", user_config,
                                         "--device", "cpu", "--ray", ray_cluster, "--workers", "2"),
                           cwd=PROJECT, env=RAY_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lost_song, pid = kill_a_worker_mid_song(run, out)
        stdout, stderr = run.communicate(timeout=300)
    finally:
        run.kill()
    return stdout, stderr, run.returncode, out, lost_song, pid


def samples(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0]


def test_the_songs_are_spread_over_two_workers_on_two_nodes(cluster_run, songs):
    stdout, stderr, _, out, _, _ = cluster_run
    assert "writes its stems into OUT itself" in stdout, stdout
    assert stdout.count(f"{WORKER_THREADS} CPU thread,") >= 2, stdout
    counts = dict(re.findall(r"(worker \d) \([^)]*\): (\d+) separated", stdout))
    assert sorted(counts) == ["worker 1", "worker 2"], stdout
    assert all(int(count) >= 1 for count in counts.values()), stdout
    assert sum(int(count) for count in counts.values()) == len(songs), stdout + stderr


def test_a_worker_killed_mid_song_costs_only_that_song_s_redo(cluster_run, songs):
    stdout, stderr, _, out, lost_song, pid = cluster_run
    assert re.search(rf"worker \d was lost while separating .*{re.escape(lost_song)}\.wav", stdout), stdout
    # written once, by one worker, complete: four whole stems and no temporary file left
    assert len(re.findall(rf"{re.escape(lost_song)}\.wav: stems written to", stdout)) == 1, stdout
    folder = out / lost_song
    assert sorted(os.listdir(folder)) == sorted(f"{target}.wav" for target in TARGETS)
    for target in TARGETS:
        assert sf.info(folder / f"{target}.wav").frames == int(SONG_SECONDS * SAMPLE_RATE)
    assert f"{len(songs)} separated, 0 skipped, 1 failed" in stdout


def test_every_stem_equals_the_one_process_run_sample_for_sample(cluster_run, one_process, songs):
    _, _, _, out, _, _ = cluster_run
    for song in songs:
        for target, path in stem_paths(one_process / song.stem).items():
            np.testing.assert_array_equal(samples(out / song.stem / f"{target}.wav"), samples(path),
                                          err_msg=f"{song.stem} {target}")


def test_a_bad_song_is_reported_while_the_others_finish(cluster_run, bad_song):
    stdout, stderr, returncode, out, _, _ = cluster_run
    assert returncode == 1, stderr[-3000:]
    assert f"{bad_song}: not a readable audio file" in stderr
    assert f"failed: {bad_song}" in stderr
    assert not (out / bad_song.stem).exists()


def test_a_rerun_skips_every_finished_song(cluster_run, ray_cluster, songs, user_config):
    _, _, _, out, _, _ = cluster_run
    before = {path: path.stat().st_mtime_ns for path in out.glob("*/*.wav")}
    rerun = subprocess.run(demix_command(*songs, "-o", out, "--config", user_config, "--ray", ray_cluster),
                           cwd=PROJECT, env=RAY_ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"0 separated, {len(songs)} skipped, 0 failed" in rerun.stdout
    assert {path: path.stat().st_mtime_ns for path in out.glob("*/*.wav")} == before


def test_local_workers_returning_stems_to_the_driver(tmp_path, songs, one_process, user_config):
    """--workers without --ray (a Ray instance of the command's own), the driver writing the stems."""
    out = tmp_path / "out"
    run = subprocess.run(demix_command(*songs[:2], "-o", out, "--config", user_config, "--device", "cpu",
                                       "--workers", "2", "--driver-writes"),
                         cwd=PROJECT, env=RAY_ENV, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "returned to this driver, which wrote them" in run.stdout, run.stdout
    for song in songs[:2]:
        for target, path in stem_paths(one_process / song.stem).items():
            np.testing.assert_array_equal(samples(out / song.stem / f"{target}.wav"), samples(path))


def test_separate_without_ray_or_workers_never_imports_ray():
    code = ("import sys, demix.cli, demix.separate, demix.load; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray' or m.startswith('demix.cluster')))")
    checked = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True)
    assert checked.stdout.strip() == "[]", checked.stderr[-2000:]
