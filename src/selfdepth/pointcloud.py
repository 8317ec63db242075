"""Depth maps to coloured 3-D point clouds, and binary PLY files (MeshLab, Open3D, CloudCompare open them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from selfdepth.geometry import backproject
from selfdepth.io import Intrinsics

__all__ = ["PointCloud", "depth_to_points", "sky_mask", "write_ply", "intrinsics_for_image"]


@dataclass
class PointCloud:
    """Points in the camera frame (x right, y down, z forward), in the depth map's units.

    Attributes:
        xyz: (N, 3) float32 positions.
        rgb: (N, 3) uint8 colours (grey when the image was not given).
    """

    xyz: np.ndarray
    rgb: np.ndarray

    def __len__(self) -> int:
        return len(self.xyz)

    def save_ply(self, path: str | Path) -> Path:
        """Write a binary little-endian PLY; see ``write_ply``."""
        return write_ply(path, self)


def intrinsics_for_image(intrinsics: Intrinsics, width: int, height: int, source: str = "intrinsics") -> Intrinsics:
    """``intrinsics`` scaled to a ``width x height`` image; ValueError if they cannot belong to it.

    The intrinsics state their own resolution; it must have the image's aspect
    ratio (to 1%), or the file is for another camera or another crop.
    """
    if abs(intrinsics.width / intrinsics.height - width / height) > 0.01 * width / height:
        raise ValueError(
            f"{source}: intrinsics are for a {intrinsics.width}x{intrinsics.height} image, which does not fit the "
            f"{width}x{height} image (different aspect ratio: another camera or a crop?)"
        )
    return intrinsics.resized(width, height)


def sky_mask(depth: np.ndarray, quantile: float = 0.9) -> np.ndarray:
    """(H, W) bool: far pixels (beyond the ``quantile`` of depth) connected to the top image row.

    A heuristic, not a segmentation: it removes the sky, which the network
    predicts as its farthest region, and keeps far objects that do not touch
    the top of the image.
    """
    from scipy import ndimage

    far = depth >= np.quantile(depth, quantile)
    labels, _ = ndimage.label(far)
    top = np.unique(labels[0][labels[0] > 0])
    return np.isin(labels, top)


def depth_to_points(
    depth: np.ndarray,
    intrinsics: Intrinsics,
    image: np.ndarray | None = None,
    max_depth: float | None = None,
    remove_sky: bool = False,
) -> PointCloud:
    """Back-project every pixel of a depth map.

    Args:
        depth: (H, W) depth (metres for a metric model).
        intrinsics: the camera, at any resolution with the image's aspect ratio.
        image: (H, W, 3) uint8 colours, or None.
        max_depth: drop points beyond this depth.
        remove_sky: drop ``sky_mask`` pixels.

    Returns:
        The valid points (finite, positive depth, within the cap) in row-major pixel order.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    h, w = depth.shape
    if image is not None and image.shape != (h, w, 3):
        raise ValueError(f"image {image.shape} does not match depth {depth.shape}")
    k = intrinsics_for_image(intrinsics, w, h)
    inv_K = torch.linalg.inv(torch.from_numpy(k.matrix()))[None]  # (1, 3, 3)
    xyz = backproject(torch.from_numpy(depth.astype(np.float64))[None, None], inv_K)[0].T.numpy()  # (H*W, 3)
    keep = np.isfinite(depth) & (depth > 0)
    if max_depth is not None:
        keep &= depth <= max_depth
    if remove_sky:
        keep &= ~sky_mask(depth)
    keep = keep.ravel()
    rgb = image.reshape(-1, 3)[keep] if image is not None else np.full((int(keep.sum()), 3), 200, dtype=np.uint8)
    return PointCloud(xyz[keep].astype(np.float32), np.ascontiguousarray(rgb, dtype=np.uint8))


def write_ply(path: str | Path, cloud: PointCloud) -> Path:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue per vertex (via plyfile)."""
    from plyfile import PlyData, PlyElement

    vertex = np.empty(len(cloud), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                         ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, axis in enumerate("xyz"):
        vertex[axis] = cloud.xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = cloud.rgb[:, i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<").write(str(path))
    return path
