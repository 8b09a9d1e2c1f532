"""Numeric precision of model training: "fp32" (the default, every number as before) or "bf16" mixed precision.

bf16 runs a model's forward passes under ``torch.autocast(device_type, dtype=torch.bfloat16)``: convolutions and
matmuls take bfloat16 inputs (about 2x the fp32 FLOP rate on a CPU with native bf16 dot products, AVX512-BF16 or
AMX; on a GPU the tensor cores), while parameters, gradients, the optimiser state and everything a model keeps in
fp32 on purpose (losses and their reductions, VQ codebook distances, Robust OT's weights, ...) stay float32. Each
model says what it keeps in fp32 where it trains (``bench/models``); evaluation never runs under autocast.

``resolve`` decides what a run actually uses: bf16 requested on a CPU without native bf16 falls back to fp32 with
one line saying why: oneDNN emulates bf16 there, slower than fp32 (measured on an AVX512-BF16 EPYC with oneDNN held
below it, ONEDNN_MAX_CPU_ISA=AVX512_CORE: gan and vqvae training steps 2.1x and 2.7x slower than fp32, against
1.9x and 1.6x faster with native bf16; benchmarks/ab.py --precision, one thread).

    used, note = resolve("bf16", "cpu")
    with autocast(used, "cpu"):
        loss = model(x)
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")
# /proc/cpuinfo flags of x86 CPUs that compute bf16 dot products natively (oneDNN's bf16 kernels use them).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below its bf16 kernels: with one of these bf16 is emulated whatever the CPU has.
ISA_CAPS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def check(precision: str) -> str:
    """``precision`` if it is one of PRECISIONS, else ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


def device_type(device: str | torch.device) -> str:
    """ "cpu" / "cuda" / ... of a device string or object (what torch.autocast takes)."""
    return torch.device(device).type


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC ...", from /proc/cpuinfo; platform.processor() elsewhere, "" if unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware"):
                return value.strip()
    except OSError:
        pass
    return platform.processor()


def native_bf16(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and one line saying how that was decided.

    CPU: an ``avx512_bf16`` or ``amx_bf16`` flag in /proc/cpuinfo, or torch's CPU capability naming AMX or
    AVX512-BF16 (torch 2.x reports only "AVX512" on an AVX512-BF16 CPU, so the flags are what decides there). CUDA:
    ``torch.cuda.is_bf16_supported()`` (Ampere and later compute it natively; older GPUs emulate it).
    """
    kind = device_type(device)
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False, "no CUDA device is available"
        index = torch.device(device).index
        name = torch.cuda.get_device_name(index)
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{name} computes bf16 natively"
        return False, f"{name} has no native bf16 (before Ampere)"
    if kind != "cpu":
        return False, f"bf16 autocast is not supported here on {kind} devices"
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        cap = os.environ.get(var, "").strip().upper()
        if cap in ISA_CAPS_WITHOUT_BF16:
            return False, f"{var}={cap} keeps oneDNN below its bf16 kernels: bf16 would be emulated, slower than fp32"
    flags = sorted(cpu_flags().intersection(NATIVE_BF16_FLAGS))
    if flags:
        return True, f"the CPU has {' and '.join(flags)}"
    capability = str(torch.backends.cpu.get_cpu_capability())
    if "AMX" in capability or "BF16" in capability:
        return True, f"torch reports CPU capability {capability}"
    return False, (
        f"the CPU ({cpu_model() or 'unknown model'}) has neither {' nor '.join(NATIVE_BF16_FLAGS)} "
        f"(torch CPU capability {capability}): bf16 would be emulated, slower than fp32"
    )


def resolve(requested: str, device: str | torch.device = "cpu") -> tuple[str, str]:
    """The precision a run uses on ``device`` for ``requested``, and a note ("" when it is as requested).

    bf16 on a device without native bf16 gives "fp32" and one line saying why (never a silent slow-down)."""
    check(requested)
    if requested == "fp32":
        return "fp32", ""
    native, reason = native_bf16(device)
    if native:
        return "bf16", ""
    return "fp32", f"precision bf16 requested but training runs in fp32 on {device}: {reason}"


def autocast(precision: str, device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, dtype=torch.bfloat16)`` for "bf16"; a null context for "fp32" (nothing changes:
    the fp32 path runs exactly the ops it ran before precision existed)."""
    if check(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type(device), dtype=torch.bfloat16)


def widen(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 if it is a bf16 / fp16 tensor (an autocast output), else ``t`` itself, untouched (fp32, and
    fp64 in the tests that run models in double precision): the fp32 path runs no extra op."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def fp32(precision: str, device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """A region kept in float32 inside an ``autocast`` region (autocast disabled; the caller casts its bf16 inputs
    with ``widen``); a null context for "fp32"."""
    if check(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type(device), enabled=False)
