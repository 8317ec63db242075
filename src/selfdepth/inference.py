"""The runtime model: a trained depth network (checkpoint or ONNX export) that turns images into depth.

    model = selfdepth.load("runs/stereo/checkpoints/last.ckpt")   # or "model.onnx"
    prediction = model.predict(image)          # (H, W, 3) uint8 RGB
    prediction.depth                           # (H, W) metres for stereo-trained models

The jobs that need a trained model (predict, evaluate, export, study, demo) all
import it from here, so none of them imports another to get it.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from selfdepth.config import Config
from selfdepth.geometry import disp_to_depth, metric_scale
from selfdepth.hardware import has_native_bf16
from selfdepth.io import Intrinsics, load_tensors
from selfdepth.models import DepthNet
from selfdepth.pointcloud import PointCloud

__all__ = ["Prediction", "DepthModel", "OnnxRunner", "BACKENDS", "load", "read_checkpoint", "checkpoint_encoder",
           "check_encoder", "colorize", "optimise_for_inference", "network_input"]

ONNX_META_KEY = "selfdepth"  # the metadata entry of an exported model that holds its config


@dataclass
class Prediction:
    """Depth for one image, at the image's own size.

    Attributes:
        disparity: (H, W) network disparity (inverse network depth units).
        depth: (H, W) depth; metres when ``metric`` is True, else relative (scale unknown).
        metric: whether ``depth`` is in metres (stereo-trained model).
        image: (H, W, 3) uint8 RGB input, for coloured point clouds.
        intrinsics: the camera, when given to ``predict``; ``points`` needs it (or an argument).
    """

    disparity: np.ndarray
    depth: np.ndarray
    metric: bool
    image: np.ndarray | None = None
    intrinsics: Intrinsics | None = None

    def points(
        self, intrinsics: Intrinsics | None = None, max_depth: float | None = None, remove_sky: bool = False
    ) -> PointCloud:
        """The depth map as a coloured 3-D point cloud in the camera frame (x right, y down, z forward).

        Args:
            intrinsics: the camera; defaults to the one given to ``predict``. Scaled to the image size.
            max_depth: drop points farther than this.
            remove_sky: drop the far region connected to the top of the image (see ``sky_mask``).
        """
        from selfdepth.pointcloud import depth_to_points

        intrinsics = intrinsics or self.intrinsics
        if intrinsics is None:
            raise ValueError("a point cloud needs the camera intrinsics: pass them to predict() or points()")
        return depth_to_points(self.depth, intrinsics, self.image, max_depth, remove_sky)


class _Finest(torch.nn.Module):
    """The finest-scale disparity only (the coarse heads become dead code when frozen).

    With ``dtype=torch.bfloat16`` the network computes in bfloat16 (weights and activations) and
    takes and returns float32, so callers see no difference but the rounding.
    """

    def __init__(self, net: DepthNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.to(self.dtype))[0].float()


def optimise_for_inference(net: DepthNet, height: int, width: int, bf16: bool = False) -> torch.nn.Module:
    """A frozen TorchScript copy of ``net`` for CPU inference at ``height x width``.

    Freezing folds batch norm into the convolutions and drops the unused coarse
    heads; it maps (B, 3, H, W) images to (B, 1, H, W) sigmoid disparity.
    ``bf16``: a bfloat16 copy (for CPUs with native bf16, see ``hardware.has_native_bf16``).
    """
    dtype = torch.bfloat16 if bf16 else torch.float32
    module = _Finest(copy.deepcopy(net).to(dtype) if bf16 else net, dtype).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated in torch 2.14, but its freeze is what folds batch norm here
        # (1.1-1.3x faster than eager in benchmarks/inference.py); the ONNX path (export.py) is the long-term one.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        traced = torch.jit.trace(module, torch.rand(1, 3, height, width))
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def read_checkpoint(path: str | Path) -> dict:
    """Load a selfdepth (Lightning) checkpoint with ``weights_only=True``; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = load_tensors(path, "checkpoint")
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hp, dict) or "selfdepth_version" not in hp or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a selfdepth checkpoint (no selfdepth hyper-parameters or state_dict)")
    return ckpt


def checkpoint_encoder(ckpt: dict) -> str:
    """The encoder a checkpoint's networks use (checkpoints from before ``model.encoder`` are ResNet18)."""
    return ckpt["hyper_parameters"]["config"].get("model", {}).get("encoder", "resnet18")


def check_encoder(path: str | Path, ckpt: dict, config: Config) -> None:
    """Raise ValueError, in one line, when checkpoint ``path`` was trained with another encoder than ``config``'s."""
    theirs = checkpoint_encoder(ckpt)
    if theirs != config.model.encoder:
        raise ValueError(f"{path}: its networks use the {theirs} encoder, this run's model.encoder is "
                         f"{config.model.encoder} (set model.encoder={theirs} or start from another checkpoint)")


class DepthModel:
    """A trained depth network ready for inference, through PyTorch or onnxruntime.

    Args:
        net: the depth network (None when ``runner`` is given).
        config: the configuration it was trained with.
        baseline_m: stereo baseline of its training data, or None (mono-only: relative depth).
        runner: maps (B, 3, H, W) images at the network size to (B, 1, H, W) sigmoid
            disparity; default: a frozen TorchScript copy of ``net``, built on first use.
        bf16: build that copy in bfloat16 (for CPUs with native bf16; see ``load``).
    """

    def __init__(
        self,
        net: DepthNet | None,
        config: Config,
        baseline_m: float | None,
        runner: Callable[[Tensor], Tensor] | None = None,
        bf16: bool = False,
    ) -> None:
        if net is None and runner is None:
            raise ValueError("DepthModel needs a network or a runner")
        self.net = net.eval() if net is not None else None
        self.config = config
        self.baseline_m = baseline_m
        self.height, self.width = config.data.height, config.data.width
        self.scale = metric_scale(baseline_m) if (baseline_m and config.uses_stereo) else None
        self._fast = runner
        self._building = threading.Lock()  # callers in several threads (the live pipeline) build the copy once
        self.bf16 = bf16

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int = 0) -> DepthModel:
        """Load a file written by ``selfdepth export --onnx`` and run it with onnxruntime (``threads``: its
        intra-op threads per call, 0 for its own choice)."""
        runner = OnnxRunner(path, threads)
        return cls(None, runner.config, runner.baseline_m, runner)

    @property
    def metric(self) -> bool:
        """True when depths come out in metres."""
        return self.scale is not None

    @classmethod
    def load(cls, path: str | Path, bf16: bool = False) -> DepthModel:
        ckpt = read_checkpoint(path)
        hp = ckpt["hyper_parameters"]
        config = Config.from_dict(hp["config"])
        net = DepthNet(None, config.model.scales, encoder=config.model.encoder)
        prefix = "depth."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not fit DepthNet (missing {missing[:3]}, unexpected {unexpected[:3]})")
        return cls(net, config, hp.get("baseline_m"), bf16=bf16)

    @torch.no_grad()
    def disparity(self, images: Tensor, flip_tta: bool = False) -> Tensor:
        """(B, 3, h, w) in [0, 1], any size -> (B, 1, h, w) network disparity at the input size."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
        x = F.interpolate(images, (self.height, self.width), mode="bilinear", align_corners=False, antialias=True)
        return F.interpolate(self._network(x, flip_tta), images.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def network_disparity(self, images: list[np.ndarray], flip_tta: bool = False) -> Tensor:
        """(H, W, 3) uint8 RGB images of any sizes -> (B, 1, height, width) disparity at the network's size
        (what live video colour-maps before scaling the picture up; ``predict_batch`` scales it first)."""
        return self._network(torch.cat([network_input(im, self.height, self.width) for im in images]), flip_tta)

    def _network(self, x: Tensor, flip_tta: bool) -> Tensor:
        """(B, 3, height, width) in [0, 1] -> (B, 1, height, width) scaled disparity (``disp_to_depth``)."""
        with self._building:
            if self._fast is None:
                assert self.net is not None
                self._fast = optimise_for_inference(self.net, self.height, self.width, self.bf16)
        disp = self._fast(x)
        if flip_tta:
            disp = 0.5 * (disp + self._fast(x.flip(-1)).flip(-1))
        scaled, _ = disp_to_depth(disp, self.config.model.min_depth, self.config.model.max_depth)
        return scaled  # an affine map of the sigmoid: the same before or after a bilinear resize

    def depth(self, images: Tensor, flip_tta: bool = False) -> Tensor:
        """(B, 3, h, w) -> (B, 1, h, w) depth: metres if ``metric``, else network units."""
        depth = 1.0 / self.disparity(images, flip_tta)
        return depth * self.scale if self.scale else depth

    def predict(self, image: np.ndarray, intrinsics: Intrinsics | None = None, flip_tta: bool = False) -> Prediction:
        """(H, W, 3) uint8 RGB -> depth at the same size (``intrinsics`` enable ``points()``)."""
        return self.predict_batch([image], intrinsics, flip_tta)[0]

    def predict_batch(
        self, images: list[np.ndarray], intrinsics: Intrinsics | None = None, flip_tta: bool = False
    ) -> list[Prediction]:
        """Several (H, W, 3) uint8 RGB images of one size in one network pass."""
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.shape != images[0].shape:
                raise ValueError(f"expected (H, W, 3) RGB images of one size, got shape {image.shape}")
        size = images[0].shape[:2]
        disp = F.interpolate(self.network_disparity(images, flip_tta), size, mode="bilinear", align_corners=False)[:, 0]
        depth = 1.0 / disp * (self.scale or 1.0)  # (B, H, W)
        return [Prediction(d.numpy(), z.numpy(), self.metric, im, intrinsics) for d, z, im in zip(disp, depth, images)]


def network_input(image: np.ndarray, height: int, width: int) -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, height, width) float in [0, 1]: an antialiased bilinear resize.

    The resize runs on the uint8 image (a channels-last view: torch's vectorised uint8 path) and only its
    result becomes float, so a 1242x375 frame is not converted to float at full size (measured together with
    live video's network-size colour map: benchmarks/results/live_ab.json). It matches resizing the float
    image to within the uint8 rounding (1/255).
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # (1, 3, H, W), NHWC in memory
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.float().div_(255.0)


BACKENDS = ("auto", "torch", "torch-bf16", "onnxruntime")  # what ``load`` accepts


def load(path: str | Path, backend: str = "torch", threads: int = 0) -> DepthModel:
    """Load a checkpoint (or, with ``backend="onnxruntime"`` or a ``.onnx`` path, an exported model).

    ``auto``: onnxruntime for a ``.onnx`` file; for a checkpoint ``torch-bf16`` where the CPU has
    native bf16, else ``torch`` (fp32 TorchScript).

    ``torch-bf16`` runs a bfloat16 copy of the network where the CPU computes bf16 natively
    (avx512_bf16 / amx_bf16): 0.63-0.67x the time of fp32 TorchScript on an AVX-512 BF16 EPYC
    (benchmarks/results/inference.json). Elsewhere it prints a notice and runs fp32, since
    emulated bf16 is slower than fp32. ``threads``: onnxruntime's intra-op threads per call (0: its choice).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime" or str(path).endswith(".onnx"):
        return DepthModel.from_onnx(path, threads)
    native = has_native_bf16()
    if backend == "torch-bf16" and not native:
        print("backend: torch fp32 (this CPU has no native bf16: no avx512_bf16/amx_bf16)")
    return DepthModel.load(path, bf16=native and backend in ("auto", "torch-bf16"))


def colorize(disparity: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """(H, W) disparity -> (H, W, 3) uint8 magma picture, normalised to ``vmax`` (default its 95th percentile)."""
    vmax = vmax or float(np.percentile(disparity, 95)) or 1.0
    # matplotlib's magma is a 256-colour table, indexed as min(floor(x * 256), 255); indexing our uint8 copy of
    # it gives the same picture in about half the time of calling the colormap, which builds a float64 RGBA
    # image first; that matters in live video (benchmarks/live.py). NaN (no disparity) gets the lowest colour.
    # np.take rather than table[index]: the same gather, 0.4 against 1.7 ms for a 640x192 map.
    index = np.minimum(np.nan_to_num(np.clip(disparity / vmax, 0, 1) * 256), 255).astype(np.uint8)
    return np.take(_magma_table(), index, axis=0)


@functools.lru_cache(maxsize=1)
def _magma_table() -> np.ndarray:
    """(256, 3) uint8: matplotlib's magma colours."""
    from matplotlib import colormaps

    return np.round(colormaps["magma"](np.arange(256))[:, :3] * 255).astype(np.uint8)


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
        meta = self.session.get_modelmeta().custom_metadata_map.get(ONNX_META_KEY)
        if meta is None:
            raise ValueError(f"{path}: not a selfdepth export (no '{ONNX_META_KEY}' metadata); use selfdepth export --onnx")
        info = json.loads(meta)
        self.config = Config.from_dict(info["config"])
        self.baseline_m = info["baseline_m"]
        self.path = path

    def __call__(self, images: Tensor) -> Tensor:
        (sigmoid,) = self.session.run(["sigmoid"], {"image": images.contiguous().numpy().astype("float32")})
        return torch.from_numpy(sigmoid)
