"""Training-time augmentation shared by every data set kind: colour jitter, random zoom and turned sources.

Horizontal flips live in folder.py beside the sample they mirror; the ones here change no geometry
(jitter) or change it in a way the intrinsics (zoom) or the motions (turns) follow exactly.

Random zoom crops one window of the frame, the same for every view of a sample (the target, its
temporal neighbours and the other stereo camera: rectified cameras stay rectified), and resizes it
to the network size. SfMLearner (Zhou et al., 2017) used it ("random scaling in [1, 1.15] and
cropping"); Monodepth2 does not. A crop of a fraction ``w`` of the width starting at ``left`` maps
a pixel ``u`` (centres at integers) to ``u' + 0.5 = (u + 0.5 - left * W) / w`` at the same size
``W``, so focal lengths grow by ``1 / w`` and the principal point moves with the window.

Turned sources (``turn_sources``, applied to a batch by the training step) rotate each temporal
neighbour's camera about its centre by a small random rotation: the image follows exactly by a
homography, and the target-to-source motion the pose network must find becomes ``R T``. Of the five
odometry excerpts we train on, one turns (benchmarks/results/pose_yaw.json); this shows the pose
network turns of every size on real images, which it otherwise measures at about half their size.
Measured at 3 degrees on real streets: turns then come out at 0.82 of their size, but trajectories
and depth got worse (docs/results.md), so it is off by default.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.transforms import ColorJitter, InterpolationMode
from torchvision.transforms import functional as TF

from selfdepth.geometry import pose_vec_to_mat, rotate_view
from selfdepth.io import Intrinsics

__all__ = ["Window", "random_window", "crop_resize", "zoom_intrinsics", "colour_jitter", "turn_sources"]

# Brightness, contrast, saturation and hue ranges: Monodepth2's.
_JITTER = ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1)


@dataclass(frozen=True)
class Window:
    """A crop window as fractions of the image's width and height (pixel edges, not centres).

    Attributes:
        left: left edge, fraction of the width in [0, 1).
        top: top edge, fraction of the height.
        width: window width, fraction of the image width in (0, 1].
        height: window height, fraction of the image height.
    """

    left: float = 0.0
    top: float = 0.0
    width: float = 1.0
    height: float = 1.0


def random_window(zoom: float, width: int, height: int) -> Window:
    """A window of ``1 / z`` of each side, ``z`` uniform in [1, ``zoom``], at a uniform position.

    The window is snapped to whole pixels of a ``width x height`` image (the image it will crop),
    so the intrinsics computed from it describe the crop exactly.
    """
    if zoom < 1.0:
        raise ValueError(f"zoom {zoom} must be >= 1 (1 = no zoom)")
    z = random.uniform(1.0, zoom)
    w, h = max(1, round(width / z)), max(1, round(height / z))
    x0, y0 = random.randint(0, width - w), random.randint(0, height - h)
    return Window(x0 / width, y0 / height, w / width, h / height)


def crop_resize(image: torch.Tensor, window: Window, size: tuple[int, int], nearest: bool = False) -> torch.Tensor:
    """Crop ``window`` out of ``image`` and resize it to ``size``.

    Args:
        image: (C, H, W) tensor.
        window: the crop, as fractions of (W, H).
        size: output (height, width).
        nearest: nearest-neighbour resizing (depth, masks) instead of antialiased bilinear.

    Returns:
        (C, height, width) tensor of ``image``'s dtype.
    """
    _, h, w = image.shape
    x0, y0 = round(window.left * w), round(window.top * h)
    x1, y1 = max(x0 + 1, round((window.left + window.width) * w)), max(y0 + 1, round((window.top + window.height) * h))
    mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BILINEAR
    return TF.resized_crop(image, y0, x0, y1 - y0, x1 - x0, list(size), interpolation=mode, antialias=not nearest)


def zoom_intrinsics(k: Intrinsics, window: Window) -> Intrinsics:
    """The camera of ``window`` cropped out of a ``k.width x k.height`` image and resized back to that size."""
    sx, sy = 1.0 / window.width, 1.0 / window.height
    return Intrinsics(
        k.fx * sx, k.fy * sy,
        (k.cx + 0.5 - window.left * k.width) * sx - 0.5, (k.cy + 0.5 - window.top * k.height) * sy - 0.5,
        k.width, k.height, k.baseline,
    )


def colour_jitter() -> Callable[[torch.Tensor], torch.Tensor]:
    """A colour jitter with freshly drawn parameters, to apply identically to each frame of a sample."""
    j = _JITTER
    order, b, c, s, h = ColorJitter.get_params(j.brightness, j.contrast, j.saturation, j.hue)
    ops = {0: (TF.adjust_brightness, b), 1: (TF.adjust_contrast, c), 2: (TF.adjust_saturation, s), 3: (TF.adjust_hue, h)}

    def apply(img: torch.Tensor) -> torch.Tensor:
        for k in order.tolist():
            fn, value = ops[k]
            img = fn(img, value)
        return img

    return apply


def turn_sources(batch: dict[str, Tensor], max_deg: float) -> dict[str, Tensor]:
    """The batch with every temporal source's camera turned by its own random rotation.

    Yaw is uniform in +-``max_deg``, pitch and roll in +-``max_deg / 4`` (cars turn more than they pitch
    or roll). ``temporal`` and ``temporal_aug`` (B, T, 3, H, W) are warped by ``K R K^-1`` with K the
    batch's full-size intrinsics ``K[:, 0]``; ``pose_gt`` (B, T, 4, 4), where present, becomes ``R T``.
    The target frame and every other key are passed through unchanged.
    """
    temporal = batch["temporal"]
    b, t = temporal.shape[:2]
    limits = temporal.new_tensor([max_deg / 4, max_deg, max_deg / 4]) * (math.pi / 180)  # about x, y (yaw), z
    axisangle = (2 * torch.rand(b * t, 3, device=temporal.device) - 1) * limits  # (B*T, 3), batch-major
    turn = pose_vec_to_mat(axisangle, torch.zeros_like(axisangle))  # (B*T, 4, 4), no translation
    K = batch["K"][:, 0].repeat_interleave(t, 0)  # (B*T, 3, 3), in the order of flatten(0, 1)
    out = dict(batch)
    for key in ("temporal", "temporal_aug"):
        out[key] = rotate_view(batch[key].flatten(0, 1), K, turn[:, :3, :3]).reshape(batch[key].shape)
    if "pose_gt" in batch:
        out["pose_gt"] = (turn @ batch["pose_gt"].flatten(0, 1)).reshape(b, t, 4, 4)
    return out
