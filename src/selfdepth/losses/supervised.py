"""Supervised terms for data with exact depth and motion (the synthetic streets): pre-training only.

Real data has neither, so these are off unless ``loss.supervised_depth_weight`` /
``loss.supervised_pose_weight`` are set; the self-supervised objective is unchanged beside them.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["scale_invariant_log", "pose_error"]


def scale_invariant_log(pred: Tensor, target: Tensor, lam: float = 0.85) -> Tensor:
    """Eigen et al.'s scale-invariant log error (NeurIPS 2014) as a per-pixel map.

    With ``d = log pred - log target`` on the valid pixels of an image, the loss is
    ``mean(d^2) - lam * mean(d)^2``. The map returned is ``d_i^2 - lam * d_i * mean(d)``, whose mean over
    an image's valid pixels is exactly that (same value, same gradient), so the caller reduces as usual.
    ``lam = 1`` ignores the global scale entirely (a mono network's depth has none); 0.85 is Eigen's.

    Args:
        pred: (B, 1, H, W) predicted depth, any positive units.
        target: (B, 1, H, W) true depth; 0 marks pixels without one (the sky).
        lam: the weight of the scale-invariant part, in [0, 1].

    Returns:
        (B, 1, H, W), 0 on invalid pixels.
    """
    valid = target > 0
    # Invalid pixels get d = 0 through where(); the clamps only keep log() finite there.
    d = torch.where(valid, torch.log(pred.clamp_min(1e-6)) - torch.log(target.clamp_min(1e-6)), 0.0)
    count = valid.sum((1, 2, 3), keepdim=True).clamp_min(1)  # an image without depth contributes 0
    mean = d.sum((1, 2, 3), keepdim=True) / count
    return torch.where(valid, d * d - lam * d * mean, 0.0)


def pose_error(pred: Tensor, target: Tensor, metres_to_units: float | None) -> Tensor:
    """L1 error of predicted camera motions: rotation-matrix entries plus translation.

    Args:
        pred: (..., 4, 4) predicted target-to-source transforms, translation in network units.
        target: (..., 4, 4) true ones, translation in metres.
        metres_to_units: the factor from metres to network units (known with stereo data). None
            (mono): both translations are compared as unit directions, the scale being unknown.

    Returns:
        (...) the error of each transform.
    """
    rotation = (pred[..., :3, :3] - target[..., :3, :3]).abs().sum((-2, -1))
    t_pred, t_true = pred[..., :3, 3], target[..., :3, 3]
    if metres_to_units is None:
        t_pred = t_pred / t_pred.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        t_true = t_true / t_true.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # standing still: a zero vector
    else:
        t_true = t_true * metres_to_units
    return rotation + (t_pred - t_true).abs().sum(-1)
