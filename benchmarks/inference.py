"""Inference time at batch 1, 640x192, 2 CPU threads: selfdepth against Monodepth2 in the same run.

Reports selfdepth's network (ResNet18, the ``selfdepth_*`` keys, and EfficientNet-Lite0, the ``lite0_*``
keys, issue 41) as ``DepthModel`` runs it (frozen TorchScript with conv-bn folding,
finest scale only), plain eager PyTorch, the ONNX export under onnxruntime in fp32 and int8
(static QDQ, calibrated on rendered streets, as ``selfdepth export --int8`` does), beside
Monodepth2's encoder + decoder in eager mode. Also records the machine (CPU flags, matmul peak)
and the network's GFLOPs, so each time reads against the CPU's limit.
Writes benchmarks/results/inference.json. Targets: TorchScript <= 0.9x the reference;
int8 <= 0.4x the reference and <= 0.6x our fp32 onnxruntime; Lite0's int8 <= 0.25x the reference.

    python benchmarks/inference.py [--repeats 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from selfdepth.hardware import has_native_bf16
from selfdepth.models import DepthNet
from selfdepth.inference import optimise_for_inference

from _machine import machine, network_gflops
from _monodepth2 import import_monodepth2

H, W = 192, 640


def median_times(fns: dict[str, Callable], x: torch.Tensor, repeats: int, rounds: int = 5) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds so clock drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():  # warm-up
            for _ in range(3):
                fn(x)
        for _ in range(rounds):
            for name, fn in fns.items():
                for _ in range(max(1, repeats // rounds)):
                    start = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def onnxruntime_session(net: DepthNet, x: torch.Tensor, int8: bool = False) -> Callable:
    """onnxruntime on the finest-scale ONNX graph of ``net`` (int8: quantised like ``selfdepth export --int8``)."""
    import tempfile

    import onnxruntime as ort

    from selfdepth.data.synthetic import synthesize
    from selfdepth.export import calibration_images, quantize_int8

    class Finest(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.net(t)[0]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        torch.onnx.export(Finest().eval(), (x,), str(path), dynamo=False, opset_version=17, input_names=["image"])
        if int8:
            synthesize(Path(tmp) / "calib", scenes=2, frames_per_scene=8, width=W, height=H, seed=3, sheet=False)
            quantize_int8(path, calibration_images(Path(tmp) / "calib"), H, W)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = x.numpy()
    return lambda t: session.run(None, {"image": feed})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per variant, in 5 interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(2)
    x = torch.rand(1, 3, H, W)
    net = DepthNet().eval()
    lite0 = DepthNet(encoder="efficientnet_lite0").eval()  # random weights: the time does not depend on them
    result = {"setting": f"batch 1, {W}x{H}, 2 threads, CPU", "machine": machine(),
              "gflops": round(network_gflops(net, x), 2), "lite0_gflops": round(network_gflops(lite0, x), 2),
              "lite0_params_m": round(sum(p.numel() for p in lite0.parameters()) / 1e6, 2)}
    # The physical limit: the network's arithmetic at the machine's fp32 matmul peak.
    result["fp32_lower_bound_s"] = result["gflops"] / result["machine"]["fp32_matmul_gflops"]
    fns = {
        "selfdepth_eager_s": lambda t: net(t)[0],
        "selfdepth_s": optimise_for_inference(net, H, W),
        "selfdepth_onnxruntime_s": onnxruntime_session(net, x),
        "selfdepth_onnxruntime_int8_s": onnxruntime_session(net, x, int8=True),
        "lite0_eager_s": lambda t: lite0(t)[0],
        "lite0_s": optimise_for_inference(lite0, H, W),
        "lite0_onnxruntime_s": onnxruntime_session(lite0, x),
        "lite0_onnxruntime_int8_s": onnxruntime_session(lite0, x, int8=True),
    }
    if has_native_bf16():  # bf16 paths only where the CPU computes in bf16 (emulated bf16 is slower than fp32)
        fns["selfdepth_bf16_s"] = optimise_for_inference(net, H, W, bf16=True)
        fns["lite0_bf16_s"] = optimise_for_inference(lite0, H, W, bf16=True)

        def autocast_bf16(t: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(t)[0]

        fns["selfdepth_eager_bf16_autocast_s"] = autocast_bf16
    md2 = import_monodepth2()
    if md2 is None:
        result["note"] = "pip could not fetch monodepth2==1.0.0: no reference"
    else:
        networks, _ = md2
        encoder = networks.ResnetEncoder(18, False).eval()
        decoder = networks.DepthDecoder(encoder.num_ch_enc, range(4)).eval()
        fns["monodepth2_s"] = lambda t: decoder(encoder(t))[("disp", 0)]
    result.update(median_times(fns, x, args.repeats))
    if md2 is not None:
        result["ratio"] = result["selfdepth_s"] / result["monodepth2_s"]
        result["ratio_onnxruntime"] = result["selfdepth_onnxruntime_s"] / result["monodepth2_s"]
        result["ratio_eager"] = result["selfdepth_eager_s"] / result["monodepth2_s"]
        result["ratio_int8"] = result["selfdepth_onnxruntime_int8_s"] / result["monodepth2_s"]
        result["target_ratio"] = 0.9
        result["target_ratio_int8"] = 0.4
        for key in ("lite0", "lite0_onnxruntime", "lite0_onnxruntime_int8", "lite0_bf16"):
            if f"{key}_s" in result:
                result[f"{key}_ratio"] = result[f"{key}_s"] / result["monodepth2_s"]
        result["lite0_target_ratio_int8"] = 0.25
    result["int8_over_fp32_onnxruntime"] = result["selfdepth_onnxruntime_int8_s"] / result["selfdepth_onnxruntime_s"]
    result["target_int8_over_fp32"] = 0.6
    result["lite0_int8_over_fp32_onnxruntime"] = result["lite0_onnxruntime_int8_s"] / result["lite0_onnxruntime_s"]
    result["lite0_int8_over_resnet18_int8"] = result["lite0_onnxruntime_int8_s"] / result["selfdepth_onnxruntime_int8_s"]
    if "selfdepth_bf16_s" in result:
        result["bf16_lower_bound_s"] = result["gflops"] / result["machine"]["bf16_matmul_gflops"]
        if md2 is not None:
            result["ratio_bf16"] = result["selfdepth_bf16_s"] / result["monodepth2_s"]
        result["bf16_over_fp32_torchscript"] = result["selfdepth_bf16_s"] / result["selfdepth_s"]
    result["fraction_of_fp32_peak"] = result["fp32_lower_bound_s"] / result["selfdepth_onnxruntime_s"]
    # The same for int8: its convolutions at the machine's int8 matmul peak (the fp32 head is negligible).
    result["int8_lower_bound_s"] = result["gflops"] / result["machine"]["int8_matmul_gops"]
    result["fraction_of_int8_peak"] = result["int8_lower_bound_s"] / result["selfdepth_onnxruntime_int8_s"]
    out = Path(__file__).parent / "results" / "inference.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
