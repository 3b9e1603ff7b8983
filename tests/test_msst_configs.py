"""The MSST training YAMLs demix ships (demix/msst_configs/) against the checkpoints they are for.

A wrong YAML is found by strict loading only after a download of hundreds of MB; these tests find
it first. Each YAML builds its model through the member's own construction
(:func:`demix.members.msst.build_model`, msst 0.1.0's classes) on the meta device: shapes without
memory or weights (measured on this 2-core machine: BS-RoFormer ep_17 builds in 4.4 s on meta with
753 MB peak RSS for the whole process, 4.9 s and 1262 MB on the CPU; the Mel-Band RoFormer 2.7 s
and 753 MB on meta, 5.4 s and 1630 MB on the CPU). Its state dict must have the checkpoint's
tensor count, and its float32 bytes must fit the checkpoint's size.
"""

from __future__ import annotations

import pytest
import torch
from ml_collections import ConfigDict

from demix.members.msst import build_model
from demix.families import yaml_model_type
from demix.members.msst_files import read_msst_yaml
from demix.weights.catalogue import MSST_CONFIGS, official_models

MSST_MODELS = {name: model for name, model in official_models().items()
               if model.files[0].bundled is not None and model.files[0].bundled.parent == MSST_CONFIGS}

#: Tensors in each model's state dict. bs_roformer_ep17: the published checkpoint's count. The
#: others: measured when the YAML was added (msst 0.1.0), a guard against a changed YAML until a
#: published figure can be compared (scnet_xl_ihf's file size is known: its 510 tensors take
#: 213,867,200 bytes, 196,578 fewer than the file, 385 per tensor).
TENSORS = {
    "bs_roformer_ep17": 1355,
    "scnet_xl_ihf": 510,
    "scnet_xl": 420,
    "scnet_large": 372,
    "scnet_large_starrytong": 372,
    "mdx23c_musdb18": 319,
    "mel_band_roformer_kj": 684,
    "scnet_small": 372,
    "bs_roformer_viperx_ep317": 699,
    "scnet_tran_small": 397,
}
#: Float32 bytes of the state dict where no checkpoint size is published: measured when the YAML
#: was added (msst 0.1.0), the same kind of guard.
MEASURED_TENSOR_BYTES = {
    "scnet_xl": 216_027_584,
    "scnet_large": 168_724_928,
    "scnet_large_starrytong": 168_724_928,
    "mdx23c_musdb18": 447_977_472,
    "mel_band_roformer_kj": 912_812_688,
    "scnet_small": 42_315_072,
    "bs_roformer_viperx_ep317": 639_035_184,
    "scnet_tran_small": 41_521_408,
}
#: What torch.save adds to the tensors' bytes (zip entries, the pickled names and storages), per
#: tensor, at most. Measured: the published BS-RoFormer ep_17 file is 527,385,512 bytes and its
#: 1355 float32 tensors take 526,818,448, so 567,064 bytes (418.5 per tensor) are torch.save's.
#: 1 KiB per tensor leaves room for longer names; a YAML with one wrong width or depth changes
#: the tensors by far more (one 384 x 384 matrix is 589,824 bytes).
SAVE_OVERHEAD_PER_TENSOR = 1024


def meta_state(name: str) -> dict[str, torch.Tensor]:
    path = MSST_CONFIGS / f"{name}.yaml"
    data = read_msst_yaml(path)
    with torch.device("meta"):
        model = build_model(yaml_model_type(data, path), ConfigDict(data), path)
    return model.state_dict()


def tensor_bytes(state: dict[str, torch.Tensor]) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in state.values())


def test_every_shipped_yaml_is_catalogued_with_its_family():
    shipped = sorted(path.stem for path in MSST_CONFIGS.glob("*.yaml"))
    assert shipped == sorted(MSST_MODELS) == sorted(TENSORS)
    for name, model in MSST_MODELS.items():
        path = model.files[0].bundled
        assert yaml_model_type(read_msst_yaml(path), path) == model.family, name
        assert "Copied from ZFTurbo/Music-Source-Separation-Training" in path.read_text(), name


@pytest.mark.parametrize("name", sorted(TENSORS))
def test_the_yaml_builds_the_tensors_of_its_checkpoint(name):
    state = meta_state(name)
    assert {tensor.dtype for tensor in state.values()} == {torch.float32}
    assert len(state) == TENSORS[name]
    checkpoint = MSST_MODELS[name].files[1]
    if checkpoint.size is None:
        assert tensor_bytes(state) == MEASURED_TENSOR_BYTES[name]
    else:
        overhead = checkpoint.size - tensor_bytes(state)
        assert 0 < overhead <= SAVE_OVERHEAD_PER_TENSOR * len(state), (checkpoint.size, tensor_bytes(state))


#: The release YAMLs' sha256, where projects that pin the release files record it (the files
#: themselves cannot be read from here), for the shipped copies that must be their text.
RELEASE_YAML_SHA256 = {"scnet_xl_ihf": "54ddcb8aeeae85c8d0e148741e7d87b0fbd38bd21cffa5d59ba124fe1e672f40"}


def test_the_shipped_text_is_the_release_files():
    """After demix's header (up to its first blank line), with the Windows line endings the
    release files have, the text is byte for byte the release file: its inference settings too."""
    import hashlib

    for name, digest in RELEASE_YAML_SHA256.items():
        text = (MSST_CONFIGS / f"{name}.yaml").read_text()
        header, release_text = text.split("\n\n", 1)
        assert header.startswith("# MSST training config shipped by demix"), name
        assert hashlib.sha256(release_text.replace("\n", "\r\n").encode()).hexdigest() == digest, name


def test_the_roformer_yamls_keep_their_tuples():
    """MSST writes the band split and the loss resolutions as !!python/tuple; the Roformer classes
    refuse lists."""
    for name in ("bs_roformer_ep17", "mel_band_roformer_kj", "bs_roformer_viperx_ep317"):
        model = read_msst_yaml(MSST_CONFIGS / f"{name}.yaml")["model"]
        assert isinstance(model["multi_stft_resolutions_window_sizes"], tuple), name
    bands = read_msst_yaml(MSST_CONFIGS / "bs_roformer_ep17.yaml")["model"]["freqs_per_bands"]
    assert isinstance(bands, tuple) and len(bands) == 62 and sum(bands) == 1025
