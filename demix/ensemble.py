"""The ensemble: members applied block by block, blended per target,
optionally Wiener-filtered, cross-faded into a stream of finished audio.

Why blocks: a member given a whole track holds activations and outputs for
all of it (Open-Unmix's full-track LSTM and Wiener pass grew past 64 GB for
its users on long tracks). The ensemble instead walks the track in blocks of
``block_seconds`` that overlap by ``overlap_seconds``; within a block Demucs
still uses its own split/overlap (``demucs.apply.apply_model``). Consecutive
blocks are cross-faded linearly over their overlap, where each block's edge
(least context, zero padding) gets the least weight. Finished audio is
yielded as soon as no later block can change it, so a caller can write it
to disk and peak memory depends on the block length, not the track's.

Block length is rounded to a whole number of Demucs strides so that Demucs
spends no extra, mostly padded, segment per block.

The pipeline is split into public steps so that blend tuning
(``evaluation/tune.py``) can replay it on cached member estimates and score
exactly what ``python -m demix separate`` produces: :class:`BlockPlan` (where
the blocks are), :meth:`Ensemble.member_estimates` (each member on one block),
:class:`Blend` (normalised shares, then the Wiener post-filter, on one block)
and :func:`crossfade` (blocks into a stream).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import torch
import tqdm

from . import SAMPLE_RATE, TARGETS
from .audio import resample
from .config import Config, separation_settings
from .compute import COMPILED_MODES, check_compute_mode, run_warm
from .errors import ConfigError, first_line
from .members import Member, load_member
from .postfilter import WienerPostFilter
from .statistics import SongStatistics
from .stream import EngineMix

#: Blocks shorter than this are zero-padded before separation (Open-Unmix's
#: STFT needs more than n_fft / 2 samples), and cropped after.
MIN_BLOCK_SECONDS = 1.0


@dataclass(frozen=True)
class BlockPlan:
    """Blocks of ``block`` samples, each starting ``block - overlap`` after
    the previous one; the last ends at ``length``."""

    length: int
    block: int
    overlap: int

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.block - self.overlap
        start = 0
        while True:
            stop = min(start + self.block, self.length)
            yield start, stop
            if stop == self.length:
                return
            start += step

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Ensemble:
    def __init__(
        self,
        members: Sequence[Member],
        shares: Mapping[str, Mapping[str, float]],
        device: torch.device | str = "cpu",
        member_compute: Mapping[str, str] | None = None,
        partial: bool = False,
        **separation,
    ):
        """``shares[member.name][target]``: each member's raw share of each
        target's blend (a config's ``weights``), normalised here per target
        over the members that estimate that target. ``member_compute[member.name]``:
        a member's own compute mode, over ``compute`` (a config member's
        ``compute``). ``separation``:
        the config's ``[separation]`` values (``block_seconds``,
        ``overlap_seconds``, ``wiener_iterations``, ``compute``), checked as
        the config checks them; one not given is the config schema's default
        (:func:`demix.config.separation_settings`), so an ensemble built in
        code runs as one from a config that leaves it out. ``partial``: a
        target no member estimates is silence instead of an error (a member
        scored alone: ``python -m evaluation run --method member:NAME``)."""
        if "seed" in separation:  # the members are built already: their seed is load_member's
            raise ConfigError("Ensemble: seed: the Demucs seed is given to the members "
                              "(demix.members.load_member, or Ensemble.from_config), not to the ensemble")
        settings = separation_settings(separation, "Ensemble")
        wiener_iterations, compute = settings["wiener_iterations"], settings["compute"]
        block_seconds, overlap_seconds = settings["block_seconds"], settings["overlap_seconds"]
        self.members = list(members)
        self.device = torch.device(device)
        member_compute = dict(member_compute or {})
        unknown = sorted(set(member_compute) - {member.name for member in self.members})
        if unknown:
            raise ConfigError(f"Ensemble: member_compute names no member: {', '.join(unknown)}")
        #: Each member's compute mode, by name.
        self.member_compute = {member.name: member_compute.get(member.name, compute) for member in self.members}
        for mode in sorted(set(self.member_compute.values())):
            check_compute_mode(mode, self.device)
        for member in self.members:
            member.to(self.device)
        self.compute = compute
        self.compiled = any(mode in COMPILED_MODES for mode in self.member_compute.values())
        for member in self.members:
            member.set_compute(self.member_compute[member.name])
        self.blend = Blend({m.name: m.targets for m in self.members}, shares, wiener_iterations, self.device,
                           partial=partial)
        multiple = max(member.block_multiple for member in self.members)
        self.block = max(1, round(block_seconds * SAMPLE_RATE / multiple)) * multiple
        self.overlap = min(int(overlap_seconds * SAMPLE_RATE), self.block // 2)

    @classmethod
    def from_config(cls, config: Config, models_dir: Path, device: torch.device | str = "cpu",
                    partial: bool = False) -> "Ensemble":
        """Load the members a config names, from files only. No warm-up and no
        cache set-up: :func:`demix.load.load_ensemble` takes those steps."""
        members = [load_member(member, models_dir, seed=config.seed) for member in config.members]
        shares = {member.name: member.shares for member in config.members}
        member_compute = {member.name: member.compute for member in config.members if member.compute is not None}
        return cls(
            members, shares, device, member_compute, partial, wiener_iterations=config.wiener_iterations,
            block_seconds=config.block_seconds, overlap_seconds=config.overlap_seconds, compute=config.compute,
        )

    def warm_up(self) -> float:
        """Run every member once on a short block; returns the seconds it took.
        If compiling fails, fall back to eager with one warning."""
        started = time.perf_counter()
        block = 0.01 * torch.randn(2, int(MIN_BLOCK_SECONDS * SAMPLE_RATE), generator=torch.Generator().manual_seed(0))
        try:
            if self.compiled:  # reloaded from the kernel cache after a cold compile: demix.compute.run_warm
                run_warm(lambda: self._separate_block(block))
            else:
                self._separate_block(block)
        except Exception as error:
            if not self.compiled:
                raise
            warnings.warn(
                f"torch.compile failed on this platform ({first_line(error)}); running the models eagerly",
                RuntimeWarning, stacklevel=2,
            )
            self.compiled = False
            for member in self.members:
                member.disable_compile()
            self._separate_block(block)
        return time.perf_counter() - started

    @property
    def shares(self) -> dict[str, dict[str, float]]:
        """``shares[target][member name]``: the normalised shares."""
        return self.blend.shares

    @property
    def postfilter(self) -> WienerPostFilter | None:
        return self.blend.postfilter

    @property
    def wiener_iterations(self) -> int:
        return self.blend.wiener_iterations

    def plan(self, length: int) -> BlockPlan:
        """The blocks :meth:`separate_blocks` cuts a mixture of ``length`` engine frames into."""
        return BlockPlan(length, self.block, self.overlap)

    def separate(self, mix: torch.Tensor, progress: str | None = None) -> torch.Tensor:
        """Whole-track convenience: (2, frames) -> (targets, 2, frames)."""
        return torch.cat(list(self.separate_blocks(mix, progress)), dim=-1)

    @property
    def needs_song_statistics(self) -> bool:
        """Whether a member normalises by the whole song (:mod:`demix.statistics`)."""
        return any(member.needs_song_statistics for member in self.members)

    def separate_blocks(
        self, mix: torch.Tensor | EngineMix, progress: str | None = None, statistics: SongStatistics | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield finished audio (targets, 2, n) block by block, in order; the
        pieces concatenate to exactly ``mix``'s length. ``mix``: a (2, frames)
        tensor at the engine's rate, or an :class:`~demix.stream.EngineMix`
        that resamples the input as its blocks are read. ``statistics``: the
        whole song's, which an :class:`~demix.stream.EngineMix` cannot give
        before it is read (:func:`demix.stream.song_statistics` measures them);
        for a tensor they are computed here when a member needs them.
        ``progress``: a label for a progress bar over blocks (None: no bar)."""
        if isinstance(mix, torch.Tensor):
            if mix.dim() != 2 or mix.shape[0] != 2:
                raise ValueError(f"expected a stereo mixture of shape (2, frames), got {tuple(mix.shape)}")
            length, read = mix.shape[-1], lambda start, stop: mix[:, start:stop]
            if statistics is None and self.needs_song_statistics:
                statistics = SongStatistics.of(mix)
        else:
            length, read = mix.length, mix.read
            if statistics is None and self.needs_song_statistics:
                raise ValueError("a member normalises by the whole song: pass its statistics "
                                 "(demix.stream.song_statistics) with a streamed mixture")
        plan = self.plan(length)
        bar = tqdm.tqdm(plan, total=len(plan), desc=progress, unit="block", leave=False, disable=progress is None)
        yield from crossfade((self._separate_block(read(start, stop), statistics) for start, stop in bar), plan)

    def member_estimates(
        self, block: torch.Tensor, statistics: SongStatistics | None = None,
    ) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
        """Each member's estimates of one mixture block (2, n) of a song whose
        statistics are ``statistics``, one member at a time (so that a blend
        holds one member's output, not all of them):
        ``(member name, {target: (2, padded)})`` at the engine's rate, on
        :attr:`device`, for the block zero-padded by :func:`pad_block`."""
        block = pad_block(block).to(self.device)
        for member in self.members:
            member_input = resample(block, SAMPLE_RATE, member.sample_rate)
            yield member.name, {
                target: resample(estimate, member.sample_rate, SAMPLE_RATE, block.shape[-1])
                for target, estimate in member.separate(member_input, statistics).items()
            }

    def _separate_block(self, block: torch.Tensor, statistics: SongStatistics | None = None) -> torch.Tensor:
        return self.blend(block, self.member_estimates(block, statistics))

    def describe(self) -> list[str]:
        """Human-readable lines: members, their weight files, the blend."""
        lines = []
        for member in self.members:
            lines.append(f"member {member.name}: {member.origin} (targets: {', '.join(member.targets)})")
            mode = self.member_compute[member.name]
            how = member.compute_description
            if mode not in member.supported_compute:
                how = (f"runs eager float32: {mode} changes nothing for this family (it supports "
                       f"{', '.join(member.supported_compute)})")
            if mode != self.compute or how:
                lines.append(f"  compute {mode}" + (f": {how}" if how else ""))
        lines.append("blend shares (normalised per target):")
        for target in TARGETS:
            shares = ", ".join(f"{name} {weight:.3f}" for name, weight in self.shares[target].items())
            lines.append(f"  {target:<7} {shares}")
        lines.append(
            f"Wiener post-filter: {self.wiener_iterations} EM iteration(s)" if self.postfilter
            else "Wiener post-filter: off"
        )
        lines.append(
            f"blocks: {self.block / SAMPLE_RATE:.2f} s with {self.overlap / SAMPLE_RATE:.2f} s cross-fade; "
            f"device {self.device}; compute {self.compute}{' (compiled)' if self.compiled else ''}"
        )
        return lines


def pad_block(block: torch.Tensor) -> torch.Tensor:
    """``block`` zero-padded at its end to at least :data:`MIN_BLOCK_SECONDS`."""
    min_length = int(MIN_BLOCK_SECONDS * SAMPLE_RATE)
    if block.shape[-1] < min_length:
        block = torch.nn.functional.pad(block, (0, min_length - block.shape[-1]))
    return block


def crossfade(blocks: Iterable[torch.Tensor], plan: BlockPlan) -> Iterator[torch.Tensor]:
    """Finished audio from the separated blocks of ``plan``, in order: each
    block (targets, 2, stop - start) is cross-faded linearly with the previous
    one over their overlap, and a piece is yielded as soon as no later block
    can change it. The pieces concatenate to ``plan.length`` frames."""
    pending = None  # the previous block's overlapping tail, not yet final
    for (_, stop), estimates in zip(plan, blocks):
        if pending is not None:
            width = pending.shape[-1]
            fade_in = torch.linspace(0.0, 1.0, width + 2)[1:-1]
            estimates[..., :width] = pending * (1 - fade_in) + estimates[..., :width] * fade_in
        if stop < plan.length:
            pending = estimates[..., -plan.overlap:] if plan.overlap else None
            yield estimates[..., : estimates.shape[-1] - plan.overlap]
        else:
            yield estimates


class Blend:
    """The ensemble's blend of one block: per target, the members' estimates
    weighted by their normalised shares and summed, then (``wiener_iterations``
    > 0) the Wiener post-filter of :mod:`demix.postfilter` on that block.

    ``member_targets[name]``: the targets a member estimates, in the order the
    members are summed. ``shares[name][target]``: raw shares, normalised per
    target over the members that estimate that target; a member that does not
    estimate a target gets no share of it, whatever its weight.

    :class:`Ensemble` blends every block with this, and ``python -m evaluation
    tune`` scores its candidates with it on cached member estimates, so the
    two cannot differ.
    """

    def __init__(
        self,
        member_targets: Mapping[str, Sequence[str]],
        shares: Mapping[str, Mapping[str, float]],
        wiener_iterations: int,
        device: torch.device | str = "cpu",
        partial: bool = False,
    ):
        self.member_targets = {name: tuple(targets) for name, targets in member_targets.items()}
        self.device = torch.device(device)
        self.shares = _normalise(self.member_targets, shares, partial)
        self.postfilter = WienerPostFilter(wiener_iterations).to(self.device) if wiener_iterations else None

    @property
    def wiener_iterations(self) -> int:
        return self.postfilter.iterations if self.postfilter else 0

    def __call__(
        self, block: torch.Tensor, member_estimates: Iterable[tuple[str, Mapping[str, torch.Tensor]]]
    ) -> torch.Tensor:
        """``block``: the mixture block (2, n) as the plan cuts it;
        ``member_estimates``: ``(member name, {target: (2, padded)})`` for the
        block padded by :func:`pad_block`, as :meth:`Ensemble.member_estimates`
        yields them. Returns the blended block (targets, 2, n) on the CPU."""
        length = block.shape[-1]
        block = pad_block(block).to(self.device)
        blend = torch.zeros((len(TARGETS),) + block.shape, device=self.device)
        for name, estimates in member_estimates:
            for target, estimate in estimates.items():
                weight = self.shares[target].get(name, 0.0)
                if weight:
                    blend[TARGETS.index(target)] += weight * estimate.to(self.device)
        if self.postfilter is not None:
            blend = self.postfilter(block, blend)
        return blend[..., :length].cpu()


def _normalise(
    member_targets: Mapping[str, Sequence[str]], shares: Mapping[str, Mapping[str, float]], partial: bool = False
) -> dict[str, dict[str, float]]:
    normalised = {}
    for target in TARGETS:
        raw = {name: float(shares.get(name, {}).get(target, 0.0))
               for name, targets in member_targets.items() if target in targets}
        total = sum(raw.values())
        if total <= 0 and partial:
            normalised[target] = {}
            continue
        if total <= 0:
            raise ConfigError(
                f"no member estimates {target!r} with a weight above 0 "
                f"(members: {', '.join(member_targets)})"
            )
        normalised[target] = {name: value / total for name, value in raw.items() if value > 0}
    return normalised
