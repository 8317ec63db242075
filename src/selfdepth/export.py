"""ONNX export of the depth network (``inference.OnnxRunner`` runs the file with onnxruntime).

The exported file is self-contained: the weights are inside, and so is what
inference needs to turn the network's output into depth (the training config
and stereo baseline, as metadata). Its graph maps

    image    (B, 3, H, W) float32 RGB in [0, 1] at the network size
    -> sigmoid (B, 1, H, W) the raw sigmoid disparity
    -> depth   (B, 1, H, W) metres for stereo-trained models, else network units

Any other image size is resized outside the graph (``DepthModel`` does it).

``int8=True`` quantises the exported graph with onnxruntime's static
quantisation (QDQ format, per-channel int8 weights, uint8 activations whose
ranges are calibrated on a few dozen training images). The result is still one
self-contained ``.onnx`` that every entry point loads like the fp32 one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfdepth.geometry import disp_to_depth
from selfdepth.inference import ONNX_META_KEY, DepthModel, network_input
from selfdepth.int8_graph import copies_on_uint8
from selfdepth.io import IMAGE_SUFFIXES, is_colour_image, load_image

__all__ = ["export_onnx", "calibration_images", "load_fastest", "quantize_int8", "KEEP_FP32", "QUANTISED_OPS"]

# Left in fp32 by the int8 export: the disparity head. Quantising it as well cost +8.8% AbsRel on an earlier
# demo model (README), likely because its output is the sigmoid's input and depth follows the sigmoid
# directly: 256 uint8 levels over the logits' range step depth by several percent.
# The first convolution is quantised: its input, the uint8 image over 255, loses almost nothing in uint8,
# and in fp32 it took 11% of the int8 network's single-thread time.
KEEP_FP32 = ("/dispconv.",)
# Quantised by the int8 export. Beside the convolutions, the decoder's reflection pads and skip
# concatenations, so that those feature maps move between convolutions as uint8 rather than as float32
# with a (de)quantisation on each side (the pads and the upsampling run on uint8 only after
# ``int8_graph.copies_on_uint8``). With the first convolution quantised too, two passes side by side
# (what live video runs) take 0.92x the time per frame of quantising the convolutions alone with the first
# one in fp32: 41.6 against 45.0 ms (benchmarks/results/int8_accuracy.json; one pass in onnxruntime's
# profiler, a one-off: 80 against 95 ms). Held-out AbsRel stays within 1.3% of fp32. Clip is EfficientNet-
# Lite's ReLU6: quantised, it shares its convolution's output grid and onnxruntime folds it into the
# convolution; left in float, each of Lite0's 32 left a dequantise-requantise pair on a full feature map.
# Not quantised: the ELUs (no uint8 ELU in onnxruntime), MaxPool and ResNet18's residual adds (slower in
# uint8 there).
QUANTISED_OPS = ("Conv", "Pad", "Concat", "Clip")


class _Exported(nn.Module):
    """The finest-scale sigmoid and the depth it implies."""

    def __init__(self, net: nn.Module, min_depth: float, max_depth: float, scale: float) -> None:
        super().__init__()
        self.net, self.min_depth, self.max_depth, self.scale = net, min_depth, max_depth, scale

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        sigmoid = self.net(image)[0]
        _, depth = disp_to_depth(sigmoid, self.min_depth, self.max_depth)
        return sigmoid, depth * self.scale


def calibration_images(folder: str | Path, count: int = 32) -> list[Path]:
    """Up to ``count`` colour images spread evenly over ``folder`` (searched recursively, sorted; depth maps
    and masks, which are single-channel, are skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder} (give a folder of training images)")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    found = [p for p in found if is_colour_image(p)]
    if not found:
        raise ValueError(f"{folder}: no colour images to calibrate int8 ranges with")
    picks = np.linspace(0, len(found) - 1, min(count, len(found))).round().astype(int)
    return [found[i] for i in sorted(set(picks))]


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17, int8: bool = False,
                calibration: str | Path | None = None, keep_fp32: tuple[str, ...] = KEEP_FP32,
                op_types: tuple[str, ...] = QUANTISED_OPS) -> Path:
    """Write ``out`` (.onnx) from a training checkpoint; the batch size stays dynamic.

    Args:
        int8: quantise to int8 (needs ``calibration``).
        calibration: a folder of training images (e.g. a KITTI drive's ``image_02/data``).
        keep_fp32: with ``int8``, node-name fragments of the convolutions left in fp32.
        op_types: with ``int8``, the ONNX operator types quantised.
    """
    import onnx

    if int8 and calibration is None:
        raise ValueError("--int8 needs --calibration DIR: a folder of a few dozen training images "
                         "(activation ranges are measured on them)")
    images = calibration_images(calibration) if int8 else []
    model = DepthModel.load(checkpoint)
    assert model.net is not None
    cfg = model.config.model
    module = _Exported(model.net, cfg.min_depth, cfg.max_depth, model.scale or 1.0).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, model.height, model.width)
    tmp = out.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            module, (example,), str(tmp), dynamo=False, opset_version=opset,  # the TorchScript exporter: no onnxscript
            input_names=["image"], output_names=["sigmoid", "depth"],
            dynamic_axes={"image": {0: "batch"}, "sigmoid": {0: "batch"}, "depth": {0: "batch"}},
        )
    if int8:
        quantize_int8(tmp, images, model.height, model.width, keep_fp32, op_types)
    graph = onnx.load(str(tmp))
    meta = {"config": model.config.to_dict(), "baseline_m": model.baseline_m, "metric": model.metric,
            "precision": "int8" if int8 else "fp32"}
    graph.metadata_props.add(key=ONNX_META_KEY, value=json.dumps(meta))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(tmp))  # under 2 GB, so the weights stay inside the one file
    tmp.replace(out)
    return out


def load_fastest(path: str | Path, backend: str, work: Path, onnx_threads: int = 0) -> tuple[DepthModel, str]:
    """A model and the backend that runs it. ``auto``: for a checkpoint on a CPU with native bf16,
    ``torch-bf16`` (0.085-0.094 s per 640x192 frame against onnxruntime fp32's 0.119-0.123 s on an
    AVX-512 BF16 EPYC, benchmarks/results/inference.json and its previous commit); elsewhere onnxruntime,
    the fastest fp32 path, exporting a checkpoint to ``work/model.onnx`` first. A ``.onnx`` file (e.g. an int8 export) runs as it is.
    ``onnx_threads``: onnxruntime's intra-op threads per call (0: its choice)."""
    from selfdepth.hardware import has_native_bf16
    from selfdepth.inference import load

    path = Path(path)  # load() checks the backend's name
    if backend == "auto":
        if path.suffix != ".onnx" and has_native_bf16():
            backend = "torch-bf16"
            print("backend: torch-bf16 (this CPU has native bf16)")
        else:
            backend = "onnxruntime"
            if path.suffix != ".onnx":
                print(f"exporting {path} to ONNX for onnxruntime (--backend torch skips this)")
                path = export_onnx(path, work / "model.onnx")
    model = load(path, backend, onnx_threads)
    if backend == "torch-bf16" and not model.bf16:
        backend = "torch"  # load() fell back to fp32 and said so
    return model, backend


def quantize_int8(path: Path, images: list[Path], height: int, width: int, keep_fp32: tuple[str, ...] = KEEP_FP32,
                  op_types: tuple[str, ...] = QUANTISED_OPS, method: str = "MinMax") -> None:
    """Replace the fp32 graph at ``path`` by its static int8 quantisation, calibrated on ``images``.

    The convolutions are quantised (they are the arithmetic), and ``op_types`` names the rest (see
    ``QUANTISED_OPS``); ``keep_fp32`` names the convolutions left in fp32 (matched as substrings of the
    node names).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = list(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            if not self.left:
                return None
            # The same resize as DepthModel.predict, so calibration sees what inference feeds the graph.
            return {"image": network_input(load_image(self.left.pop(0)), height, width).numpy()}

    import onnx

    prepared = path.with_suffix(".prep.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)  # folds BN, infers shapes
        names = [n.name for n in onnx.load(str(prepared)).graph.node]
        exclude = [n for n in names if any(k in n for k in keep_fp32)]
        quantize_static(
            str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
            calibrate_method=getattr(CalibrationMethod, method), op_types_to_quantize=list(op_types),
            nodes_to_exclude=exclude,
        )
    finally:
        prepared.unlink(missing_ok=True)
    graph = onnx.load(str(path))
    if sum(copies_on_uint8(graph).values()):
        onnx.save(graph, str(path))
