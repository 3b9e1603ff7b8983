"""Each member equals its own package's pipeline on the same weights and the
same real excerpt, source by named source: a swapped label, a wrong fold of
extra sources, a wrong normalisation or a wrong target order fails here.

References are computed by the packages alone: ``demucs.api.Separator``
(which loads the package from a local repo folder with demucs' own loader and
normalises as demucs does) and ``openunmix.utils.load_separator``.
"""

from __future__ import annotations

import random
import warnings

import pytest
import torch

from conftest import save_demucs_package, tiny_openunmix_folder
from demix import SAMPLE_RATE, TARGETS
from demix.members import DemucsMember, OpenUnmixMember

#: Float32 agreement the two pipelines must reach (the same operations in the same order).
TOLERANCE = 1e-5
SECONDS = 6


@pytest.fixture(scope="module")
def mix(track):
    return torch.from_numpy(track[1]["mixture"][:, : SAMPLE_RATE * SECONDS]).contiguous()


def tiny_htdemucs(sources, seed):
    """A small HTDemucs of the real model's depth (4)."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(sources=list(sources), channels=8, depth=4, nfft=1024, segment=4,
                        t_layers=1, t_heads=2, dconv_comp=4)


def demucs_reference(repo, signature, mix, shifts, overlap, seed=0) -> dict[str, torch.Tensor]:
    """``demucs.api.Separator`` on the package ``repo/<signature>.th``."""
    from demucs.api import Separator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        separator = Separator(model=signature, repo=repo, device="cpu", shifts=shifts, overlap=overlap,
                              split=True, progress=False, jobs=0)
    random.seed(seed)  # apply_model draws its shift offsets from `random`, as the member seeds it
    with torch.no_grad():
        _, separated = separator.separate_tensor(mix.clone(), SAMPLE_RATE)
    return separated


@pytest.mark.parametrize("sources", [
    ("drums", "bass", "other", "vocals"),
    ("vocals", "drums", "bass", "other"),  # another order: labels must follow the model's own list
])
def test_demucs_member_equals_demucs_api_per_source(tmp_path, mix, sources):
    path = save_demucs_package(tiny_htdemucs(sources, seed=3), tmp_path / "cafe0001.th")
    member = DemucsMember.from_path("d", path, shifts=1, overlap=0.25, seed=0)
    ours = member.separate(mix)
    reference = demucs_reference(tmp_path, "cafe0001", mix, shifts=1, overlap=0.25)
    assert set(ours) == set(TARGETS)
    for target in TARGETS:
        difference = (ours[target] - reference[target]).abs().max().item()
        assert difference <= TOLERANCE, f"{target}: max abs difference {difference:.2e}"


def test_six_source_demucs_folds_its_extra_sources_into_other(tmp_path, mix):
    sources = ("drums", "bass", "other", "vocals", "guitar", "piano")
    path = save_demucs_package(tiny_htdemucs(sources, seed=4), tmp_path / "cafe0006.th")
    ours = DemucsMember.from_path("d6", path, shifts=1, overlap=0.25, seed=0).separate(mix)
    reference = demucs_reference(tmp_path, "cafe0006", mix, shifts=1, overlap=0.25)
    expected = {target: reference[target] for target in ("drums", "bass", "vocals")}
    expected["other"] = reference["other"] + reference["guitar"] + reference["piano"]
    for target in TARGETS:
        assert (ours[target] - expected[target]).abs().max().item() <= TOLERANCE, target
    # the fold is what makes the four stems account for all six sources
    assert (sum(ours.values()) - sum(reference.values())).abs().max().item() <= 4 * TOLERANCE


@pytest.mark.parametrize("targets", [TARGETS, ("vocals", "drums")])
def test_openunmix_member_equals_openunmix_separator_per_target(tmp_path, mix, targets):
    from openunmix.utils import load_separator

    folder = tiny_openunmix_folder(tmp_path / "umx", targets=targets, seed=5)
    member = OpenUnmixMember.from_path("u", folder, niter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        separator = load_separator(str(folder), targets=list(targets), niter=1, device="cpu",
                                   wiener_win_len=300).eval()
    with torch.no_grad():
        ours = member.separate(mix)
        reference = separator(mix[None])[0]
    assert set(ours) == set(targets)
    for index, target in enumerate(separator.target_models):
        difference = (ours[target] - reference[index]).abs().max().item()
        assert difference <= TOLERANCE, f"{target}: max abs difference {difference:.2e}"


def test_demucs_in_blocks_normalises_by_the_whole_song_as_demucs_api_does(tmp_path, track):
    """A song three ensemble blocks long, whose first part is quiet and off
    centre: outside the cross-faded overlaps (where each block sees padding
    that the whole song does not), the ensemble's stems equal
    ``demucs.api.Separator`` on the whole song. Blocks and overlaps are whole
    numbers of apply_model's 3 s stride and shifts are off, so every segment
    there is the same segment in both runs; what is left is the normalisation.
    Measured: 0 difference; normalising each block by its own mean and std
    instead (what the member did before) gives up to 5e-3."""
    from demix.ensemble import BlockPlan, Ensemble

    rate = SAMPLE_RATE
    mix = torch.from_numpy(track[1]["mixture"]).tile(1, 4)[:, : 24 * rate].contiguous()
    mix[:, : 10 * rate] = 0.1 * mix[:, : 10 * rate] + 0.05
    path = save_demucs_package(tiny_htdemucs(("drums", "bass", "other", "vocals"), seed=3), tmp_path / "cafe0001.th")
    member = DemucsMember.from_path("d", path, shifts=0, overlap=0.25, seed=0)
    ensemble = Ensemble([member], {"d": dict.fromkeys(TARGETS, 1.0)}, wiener_iterations=0,
                        block_seconds=12, overlap_seconds=3, compute="eager")
    plan = list(BlockPlan(mix.shape[-1], ensemble.block, ensemble.overlap))
    assert len(plan) == 3 and ensemble.overlap == 3 * rate
    ours = ensemble.separate(mix)
    reference = demucs_reference(tmp_path, "cafe0001", mix, shifts=0, overlap=0.25)
    outside_overlaps = torch.ones(mix.shape[-1], dtype=torch.bool)
    for (_, stop), (start, _) in zip(plan, plan[1:]):
        outside_overlaps[start:stop] = False
    for index, target in enumerate(TARGETS):
        difference = (ours[index] - reference[target])[:, outside_overlaps].abs().max().item()
        assert difference <= TOLERANCE, f"{target}: max abs difference {difference:.2e}"
