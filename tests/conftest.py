"""Fixtures: real MUSDB18 excerpts, and small randomly initialised models
saved in the real on-disk formats so the real loading code runs.

Real audio comes from two places. The stempeg wheel ships one MUSDB18 excerpt
(``stempeg.example_stem_path()``, The Easton Ellises - Falcon 69), which
every setup installs. Tests that need a second, different track (training's
train and validation tracks, evaluation over several tracks) get
``Music Delta - 80s Rock`` where the 7-second MUSDB18 preview of it lies in
the excerpts folder (our CI machines have one beside the checkout), and
otherwise a second track made from the wheel's stems, cut in four and
played in another order with the channels swapped (:func:`rearranged_stem_file`).
A test that truly needs 80s Rock itself (floors measured on it) is marked
:data:`needs_rock` and skips without it, naming the file.

``DEMIX_TEST_EXCERPTS`` names another excerpts folder; set to an empty
string it hides the folder, which is how CI checks that the suite passes on
a clone with nothing beside it: it runs the tests marked ``second_track``
(every test that reads the second track or the excerpts folder, marked by
:func:`pytest_collection_modifyitems` or by hand) a second time so.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from demix import SAMPLE_RATE, TARGETS

PROJECT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist (the README's ``-n auto``), give each worker its own
    share of this process's CPUs: its affinity mask, which the commands it
    starts inherit and :func:`demix.compute.available_cpus` reads, and as
    many torch threads. Without it every worker's torch would spread over
    every CPU and they would fight for them (OpenMP threads spin)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    index, count = int(worker.removeprefix("gw")), int(count)
    if count > len(cpus):
        return
    share = set(cpus[index::count])
    os.sched_setaffinity(0, share)
    torch.set_num_threads(len(share))


_EXCERPTS = os.environ.get("DEMIX_TEST_EXCERPTS", str(PROJECT.parent / "shared" / "data" / "musdb18-excerpts"))
#: The folder of extra MUSDB18 excerpts, or None where there is none (a plain clone).
SHARED_DATA = Path(_EXCERPTS) if _EXCERPTS else None
#: MUSDB's stream order in .stem.mp4 files.
STEM_ORDER = ("mixture", "drums", "bass", "other", "vocals")
ROCK = "Music Delta - 80s Rock"
#: The 7-second MUSDB18 preview of 80s Rock (musdb's sample set, MUSDB18-7), where it is present.
ROCK_FILE = SHARED_DATA / f"{ROCK}.stem.mp4" if SHARED_DATA else None
HAS_ROCK = bool(ROCK_FILE and ROCK_FILE.is_file())
needs_rock = pytest.mark.skipif(not HAS_ROCK, reason=(
    f"needs {ROCK_FILE or 'Music Delta - 80s Rock.stem.mp4 in $DEMIX_TEST_EXCERPTS'}: the 7-second MUSDB18 "
    "preview of 'Music Delta - 80s Rock' (musdb's sample set MUSDB18-7), which a plain clone does not have"))
#: The second track's name where 80s Rock is absent.
REARRANGED = "The Easton Ellises - Falcon 69 (rearranged)"


def example_stem_file() -> Path:
    import stempeg

    return Path(stempeg.example_stem_path())


def rearranged_stem_file(folder: Path) -> Path:
    """A second real track from the wheel's excerpt: each of its five
    streams cut into four equal parts, played in the order 3, 1, 4, 2, with
    left and right swapped, and encoded as a MUSDB .stem.mp4 (AAC, as MUSDB18
    is). The stems still sum to the mixture; the music, its loud and quiet
    parts and its stereo image are in other places than in the original."""
    import stempeg

    path = folder / f"{REARRANGED}.stem.mp4"
    if path.is_file():
        return path
    audio, rate = stempeg.read_stems(str(example_stem_file()), dtype=np.float32)  # (streams, frames, channels)
    quarter = audio.shape[1] // 4
    parts = [audio[:, i * quarter:(i + 1) * quarter] for i in range(4)]
    rearranged = np.concatenate([parts[2], parts[0], parts[3], parts[1]], axis=1)[:, :, ::-1]
    folder.mkdir(parents=True, exist_ok=True)
    stempeg.write_stems(str(path), np.ascontiguousarray(rearranged), sample_rate=rate,
                        writer=stempeg.StreamsWriter(codec="aac", bitrate=256000, stem_names=list(STEM_ORDER)))
    return path


@pytest.fixture(scope="session")
def stem_files(tmp_path_factory) -> list[Path]:
    """The wheel's excerpt, then the second track (80s Rock or the rearranged one)."""
    second = ROCK_FILE if HAS_ROCK else rearranged_stem_file(tmp_path_factory.mktemp("second_track"))
    return [example_stem_file(), second]


@functools.lru_cache(maxsize=None)
def read_stem_file(path: Path) -> dict[str, np.ndarray]:
    """{"mixture"|target: float32 (channels, frames)} at 44.1 kHz, decoded once per session."""
    import stempeg

    audio, rate = stempeg.read_stems(str(path), dtype=np.float32)
    assert rate == SAMPLE_RATE
    return {name: np.ascontiguousarray(audio[index].T) for index, name in enumerate(STEM_ORDER)}


@pytest.fixture(scope="session")
def tracks(stem_files) -> dict[str, dict[str, np.ndarray]]:
    """name -> stems (:func:`read_stem_file`) of both tracks."""
    return {path.name.removesuffix(".stem.mp4"): read_stem_file(path) for path in stem_files}


@pytest.fixture(scope="session")
def second_track(stem_files) -> str:
    """The second track's name: 80s Rock where present, else the rearranged excerpt."""
    return stem_files[1].name.removesuffix(".stem.mp4")


@pytest.fixture(scope="session")
def track():
    """The stempeg example, present in every setup: (name, stems)."""
    path = example_stem_file()
    return path.name.removesuffix(".stem.mp4"), read_stem_file(path)


#: The shared evaluation run (:func:`oracle_runs`): its oracles, the member of the user-trained
#: ensemble it also scores, and the excerpts cut to this many seconds.
ORACLE_RUN_METHODS, ORACLE_RUN_MEMBER, ORACLE_RUN_SECONDS = ("irm", "mpi"), "member:umx", 5.0


@pytest.fixture(scope="session")
def oracle_runs(tmp_path_factory, tracks, user_config) -> tuple[Path, Path]:
    """(root, results): one ``python -m evaluation run --workers 2 --keep-estimates``
    of :data:`ORACLE_RUN_METHODS` and :data:`ORACLE_RUN_MEMBER` (from
    ``user_config``) over both real excerpts, laid out as MUSDB18-HQ (16-bit
    WAV, cut to :data:`ORACLE_RUN_SECONDS`); its standard output is
    ``results/../run.log``. Shared by the tests of two workers, the summary,
    the report and its listening page, since museval (about 9 s per track and
    method, whatever the length) is the slow part of every run; a test that
    changes the results works on a copy."""
    import subprocess
    import sys

    from demix.audio import write_wav_atomically

    root = tmp_path_factory.mktemp("oracle-run-musdb18hq")
    for name, stems in tracks.items():
        for stream in STEM_ORDER:
            write_wav_atomically(root / "test" / name / f"{stream}.wav",
                                 stems[stream][:, :int(ORACLE_RUN_SECONDS * SAMPLE_RATE)].T, SAMPLE_RATE,
                                 subtype="PCM_16")
    out = tmp_path_factory.mktemp("oracle-run") / "results"
    completed = subprocess.run([sys.executable, "-m", "evaluation", "run", "--root", str(root),
                                "--method", *ORACLE_RUN_METHODS, ORACLE_RUN_MEMBER, "--config", str(user_config),
                                "--workers", "2", "--keep-estimates", "--out", str(out)],
                               cwd=PROJECT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (out.parent / "run.log").write_text(completed.stdout)
    return root, out


@pytest.fixture(scope="session")
def mixture_wav(tmp_path_factory, track) -> Path:
    """The example's mixture as a 16-bit WAV, as a user would hand it over."""
    name, stems = track
    path = tmp_path_factory.mktemp("songs") / f"{name}.wav"
    sf.write(path, stems["mixture"].T, SAMPLE_RATE, subtype="PCM_16")
    return path


#: The environment of the Ray processes the tests start, and of the commands that use them. The
#: authentication mode is stated: where it is not, Ray 2.60 turns token authentication on for a
#: head wherever ~/.ray/auth_token exists (a local ray.init(), as --workers makes, writes one),
#: and a second node started so is then refused by it.
RAY_ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
           "RAY_AUTH_MODE": "disabled"}


def _start_ray_node(log: Path, *args: str):
    """``ray start ... --block`` in the background, once it says it runs: the
    process stays in the foreground of its node, so stopping it (SIGTERM)
    stops that node's Ray processes and no one else's (``ray stop`` would
    stop every Ray on the machine)."""
    import subprocess
    import sys
    import time

    ray = Path(sys.executable).parent / "ray"
    with open(log, "w") as output:
        process = subprocess.Popen([str(ray), "start", *args, "--block", "--disable-usage-stats"],
                                   stdout=output, stderr=subprocess.STDOUT, env=RAY_ENV, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"ray start {' '.join(args)} failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> str:
    """A real Ray cluster on the loopback address, for the session: a head and a
    second node, each its own ``ray start`` process with one CPU, so that work
    spread over two workers runs on two nodes. Its address, for ``--ray``."""
    import signal
    import socket

    folder = tmp_path_factory.mktemp("ray-cluster")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    nodes = [_start_ray_node(folder / "head.log", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=1", "--include-dashboard=false")]
    try:
        nodes.append(_start_ray_node(folder / "node.log", f"--address={address}", "--node-ip-address=127.0.0.1",
                                     "--num-cpus=1"))
        yield address
    finally:
        for process in reversed(nodes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except Exception:
                os.killpg(process.pid, signal.SIGKILL)


#: Fixtures whose content depends on whether the excerpts folder is there.
SECOND_TRACK_FIXTURES = {"stem_files", "second_track"}


#: Files whose tests run whole commands, subprocesses, compilers, museval or a browser
#: (seconds to a minute each): marked ``slow``; ``pytest -m "not slow"`` is the inner loop.
SLOW_FILES = {
    "test_atomic.py", "test_cli.py", "test_cli_promises.py", "test_compiled_end_to_end.py", "test_compute.py",
    "test_docker.py", "test_evaluation.py", "test_evaluation_independent.py", "test_grader.py",
    "test_graders_own_code.py", "test_report_page.py", "test_spleeter.py", "test_submit.py", "test_training.py",
    "test_tune_matches_separate.py",
}


def pytest_collection_modifyitems(config, items):
    """Mark ``second_track`` every test that reads the second track through a
    fixture (a test that opens the excerpts folder itself carries the marker),
    and ``slow`` every test of :data:`SLOW_FILES`."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & SECOND_TRACK_FIXTURES:
            item.add_marker(pytest.mark.second_track)
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


def tiny_openunmix_folder(folder: Path, targets=TARGETS, with_separator_json=True, seed=0) -> Path:
    """A folder as Open-Unmix's training writes it: <target>.pth + <target>.json
    (+ separator.json), with a tiny random model per target."""
    from openunmix.model import OpenUnmix
    from openunmix.utils import bandwidth_to_max_bin

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    for target in targets:
        model = OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=8,
                          max_bin=bandwidth_to_max_bin(44100.0, 4096, 16000))
        torch.save(model.state_dict(), folder / f"{target}.pth")
        args = {"nfft": 4096, "nhop": 1024, "nb_channels": 2, "hidden_size": 8, "target": target}
        (folder / f"{target}.json").write_text(json.dumps({"args": args, "epochs_trained": 1}))
    if with_separator_json:
        (folder / "separator.json").write_text(json.dumps(
            {"targets": list(targets), "sample_rate": 44100, "nb_channels": 2, "nfft": 4096, "nhop": 1024}
        ))
    return folder


def tiny_demucs_model(seed=0, sources=("drums", "bass", "other", "vocals")):
    """A small random HTDemucs. ``depth=4`` as the real model has: each layer
    divides the transformer's sequence by 4, so a shallower one attends over a
    4 x longer one (measured here: eager 2.7 x and compiling 1.2 x slower at depth 3)."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(sources=list(sources), channels=8, depth=4, nfft=1024, segment=4,
                        t_layers=1, t_heads=2, dconv_comp=4)


def save_demucs_package(model, path: Path) -> Path:
    """Demucs' own serialized format (what demucs.states.load_model reads)."""
    from demucs.states import get_state

    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs,
               "state": get_state(model, None, half=False), "training_args": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(package, path)
    return path


def tiny_demucs_bag(folder: Path) -> Path:
    """A bag .yaml with two signature-named .th packages beside it."""
    save_demucs_package(tiny_demucs_model(seed=1), folder / "aaaa1111.th")
    save_demucs_package(tiny_demucs_model(seed=2), folder / "bbbb2222.th")
    bag = folder / "tinybag.yaml"
    bag.write_text("models: ['aaaa1111', 'bbbb2222']\nweights: [[1., 1., 0., 1.], [1., 1., 1., 0.]]\n")
    return bag


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory) -> Path:
    """One TorchInductor kernel cache for the session, set as
    ``$DEMIX_COMPILE_CACHE`` for every test and the commands they start, so
    that no test reads or fills the user's own cache (``~/.cache/demix``: a
    kernel left there would make a cold compile warm on the next run). The
    tiny Demucs is compiled cold once, and later compiling tests load its
    kernels as a second run would. The cold-compile fallback test uses an
    empty cache of its own."""
    folder = tmp_path_factory.mktemp("compile-cache")
    previous = os.environ.get("DEMIX_COMPILE_CACHE")
    os.environ["DEMIX_COMPILE_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("DEMIX_COMPILE_CACHE", None)
    else:
        os.environ["DEMIX_COMPILE_CACHE"] = previous


@pytest.fixture(scope="session")
def user_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user_models")
    return {
        "umx": tiny_openunmix_folder(root / "my_umx"),
        "demucs": save_demucs_package(tiny_demucs_model(), root / "my_demucs.th"),
        "bag": tiny_demucs_bag(root / "bag"),
    }


@pytest.fixture(scope="session")
def user_config(tmp_path_factory, user_models) -> Path:
    """A config of user-trained-format members (the real loaders run)."""
    folder = tmp_path_factory.mktemp("config")
    config = folder / "ensemble.toml"
    config.write_text(f"""
[separation]
block_seconds = 5
overlap_seconds = 1
wiener_iterations = 1
compute = "eager"   # compiling is tested on its own (tests/test_compute.py)

[[members]]
name = "demucs"
model = "{user_models['demucs']}"
weights = {{ bass = 0.7, drums = 0.8, other = 0.6, vocals = 0.6 }}

[[members]]
name = "umx"
model = "{user_models['umx']}"
weights = {{ bass = 0.3, drums = 0.2, other = 0.4, vocals = 0.4 }}
""")
    return config


def scnet_yaml(dims=(4, 8, 16, 32), num_overlap=4, batch_size=1) -> str:
    """A tiny SCNet as MSST's YAML describes it: msst.models.scnet.SCNet's
    keys and the real STFT (4096/1024), with ``inference.normalize`` as SCNet
    XL's config sets it (the normalising family: it needs the whole song's
    statistics). ``dims[0]`` is 4 (stereo, real and imaginary); ``batch_size``:
    the chunks msst's inference runs at once."""
    return f"""audio:
  chunk_size: 32768
  num_channels: 2
  sample_rate: 44100
  min_mean_abs: 0.001

model:
  sources:
    - drums
    - bass
    - other
    - vocals
  audio_channels: 2
  dims: [{', '.join(map(str, dims))}]
  nfft: 4096
  hop_size: 1024
  win_size: 4096
  normalized: True
  band_SR: [0.175, 0.392, 0.433]
  band_stride: [1, 4, 16]
  band_kernel: [3, 4, 16]
  conv_depths: [1, 1, 1]
  compress: 4
  conv_kernel: 3
  num_dplayer: 2
  expand: 1

training:
  batch_size: 10
  instruments:
    - drums
    - bass
    - other
    - vocals
  target_instrument: null
  use_amp: true

inference:
  batch_size: {batch_size}
  num_overlap: {num_overlap}
  normalize: true
"""


#: The SCNet blended in the local grader's runs (``user_config_with_msst``): the narrowest
#: SCNet builds (9,384 weights against 289,920 with ``scnet_yaml()``'s defaults), chunks
#: every half chunk and runs four at once (the same stems within 1e-7): a quarter of the
#: default's time (a 6 s block on two busy cores: 0.9 s against 3.5 s on one thread, 2.5 s
#: against 11 s on two).
GRADER_SCNET_YAML = scnet_yaml(dims=(4, 4, 4, 4), num_overlap=2, batch_size=4)


def msst_config_dict(yaml_text: str, folder: Path):
    """The YAML as msst's inference reads it (an ml_collections ConfigDict),
    through folder/reference.yaml and demix's safe reader."""
    from ml_collections import ConfigDict

    from demix.members.msst_files import read_msst_yaml

    path = folder / "reference.yaml"
    path.write_text(yaml_text)
    return ConfigDict(read_msst_yaml(path))


#: A tiny vocals-only Mel-Band RoFormer, laid out as KimberleyJensen's vocals model's YAML is
#: (configs/KimberleyJensen/config_vocals_mel_band_roformer_kj.yaml): 60 mel bands, STFT 2048/441.
MEL_BAND_ROFORMER_YAML = """audio:
  chunk_size: 35280
  dim_f: 1024
  dim_t: 81
  hop_length: 441
  n_fft: 2048
  num_channels: 2
  sample_rate: 44100
  min_mean_abs: 0.000

model:
  dim: 8
  depth: 1
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  num_bands: 60
  dim_head: 8
  heads: 1
  attn_dropout: 0
  ff_dropout: 0
  flash_attn: True
  dim_freqs_in: 1025
  sample_rate: 44100  # needed for mel filter bank from librosa
  stft_n_fft: 2048
  stft_hop_length: 441
  stft_win_length: 2048
  stft_normalized: False
  mask_estimator_depth: 2
  multi_stft_resolution_loss_weight: 1.0
  multi_stft_resolutions_window_sizes: !!python/tuple
  - 4096
  - 2048
  - 1024
  - 512
  - 256
  multi_stft_hop_size: 147
  multi_stft_normalized: False

training:
  batch_size: 4
  instruments:
  - vocals
  - other
  target_instrument: vocals
  use_amp: true

inference:
  batch_size: 4
  dim_t: 256
  num_overlap: 2
"""


def tiny_msst_model(family: str, yaml_text: str, folder: Path, seed=0):
    """(config, random model in eval mode): the class msst builds for ``family`` from the YAML."""
    from demix.members.msst import build_model

    config = msst_config_dict(yaml_text, folder)
    torch.manual_seed(seed)
    return config, build_model(family, config, folder / "reference.yaml").eval()


def save_msst_checkpoint(state: dict, path: Path, wrapping: str, metrics=None) -> Path:
    """``state`` as MSST's tools write it: a plain state dict, or wrapped."""
    if wrapping == "plain":
        content = state
    elif wrapping == "model_state_dict":  # msst.utils.model_utils.save_weights
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
        content = {"epoch": 17, "best_metric": metrics if metrics is not None else 9.65,
                   "model_state_dict": state, "optimizer_state_dict": optimizer.state_dict(),
                   "scheduler_state_dict": None}
    else:
        content = {wrapping: state}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return path


def write_msst_model(folder: Path, yaml_text: str, state: dict, wrapping="plain", lone=False, metrics=None) -> Path:
    """A folder (config.yaml + model.ckpt), or with ``lone`` a .ckpt with its
    same-stem YAML beside it; returns what a member's ``model`` names."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = "model_tiny_ep_1" if lone else None
    (folder / (f"{stem}.yaml" if lone else "config.yaml")).write_text(yaml_text)
    checkpoint = save_msst_checkpoint(state, folder / (f"{stem}.ckpt" if lone else "model.ckpt"), wrapping, metrics)
    return checkpoint if lone else folder


#: The MSST member's raw share of every target in ``user_config_with_msst`` (its TOML ``weights``).
MSST_MEMBER_SHARE = 0.5


@pytest.fixture(scope="session")
def user_config_with_msst(tmp_path_factory, user_config) -> Path:
    """``user_config`` with a third member: a tiny MSST SCNet (:data:`GRADER_SCNET_YAML`)
    as MSST publishes one, a folder of config.yaml and model.ckpt, family told by the YAML.
    Its raw share 0.5 against Demucs' and Open-Unmix's 1.0 in total: a third of each target."""
    folder = tmp_path_factory.mktemp("config_with_msst")
    _, model = tiny_msst_model("scnet", GRADER_SCNET_YAML, folder)
    scnet = write_msst_model(folder / "my_scnet", GRADER_SCNET_YAML, model.state_dict())
    shares = ", ".join(f"{target} = {MSST_MEMBER_SHARE}" for target in sorted(TARGETS))
    config = folder / "ensemble.toml"
    config.write_text(user_config.read_text() + f"""
[[members]]
name = "scnet"
model = "{scnet}"
weights = {{ {shares} }}
""")
    return config


def kill_training_at_step(arguments: list, output: Path, step: int) -> dict:
    """Start ``python -m training fit ARGUMENTS`` (one thread) writing to
    ``output``, SIGKILL it once its checkpoint has reached ``step``, and
    return that last checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    from training import folder as files

    log = Path(output).parent / f"{Path(output).name}.stderr"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "training", "fit", *map(str, arguments)], cwd=PROJECT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=stderr)
    checkpoint = Path(output) / files.CHECKPOINT
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.is_file() and files.load_torch(checkpoint)["step"] >= step:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, log.read_text()[-3000:]
    assert checkpoint.is_file(), f"no checkpoint after 240 s: {log.read_text()[-3000:]}"
    return files.load_torch(checkpoint)
