"""The folder a run writes: Open-Unmix's own training layout, which
``openunmix.utils.load_separator`` and the ensemble's member loader read,
plus what is needed to look at the run and to resume it::

    <target>.pth       the weights with the best validation loss so far (a state dict)
    <target>.json      {"args": options and architecture, "epochs_trained", "best_loss", histories, ...}
    separator.json     STFT settings, sample rate, channels
    options.json       every option of the run and its value
    log.json           per epoch: steps, train and validation loss per target, learning rates, seconds
    curve.png          train and validation loss per epoch (redrawn at most every 30 s, and at the end)
    checkpoint.pt      everything needed to resume (not needed to separate: leave it out of a submission)

Every file is written beside its destination and renamed into place, so a
run killed at any moment leaves each file whole, old or new.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from demix.atomic import write_bytes_atomically, write_json_atomically
from demix.errors import DemixError

CHECKPOINT = "checkpoint.pt"
OPTIONS = "options.json"
LOG = "log.json"
CURVE = "curve.png"
SEPARATOR = "separator.json"


def weights_file(output: Path, target: str) -> Path:
    return Path(output) / f"{target}.pth"


def snapshot_file(output: Path, head: str, epoch: int) -> Path:
    """The weights of ``head`` after ``epoch`` (``--snapshot-epochs``)."""
    return Path(output) / "snapshots" / f"{head}-epoch{epoch:04d}.pth"


def target_json(output: Path, target: str) -> Path:
    return Path(output) / f"{target}.json"


def check_writable(output: Path) -> None:
    """Fail before any work when ``output`` cannot be written, saying why."""
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=output)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise DemixError(f"{output}: cannot write the model folder here ({error.strerror or error})") from None


def save_torch_atomically(path: Path, data) -> None:
    """``torch.save`` of tensors and plain containers only, so that
    ``torch.load(weights_only=True)`` opens it."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    write_bytes_atomically(path, buffer.getvalue())


def load_torch(path: Path) -> dict:
    """A file written by :func:`save_torch_atomically`; never runs code from the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DemixError(f"{path}: not a readable training file ({error})") from None


def write_json(path: Path, data: dict) -> None:
    write_json_atomically(path, data, indent=2)
