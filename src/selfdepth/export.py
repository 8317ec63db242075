"""ONNX export of the depth network, and an onnxruntime runner for fast CPU inference.

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

from selfdepth.config import Config
from selfdepth.geometry import disp_to_depth

__all__ = ["export_onnx", "OnnxRunner"]

_META_KEY = "selfdepth"


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

    from selfdepth.predict import DepthModel

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
    graph.metadata_props.add(key=_META_KEY, value=json.dumps(meta))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(tmp))  # under 2 GB, so the weights stay inside the one file
    tmp.replace(out)
    return out


class OnnxRunner:
    """Runs an exported model with onnxruntime: (B, 3, H, W) images -> (B, 1, H, W) sigmoid disparity.

    The session does not spin its threads while idle, so it leaves the CPU to
    the rest of the process between calls.

    Args:
        path: a file from ``export_onnx``.
        threads: intra-op threads; 0 lets onnxruntime choose.
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ValueError(f"{path}: cannot load ONNX model (truncated or not an ONNX file?): {err}") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get(_META_KEY)
        if meta is None:
            raise ValueError(f"{path}: not a selfdepth export (no '{_META_KEY}' metadata); use selfdepth export --onnx")
        info = json.loads(meta)
        self.config = Config.from_dict(info["config"])
        self.baseline_m = info["baseline_m"]
        self.path = path

    def __call__(self, images: Tensor) -> Tensor:
        (sigmoid,) = self.session.run(["sigmoid"], {"image": images.contiguous().numpy().astype("float32")})
        return torch.from_numpy(sigmoid)
