"""Inference: load a trained checkpoint and predict depth for images of any size.

    model = selfdepth.load("runs/stereo/checkpoints/last.ckpt")
    prediction = model.predict(image)          # (H, W, 3) uint8 RGB
    prediction.depth                           # (H, W) metres for stereo-trained models
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from selfdepth.config import Config
from selfdepth.geometry import disp_to_depth, metric_scale
from selfdepth.io import IMAGE_SUFFIXES, load_image
from selfdepth.models import DepthNet

__all__ = ["Prediction", "DepthModel", "load", "read_checkpoint", "colorize", "predict_paths", "optimise_for_inference"]


@dataclass
class Prediction:
    """Depth for one image, at the image's own size.

    Attributes:
        disparity: (H, W) network disparity (inverse network depth units).
        depth: (H, W) depth; metres when ``metric`` is True, else relative (scale unknown).
        metric: whether ``depth`` is in metres (stereo-trained model).
    """

    disparity: np.ndarray
    depth: np.ndarray
    metric: bool


class _Finest(torch.nn.Module):
    """The finest-scale disparity only (the coarse heads become dead code when frozen)."""

    def __init__(self, net: DepthNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)[0]


def optimise_for_inference(net: DepthNet, height: int, width: int) -> torch.nn.Module:
    """A frozen TorchScript copy of ``net`` for CPU inference at ``height x width``.

    Freezing folds batch norm into the convolutions and drops the unused coarse
    heads; it maps (B, 3, H, W) images to (B, 1, H, W) sigmoid disparity.
    """
    module = _Finest(net).eval()
    with torch.no_grad():
        traced = torch.jit.trace(module, torch.rand(1, 3, height, width))
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def read_checkpoint(path: str | Path) -> dict:
    """Load a selfdepth (Lightning) checkpoint with ``weights_only=True``; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        raise ValueError(f"{path}: cannot read checkpoint (truncated or corrupt file?): {err}") from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or "selfdepth_version" not in hp or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a selfdepth checkpoint (no selfdepth hyper-parameters or state_dict)")
    return ckpt


class DepthModel:
    """A trained depth network ready for inference.

    Args:
        net: the depth network.
        config: the configuration it was trained with.
        baseline_m: stereo baseline of its training data, or None (mono-only: relative depth).
    """

    def __init__(self, net: DepthNet, config: Config, baseline_m: float | None) -> None:
        self.net = net.eval()
        self.config = config
        self.height, self.width = config.data.height, config.data.width
        self.scale = metric_scale(baseline_m) if (baseline_m and config.uses_stereo) else None
        self._fast: torch.nn.Module | None = None  # built on first use; see optimise_for_inference

    @property
    def metric(self) -> bool:
        """True when depths come out in metres."""
        return self.scale is not None

    @classmethod
    def load(cls, path: str | Path) -> DepthModel:
        ckpt = read_checkpoint(path)
        hp = ckpt["hyper_parameters"]
        config = Config.from_dict(hp["config"])
        net = DepthNet(None, config.model.scales)
        prefix = "depth."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not fit DepthNet (missing {missing[:3]}, unexpected {unexpected[:3]})")
        return cls(net, config, hp.get("baseline_m"))

    @torch.no_grad()
    def disparity(self, images: Tensor, flip_tta: bool = False) -> Tensor:
        """(B, 3, h, w) in [0, 1], any size -> (B, 1, h, w) network disparity at the input size."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
        size = images.shape[-2:]
        x = F.interpolate(images, (self.height, self.width), mode="bilinear", align_corners=False, antialias=True)
        if self._fast is None:
            self._fast = optimise_for_inference(self.net, self.height, self.width)
        disp = self._fast(x)
        if flip_tta:
            disp = 0.5 * (disp + self._fast(x.flip(-1)).flip(-1))
        disp = F.interpolate(disp, size, mode="bilinear", align_corners=False)
        scaled, _ = disp_to_depth(disp, self.config.model.min_depth, self.config.model.max_depth)
        return scaled

    def depth(self, images: Tensor, flip_tta: bool = False) -> Tensor:
        """(B, 3, h, w) -> (B, 1, h, w) depth: metres if ``metric``, else network units."""
        depth = 1.0 / self.disparity(images, flip_tta)
        return depth * self.scale if self.scale else depth

    def predict(self, image: np.ndarray) -> Prediction:
        """(H, W, 3) uint8 RGB -> depth at the same size."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        disp = self.disparity(x)[0, 0]
        depth = 1.0 / disp * (self.scale or 1.0)
        return Prediction(disp.numpy(), depth.numpy(), self.metric)


def load(path: str | Path) -> DepthModel:
    """Load a checkpoint for inference (see ``DepthModel``)."""
    return DepthModel.load(path)


def colorize(disparity: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """(H, W) disparity -> (H, W, 3) uint8 magma picture, normalised to ``vmax`` (default its 95th percentile)."""
    from matplotlib import colormaps

    vmax = vmax or float(np.percentile(disparity, 95)) or 1.0
    rgb = colormaps["magma"](np.clip(disparity / vmax, 0, 1))[..., :3]
    return np.round(rgb * 255).astype(np.uint8)


def predict_paths(inputs: list[str | Path], checkpoint: str | Path, out_dir: str | Path) -> list[Path]:
    """Predict every image (or every image in each folder); write ``<name>_disp.png`` and ``<name>_depth.npy``."""
    model = load(checkpoint)
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.exists():
            files.append(item)
        else:
            raise FileNotFoundError(f"input not found: {item}")
    if not files:
        raise FileNotFoundError(f"no images found in {', '.join(map(str, inputs))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        pred = model.predict(load_image(path))
        Image.fromarray(colorize(pred.disparity)).save(out / f"{path.stem}_disp.png")
        np.save(out / f"{path.stem}_depth.npy", pred.depth.astype(np.float32))
        written.append(out / f"{path.stem}_depth.npy")
    return written
