"""How the models run: compute modes, threads, and the compile cache.

Demucs is nearly all of the ensemble's time on a CPU, so the modes act on
Demucs members (Open-Unmix's LSTM breaks torch.compile's graph, which gains
it about 8 %, and it is a tenth of the time):

* ``eager``: plain PyTorch, float32.
* ``compiled``: ``torch.compile`` of each Demucs model, float32; same stems as
  eager to about 1e-7. The first run on a machine compiles (minutes for
  htdemucs on 2 cores); the kernels are cached in :func:`use_compile_cache`
  so later processes load them. Where compiling fails, the member falls back
  to eager with one warning. TorchInductor also re-proves in every process
  that the compiler can build each CPU vector ISA, by starting a fresh Python
  that imports torch per ISA (about 20 s on 2 cores); :func:`use_compile_cache`
  keeps those answers beside the kernels (:func:`remember_isa_checks`), which
  brings a cached warm-up of htdemucs from about 24 s to about 8 s.
* ``bf16``: compiled as above, under ``torch.autocast`` with bfloat16 (opt-in:
  it changes the stems slightly; see the README for the measured agreement).
* ``fp16``: compiled, under float16 autocast, on a CUDA GPU only (float16 on a
  CPU is emulated and slow). Not yet measured on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

from .atomic import write_json_atomically
from .paths import compile_cache_dir

COMPUTE_MODES = ("eager", "compiled", "bf16", "fp16")
#: Modes that torch.compile the Demucs networks.
COMPILED_MODES = ("compiled", "bf16", "fp16")
#: Modes that run the Demucs networks under torch.autocast, with this dtype (a torch attribute name).
AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
#: Modes that need a CUDA device.
CUDA_ONLY_MODES = ("fp16",)


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


def use_compile_cache() -> Path:
    """Point TorchInductor's on-disk cache at :func:`demix.paths.compile_cache_dir`,
    a folder that outlives the process (a second start reuses the kernels
    instead of compiling), and remember its ISA checks there. An explicit
    step of :func:`demix.load.load_ensemble`: it sets an environment variable
    and wraps a torch internal, which no constructor should do."""
    folder = compile_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    remember_isa_checks(folder)
    return folder


def _machine_fingerprint() -> str:
    """What an ISA check's answer depends on: torch, the CPU's features, the C++ compiler."""
    import torch

    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = platform.processor()
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        compiler = shutil.which(get_cpp_compiler()) or ""
    except Exception:  # no compiler: TorchInductor will say so when it compiles
        compiler = ""
    compiler_stamp = f"{os.path.realpath(compiler)}:{os.stat(compiler).st_mtime_ns}" if compiler else ""
    text = "|".join((torch.__version__, platform.machine(), flags, compiler_stamp))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def remember_isa_checks(folder: Path) -> None:
    """Keep TorchInductor's answers to "can the compiler build this vector ISA?"
    in ``folder`` so that later processes reuse them.

    ``VecISA.check_build`` compiles a probe (cached by TorchInductor) and then
    loads it in a new Python process, every time; that is the slow part. The
    answers are stored per machine fingerprint and keyed by the ISA, its flags
    and the probe's code, so the ISA picked, and with it every kernel's cache
    key, stays exactly what the checks would give. A torch without this hook
    is left alone (only slower to start).
    """
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return
    original = getattr(cpu_vec_isa.VecISA, "check_build", None)
    if original is None or getattr(original, "_demix_record", None) is not None:
        return
    record = folder / f"vec-isa-checks-{_machine_fingerprint()}.json"
    try:
        answers = json.loads(record.read_text())
    except (OSError, ValueError):
        answers = {}

    def check_build(self, code: str) -> bool:
        key = hashlib.sha256(f"{type(self).__name__}|{self._arch_flags}|{code}".encode()).hexdigest()
        if key in answers:
            return True
        works = bool(original(self, code))
        if works:  # only successes are kept: a failure may be passing (a timeout, a full disk)
            answers[key] = True
            try:
                write_json_atomically(record, answers)
            except OSError:
                pass  # a read-only cache only costs the next process the checks again
        return works

    check_build._demix_record = record
    cpu_vec_isa.VecISA.check_build = check_build

