"""Members load the real on-disk formats (opened with weights_only=True) into the libraries' own models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.errors import WeightsError
from demix.members import DemucsMember, MsstMember, OpenUnmixMember
from demix.weights.catalogue import ModelWeights, WeightFile, get_official
from demix.weights.integrity import sha256_of

from conftest import save_demucs_package, tiny_demucs_model, tiny_openunmix_folder


@pytest.fixture(scope="module")
def mix(track):
    return torch.from_numpy(track[1]["mixture"][:, : SAMPLE_RATE * 3])


def _check_output(outputs, mix, targets=TARGETS):
    assert tuple(outputs) == tuple(targets)
    for estimate in outputs.values():
        assert estimate.shape == mix.shape and torch.isfinite(estimate).all()


def test_openunmix_training_folder(user_models, mix):
    member = OpenUnmixMember.from_path("umx", user_models["umx"], niter=1)
    _check_output(member.separate(mix), mix)


def test_openunmix_folder_without_separator_json_and_with_one_target(tmp_path, mix):
    folder = tiny_openunmix_folder(tmp_path / "vocals_only", targets=("vocals",), with_separator_json=False)
    member = OpenUnmixMember.from_path("v", folder, niter=0)
    assert member.targets == ("vocals",)
    _check_output(member.separate(mix), mix, targets=("vocals",))


def test_openunmix_folder_problems_are_named(tmp_path):
    with pytest.raises(WeightsError, match="folder not found"):
        OpenUnmixMember.from_path("x", tmp_path / "absent", niter=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no Open-Unmix target model here"):
        OpenUnmixMember.from_path("x", tmp_path / "empty", niter=0)
    broken = tiny_openunmix_folder(tmp_path / "broken", targets=("bass",))
    (broken / "bass.pth").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match=r"broken: not a loadable Open-Unmix model folder"):
        OpenUnmixMember.from_path("x", broken, niter=0)


def _umxhq_layout(models_dir, seed=0) -> ModelWeights:
    """Random weights of umxhq's exact architecture, saved as torch hub names them
    (``umxhq/<target>-<sha256 prefix>.pth``), and the catalogue row that lists them:
    umxhq's row, but for the checksums in the names."""
    import openunmix

    torch.manual_seed(seed)
    separator = openunmix.umxhq(pretrained=False)
    files = []
    for file in get_official("umxhq").files:
        target = Path(file.path).name.split("-")[0]
        path = models_dir / "umxhq" / f"{target}.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(separator.target_models[target].state_dict(), path)
        checksum = sha256_of(path)[:8]
        named = path.rename(path.with_name(f"{target}-{checksum}.pth"))
        files.append(WeightFile(f"umxhq/{named.name}", file.url.replace(Path(file.path).name, named.name), checksum))
    return ModelWeights("umxhq", "openunmix", tuple(files), "test")


def _flip_a_byte(path):
    """The middle one: inside a tensor of a torch file, which torch still loads."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_official_umxhq_loads_from_the_models_folder_and_a_flipped_byte_is_refused(tmp_path, mix):
    row = _umxhq_layout(tmp_path)
    member = OpenUnmixMember.from_official("umxhq", row, tmp_path, niter=0)
    assert member.targets == ("vocals", "drums", "bass", "other")
    outputs = member.separate(mix)
    assert set(outputs) == set(TARGETS)

    vocals = tmp_path / row.files[3].path
    _flip_a_byte(vocals)
    assert torch.load(vocals, weights_only=True).keys() == member.separator.target_models["vocals"].state_dict().keys()
    with pytest.raises(WeightsError) as error:
        OpenUnmixMember.from_official("umxhq", row, tmp_path, niter=0)
    assert f"weight file {row.files[3].path} of model 'umxhq' is damaged (its sha256 starts " in str(error.value)
    assert "python -m demix weights fetch umxhq" in str(error.value)


def _not_the_official_files(models_dir, name, user_models) -> None:
    """Files torch loads, under the official names of ``name``'s files: the member's own format
    where the name carries a checksum; for an MSST checkpoint, a file with the ``.sha256`` fetch
    records, then one byte of it flipped. The shipped YAMLs are the kit's own."""
    for file in get_official(name).files:
        path = models_dir / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if file.bundled is not None:
            shutil.copy(file.bundled, path)
        elif file.path.endswith(".pth"):
            shutil.copy(user_models["umx"] / "vocals.pth", path)
        elif file.path.endswith(".th"):
            shutil.copy(user_models["demucs"], path)
        else:
            torch.save({"weight": torch.zeros(3)}, path)
            path.with_name(path.name + ".sha256").write_text(f"{sha256_of(path)}  {path.name}\n")
            _flip_a_byte(path)


@pytest.mark.parametrize("name, member", [("umxhq", OpenUnmixMember), ("htdemucs", DemucsMember),
                                          ("scnet_xl", MsstMember)])
def test_every_family_refuses_a_damaged_official_file_alike(tmp_path, user_models, name, member):
    """One definition of damaged (demix.weights.integrity): a file that is there, loads, but is not
    the official one, is refused before it is opened, with the same message whichever member reads it."""
    _not_the_official_files(tmp_path, name, user_models)
    options = {"niter": 0} if member is OpenUnmixMember else {}
    with pytest.raises(WeightsError) as error:
        member.from_official("m", name, tmp_path, **options)
    file = next(f for f in get_official(name).files if f.url)
    problem = (re.escape(f"its sha256 differs from the one fetch recorded in {Path(file.path).name}.sha256")
               if file.needs_lock else f"its sha256 starts [0-9a-f]{{8}}, not {file.sha256_prefix}")
    assert re.fullmatch(
        rf"weight file {re.escape(file.path)} of model '{name}' is damaged \({problem}\)\n"
        rf"  looked for: {re.escape(str(tmp_path / file.path))}\n"
        rf"  official source: {re.escape(file.url)}\n"
        rf"  fetch it with: python -m demix weights fetch {name} "
        rf"\(or `... --from DIR` to copy it from a mirror folder\)",
        str(error.value)), str(error.value)


def test_missing_official_file_says_which_where_whence_and_how(tmp_path):
    with pytest.raises(WeightsError) as error:
        OpenUnmixMember.from_official("umxhq", "umxhq", tmp_path, niter=0)
    message = str(error.value)
    assert "umxhq/bass-8d85a5bd.pth" in message and "is missing" in message
    assert str(tmp_path / "umxhq" / "bass-8d85a5bd.pth") in message
    assert "https://zenodo.org/records/3370489/files/bass-8d85a5bd.pth" in message
    assert "python -m demix weights fetch umxhq" in message


def test_damaged_official_file(tmp_path):
    row = _umxhq_layout(tmp_path)
    path = tmp_path / row.files[0].path
    path.write_bytes(path.read_bytes()[:1000])  # a download cut short
    with pytest.raises(WeightsError, match=f"{row.files[0].path} of model 'umxhq' is damaged"):
        OpenUnmixMember.from_official("umxhq", row, tmp_path, niter=0)


def test_demucs_user_package(user_models, mix):
    member = DemucsMember.from_path("d", user_models["demucs"])
    assert member.block_multiple == int(0.75 * 4 * SAMPLE_RATE)
    _check_output(member.separate(mix), mix)


def test_demucs_bag_yaml(user_models, mix):
    member = DemucsMember.from_path("bag", user_models["bag"])
    assert len(member.model.models) == 2
    _check_output(member.separate(mix), mix)


def test_demucs_six_sources_fold_into_other(tmp_path, mix):
    model = tiny_demucs_model(sources=("drums", "bass", "other", "vocals", "guitar", "piano"))
    member = DemucsMember.from_path("six", save_demucs_package(model, tmp_path / "six.th"))
    assert member.targets == TARGETS
    _check_output(member.separate(mix), mix)


def test_demucs_official_name_from_local_repo(tmp_path, user_models, mix):
    """The official layout (bag yaml + <sig>-<checksum>.th): a file whose
    sha256 does not match its official name is refused before it is opened."""
    from demix.members.demucs import load_bag

    repo = tmp_path / "demucs"
    repo.mkdir()
    official = get_official("htdemucs")
    th_name = official.files[0].path.split("/")[1]
    shutil.copy(user_models["demucs"], repo / th_name)
    shutil.copy(official.files[1].bundled, repo / "htdemucs.yaml")
    with pytest.raises(WeightsError, match="is damaged .its sha256 starts [0-9a-f]+, not 8726e21a"):
        DemucsMember.from_official("htdemucs", "htdemucs", tmp_path)
    # renamed to carry its own checksum, the same bag loads: the loading path works
    signature = th_name.split("-")[0]
    (repo / th_name).rename(repo / f"{signature}-{sha256_of(repo / th_name)[:8]}.th")
    member = DemucsMember("htdemucs", load_bag(repo / "htdemucs.yaml"), "local repo")
    _check_output(member.separate(mix), mix)


def test_demucs_missing_official_file(tmp_path):
    with pytest.raises(WeightsError) as error:
        DemucsMember.from_official("htdemucs", "htdemucs", tmp_path)
    message = str(error.value)
    assert "demucs/955717e8-8726e21a.th" in message and "dl.fbaipublicfiles.com" in message
    assert "python -m demix weights fetch htdemucs" in message


def test_demucs_garbage_package(tmp_path):
    path = tmp_path / "broken.th"
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="broken.th: not a loadable Demucs model package"):
        DemucsMember.from_path("x", path)


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


@pytest.mark.parametrize("kind", ["demucs package", "openunmix folder", "official umxhq"])
def test_git_lfs_pointer_files_are_named_as_such(tmp_path, kind):
    """A clone without `git lfs pull` has pointers where the weights should be."""
    from demix.config import MemberConfig
    from demix.members import load_member

    if kind == "demucs package":
        model, family = tmp_path / "mine.th", "demucs"
        model.write_bytes(LFS_POINTER)
    elif kind == "openunmix folder":
        model, family = tiny_openunmix_folder(tmp_path / "my_umx"), "openunmix"
        (model / "vocals.pth").write_bytes(LFS_POINTER)
    else:
        model, family = "umxhq", "openunmix"
        for file in get_official("umxhq").files:
            (tmp_path / file.path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / file.path).write_bytes(LFS_POINTER)
    config = MemberConfig(name="m", family=family, model=str(model), shares=dict.fromkeys(TARGETS, 1.0))
    with pytest.raises(WeightsError) as error:
        load_member(config, tmp_path, seed=0)
    message = str(error.value)
    assert "git-lfs pointer files, not weights" in message and "git lfs pull" in message
    assert ("vocals" in message) if kind != "demucs package" else ("mine.th" in message)


@pytest.mark.parametrize("model", ["demucs", "bag"])
def test_batched_segments_give_the_same_stems(user_models, track, model):
    """segment_batch runs apply_model's segments several per forward pass (for GPUs); the
    bag and the overlap weights stay apply_model's. Without random shifts (see below) the
    stems are the same."""
    mix = torch.from_numpy(track[1]["mixture"])  # 6 s or more: 4 s segments every 3 s, the last one short
    one = DemucsMember.from_path("one", user_models[model], shifts=0).separate(mix)
    batched = DemucsMember.from_path("batched", user_models[model], shifts=0, segment_batch=3).separate(mix)
    assert one.keys() == batched.keys()
    for target in one:
        assert torch.max(torch.abs(one[target] - batched[target])) <= 1e-5, target
        assert torch.max(torch.abs(one[target])) > 1e-3  # the comparison is not between silences


def test_batched_segments_with_several_shifts_stay_deterministic(user_models, track):
    """HTDemucs' transformer draws from `random` once per forward pass, so fewer, batched
    passes change the random shifts drawn after the first: other shifts, the same on every run."""
    mix = torch.from_numpy(track[1]["mixture"])
    runs = [DemucsMember.from_path("b", user_models["demucs"], shifts=2, segment_batch=3).separate(mix)
            for _ in range(2)]
    assert all(torch.equal(runs[0][target], runs[1][target]) for target in runs[0])
