"""Inference time at batch 1, 640x192, 2 CPU threads: selfdepth against Monodepth2 in the same run.

Reports selfdepth's network as ``DepthModel`` runs it (frozen TorchScript with conv-bn folding,
finest scale only), plain eager PyTorch, and the ONNX export under onnxruntime, beside
Monodepth2's encoder + decoder in eager mode.
Writes benchmarks/results/inference.json. Target: ours <= 0.9x the reference.

    python benchmarks/inference.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from selfdepth.models import DepthNet
from selfdepth.predict import optimise_for_inference

from _monodepth2 import import_monodepth2

H, W = 192, 640


def median_time(fn, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(3):
            fn(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def onnxruntime_time(net: DepthNet, x: torch.Tensor, repeats: int) -> float:
    """The same network exported to ONNX and run by onnxruntime with 2 threads (spinning off, as selfdepth does)."""
    import tempfile

    import onnxruntime as ort

    class Finest(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.net(t)[0]

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/m.onnx"
        torch.onnx.export(Finest().eval(), (x,), path, dynamo=False, opset_version=17, input_names=["image"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = x.numpy()
    return median_time(lambda t: session.run(None, {"image": feed}), x, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)
    x = torch.rand(1, 3, H, W)
    net = DepthNet().eval()
    result = {"setting": f"batch 1, {W}x{H}, 2 threads, CPU", "machine": platform.processor() or platform.machine()}
    result["selfdepth_eager_s"] = median_time(lambda t: net(t)[0], x, args.repeats)
    fast = optimise_for_inference(net, H, W)
    result["selfdepth_s"] = median_time(fast, x, args.repeats)
    result["selfdepth_onnxruntime_s"] = onnxruntime_time(net, x, args.repeats)
    md2 = import_monodepth2()
    if md2 is None:
        result["monodepth2_s"] = None
        result["note"] = "pip could not fetch monodepth2==1.0.0: no reference"
    else:
        networks, _ = md2
        encoder = networks.ResnetEncoder(18, False).eval()
        decoder = networks.DepthDecoder(encoder.num_ch_enc, range(4)).eval()
        result["monodepth2_s"] = median_time(lambda t: decoder(encoder(t))[("disp", 0)], x, args.repeats)
        result["ratio"] = result["selfdepth_s"] / result["monodepth2_s"]
        result["ratio_eager"] = result["selfdepth_eager_s"] / result["monodepth2_s"]
        result["target_ratio"] = 0.9
    out = Path(__file__).parent / "results" / "inference.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
