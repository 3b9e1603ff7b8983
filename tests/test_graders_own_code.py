"""The submission under the graders' own entry points: MDX 2021's ``bash run.sh``
with events to a real Redis answered as the grading infrastructure answers
them, and SDX 2023's ``my_submission/aicrowd_wrapper.py``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from challenge import grader
from challenge.example import ensure_bundled_example
from demix import TARGETS

PROJECT = Path(__file__).resolve().parents[1]
#: Every wait in this file is bounded: a submission that hangs fails the test instead.
RUN_LIMIT_SECONDS = 600

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (scripts/setup.sh --dev installs it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    import redis

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(10)


class Infrastructure:
    """Plays AIcrowd's side: collects the events a submission pushes and
    acknowledges the blocking ones (success, error), as aicrowd_api expects."""

    def __init__(self, port: int, name: str):
        import redis

        self.client = redis.Redis(host="127.0.0.1", port=port)
        self.channel = f"events-{name}"
        self.responses = f"responses-{name}"
        self.events: list[dict] = []
        self.acknowledged: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def environment(self, port: int) -> dict[str, str]:
        return {"AICROWD_IS_GRADING": "True", "AICROWD_REDIS_HOST": "127.0.0.1", "AICROWD_REDIS_PORT": str(port),
                "AICROWD_REDIS_COMMUNICATION_CHANNEL": self.channel,
                "AICROWD_BLOCKING_RESPONSE_CHANNEL": self.responses}

    def _serve(self):
        while not self._stop.is_set():
            popped = self.client.brpop(self.channel, timeout=1)
            if popped is None:
                continue
            event = json.loads(popped[1])
            self.events.append(event)
            if event["event_type"] in ("AICROWD_EVENT_SUCCESS", "AICROWD_EVENT_ERROR"):
                self.client.lpush(self.responses, json.dumps({"acknowledged": event["message"]}))
                self.acknowledged.append(event["message"])

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(5)
        return self.events


def run_sh(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``bash run.sh`` as the grader executes it, with the kit's Python first on PATH."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AICROWD_")}
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run(["bash", "run.sh"], cwd=PROJECT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=RUN_LIMIT_SECONDS)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example") / "test"
    ensure_bundled_example(folder)
    return folder


def test_run_sh_reports_to_the_grading_infrastructure_and_writes_the_stems(redis_port, example_dir, user_config,
                                                                            tmp_path, monkeypatch):
    infrastructure = Infrastructure(redis_port, "success")
    results = tmp_path / "results"
    completed = run_sh({**infrastructure.environment(redis_port), "TEST_DATASET_PATH": str(example_dir),
                        "RESULTS_DATASET_PATH": str(results), "DEMIX_CONFIG": str(user_config)})
    events = infrastructure.stop()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert [event["message"] for event in events] == ["execution_started", "execution_progress",
                                                      "execution_success"]
    assert [event["event_type"] for event in events] == ["AICROWD_EVENT_INFO", "AICROWD_EVENT_INFO",
                                                         "AICROWD_EVENT_SUCCESS"]
    assert all(event["payload"]["event_type"] == f"music_demixing:{event['message']}" for event in events)
    assert events[1]["payload"]["progress"] == 0.0
    assert infrastructure.acknowledged == ["execution_success"]

    (song,) = [path.name for path in example_dir.iterdir()]
    assert grader.verify_outputs(example_dir / song, results / song) == []

    # The evaluator's own scoring() and the local grader agree on what was written.
    monkeypatch.setenv("TEST_DATASET_PATH", str(example_dir))
    monkeypatch.setenv("RESULTS_DATASET_PATH", str(results))
    from evaluator.music_demixing import MusicDemixingPredictor

    scored = MusicDemixingPredictor().scoring()[song]
    local = grader.score_song(example_dir / song, results / song)
    for target in TARGETS:
        assert scored[f"sdr_{target}"] == pytest.approx(local[target], abs=0.01)
    assert scored["sdr"] == pytest.approx(np.mean(list(local.values())), abs=0.01)


def test_a_failing_prediction_sends_the_traceback_and_ends_as_the_grader_expects(
        redis_port, example_dir, user_config, tmp_path):
    test_dir = tmp_path / "test"
    shutil.copytree(example_dir, test_dir)
    (song,) = [path.name for path in test_dir.iterdir()]
    (test_dir / song / "mixture.wav").write_bytes(b"RIFF\x00\x00not a wave file")
    infrastructure = Infrastructure(redis_port, "error")
    completed = run_sh({**infrastructure.environment(redis_port), "TEST_DATASET_PATH": str(test_dir),
                        "RESULTS_DATASET_PATH": str(tmp_path / "results"), "DEMIX_CONFIG": str(user_config)})
    events = infrastructure.stop()
    # on the grader, run() reports the error and returns: the process ends normally
    assert completed.returncode == 0, completed.stderr
    assert [event["message"] for event in events] == ["execution_started", "execution_progress", "execution_error"]
    error = events[-1]["payload"]["error"]
    assert error.startswith("Traceback") and "mixture.wav" in error
    assert infrastructure.acknowledged == ["execution_error"]


def test_outside_grading_the_error_is_raised_and_nothing_is_sent(redis_port, example_dir, tmp_path):
    import redis

    config = tmp_path / "broken.toml"
    config.write_text('[[members]]\nname = "gone"\nmodel = "./no_such_model.th"\nweights = 1.0\n')
    infrastructure = Infrastructure(redis_port, "outside")
    environment = infrastructure.environment(redis_port)
    del environment["AICROWD_IS_GRADING"]
    completed = run_sh({**environment, "TEST_DATASET_PATH": str(example_dir),
                        "RESULTS_DATASET_PATH": str(tmp_path / "results"), "DEMIX_CONFIG": str(config)})
    events = infrastructure.stop()
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr and "no_such_model.th" in completed.stderr
    assert events == [] and redis.Redis(host="127.0.0.1", port=redis_port).llen(infrastructure.channel) == 0


def _read_info(path: Path):
    info = sf.info(path)
    return info.frames, info.channels, info.samplerate


@pytest.mark.parametrize("through_variables", [True, False], ids=["AICROWD variables", "arguments"])
def test_sdx_wrapper_reads_and_writes_where_the_grader_says(example_dir, user_config, tmp_path, monkeypatch,
                                                            through_variables):
    monkeypatch.setenv("DEMIX_CONFIG", str(user_config))
    (song,) = [path.name for path in example_dir.iterdir()]
    if through_variables:
        shared = tmp_path / "shared"
        (shared / "predictions").mkdir(parents=True)
        monkeypatch.setenv("AICROWD_DATASET_DIR", str(example_dir))
        monkeypatch.setenv("AICROWD_PUBLIC_SHARED_DIR", str(shared))
        arguments, predictions = {"dataset_dir": str(tmp_path / "ignored")}, shared / "predictions"
    else:
        monkeypatch.delenv("AICROWD_DATASET_DIR", raising=False)
        monkeypatch.delenv("AICROWD_PUBLIC_SHARED_DIR", raising=False)
        predictions = tmp_path / "outputs"
        predictions.mkdir()
        arguments = {"dataset_dir": str(example_dir), "predictions_dir": str(predictions)}
    from my_submission.aicrowd_wrapper import AIcrowdWrapper

    wrapper = AIcrowdWrapper(**arguments)
    assert wrapper.separate_music_file(song) is True
    mixture = example_dir / song / "mixture.wav"
    for target in TARGETS:
        stem = predictions / song / f"{target}.wav"
        assert _read_info(stem) == _read_info(mixture)
        assert sf.info(stem).subtype == "PCM_16"  # soundfile.write's default, as on the grader
    assert grader.score_song(example_dir / song, predictions / song) is not None
    with pytest.raises(NameError, match="shown to you"):
        wrapper.raise_aicrowd_error("shown to you")
