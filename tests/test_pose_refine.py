"""Direct photometric pose refinement: it recovers a known motion from images made with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfdepth.geometry import pixel_grid, pose_vec_to_mat, warp
from selfdepth.pose_refine import alignment_error, refine_motion

H, W = 80, 256
K = torch.tensor([[[192.0, 0, 127.5], [0, 192.0, 39.5], [0, 0, 1]]])


def _street(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured source image and a street-like target depth: a ground plane 1.65 m below the camera
    up to 15 m, a wall at 15 m above it."""
    g = torch.Generator().manual_seed(seed)
    fine = F.interpolate(torch.rand(1, 3, H // 4, W // 4, generator=g), (H, W), mode="bicubic", align_corners=False)
    coarse = F.interpolate(torch.rand(1, 3, H // 16, W // 16, generator=g), (H, W), mode="bicubic", align_corners=False)
    source = (0.5 * fine + 0.5 * coarse).clamp(0, 1)
    v = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    ground = 1.65 * 192.0 / (v - 39.5).clamp(min=1e-3)
    depth = torch.where(v > 39.5, ground, torch.full_like(v, 15.0)).clamp(max=15.0)[None, None]
    return source, depth


def _errors(T: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """Angle between translations and the residual rotation, both in degrees."""
    a, b = T[0, :3, 3], truth[0, :3, 3]
    direction = math.degrees(math.acos(min(1.0, float(a @ b / (a.norm() * b.norm())))))
    R = T[0, :3, :3] @ truth[0, :3, :3].T
    rotation = math.degrees(math.acos(min(1.0, (float(torch.trace(R)) - 1) / 2)))
    return direction, rotation


def test_recovers_the_motion_that_made_the_target():
    source, depth = _street(0)
    truth = pose_vec_to_mat(torch.tensor([[0.002, 0.01, -0.003]]), torch.tensor([[0.03, 0.02, -1.0]]))
    target, _ = warp(source, depth, K, torch.linalg.inv(K), truth)  # the target is exactly the source moved
    start = pose_vec_to_mat(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -1.1]]))  # constant straight motion
    before = _errors(start, truth)
    after = _errors(refine_motion(target, source, depth, K, start, levels=3, steps=30), truth)
    assert before[0] > 2.0 and before[1] > 0.5  # the start is 2 degrees off in direction, 0.6 in rotation
    assert after[0] < 0.25 * before[0] and after[1] < 0.05


def test_the_true_motion_is_a_fixed_point():
    source, depth = _street(2)
    truth = pose_vec_to_mat(torch.tensor([[0.0, 0.005, 0.0]]), torch.tensor([[0.0, 0.0, -0.8]]))
    target, _ = warp(source, depth, K, torch.linalg.inv(K), truth)
    refined = refine_motion(target, source, depth, K, truth, levels=2, steps=10)
    direction, rotation = _errors(refined, truth)
    assert direction < 0.1 and rotation < 0.02
    error, inside = alignment_error(target, source, depth, K, torch.linalg.inv(K), truth, pixel_grid(H, W))
    assert float(error[inside].mean()) < 1e-3  # the warp by the truth reproduces the target


def test_shapes_are_checked():
    source, depth = _street(0)
    with pytest.raises(ValueError, match="must be"):
        refine_motion(source[:, :1], source[:, :1], depth, K, torch.eye(4)[None])
