"""Camera geometry: disparity to depth, backprojection, projection, poses and warping.

Conventions:
    * Camera frame: x right, y down, z forward. Pixel centres sit at integer
      coordinates; images are sampled with ``grid_sample(align_corners=False)``.
    * ``T`` maps points from the target camera's frame into the source camera's
      frame (4x4, rigid), so a target pixel is looked up in the source image at
      ``project(K, T @ backproject(depth, K^-1))``.
    * Stereo scale. The depth network works in *network units* in which the
      stereo baseline is ``STEREO_BASELINE_UNITS = 0.1`` (Monodepth2's choice).
      With KITTI's 0.54 m baseline one unit is 5.4 m, so the network's range
      0.1-100 units is 0.54-540 m, and a freshly initialised network (about 0.2
      units) asks for a disparity of about 0.1 * fx / 0.2 px, inside the image,
      so the photometric loss has a gradient from the first step. Metric depth
      is ``depth_units * baseline_m / STEREO_BASELINE_UNITS``: see
      ``metric_scale``. Mono-only models have no such scale (median scaling).

Our own backprojection keeps the pixel grid as a buffer instead of calling
kornia's ``depth_to_3d``, which rebuilds a meshgrid on every call; rotations
come from kornia.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from kornia.geometry.transform import warp_perspective
from torch import Tensor, nn

__all__ = [
    "STEREO_BASELINE_UNITS",
    "MIN_DEPTH",
    "MAX_DEPTH",
    "disp_to_depth",
    "depth_to_sigmoid",
    "metric_scale",
    "pixel_grid",
    "backproject",
    "project",
    "pixels_to_grid",
    "warp",
    "pose_vec_to_mat",
    "rotate_view",
    "stereo_transform",
    "BackprojectDepth",
]

STEREO_BASELINE_UNITS = 0.1  # the stereo baseline, in network depth units
MIN_DEPTH = 0.1  # network units
MAX_DEPTH = 100.0  # network units


def disp_to_depth(disp: Tensor, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH) -> tuple[Tensor, Tensor]:
    """Map the network's sigmoid output to a disparity in ``[1/max, 1/min]`` and its depth.

    Args:
        disp: (...,) sigmoid output in [0, 1].

    Returns:
        scaled_disp: (...,) disparity in [1/max_depth, 1/min_depth].
        depth: (...,) ``1 / scaled_disp``, in [min_depth, max_depth].
    """
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


def depth_to_sigmoid(depth: float, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH) -> float:
    """The sigmoid output that ``disp_to_depth`` maps to ``depth`` (its inverse)."""
    if not min_depth <= depth <= max_depth:
        raise ValueError(f"depth {depth} is outside [{min_depth}, {max_depth}]")
    return (1.0 / depth - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)


def metric_scale(baseline_m: float) -> float:
    """Metres per network depth unit for a model trained with a stereo baseline of ``baseline_m``."""
    if not baseline_m > 0:
        raise ValueError(f"baseline must be positive metres, got {baseline_m}")
    return baseline_m / STEREO_BASELINE_UNITS


def pixel_grid(height: int, width: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Homogeneous pixel coordinates, row-major.

    Returns:
        (3, H*W) rows u, v, 1.
    """
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width, device=device, dtype=dtype)])


def backproject(depth: Tensor, inv_K: Tensor, grid: Tensor | None = None) -> Tensor:
    """Lift every pixel to a 3-D point in its camera's frame.

    Args:
        depth: (B, 1, H, W) z-depth.
        inv_K: (B, 3, 3) inverse intrinsics.
        grid: (3, H*W) from ``pixel_grid``; built when None.

    Returns:
        (B, 3, H*W) points.
    """
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth must be (B, 1, H, W), got {tuple(depth.shape)}")
    b, _, h, w = depth.shape
    if grid is None:
        grid = pixel_grid(h, w, depth.device, depth.dtype)
    rays = inv_K @ grid  # (B, 3, H*W)
    return rays * depth.reshape(b, 1, h * w)


def project(points: Tensor, K: Tensor, T: Tensor | None = None, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """Transform points by ``T`` and project them with ``K``.

    Args:
        points: (B, 3, N) points.
        K: (B, 3, 3) intrinsics.
        T: (B, 4, 4) rigid transform applied first; identity when None.

    Returns:
        pixels: (B, N, 2) pixel coordinates (u, v).
        z: (B, N) depth of the transformed points (<= 0 means behind the camera).
    """
    if T is not None:
        points = T[:, :3, :3] @ points + T[:, :3, 3:]
    cam = K @ points  # (B, 3, N)
    z = cam[:, 2]
    pixels = cam[:, :2] / z.clamp(min=eps).unsqueeze(1)  # (B, 2, N)
    return pixels.transpose(1, 2), z


def pixels_to_grid(pixels: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates to ``grid_sample``'s [-1, 1] range (align_corners=False).

    Args:
        pixels: (B, H*W, 2).

    Returns:
        (B, H, W, 2).
    """
    b = pixels.shape[0]
    size = torch.tensor([width, height], device=pixels.device, dtype=pixels.dtype)
    return ((2 * pixels + 1) / size - 1).reshape(b, height, width, 2)


def warp(
    source: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T: Tensor, grid: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Resample ``source`` into the target view given the target's depth.

    Args:
        source: (B, C, H, W) source image.
        depth: (B, 1, H, W) target depth.
        K: (B, 3, 3) intrinsics (shared by both views).
        inv_K: (B, 3, 3) their inverse.
        T: (B, 4, 4) target-to-source transform.
        grid: (3, H*W) pixel grid from ``pixel_grid``; built when None.

    Returns:
        warped: (B, C, H, W) source seen from the target.
        valid: (B, 1, H, W) True where the target pixel lands inside the source image, in front of it.
    """
    b, _, h, w = depth.shape
    pixels, z = project(backproject(depth, inv_K, grid), K, T)
    sample_grid = pixels_to_grid(pixels, h, w)
    warped = F.grid_sample(source, sample_grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (sample_grid.abs() <= 1).all(-1) & (z.reshape(b, h, w) > 0)
    return warped, inside.unsqueeze(1)


def pose_vec_to_mat(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """Axis-angle rotation and translation to a 4x4 transform ``[R | t]``.

    Args:
        axisangle: (B, 3) rotation vector (radians).
        translation: (B, 3).
        invert: return the inverse transform ``[R^T | -R^T t]``.

    Returns:
        (B, 4, 4).
    """
    R = axis_angle_to_rotation_matrix(axisangle)  # (B, 3, 3)
    t = translation.unsqueeze(-1)  # (B, 3, 1)
    if invert:
        R = R.transpose(1, 2)
        t = -R @ t
    bottom = torch.zeros_like(axisangle[:, :1]).expand(-1, 4).clone()
    bottom[:, 3] = 1
    return torch.cat([torch.cat([R, t], dim=2), bottom.unsqueeze(1)], dim=1)


def rotate_view(image: Tensor, K: Tensor, R: Tensor) -> Tensor:
    """What a camera turned about its centre by ``R`` sees: a pure rotation has no parallax, so every
    pixel moves by the homography ``K R K^-1`` whatever its depth.

    Args:
        image: (N, C, H, W).
        K: (N, 3, 3) intrinsics of ``image``.
        R: (N, 3, 3) rotation taking points from the camera's frame into the turned camera's (X' = R X).

    Returns:
        (N, C, H, W) ``out(p') = image(K R^T K^-1 p')``; border pixels repeat where the turned view sees past the image.
    """
    homography = K @ R @ torch.linalg.inv(K)  # image pixel -> turned-view pixel
    # kornia's align_corners=True puts pixel centres at integers, as here.
    return warp_perspective(image, homography, tuple(image.shape[-2:]), padding_mode="border", align_corners=True)


def stereo_transform(sign: Tensor, baseline: float = STEREO_BASELINE_UNITS) -> Tensor:
    """Target-to-other-camera transform of a rectified stereo pair.

    Args:
        sign: (B,) +1 when the other camera is to the right of the target, -1 when left.
        baseline: camera separation, in the units of the depth it will be used with.

    Returns:
        (B, 4, 4) pure translations by ``(-sign * baseline, 0, 0)``.
    """
    T = torch.eye(4, device=sign.device, dtype=sign.dtype).repeat(sign.shape[0], 1, 1)
    T[:, 0, 3] = -sign * baseline
    return T


class BackprojectDepth(nn.Module):
    """``backproject`` with the pixel grid kept as a buffer for one image size.

    Args:
        height: image height.
        width: image width.
    """

    grid: Tensor

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.register_buffer("grid", pixel_grid(height, width), persistent=False)

    def forward(self, depth: Tensor, inv_K: Tensor) -> Tensor:
        """(B, 1, H, W) depth and (B, 3, 3) inverse intrinsics -> (B, 3, H*W) points."""
        if depth.shape[-2:] != (self.height, self.width):
            raise ValueError(f"depth is {tuple(depth.shape[-2:])}, this module was built for {(self.height, self.width)}")
        return backproject(depth, inv_K, self.grid.to(depth.dtype))
