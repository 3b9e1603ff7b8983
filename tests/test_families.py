"""The family registry (demix/families.py): every record is complete, a declared
family is obeyed, a path no family or several families claim is an error, and
what the shipped configs and the README say agrees with the schema."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from demix.config import SEPARATION_DEFAULTS, load_config, parse_config
from demix.errors import ConfigError
from demix.families import FAMILIES, MSST_FAMILIES, family
from demix.members.base import Member

from conftest import tiny_openunmix_folder
from test_msst import YAMLS

PROJECT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIGS = sorted((PROJECT / "demix").glob("*.toml")) + \
    [path for path in [PROJECT / "my_submission" / "config.toml"] if path.is_file()]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_record_names_a_member_with_both_constructors_and_valid_defaults(name):
    record = FAMILIES[name]
    member = record.member_class()
    assert issubclass(member, Member)
    for constructor in ("from_official", "from_path"):
        assert getattr(member, constructor).__func__ is not getattr(Member, constructor).__func__, constructor
    for key, option in record.options.items():
        assert option.check(option.default), (name, key)
    assert set(record.compute) <= {"eager", "compiled", "bf16", "fp16"} and "eager" in record.compute
    if record.msst is not None:  # the msst class it names exists
        module, class_name = record.msst.model_class.split(":")
        assert hasattr(__import__(module, fromlist=[class_name]), class_name)


def test_an_unknown_family_is_an_error_never_a_fallback(tmp_path):
    with pytest.raises(ConfigError, match=r"members\[0\]\.family: 'wavenet' is not a model family demix runs; "
                                          r"one of demucs, openunmix, spleeter, bs_roformer"):
        parse_config({"members": [{"model": "./x", "family": "wavenet"}]}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="'wavenet' is not a model family"):
        family("wavenet")


def test_a_declared_family_is_obeyed_where_the_files_could_be_another_s(tmp_path):
    """An Open-Unmix training folder that also holds a YAML and a .ckpt (an MSST model's layout):
    undeclared, both could claim it, and the error names them; declared, the member loads as
    Open-Unmix, whatever the YAML says."""
    from demix.members import load_member

    folder = tiny_openunmix_folder(tmp_path / "mine")
    (folder / "config.yaml").write_text(YAMLS["scnet"])
    (folder / "notes.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"could be a model of openunmix or scnet: set family = the one it is"):
        parse_config({"members": [{"model": str(folder)}]}, tmp_path / "c.toml")
    config = parse_config({"members": [{"model": str(folder), "family": "openunmix"}]}, tmp_path / "c.toml")
    assert config.members[0].family == "openunmix"
    member = load_member(config.members[0], tmp_path, config.seed)
    assert member.family == "openunmix" and type(member).__name__ == "OpenUnmixMember"


def test_an_msst_type_is_told_by_its_yaml_the_most_specific_keys_winning(tmp_path):
    """SCNet Tran's YAML has SCNet's keys and its own; SCNet Masked's has SCNet's exactly, so it
    says its type in training.model_type."""
    for name, text in YAMLS.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.yaml").write_text(text)
        config = parse_config({"members": [{"model": str(folder)}]}, tmp_path / "c.toml")
        assert config.members[0].family == name
    assert set(YAMLS) == set(MSST_FAMILIES)


def test_shares_is_the_blend_key_and_weights_its_old_name(tmp_path):
    shares = parse_config({"members": [{"model": "htdemucs", "shares": 0.5}]}, tmp_path / "c.toml")
    weights = parse_config({"members": [{"model": "htdemucs", "weights": 0.5}]}, tmp_path / "c.toml")
    assert shares.members[0].shares == weights.members[0].shares == dict.fromkeys(shares.members[0].shares, 0.5)
    with pytest.raises(ConfigError, match=r"members\[0\]\.weights: is the old name of shares: give one of them"):
        parse_config({"members": [{"model": "htdemucs", "shares": 1, "weights": 1}]}, tmp_path / "c.toml")


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda path: path.name)
def test_a_shipped_config_states_only_what_differs_from_the_schema(path):
    """A value restated at its default changes nothing anyone runs and drifts when the default
    changes: the shipped configs leave the defaults to the schema."""
    raw = tomllib.loads(path.read_text())
    config = load_config(path)
    restated = [f"[separation] {key}" for key, value in raw.get("separation", {}).items()
                if value == SEPARATION_DEFAULTS[key]]
    for table, member in zip(raw["members"], config.members):
        defaults = FAMILIES[member.family].option_defaults()
        restated += [f"{member.name}.{key}" for key, value in table.items() if key in defaults and value == defaults[key]]
    assert restated == [], f"{path.name} restates defaults: {restated}"


def test_the_readme_option_tables_are_the_schema_s():
    result = subprocess.run([sys.executable, "scripts/write_option_tables.py", "--check"], cwd=PROJECT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    readme = (PROJECT / "README.md").read_text()
    for name, record in FAMILIES.items():
        assert f"`{name}` ({record.title})" in readme


def test_info_says_a_member_runs_eager_in_a_mode_its_family_does_not_change(tmp_path):
    """Open-Unmix has no compiled or reduced-precision path: asked for one, info says what it runs."""
    from demix.ensemble import Ensemble

    folder = tiny_openunmix_folder(tmp_path / "umx")
    path = tmp_path / "c.toml"
    path.write_text(f'[separation]\ncompute = "compiled"\n[[members]]\nmodel = "{folder}"\n')
    lines = Ensemble.from_config(load_config(path), tmp_path).describe()
    assert "  compute compiled: runs eager float32: compiled changes nothing for this family (it supports eager)" \
        in lines
