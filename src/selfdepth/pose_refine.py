"""Direct photometric pose refinement: polish a frame-to-frame motion against the two images and a depth map.

Given the target frame's depth, the rigid motion that best explains the next frame is the one whose
warp of that frame matches the target best. Minimising that photometric error over the six motion
parameters is direct visual odometry (Engel et al., DSO 2018); starting from a pose network's guess
and a depth network's depth, it is the test-time "online refinement" of Casser et al. (AAAI 2019)
restricted to the motion, with both networks frozen. It needs no training and no labels: only the
two frames, the intrinsics, and the depth model.

Coarse to fine: the images are halved ``levels - 1`` times and the motion is solved on the
smallest first (a wide basin), then handed to the next size. At each level a few L-BFGS steps
minimise the mean SSIM+L1 error over pixels that land inside the source image and that the warp
explains better than the unwarped source (Monodepth2's auto-mask, fixed from the starting motion:
this drops the sky, cars moving with the camera and the car's own bonnet).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfdepth.geometry import pixel_grid, pose_vec_to_mat, warp
from selfdepth.losses.photometric import photometric_error

__all__ = ["alignment_error", "refine_motion"]

# Parameter units for L-BFGS: 1 unit of rotation is 0.01 rad (0.57 deg), 1 unit of translation is
# 1% of the starting motion's length, so both move the warp by a few pixels and the problem is
# well scaled for a quasi-Newton method that starts from the identity Hessian.
_ROTATION_UNIT = 0.01
_TRANSLATION_UNIT = 0.01


def _delta(params: Tensor, translation_unit: Tensor) -> Tensor:
    """(B, 6) scaled parameters, (B, 1) translation unit -> (B, 4, 4) small motion applied after the start."""
    return pose_vec_to_mat(params[:, :3] * _ROTATION_UNIT, params[:, 3:] * translation_unit)


def alignment_error(target: Tensor, source: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T: Tensor,
                    grid: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel photometric error of ``source`` warped into ``target`` by ``T``.

    Args:
        target: (B, 3, H, W) target frame in [0, 1].
        source: (B, 3, H, W) source frame.
        depth: (B, 1, H, W) target depth (any unit; ``T``'s translation in the same unit).
        K: (B, 3, 3) intrinsics at this size; inv_K: their inverse.
        T: (B, 4, 4) target-to-source transform.
        grid: (3, H*W) from ``pixel_grid``.

    Returns:
        error: (B, 1, H, W) SSIM+L1 error of the warp.
        inside: (B, 1, H, W) True where the target pixel lands inside the source image.
    """
    warped, inside = warp(source, depth, K, inv_K, T, grid)
    return photometric_error(warped, target), inside


def refine_motion(target: Tensor, source: Tensor, depth: Tensor, K: Tensor, T0: Tensor, levels: int = 3,
                  steps: int = 20) -> Tensor:
    """The motion ``T`` near ``T0`` whose warp of ``source`` best matches ``target`` (direct alignment).

    Args:
        target: (B, 3, H, W) target frame in [0, 1].
        source: (B, 3, H, W) source frame (the next frame, for a forward motion).
        depth: (B, 1, H, W) target depth, in the unit of ``T0``'s translation (a mono model's depth
            has an unknown scale: its motion has the same one, which pose evaluation aligns away).
        K: (B, 3, 3) intrinsics of the (H, W) images.
        T0: (B, 4, 4) starting target-to-source transform (a pose network's, or constant motion).
        levels: pyramid levels, each half the size of the next.
        steps: L-BFGS iterations per level.

    Returns:
        (B, 4, 4) refined target-to-source transform, detached.
    """
    if not target.shape == source.shape or target.shape[1] != 3 or depth.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"target {tuple(target.shape)}, source {tuple(source.shape)} and depth "
                         f"{tuple(depth.shape)} must be (B, 3, H, W), (B, 3, H, W), (B, 1, H, W)")
    T0 = T0.detach()
    # Per-sample translation unit: 1% of the starting motion's length (a zero start: of 0.1% of the depth).
    median = depth.flatten(1).median(dim=1).values  # (B,)
    unit = (T0[:, :3, 3].norm(dim=1).maximum(1e-3 * median) * _TRANSLATION_UNIT)[:, None]  # (B, 1)
    params = torch.zeros(target.shape[0], 6, dtype=target.dtype, requires_grad=True)
    for level in reversed(range(levels)):
        factor = 2**level
        size = (target.shape[-2] // factor, target.shape[-1] // factor)
        tgt, src = (F.interpolate(x, size, mode="area") for x in (target, source))
        dep = F.interpolate(depth, size, mode="nearest")  # a mean would blur depth edges into mid-air points
        # Intrinsics at this size, pixel centres at integers: u' + 0.5 = (u + 0.5) * s (io.Intrinsics.resized).
        s = torch.tensor([size[1] / target.shape[-1], size[0] / target.shape[-2]], dtype=K.dtype)  # (x, y)
        K_level = K.clone()
        K_level[:, :2, :2] = K[:, :2, :2] * s[:, None]
        K_level[:, :2, 2] = (K[:, :2, 2] + 0.5) * s - 0.5
        inv_K, grid = torch.linalg.inv(K_level), pixel_grid(*size, dtype=target.dtype)  # once per level
        with torch.no_grad():
            error, inside = alignment_error(tgt, src, dep, K_level, inv_K, _delta(params, unit) @ T0, grid)
            mask = inside & (error < photometric_error(src, tgt))  # auto-mask, fixed at the level's start
            count = mask.sum().clamp(min=1)
        optimiser = torch.optim.LBFGS([params], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimiser.zero_grad()
            error, inside = alignment_error(tgt, src, dep, K_level, inv_K, _delta(params, unit) @ T0, grid)
            # Pixels that leave the source during the search stop counting; the divisor stays fixed.
            loss = (error * (mask & inside)).sum() / count
            loss.backward()
            return loss

        optimiser.step(closure)
    return (_delta(params, unit) @ T0).detach()
