"""ONNX export of the depth network (``inference.OnnxRunner`` runs the file with onnxruntime).

The exported file is self-contained: the weights are inside, and so is what
inference needs to turn the network's output into depth (the training config
and stereo baseline, as metadata). Its graph maps

    image    (B, 3, H, W) float32 RGB in [0, 1] at the network size
    -> sigmoid (B, 1, H, W) the raw sigmoid disparity
    -> depth   (B, 1, H, W) metres for stereo-trained models, else network units

Any other image size is resized outside the graph (``DepthModel`` does it).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from selfdepth.geometry import disp_to_depth
from selfdepth.inference import ONNX_META_KEY, DepthModel

__all__ = ["export_onnx"]


class _Exported(nn.Module):
    """The finest-scale sigmoid and the depth it implies."""

    def __init__(self, net: nn.Module, min_depth: float, max_depth: float, scale: float) -> None:
        super().__init__()
        self.net, self.min_depth, self.max_depth, self.scale = net, min_depth, max_depth, scale

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        sigmoid = self.net(image)[0]
        _, depth = disp_to_depth(sigmoid, self.min_depth, self.max_depth)
        return sigmoid, depth * self.scale


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17) -> Path:
    """Write ``out`` (.onnx) from a training checkpoint; the batch size stays dynamic."""
    import onnx

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
    graph = onnx.load(str(tmp))
    meta = {"config": model.config.to_dict(), "baseline_m": model.baseline_m, "metric": model.metric}
    graph.metadata_props.add(key=ONNX_META_KEY, value=json.dumps(meta))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(tmp))  # under 2 GB, so the weights stay inside the one file
    tmp.replace(out)
    return out
