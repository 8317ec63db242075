"""Geometry: backprojection/projection round trips, warping, poses and the stereo-scale convention."""

from __future__ import annotations

import math

import pytest
import torch

from selfdepth.geometry import (
    STEREO_BASELINE_UNITS,
    BackprojectDepth,
    backproject,
    disp_to_depth,
    metric_scale,
    pixel_grid,
    pose_vec_to_mat,
    project,
    rotate_view,
    stereo_transform,
    warp,
)


def _K(b: int, h: int, w: int, dtype=torch.float64) -> torch.Tensor:
    K = torch.tensor([[0.58 * w, 0, (w - 1) / 2], [0, 1.92 * h, (h - 1) / 2], [0, 0, 1]], dtype=dtype)
    return K.repeat(b, 1, 1)


def test_backproject_then_project_is_identity():
    torch.manual_seed(0)
    b, h, w = 3, 8, 12
    K = _K(b, h, w)
    depth = torch.rand(b, 1, h, w, dtype=torch.float64) * 50 + 0.5
    pixels, z = project(backproject(depth, torch.linalg.inv(K)), K)
    grid = pixel_grid(h, w, dtype=torch.float64)[:2].T  # (H*W, 2)
    torch.testing.assert_close(pixels, grid.expand(b, -1, -1), rtol=0, atol=1e-9)
    torch.testing.assert_close(z, depth.reshape(b, -1))


def test_pose_vec_invert_is_the_inverse():
    torch.manual_seed(2)
    aa, t = torch.randn(4, 3, dtype=torch.float64) * 0.3, torch.randn(4, 3, dtype=torch.float64)
    T, T_inv = pose_vec_to_mat(aa, t), pose_vec_to_mat(aa, t, invert=True)
    torch.testing.assert_close(T @ T_inv, torch.eye(4, dtype=torch.float64).expand(4, 4, 4))
    # A rotation of angle theta about z.
    R = pose_vec_to_mat(torch.tensor([[0, 0, 0.3]]), torch.zeros(1, 3))[0, :3, :3]
    torch.testing.assert_close(R[:2, :2], torch.tensor([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]]))


def test_warp_with_identity_pose_returns_source():
    torch.manual_seed(3)
    b, h, w = 2, 16, 24
    source = torch.rand(b, 3, h, w, dtype=torch.float64)
    depth = torch.rand(b, 1, h, w, dtype=torch.float64) * 10 + 1
    K = _K(b, h, w)
    warped, valid = warp(source, depth, K, torch.linalg.inv(K), torch.eye(4, dtype=torch.float64).repeat(b, 1, 1))
    torch.testing.assert_close(warped, source, atol=1e-9, rtol=0)
    assert valid.all()


def test_stereo_warp_shifts_by_the_disparity():
    """A fronto-parallel plane at depth Z moves by fx * baseline / Z pixels between the views."""
    h, w = 8, 64
    K = _K(1, h, w)
    fx = K[0, 0, 0].item()
    Z = fx * 0.54 / 4.0  # 4 px of disparity
    source = torch.arange(w, dtype=torch.float64).repeat(1, 3, h, 1)  # intensity = column index
    depth = torch.full((1, 1, h, w), Z, dtype=torch.float64)
    warped, valid = warp(source, depth, K, torch.linalg.inv(K), stereo_transform(torch.ones(1, dtype=torch.float64), 0.54))
    # The right camera sees a left-image point 4 px further left.
    torch.testing.assert_close(warped[..., 10:], source[..., 10:] - 4.0)
    assert not valid[..., :4].any() and valid[..., 4:].all()


def test_stereo_scale_convention():
    """Network units: baseline 0.1; a depth of d units is d * baseline / 0.1 metres, and the warps agree."""
    assert metric_scale(0.54) == pytest.approx(5.4)
    h, w = 8, 64
    K = _K(1, h, w)
    source = torch.rand(1, 3, h, w, dtype=torch.float64)
    metres = torch.rand(1, 1, h, w, dtype=torch.float64) * 20 + 5
    one = torch.ones(1, dtype=torch.float64)
    in_metres, _ = warp(source, metres, K, torch.linalg.inv(K), stereo_transform(one, 0.54))
    units = metres / metric_scale(0.54)
    in_units, _ = warp(source, units, K, torch.linalg.inv(K), stereo_transform(one, STEREO_BASELINE_UNITS))
    torch.testing.assert_close(in_units, in_metres)
    with pytest.raises(ValueError, match="baseline must be positive"):
        metric_scale(0.0)


def test_fresh_network_disparity_lands_inside_the_image():
    """The pitfall the convention avoids: sigmoid 0.5 must ask for a disparity well inside the image."""
    width = 416
    _, depth = disp_to_depth(torch.tensor(0.5))
    disparity_px = 0.58 * width * STEREO_BASELINE_UNITS / depth
    assert disparity_px < 0.5 * width
    assert 0.58 * width * 0.54 / (depth * 1.0) > width  # with metres (no convention) it would leave the image


def test_disp_to_depth_range():
    scaled, depth = disp_to_depth(torch.tensor([0.0, 1.0]), 0.1, 100.0)
    torch.testing.assert_close(depth, torch.tensor([100.0, 0.1]))
    torch.testing.assert_close(scaled * depth, torch.ones(2))


def test_backproject_module_uses_a_buffer_and_any_batch():
    module = BackprojectDepth(4, 6)
    assert "grid" in dict(module.named_buffers()) and not list(module.parameters())
    for b in (1, 5):
        K = _K(b, 4, 6, torch.float32)
        depth = torch.rand(b, 1, 4, 6)
        torch.testing.assert_close(module(depth, torch.linalg.inv(K)), backproject(depth, torch.linalg.inv(K)))
    with pytest.raises(ValueError, match=r"\(5, 6\)"):
        module(torch.rand(1, 1, 5, 6), torch.eye(3)[None])


def test_warp_gradcheck():
    torch.manual_seed(4)
    h, w = 5, 7
    K = _K(1, h, w)
    source = torch.rand(1, 2, h, w, dtype=torch.float64)
    depth = (torch.rand(1, 1, h, w, dtype=torch.float64) * 5 + 5).requires_grad_()
    T = stereo_transform(torch.ones(1, dtype=torch.float64), 0.3)
    assert torch.autograd.gradcheck(lambda d: warp(source, d, K, torch.linalg.inv(K), T)[0], (depth,))


def test_rotate_view_with_no_rotation_returns_the_image():
    torch.manual_seed(0)
    image, K = torch.rand(2, 3, 9, 13, dtype=torch.float64), _K(2, 9, 13)
    torch.testing.assert_close(rotate_view(image, K, torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)), image)


@pytest.mark.parametrize("yaw_deg", [-4.0, 1.5, 6.0])
def test_rotate_view_moves_a_ramp_by_the_closed_form_yaw(yaw_deg):
    """A camera turned by yaw t sees, along its principal row, the ray at atan((u' - cx) / fx) - t of the old one."""
    h, w = 9, 41  # odd: the principal point sits on a pixel centre
    K = _K(1, h, w)
    fx, cx = float(K[0, 0, 0]), float(K[0, 0, 2])
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, h, w).clone()  # intensity = column: exact under bilinear
    t = math.radians(yaw_deg)
    R = pose_vec_to_mat(torch.tensor([[0.0, t, 0.0]], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    row = rotate_view(ramp, K, R[:, :3, :3])[0, 0, h // 2]  # (W,)
    u = torch.arange(w, dtype=torch.float64)
    expected = cx + fx * torch.tan(torch.atan((u - cx) / fx) - t)
    inside = (expected >= 0) & (expected <= w - 1)
    assert inside.sum() > w // 2
    torch.testing.assert_close(row[inside], expected[inside], rtol=0, atol=1e-6)
