"""Supervised pre-training terms: closed forms, invariances and gradients."""

from __future__ import annotations

import math

import torch

from selfdepth.geometry import pose_vec_to_mat
from selfdepth.losses.supervised import pose_error, scale_invariant_log


def test_silog_map_averages_to_eigens_formula_and_ignores_the_sky():
    torch.manual_seed(0)
    pred, gt = torch.rand(2, 1, 4, 5) + 0.5, torch.rand(2, 1, 4, 5) + 0.5
    gt[0, 0, 0, :3] = 0  # no depth there (sky): not scored
    loss = scale_invariant_log(pred, gt)
    assert (loss[0, 0, 0, :3] == 0).all()
    for b in range(2):
        valid = gt[b] > 0
        d = (pred[b].log() - gt[b].clamp_min(1e-6).log())[valid]
        torch.testing.assert_close(loss[b].sum() / valid.sum(), (d**2).mean() - 0.85 * d.mean() ** 2)


def test_silog_with_lam_one_is_blind_to_scale_and_zero_at_the_truth():
    gt = torch.rand(1, 1, 6, 6) + 0.2
    assert scale_invariant_log(3.7 * gt, gt, lam=1.0).abs().max() < 1e-5
    # With Eigen's 0.85 a global factor k costs (1 - 0.85) log(k)^2 per pixel.
    torch.testing.assert_close(scale_invariant_log(2 * gt, gt).mean(), torch.tensor(0.15 * math.log(2) ** 2))


def test_silog_gradient_is_that_of_the_formula():
    gt = torch.rand(1, 1, 3, 4, dtype=torch.float64) + 0.5
    gt[0, 0, 0, 0] = 0
    pred = (torch.rand(1, 1, 3, 4, dtype=torch.float64) + 0.5).requires_grad_()
    valid = gt > 0
    count = valid.sum()

    def formula(p):
        d = (p.log() - gt.clamp_min(1e-6).log())[valid]
        return (d**2).mean() - 0.85 * d.mean() ** 2

    (grad_map,) = torch.autograd.grad(scale_invariant_log(pred, gt).sum() / count, pred)
    (grad_ref,) = torch.autograd.grad(formula(pred), pred)
    torch.testing.assert_close(grad_map, grad_ref)
    assert torch.autograd.gradcheck(lambda p: scale_invariant_log(p, gt), (pred,))


def test_pose_error_closed_form_in_metres_and_as_directions():
    truth = pose_vec_to_mat(torch.tensor([[0.0, 0.02, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]]))  # 1 m forward
    units = 0.1 / 0.54  # network units per metre at KITTI's baseline
    pred = truth.clone()
    pred[:, :3, 3] *= units
    assert pose_error(pred, truth, units).abs().max() < 1e-6
    pred[:, 0, 3] += 0.05  # 0.05 units sideways: the L1 error is 0.05
    torch.testing.assert_close(pose_error(pred, truth, units), torch.tensor([0.05]))
    # Mono: scale unknown, so a prediction twice as far in the same direction is exact.
    scaled = truth.clone()
    scaled[:, :3, 3] *= 2
    assert pose_error(scaled, truth, None).abs().max() < 1e-6
