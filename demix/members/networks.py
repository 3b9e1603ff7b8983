"""What every member does to its networks: load a state dict strictly, with
an error that says how a file and the architecture disagree, and compile a
network in place or undo that.

Compiling replaces the network's ``forward`` with ``torch.compile`` of it,
as an attribute of that one instance: the module keeps its class (Demucs'
``apply_model`` and msst's ``demix`` check it), its parameters and state dict
are untouched, and deleting the attribute gives back the class's own
``forward``: undone with plain Python, no private torch attribute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..errors import WeightsError

#: Names shown of each kind of disagreement between a file and its architecture.
SHOWN_NAMES = 3


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (", ..." if len(names) > SHOWN_NAMES else "")


def load_state_strictly(network: torch.nn.Module, state: Mapping[str, torch.Tensor], file: Path,
                        architecture: str, hint: str = "", may_lack: Callable[[str], bool] = lambda name: False,
                        may_add: bool = False) -> None:
    """``network.load_state_dict(state)``, refusing any disagreement with an
    error that names ``file``, says which tensors are missing, unexpected or
    of another shape (checkpoint vs ``architecture``, which names what the
    network was built from) and ends with ``hint``.

    ``may_lack(name)``: a tensor the file may leave out (a BatchNorm's
    counter); ``may_add``: the file may hold tensors the network has no
    place for (they are not loaded)."""
    expected = network.state_dict()
    missing = [name for name in expected if name not in state and not may_lack(name)]
    unexpected = [] if may_add else [name for name in state if name not in expected]
    reshaped = [f"{name} {tuple(state[name].shape)} vs {tuple(tensor.shape)}"
                for name, tensor in expected.items()
                if name in state and tuple(getattr(state[name], "shape", ())) != tuple(tensor.shape)]
    if missing or unexpected or reshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors the model has are missing ({_names(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are unexpected ({_names(unexpected)})")
        if reshaped:
            parts.append(f"{len(reshaped)} have another shape (file vs {architecture}: {_names(reshaped)})")
        raise WeightsError(f"{file}: this file and {architecture} disagree: " + "; ".join(parts)
                           + (f". {hint}" if hint else ""))
    network.load_state_dict({name: value for name, value in state.items() if name in expected}, strict=False)


def compile_network(network: torch.nn.Module, **options: Any) -> None:
    """Compile ``network`` in place (``torch.compile`` options, e.g.
    ``dynamic=False``); its class and weights stay as they are."""
    if is_compiled(network):
        uncompile_network(network)
    network.forward = torch.compile(network.forward, **options)


def uncompile_network(network: torch.nn.Module) -> None:
    """Run ``network`` eager again: its class's ``forward``."""
    network.__dict__.pop("forward", None)


def is_compiled(network: torch.nn.Module) -> bool:
    """Whether :func:`compile_network` compiled it (and nothing undid that)."""
    return "forward" in network.__dict__
