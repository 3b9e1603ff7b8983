"""Run Demucs' segments in batches instead of one at a time.

``demucs.apply.apply_model`` cuts a block into overlapping segments and
hands each to its ``pool`` argument (an executor) as a call of itself with
``split=False``; by default the calls run one after the other, each a batch
of one. :class:`SegmentBatcher` is such a pool: it holds the calls until
the first result is asked for, then pads the segments exactly as
``apply_model`` does (``model.valid_length``, ``TensorChunk.padded``), runs
them through the model ``batch_size`` at a time and trims each output back
(``center_trim``). ``apply_model`` keeps doing everything else: the random
shifts, the bag of models, the overlap weights and the sum.

Larger batches keep a GPU busy. On the 2-core CPU they were slower (30 s of
random-weight htdemucs: 15.1 s one at a time, 18.6 s four at a time), so the
default is 1. Without random shifts the stems are the same up to the last
bits of float32. With shifts, or in a bag, they differ slightly but stay
deterministic: HTDemucs' transformer draws from ``random`` once per forward
pass, so fewer passes change the shifts ``apply_model`` draws afterwards.
"""

from __future__ import annotations

import torch
from demucs.apply import TensorChunk, tensor_chunk
from demucs.utils import center_trim


class _Pending:
    def __init__(self, batcher: "SegmentBatcher", chunk: TensorChunk):
        self.batcher, self.chunk, self.output = batcher, chunk, None

    def result(self) -> torch.Tensor:
        if self.output is None:
            self.batcher.run_pending()
        return self.output


class SegmentBatcher:
    """A ``pool`` for ``apply_model`` that runs its segments ``batch_size`` at a time."""

    def __init__(self, batch_size: int, device: torch.device):
        self.batch_size = batch_size
        self.device = device
        self.pending: list[tuple[torch.nn.Module, _Pending]] = []

    def submit(self, function, model, chunk, **kwargs) -> _Pending:
        # apply_model submits itself with split=False and shifts=0 (shifts are applied above this level)
        assert not kwargs.get("split") and not kwargs.get("shifts"), "only unsplit, unshifted segments are batched"
        pending = _Pending(self, tensor_chunk(chunk))
        self.pending.append((model, pending))
        return pending

    def run_pending(self) -> None:
        groups: dict[tuple[int, tuple[int, ...]], list[tuple[torch.nn.Module, _Pending, torch.Tensor]]] = {}
        for model, pending in self.pending:
            length = pending.chunk.length
            valid_length = model.valid_length(length) if hasattr(model, "valid_length") else length
            padded = pending.chunk.padded(valid_length).to(self.device)
            groups.setdefault((id(model), tuple(padded.shape)), []).append((model, pending, padded))
        self.pending = []
        for group in groups.values():
            model = group[0][0]
            for start in range(0, len(group), self.batch_size):
                part = group[start:start + self.batch_size]
                with torch.no_grad():
                    outputs = model(torch.cat([padded for _, _, padded in part]))
                for index, (_, pending, padded) in enumerate(part):
                    rows = padded.shape[0]
                    pending.output = center_trim(outputs[index * rows:(index + 1) * rows], pending.chunk.length)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.pending = []
