"""Compute modes: compiled gives eager's stems, bf16 stays close (and is
refused where the CPU would emulate it), a failing compile falls back to
eager, the kernel cache is reused."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.compute import ALLOW_EMULATED_BF16, available_cpus, cpu_has_native_bf16, cuda_has_native_bf16
from demix.ensemble import Ensemble
from demix.errors import DemixError
from demix.members import DemucsMember

from evaluation.scores import global_sdr

from conftest import tiny_demucs_model

PROJECT = Path(__file__).resolve().parents[1]


def _ensemble(compute: str) -> Ensemble:
    """A tiny Demucs ensemble; for a compiled mode with the kernel cache set
    up first, as demix.load.load_ensemble does (an Ensemble itself does not)."""
    from demix.compute import COMPILED_MODES, use_compile_cache

    if compute in COMPILED_MODES:
        use_compile_cache()
    member = DemucsMember("demucs", tiny_demucs_model(), "tiny")
    return Ensemble([member], {"demucs": dict.fromkeys(TARGETS, 1.0)}, wiener_iterations=0,
                    block_seconds=5, compute=compute)


@pytest.fixture(scope="module")
def excerpt(track):
    return torch.from_numpy(track[1]["mixture"][:, : SAMPLE_RATE * 6])


def test_a_failing_compile_falls_back_to_eager_with_one_warning(tmp_path, excerpt, monkeypatch):
    """A real failure: TorchInductor pointed at a C++ compiler that does not
    exist (runs first in this file, before any kernel is cached in memory)."""
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("DEMIX_COMPILE_CACHE", str(tmp_path / "empty-cache"))
    expected = _ensemble("eager").separate(excerpt[:, : SAMPLE_RATE * 2])
    with inductor_config.patch({"cpp.cxx": (None, str(tmp_path / "no-such-c++"))}), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = _ensemble("compiled")
        fallback.warm_up()
    messages = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert not fallback.compiled
    assert torch.equal(fallback.separate(excerpt[:, : SAMPLE_RATE * 2]), expected)


def test_compiled_gives_the_eager_stems(compile_cache, excerpt):
    """And the kernels go through our cache folder: written there by a cold
    compile, or, where an earlier compile of the session (another process)
    filled it, loaded from there."""
    from torch._dynamo.utils import counters

    filled_before = any(compile_cache.iterdir())
    hits_before = counters["inductor"]["fxgraph_cache_hit"]
    eager = _ensemble("eager")
    eager.warm_up()
    compiled = _ensemble("compiled")
    compiled.warm_up()
    assert compiled.compiled
    difference = (compiled.separate(excerpt) - eager.separate(excerpt)).abs().max().item()
    assert difference <= 1e-5
    if filled_before:
        assert counters["inductor"]["fxgraph_cache_hit"] > hits_before, "the cached kernels were not used"
    else:
        assert any(compile_cache.iterdir()), "no kernels written to the cache folder"


def test_bf16_stays_close_to_float32(excerpt, monkeypatch):
    """Numerics, not speed: on a CPU that would emulate bf16 (refused by
    default), through the escape hatch, so the check runs everywhere."""
    if not cpu_has_native_bf16():
        monkeypatch.setenv(ALLOW_EMULATED_BF16, "1")
    one_block = excerpt[:, : SAMPLE_RATE * 3]  # one block is enough for numerics
    reference = _ensemble("eager").separate(one_block)
    ensemble = _ensemble("bf16")
    for member in ensemble.members:  # the autocast's numerics; compiling is checked in float32 (below, end to end)
        member.disable_compile()
    bf16 = ensemble.separate(one_block)
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    agreement = [global_sdr(reference[i].numpy(), bf16[i].numpy()) for i in range(len(TARGETS))]
    assert min(agreement) > 20, agreement


def test_available_cpus_respects_the_affinity_mask():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
    code = "from demix.compute import available_cpus; print(available_cpus())"
    result = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], cwd=PROJECT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"taskset unavailable: {result.stderr.strip()}")
    assert result.stdout.strip() == "1"


ISA_PROBE = """
import subprocess, sys
probes = []
real_check_call = subprocess.check_call
def counting_check_call(args, *rest, **kwargs):
    probes.append(args)
    return real_check_call(args, *rest, **kwargs)
subprocess.check_call = counting_check_call
from demix.compute import use_compile_cache
use_compile_cache()
from torch._inductor.cpu_vec_isa import pick_vec_isa
isa = pick_vec_isa()
print(len(probes), str(isa), isa.build_arch_flags())
"""


def test_a_second_process_reuses_the_vector_isa_checks(tmp_path):
    """TorchInductor proves each CPU vector ISA in a fresh Python per process; the
    answers kept in the compile cache spare that, and pick the very same ISA."""
    env = dict(os.environ, DEMIX_COMPILE_CACHE=str(tmp_path))

    def probe() -> list[str]:
        result = subprocess.run([sys.executable, "-c", ISA_PROBE], cwd=PROJECT, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip().splitlines()[-1].split(" ", 1)

    first_probes, first_isa = probe()
    if first_probes == "0":
        pytest.skip("TorchInductor ran no vector ISA check on this platform")
    assert list(tmp_path.glob("vec-isa-checks-*.json"))
    second_probes, second_isa = probe()
    assert second_probes == "0" and second_isa == first_isa


def test_fp16_is_refused_on_a_cpu_with_what_to_use_instead():
    with pytest.raises(DemixError, match='compute = "fp16" needs a CUDA GPU.*on this CPU use "compiled"'):
        _ensemble("fp16")


def _kernel_cpu_flags() -> set[str]:
    """The CPU features Linux lists in /proc/cpuinfo: "flags" on x86, "Features" on Arm64."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo (not Linux)")
def test_native_bf16_detection_agrees_with_the_kernel():
    """torch's reading of the CPU (the cpuinfo library) against Linux's own
    flags: AVX512_BF16 or AMX-BF16 on x86, BF16 on Arm64. On the 2-core AMD
    EPYC (Zen 3) the figures were measured on, both say no."""
    native = bool(_kernel_cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})
    assert cpu_has_native_bf16() is native


def test_bf16_is_refused_on_a_cpu_that_would_emulate_it(monkeypatch):
    """On a CPU with bf16 arithmetic (CI's may have it), the detection is
    made to answer as one without would: the refusal is checked everywhere."""
    import demix.compute

    monkeypatch.delenv(ALLOW_EMULATED_BF16, raising=False)
    if cpu_has_native_bf16():
        monkeypatch.setattr(demix.compute, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(DemixError, match=(
            r'compute = "bf16" is refused: this CPU has no native bfloat16 arithmetic \(no AVX512_BF16 or '
            r'AMX-BF16 on x86.*many times slower than float32\. Use compute = "compiled".*Sapphire Rapids'
            rf'.*Zen 4.*Arm CPUs with BF16.*{ALLOW_EMULATED_BF16}=1')):
        _ensemble("bf16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine (CI has none)")
@pytest.mark.parametrize("mode", ["compiled", "bf16", "fp16"])
def test_gpu_modes_stay_close_to_cpu_float32(excerpt, mode, monkeypatch):
    if mode == "bf16" and not cuda_has_native_bf16("cuda"):  # before Ampere: refused, so through the hatch
        monkeypatch.setenv(ALLOW_EMULATED_BF16, "1")
    reference = _ensemble("eager").separate(excerpt)
    member = DemucsMember("demucs", tiny_demucs_model(), "tiny", segment_batch=4)
    gpu = Ensemble([member], {"demucs": dict.fromkeys(TARGETS, 1.0)}, wiener_iterations=0, block_seconds=5,
                   device="cuda", compute=mode)
    gpu.warm_up()
    separated = gpu.separate(excerpt).cpu()
    agreement = [global_sdr(reference[i].numpy(), separated[i].numpy()) for i in range(len(TARGETS))]
    assert min(agreement) > (60 if mode == "compiled" else 20), agreement
