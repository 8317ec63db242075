"""Inference time at batch 1, 640x192, 2 CPU threads: selfdepth against Monodepth2 in the same run.

Reports selfdepth's network as ``DepthModel`` runs it (frozen TorchScript with conv-bn folding,
finest scale only), plain eager PyTorch, and the ONNX export under onnxruntime, beside
Monodepth2's encoder + decoder in eager mode.
Writes benchmarks/results/inference.json. Target: ours <= 0.9x the reference.

    python benchmarks/inference.py [--repeats 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from selfdepth.models import DepthNet
from selfdepth.inference import optimise_for_inference

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


def onnxruntime_session(net: DepthNet, x: torch.Tensor) -> Callable:
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
    return lambda t: session.run(None, {"image": feed})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per variant, in 5 interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(2)
    x = torch.rand(1, 3, H, W)
    net = DepthNet().eval()
    result = {"setting": f"batch 1, {W}x{H}, 2 threads, CPU", "machine": platform.processor() or platform.machine()}
    fns = {
        "selfdepth_eager_s": lambda t: net(t)[0],
        "selfdepth_s": optimise_for_inference(net, H, W),
        "selfdepth_onnxruntime_s": onnxruntime_session(net, x),
    }
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
        result["target_ratio"] = 0.9
    out = Path(__file__).parent / "results" / "inference.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
