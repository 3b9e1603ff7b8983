"""How an MSST model runs the chunks msst's inference hands it, in the
member's compute mode (:mod:`demix.compute`).

msst's ``demix`` cuts a block into chunks of ``chunk_size`` samples (the
ragged last one padded to that size), calls ``model(chunks)`` on up to
``inference.batch_size`` of them at a time, and does so inside
``torch.autocast(enabled=use_amp and device is CUDA)``: on a CPU it always
runs float32. :class:`ChunkRunner` is what the member hands ``demix`` in the
model's place:

* ``bf16`` and ``fp16`` run the model under ``torch.autocast`` to that dtype,
  entered inside msst's own (disabled) autocast so that it is the one in
  force, and return the stems in float32, as msst's float32 path does;
* ``compiled``, ``bf16`` and ``fp16`` compile the model in place with
  ``torch.compile(dynamic=False)``, leaving out of the graph only what does
  not compile (:func:`compile_targets`), and run the chunks through it in
  groups of one shape (one chunk at a time on a CPU, :data:`CPU_GRAPH_BATCH`;
  ``batch_size`` on a GPU, a short last group padded with silent chunks): one
  graph per member, compiled by the ensemble's warm-up and never again for
  another block or song (a padded chunk's stems are dropped: each chunk is
  separated on its own, so the others do not change). On a CPU with
  inductor's ``freezing``: the weights become constants of the graph, cast to
  bf16 and laid out for oneDNN once, at compile time, instead of at every
  call under autocast. One chunk of BS-RoFormer ep_17 took 62.5 s compiled
  under bf16 autocast without it, as long as eager float32 (62.1 s), and
  33.6 s with it in one process, but 66.9 s in another that had compiled
  both: the slowdown of a process right after a cold compile
  (:func:`demix.compute.run_warm`) is not yet separated from freezing's own gain (2-core AMD EPYC
  Zen 4 with AVX512_BF16, 2026-12-06, with other work on the cores at times);
* ``eager`` calls the model as msst does.

The runner shows the model as ``.module``, the attribute through which
``demix`` reads the model's ``forward`` signature and heads (a single-target
Roformer is asked for its one stem with ``active_stem_ids``).
"""

from __future__ import annotations

import torch

from ..compute import AUTOCAST_DTYPES, COMPILED_MODES
from ..families import FAMILIES
from .networks import compile_network, uncompile_network

def compile_targets(family: str, model: torch.nn.Module) -> tuple[list[torch.nn.Module], str]:
    """The modules to compile in place for the MSST type ``family``, and what
    that leaves eager ("" when the whole model is one graph).

    Every type compiles as a whole but where its record
    (:attr:`demix.families.MsstModel.left_eager`) names a module class that
    inductor cannot compile: SCNet turns features into their spectrum and
    back between its dual-path layers (``FeatureConversion``:
    ``torch.fft.rfft``/``irfft`` on an intermediate layout), where torch
    2.11's inductor fails. Those modules are left out of the graph with
    ``torch.compiler.disable``, so the rest of the model (SCNet's own STFT and
    inverse included) still compiles around them."""
    import importlib

    left_eager = FAMILIES[family].msst.left_eager
    if left_eager is None:
        return [model], ""
    class_path, reason = left_eager
    module_name, class_name = class_path.split(":")
    excluded = getattr(importlib.import_module(module_name), class_name)
    for module in model.modules():
        if isinstance(module, excluded):
            module.forward = torch.compiler.disable(module.forward, recursive=True)
    return [model], reason


#: Chunks per call of a compiled graph on a CPU, whatever the YAML's batch_size: a CPU gains
#: nothing from batching chunks, and a short last batch padded to the YAML's size is work thrown
#: away. SCNet small (batch_size 8) on one 11 s chunk, bf16: 0.72 s per s of audio one at a time,
#: 2.02 with its batch padded to 8 (benchmarks/engine.py --msst-modes scnet_small --batch-sizes 1;
#: 2-core AMD EPYC Zen 4, 2026-12-06).
CPU_GRAPH_BATCH = 1


class ChunkRunner(torch.nn.Module):
    """The model as msst's ``demix`` calls it, in one compute mode."""

    def __init__(self, model: torch.nn.Module, family: str, mode: str, batch_size: int, device: torch.device):
        """``batch_size``: the chunks msst's demix hands over at once (the YAML's ``inference.batch_size``)."""
        super().__init__()
        self.module = model
        self.family = family
        self.mode = mode
        on_cpu = torch.device(device).type == "cpu"
        #: Chunks per call of a compiled graph (see :data:`CPU_GRAPH_BATCH`).
        self.graph_batch = CPU_GRAPH_BATCH if on_cpu else batch_size
        self.autocast_dtype = getattr(torch, AUTOCAST_DTYPES[mode]) if mode in AUTOCAST_DTYPES else None
        self.compiled: list[torch.nn.Module] = []
        #: What stays out of the compiled graph and why ("" where nothing does).
        self.left_eager = ""
        if mode in COMPILED_MODES:
            self.compiled, self.left_eager = compile_targets(family, model)
            options = {"freezing": True} if on_cpu else {}
            for module in self.compiled:
                compile_network(module, dynamic=False, options=options)

    def disable_compile(self) -> None:
        for module in self.compiled:
            uncompile_network(module)
        self.compiled = []
        self.left_eager = ""

    def describe(self) -> str:
        """The mode the model really runs in, for ``python -m demix info``."""
        precision = f"{AUTOCAST_DTYPES[self.mode]} autocast" if self.autocast_dtype is not None else "float32"
        if not self.compiled:
            return f"{precision}, eager"
        if not self.left_eager:
            return f"{precision}, compiled (the whole model, one graph)"
        return f"{precision}, compiled but for one part ({self.left_eager})"

    def forward(self, chunks: torch.Tensor, **kwargs) -> torch.Tensor:
        if not self.compiled:
            return self._run(chunks, **kwargs)
        count, size = chunks.shape[0], self.graph_batch
        if count % size:  # a short last group: silent chunks, whose stems are dropped
            chunks = torch.cat([chunks, chunks.new_zeros((size - count % size,) + chunks.shape[1:])])
        return torch.cat([self._run(group, **kwargs) for group in chunks.split(size)])[:count]

    def _run(self, chunks: torch.Tensor, **kwargs) -> torch.Tensor:
        with torch.autocast(chunks.device.type, self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            return self.module(chunks, **kwargs).float()
