"""Config errors name the file and the key."""

from pathlib import Path

import pytest

from demix import TARGETS
from demix.config import DEFAULT_CONFIG, load_config
from demix.errors import ConfigError


def test_default_config_is_htdemucs_plus_umxhq():
    config = load_config()
    assert [m.model for m in config.members] == ["htdemucs", "umxhq"]
    for target in TARGETS:
        assert sum(m.shares[target] for m in config.members) == pytest.approx(1.0)
    # every default weight has its reason written down beside it
    assert "Why these weights" in DEFAULT_CONFIG.read_text()


def _write(tmp_path, text) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, where", [
    ("[[members]]\nmodel = 'htdemucs'\nweights = { vocals = -1 }\n", "members[0].weights.vocals"),
    ("[[members]]\nmodel = 'htdemucs'\nweights = { voice = 1 }\n", "members[0].weights"),
    ("[[members]]\nmodel = 'htdemucs'\nshifs = 2\n", "unknown keys ['shifs']"),
    ("[[members]]\nmodel = 'umxhq'\nshifts = 2\n", "unknown keys ['shifts']"),
    ("[[members]]\nmodel = 'htdemux'\n", "members[0].model"),
    ("[separation]\nwiener_iterations = -1\n[[members]]\nmodel = 'umxhq'\n", "separation.wiener_iterations"),
    ("[separation]\nblock_seconds = 10\noverlap_seconds = 6\n[[members]]\nmodel = 'umxhq'\n", "overlap_seconds"),
    ("[separation]\n", "at least one [[members]]"),
    ("[[members]]\nmodel = 'umxhq'\n[[members]]\nmodel = 'umxhq'\n", "duplicate member names"),
    ("members = [ 'oops\n", "not valid TOML"),
])
def test_errors_name_the_file_and_the_key(tmp_path, text, where):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and where in str(error.value)


def test_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "my_umx").mkdir()
    (tmp_path / "my_umx" / "vocals.json").write_text("{}")
    path = _write(tmp_path, "[[members]]\nmodel = './my_umx'\n[[members]]\nmodel = 'sub/model.th'\nweights = 2\n")
    config = load_config(path)
    assert config.members[0].model == str(tmp_path / "my_umx") and config.members[0].family == "openunmix"
    assert config.members[1].family == "demucs" and config.members[1].shares == dict.fromkeys(TARGETS, 2.0)


def test_a_path_no_family_recognises_is_an_error_unless_the_family_is_declared(tmp_path):
    """Nothing is assumed: a folder that is not there is not an Open-Unmix one by default."""
    path = _write(tmp_path, "[[members]]\nmodel = './not_trained_yet'\n")
    with pytest.raises(ConfigError, match=r"members\[0\]\.model: .*not_trained_yet does not exist, so its "
                                          r"family cannot be told .*set family = one of demucs, openunmix"):
        load_config(path)
    declared = load_config(_write(tmp_path, "[[members]]\nmodel = './not_trained_yet'\nfamily = 'openunmix'\n"))
    assert declared.members[0].family == "openunmix"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
