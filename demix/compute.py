"""How the models run: compute modes, threads, and the compile cache.

The modes act on the members that are nearly all of an ensemble's time on a
CPU: Demucs (:mod:`demix.members.demucs`), the MSST families
(:mod:`demix.members.msst_runner`) and Spleeter's U-Nets; Open-Unmix runs
eager float32 whatever the mode (its LSTM breaks torch.compile's graph, which
gains it about 8 %, and it is a tenth of the time). A member may have its own
mode (a config member's ``compute``):

* ``eager``: plain PyTorch, float32.
* ``compiled``: ``torch.compile`` of each model, float32; same stems as
  eager to about 1e-7. The first run on a machine compiles (minutes for
  htdemucs on 2 cores); the kernels are cached in :func:`use_compile_cache`
  so later processes load them. Where compiling fails, the member falls back
  to eager with one warning. TorchInductor also re-proves in every process
  that the compiler can build each CPU vector ISA, by starting a fresh Python
  that imports torch per ISA (about 20 s on 2 cores); :func:`use_compile_cache`
  keeps those answers beside the kernels (:func:`remember_isa_checks`), which
  takes those 20 s off every later warm-up.
* ``bf16``: compiled as above, under ``torch.autocast`` with bfloat16 (opt-in:
  it changes the stems slightly; docs/performance.md says by how much).
  Only on hardware that computes in bfloat16 itself (:func:`cpu_has_native_bf16`,
  :func:`cuda_has_native_bf16`); elsewhere torch emulates it, much slower than
  float32, and :func:`check_compute_mode` refuses it.
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
from .errors import DemixError
from .paths import compile_cache_dir

COMPUTE_MODES = ("eager", "compiled", "bf16", "fp16")
#: Modes that torch.compile the members' networks.
COMPILED_MODES = ("compiled", "bf16", "fp16")
#: Modes that run the members' networks under torch.autocast, with this dtype (a torch attribute name).
AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
#: Modes that need a CUDA device.
CUDA_ONLY_MODES = ("fp16",)
#: Set to 1 to run ``bf16`` where it would be emulated (to check its stems, not for speed).
ALLOW_EMULATED_BF16 = "DEMIX_ALLOW_EMULATED_BF16"

#: Why bf16 is refused on a CPU without it. How much slower emulation is, as measured
#: (``benchmarks/fast_path.py``), is in benchmarks/RESULTS.md, not here.
_EMULATED_BF16_ON_CPU = (
    'compute = "bf16" is refused: this CPU has no native bfloat16 arithmetic (no AVX512_BF16 or AMX-BF16 '
    "on x86, no BF16 extension on Arm, says torch.cpu.get_capabilities()), so torch would emulate it, "
    'many times slower than float32. Use compute = "compiled" (float32, the default). bf16 pays off on '
    "Intel Xeon Cooper Lake, Sapphire Rapids and later, AMD Zen 4 and later, and Arm CPUs with BF16; "
    f"to run it emulated anyway (to check its stems), set {ALLOW_EMULATED_BF16}=1"
)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 itself instead of torch emulating
    it (widening to float32 and rounding back around each operation).

    Native means AVX512_BF16 or AMX-BF16 on x86 (Intel Xeon Cooper Lake,
    Sapphire Rapids and later; AMD Zen 4 and later) or the BF16 extension on
    Arm64. The answer is ``torch.cpu.get_capabilities()``, torch's reading of
    the CPU through the cpuinfo library: keys ``avx512_bf16`` and ``amx_bf16``
    on x86, ``bf16`` on Arm64 (absent elsewhere).

    Torch's other probes answer other questions, so they are not used:

    * ``torch.backends.cpu.get_cpu_capability()`` names the vector tier ATen
      dispatches its kernels to (``"AVX2"``, ``"AVX512"``, ...); it says
      nothing about bfloat16.
    * ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` says whether oneDNN
      has bfloat16 kernels here, which on x86 it has from AVX-512 (BW, VL,
      DQ) on, converting where AVX512_BF16 is missing (Skylake, Ice Lake): it
      works there, but is not fast.
    * ``torch.cpu._is_avx512_bf16_supported()`` and ``_is_amx_tile_supported()``
      are private readers of the same mapping (``torch._C._cpu`` keeps only
      ``_get_cpu_capability`` in torch 2.11); AMX tiles alone do not imply
      AMX-BF16.
    """
    import torch

    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(key, False) for key in ("avx512_bf16", "amx_bf16", "bf16"))


def cuda_has_native_bf16(device) -> bool:
    """Whether this CUDA (or ROCm) GPU computes in bfloat16: compute capability
    8.0 (Ampere) and later. ``torch.cuda.is_bf16_supported()`` also says yes
    where bfloat16 merely works, emulated, unless asked
    ``including_emulation=False``, and it asks the current device, hence the
    ``torch.cuda.device`` around it."""
    import torch

    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def check_compute_mode(compute: str, device) -> None:
    """Refuse a mode that this device cannot run, or would only emulate (and
    so run slower than float32), with a :class:`~demix.errors.DemixError`
    that says why and what to use instead. Called where an ensemble is built
    (:class:`demix.ensemble.Ensemble`) and, before any weights are read, by
    :func:`demix.load.load_ensemble`. The config cannot check it: its device
    is chosen per run."""
    import torch

    device = torch.device(device)
    if compute in CUDA_ONLY_MODES and device.type != "cuda":
        alternatives = '"compiled" or "bf16"' if cpu_has_native_bf16() else '"compiled"'
        raise DemixError(f'compute = "{compute}" needs a CUDA GPU (this run is on {device}); '
                         f"on this CPU use {alternatives}")
    if compute != "bf16" or os.environ.get(ALLOW_EMULATED_BF16) == "1":
        return
    if device.type == "cpu" and not cpu_has_native_bf16():
        raise DemixError(_EMULATED_BF16_ON_CPU)
    if device.type == "cuda" and not cuda_has_native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        raise DemixError(
            f'compute = "bf16" is refused: {torch.cuda.get_device_name(device)} (compute capability '
            f"{major}.{minor}) has no native bfloat16 arithmetic, which needs 8.0 (Ampere) or later; "
            f'use compute = "fp16" or "compiled" (or set {ALLOW_EMULATED_BF16}=1 to run it emulated)'
        )


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


def run_warm(run) -> bool:
    """Call ``run()``, the first run of compiled code; where that compiled
    anything cold (not from the kernel cache), drop the compiled code and call
    it again, so that it is traced anew from the cache. Returns whether it did.

    A process that has just compiled runs the result slower than one that
    loads it from the cache: one BS-RoFormer ep_17 chunk in bf16 took 133.7 s in
    the compiling process and 35.0 s after ``torch._dynamo.reset()`` and a
    second trace from the cache (81.4 s), in the same process (2-core AMD EPYC
    Zen 4, 2026-12-06). Why is not known; the reload costs a second trace only
    on a machine's first run."""
    import torch
    from torch._dynamo.utils import counters

    cold_compiles = counters["inductor"]["fxgraph_cache_miss"]
    run()
    if counters["inductor"]["fxgraph_cache_miss"] == cold_compiles:
        return False
    torch._dynamo.reset()
    run()
    return True


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

