"""What every speed benchmark records about the machine: CPU flags, matmul peaks, the network's GFLOPs."""

from __future__ import annotations

import time

import torch

from selfdepth.hardware import cpu_flags, cpu_model, has_native_bf16

__all__ = ["machine", "matmul_peak_gflops", "network_gflops"]


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n matmul at the current thread count (2 n^3 flops per call)."""
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def network_gflops(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Floating-point operations of one forward pass, in GFLOP (PyTorch's FLOP counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / 1e9


def machine() -> dict:
    """CPU model, fast-path flags, threads and measured matmul peaks (bf16 where the CPU has it natively)."""
    info = {"cpu": cpu_model(), "flags": sorted(cpu_flags()), "threads": torch.get_num_threads(),
            "fp32_matmul_gflops": round(matmul_peak_gflops(torch.float32), 1)}
    if has_native_bf16():
        info["bf16_matmul_gflops"] = round(matmul_peak_gflops(torch.bfloat16), 1)
    return info
