"""One way to write a file atomically (demix/atomic.py): ordinary permissions, and the
temporary files of killed writers swept by the next run, never a live writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from demix import SAMPLE_RATE, TARGETS
from demix.atomic import atomic_path, sweep_dead_temporaries, write_json_atomically

PROJECT = Path(__file__).resolve().parents[1]


def temporaries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".part" in path.name)


def test_final_files_get_the_mode_a_plain_open_gives(tmp_path):
    previous = os.umask(0o027)
    try:
        write_json_atomically(tmp_path / "a.json", {"x": 1})
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_nothing(tmp_path):
    try:
        with atomic_path(tmp_path / "page.html") as temp:
            assert temp.suffix == ".html" and temp.parent == tmp_path
            temp.write_text("half")
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


WRITER = """
import sys, time
from demix.atomic import TemporaryFile
temporary = TemporaryFile(sys.argv[1])
temporary.path.write_text("partial")
print("ready", flush=True)
time.sleep(600)
"""


def test_sweep_spares_a_live_writer_and_removes_a_killed_ones(tmp_path):
    (tmp_path / "vocals.wav").write_text("a finished stem")
    (tmp_path / ".hidden.part").write_text("not our naming: no PID")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "bass.wav")],
                              cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "ready\n"
        [live] = [name for name in temporaries(tmp_path) if name.startswith(".bass.")]
        assert f".{writer.pid}." in live
        assert sweep_dead_temporaries(tmp_path) == []
        assert live in temporaries(tmp_path)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert sweep_dead_temporaries(tmp_path) == [tmp_path / live]
    assert sorted(path.name for path in tmp_path.iterdir()) == [".hidden.part", "vocals.wav"]


def test_a_separate_run_killed_mid_song_is_cleaned_up_by_the_next(tmp_path, user_models, track):
    """SIGKILL while the four stems are being written block by block; the next run over
    the same folder removes the partial files and writes the stems."""
    config = tmp_path / "umx.toml"  # conftest's tiny Open-Unmix alone: the fastest real member
    config.write_text(f"""
[separation]
block_seconds = 5
overlap_seconds = 1
compute = "eager"

[[members]]
model = "{user_models['umx']}"
""")
    name, stems = track
    song = tmp_path / "long song.wav"
    mixture = np.tile(stems["mixture"].T, (4, 1))  # long enough to be caught half way
    sf.write(song, mixture, SAMPLE_RATE, subtype="PCM_16")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "demix", "separate", str(song), "-o", str(out),
               "--config", str(config), "--device", "cpu"]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = out / "long song"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        parts = [folder / n for n in temporaries(folder)] if folder.is_dir() else []
        if len(parts) == 4 and all(p.stat().st_size > 100_000 for p in parts):  # past the first block
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(temporaries(folder)) == 4 and not any((folder / f"{t}.wav").exists() for t in TARGETS)

    completed = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert temporaries(folder) == []
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{t}.wav" for t in TARGETS)
    for target in TARGETS:
        info = sf.info(folder / f"{target}.wav")
        assert info.frames == len(mixture) and info.channels == mixture.shape[1]
