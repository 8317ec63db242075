"""Depth maps to coloured 3-D point clouds, and binary PLY files (MeshLab, Open3D, CloudCompare open them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from selfdepth.geometry import backproject
from selfdepth.io import Intrinsics

__all__ = ["PointCloud", "depth_to_points", "sky_mask", "write_ply", "intrinsics_for_image", "scale_from_camera_height"]


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


def scale_from_camera_height(depth: np.ndarray, intrinsics: Intrinsics, camera_height: float) -> float:
    """The factor that turns a relative depth map into metres, from the camera's known height over the road.

    Fits a plane to the points seen in the bottom fifth and middle half of the
    image (the road ahead, for a forward-facing car camera), refitting on the 70%
    of points nearest the plane a few times to shed kerbs and cars, and compares
    the camera's distance to it with ``camera_height``.

    Args:
        depth: (H, W) relative depth (e.g. a mono model's output).
        intrinsics: the camera.
        camera_height: metres between the camera centre and the road (KITTI: 1.65).

    Returns:
        ``camera_height / fitted height``: multiply the depth by it.
    """
    if not camera_height > 0:
        raise ValueError(f"camera height must be positive metres, got {camera_height}")
    h, w = depth.shape
    region = np.zeros((h, w), dtype=bool)
    region[h - h // 5 :, w // 4 : w - w // 4] = True
    cloud = depth_to_points(np.where(region, depth, 0.0), intrinsics)
    points = cloud.xyz.astype(np.float64)
    if len(points) < 10:
        raise ValueError("too few valid depths in the bottom of the image to fit the road plane")
    for _ in range(4):
        centre = points.mean(0)
        normal = np.linalg.svd(points - centre, full_matrices=False)[2][-1]  # direction of least spread
        residual = np.abs((points - centre) @ normal)
        points = points[residual <= np.quantile(residual, 0.7)] if len(points) > 50 else points
    height = abs(float(centre @ normal))  # distance from the camera (origin) to the plane
    return camera_height / height
