"""How the models run: compute modes, threads, and the compile cache.

Demucs is nearly all of the ensemble's time on a CPU, so the modes act on
Demucs members (Open-Unmix's LSTM breaks torch.compile's graph, which gains
it about 8 %, and it is a tenth of the time):

* ``eager``: plain PyTorch, float32.
* ``compiled``: ``torch.compile`` of each Demucs model, float32; same stems as
  eager to about 1e-7. The first run on a machine compiles (minutes for
  htdemucs on 2 cores); the kernels are cached in :func:`compile_cache_dir`
  so later processes load them. Where compiling fails, the member falls back
  to eager with one warning.
* ``bf16``: compiled as above, under ``torch.autocast`` with bfloat16 (opt-in:
  it changes the stems slightly; see the README for the measured agreement).
"""

from __future__ import annotations

import os
from pathlib import Path

COMPUTE_MODES = ("eager", "compiled", "bf16")

#: Where compiled kernels are kept unless $DEMIX_COMPILE_CACHE says otherwise.
DEFAULT_COMPILE_CACHE = Path.home() / ".cache" / "demix" / "torch-compile"


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a
    cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) quota, as in a
    container limited to N CPUs on a bigger host."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, int(quota + 0.5)))
    return max(1, count)


def _cgroup_cpu_quota() -> float | None:
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def configure_threads() -> int:
    """Use every CPU available to this process, and no more."""
    import torch

    count = available_cpus()
    torch.set_num_threads(count)
    return count


def compile_cache_dir() -> Path:
    """Point TorchInductor's on-disk cache at a folder that outlives the
    process (a second start reuses the kernels instead of compiling)."""
    folder = Path(os.environ.get("DEMIX_COMPILE_CACHE", DEFAULT_COMPILE_CACHE))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder
