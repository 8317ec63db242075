"""Exact outlier masks of a rendered frame: moving objects, mirrors, and pixels occluded in each source view.

The renderer knows every pixel's depth, which box it shows and every camera's
pose, so where the photometric assumption breaks is known exactly, not
estimated. Each frame gets one uint8 bit mask (``selfdepth.io.REGION_BITS``):

    moving            a moving car (the temporal warp of a static scene is wrong there)
    glass             a mirror-like surface (its colour moves with the viewpoint)
    occluded_stereo   hidden in, or outside, the right camera's image at the same instant
    occluded_prev     hidden in, or outside, frame t-1 (the left camera); moving cars moved
    occluded_next     the same for frame t+1

A target pixel counts as occluded in a source view when its 3-D point lands
outside the source image, behind it, on the source's sky, or where the source's
own depth at the four pixels around it does not bracket the point's depth
within 1% (something else is in front).
"""

from __future__ import annotations

import numpy as np

from selfdepth.data.synthetic.render import View, right_pose
from selfdepth.data.synthetic.scene import BASELINE, Camera, Scene
from selfdepth.io import REGION_BITS

__all__ = ["occlusion", "frame_masks"]


def occlusion(
    depth_t: np.ndarray, K: np.ndarray, target_to_source: np.ndarray, depth_s: np.ndarray, moved: np.ndarray | None = None
) -> np.ndarray:
    """Target pixels whose surface point the source view does not show.

    Args:
        depth_t: (H, W) target depth in metres, 0 for the sky.
        K: (3, 3) intrinsics shared by both views.
        target_to_source: (4, 4) target-camera -> source-camera transform.
        depth_s: (H, W) source depth, 0 for the sky.
        moved: (H, W, 3) how far each target point moved between the two instants, in source-camera axes.

    Returns:
        (H, W) bool; always False where the target shows sky (depth 0).
    """
    h, w = depth_t.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    z = depth_t.astype(np.float64)
    points = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)  # (H, W, 3) target camera
    points = points @ target_to_source[:3, :3].T + target_to_source[:3, 3]  # (H, W, 3) source camera
    if moved is not None:
        points = points + moved
    zs = points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        us = K[0, 0] * points[..., 0] / zs + K[0, 2]
        vs = K[1, 1] * points[..., 1] / zs + K[1, 2]
    inside = (zs > 1e-3) & (us >= 0) & (us <= w - 1) & (vs >= 0) & (vs <= h - 1)
    # The source's depth at the 4 pixels around the projection must bracket the point's depth (1%): a
    # nearest-pixel test would flag slanted surfaces (the road at low resolution) whose depth changes by
    # more than 1% per pixel.
    u0 = np.clip(np.floor(np.where(inside, us, 0)).astype(int), 0, w - 2)
    v0 = np.clip(np.floor(np.where(inside, vs, 0)).astype(int), 0, h - 2)
    around = np.stack([depth_s[v0 + dv, u0 + du] for dv in (0, 1) for du in (0, 1)])  # (4, H, W)
    lo = np.where(around > 0, around, np.inf).min(0)
    hi = around.max(0)
    agree = inside & (hi > 0) & (zs >= 0.99 * lo) & (zs <= 1.01 * hi)
    return (depth_t > 0) & ~agree


def _motion(scene: Scene, box: np.ndarray, frames: int, world_to_source: np.ndarray) -> np.ndarray | None:
    """(H, W, 3) displacement of each pixel's box over ``frames`` frames, in source-camera axes (None if static)."""
    if scene.box_velocity is None:
        return None
    velocity = np.where((box >= 0)[..., None], scene.box_velocity[np.maximum(box, 0)], 0.0)  # (H, W, 3) world
    return (velocity * frames) @ world_to_source[:3, :3].T


def frame_masks(scene: Scene, views: list[tuple[View, View]], index: int, camera: Camera,
                baseline: float = BASELINE) -> np.ndarray:
    """The (H, W) uint8 region bits of frame ``index``, from every frame's (left, right) ``View``."""
    left, right = views[index]
    pose = scene.poses[index]
    bits = np.zeros(left.depth.shape, dtype=np.uint8)
    if scene.box_velocity is not None:
        moving = np.abs(scene.box_velocity).sum(1) > 0
        bits[(left.box >= 0) & moving[np.maximum(left.box, 0)]] |= REGION_BITS["moving"]
    bits[left.glass] |= REGION_BITS["glass"]
    to_right = np.linalg.inv(right_pose(pose, baseline)) @ pose
    bits[occlusion(left.depth, camera.K, to_right, right.depth)] |= REGION_BITS["occluded_stereo"]
    for offset, name in ((-1, "occluded_prev"), (1, "occluded_next")):
        if 0 <= index + offset < len(views):
            world_to_source = np.linalg.inv(scene.poses[index + offset])
            moved = _motion(scene, left.box, offset, world_to_source)
            source_depth = views[index + offset][0].depth
            bits[occlusion(left.depth, camera.K, world_to_source @ pose, source_depth, moved)] |= REGION_BITS[name]
    return bits
