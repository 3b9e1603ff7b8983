"""The training curve: train and validation loss per epoch, one panel per head (target)."""

from __future__ import annotations

import io
from pathlib import Path

from demix.atomic import write_bytes_atomically


def write_curve(path: Path, epochs: list[dict], targets: tuple[str, ...], loss_name: str) -> None:
    """``epochs``: the entries of log.json (``epoch``, ``train_loss`` and ``valid_loss`` per head)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(targets), figsize=(4.5 * len(targets), 3.5), squeeze=False)
    numbers = [entry["epoch"] for entry in epochs]
    for axis, target in zip(axes[0], targets):
        axis.plot(numbers, [entry["train_loss"][target] for entry in epochs], marker=".", label="train")
        axis.plot(numbers, [entry["valid_loss"][target] for entry in epochs], marker=".", label="validation")
        axis.set_title(target)
        axis.set_xlabel("epoch")
        axis.set_ylabel(loss_name)
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    write_bytes_atomically(path, buffer.getvalue())
