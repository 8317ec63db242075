"""What the CPU can do, and the numeric precision that follows from it.

The machines this runs on change from day to day: some CPUs have native
bfloat16 (AVX-512 BF16 or AMX) and int8 dot products (VNNI), some only AVX2.
Fast paths choose themselves from these flags and say which they took.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

__all__ = ["cpu_flags", "cpu_model", "has_native_bf16", "resolve_precision", "PRECISIONS"]

# The flags that decide a fast path (as /proc/cpuinfo spells them).
FAST_PATH_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
PRECISIONS = ("auto", "32-true", "bf16-mixed")  # what train.precision accepts


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The fast-path flags of this CPU (from ``/proc/cpuinfo``; empty where it does not exist)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    found = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            found |= set(line.split(":", 1)[1].split())
    return {f for f in FAST_PATH_FLAGS if f in found}


def cpu_model() -> str:
    """The CPU's model name, for benchmark files."""
    path = Path("/proc/cpuinfo")
    match = re.search(r"model name\s*:\s*(.*)", path.read_text()) if path.is_file() else None
    return match.group(1).strip() if match else platform.processor()


def has_native_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes in bfloat16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated, slowly."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve_precision(requested: str, accelerator: str = "cpu", flags: set[str] | None = None,
                      cuda_bf16: bool = False) -> tuple[str, str | None]:
    """The Lightning precision to train with, and a one-line notice when it differs from what was asked.

    Args:
        requested: ``auto`` (bf16-mixed where the hardware has bf16, else 32-true), ``32-true`` or ``bf16-mixed``.
        accelerator: ``cpu`` or ``gpu`` (what the Trainer will run on).
        flags: the CPU's flags (default: this machine's).
        cuda_bf16: whether the GPU supports bf16 (``torch.cuda.is_bf16_supported()``).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    native = cuda_bf16 if accelerator == "gpu" else has_native_bf16(flags)
    where = "this GPU" if accelerator == "gpu" else "this CPU"
    if requested == "32-true":
        return "32-true", None
    if native:
        return "bf16-mixed", None if requested == "bf16-mixed" else f"precision: bf16-mixed ({where} has native bf16)"
    # bf16 asked for (or auto) without hardware support: emulated bf16 is slower than fp32, so fp32 it is.
    return "32-true", f"precision: 32-true ({where} has no native bf16: no avx512_bf16/amx_bf16)"
