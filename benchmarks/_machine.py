"""What every speed benchmark records about the machine: CPU flags, matmul peaks, the network's GFLOPs."""

from __future__ import annotations

import time

import torch

from selfdepth.hardware import cpu_flags, cpu_model, has_native_bf16

__all__ = ["machine", "matmul_peak_gflops", "int8_matmul_peak_gops", "network_gflops"]


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


def int8_matmul_peak_gops(n: int = 2048, repeats: int = 10, threads: int = 0) -> float:
    """Best GOP/s of an n x n uint8 x int8 matmul, 2 n^3 operations per call: onnxruntime's MatMulInteger with
    the int8 matrix a constant, so packed once as convolution weights are (the kernel family its int8
    convolutions use, VNNI where the CPU has it). ``threads``: 0 is torch's count."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "int8_matmul",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])], [weights])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    session.run(None, feed)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def network_gflops(net: torch.nn.Module, x: torch.Tensor) -> float:
    """Floating-point operations of one forward pass, in GFLOP (PyTorch's FLOP counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / 1e9


def machine() -> dict:
    """CPU model, fast-path flags, threads and measured matmul peaks: fp32, int8 (every x86 CPU has an int8
    path, VNNI makes it faster) and bf16 where the CPU has it natively."""
    info = {"cpu": cpu_model(), "flags": sorted(cpu_flags()), "threads": torch.get_num_threads(),
            "fp32_matmul_gflops": round(matmul_peak_gflops(torch.float32), 1),
            "int8_matmul_gops": round(int8_matmul_peak_gops(), 1)}
    if has_native_bf16():
        info["bf16_matmul_gflops"] = round(matmul_peak_gflops(torch.bfloat16), 1)
    return info
