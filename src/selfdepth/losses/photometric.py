"""Photometric reconstruction error, per-pixel minimum reprojection and auto-masking (Monodepth2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfdepth.losses.robust import PixelLoss, l1

__all__ = ["ssim", "photometric_error", "min_reprojection", "PhotometricError"]

_C1 = 0.01**2
_C2 = 0.03**2


def _box3(x: Tensor) -> Tensor:
    """3x3 mean with reflection padding, (B, C, H, W) -> (B, C, H, W).

    Separable sums of shifted slices: on CPU this is 2.4x faster than avg_pool2d
    forward and backward, and faster than a depthwise convolution.
    """
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    rows = x[..., :, :-2] + x[..., :, 1:-1] + x[..., :, 2:]
    return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Structural similarity over 3x3 windows, per pixel and channel.

    A box window with reflection padding, as Monodepth2; kornia's
    ``kornia.metrics.ssim`` uses a Gaussian window and is slower here.

    Args:
        x: (B, C, H, W) image in [0, 1].
        y: (B, C, H, W) image in [0, 1].

    Returns:
        (B, C, H, W) SSIM in [-1, 1]; 1 where ``x == y``.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    mu_x, mu_y = _box3(x), _box3(y)
    sigma_x = _box3(x * x) - mu_x * mu_x
    sigma_y = _box3(y * y) - mu_y * mu_y
    sigma_xy = _box3(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * sigma_xy + _C2)
    den = (mu_x * mu_x + mu_y * mu_y + _C1) * (sigma_x + sigma_y + _C2)
    return num / den


def photometric_error(pred: Tensor, target: Tensor, ssim_weight: float = 0.85, pixel_loss: PixelLoss = l1) -> Tensor:
    """``ssim_weight * (1 - SSIM) / 2 + (1 - ssim_weight) * pixel_loss(pred - target)``, averaged over channels.

    Args:
        pred: (B, C, H, W) reconstructed image.
        target: (B, C, H, W) real image.
        ssim_weight: weight of the structural term in [0, 1].
        pixel_loss: per-element loss of the residual.

    Returns:
        (B, 1, H, W) error map.
    """
    pixel = pixel_loss(pred - target).mean(1, keepdim=True)
    if ssim_weight == 0:
        return pixel
    structural = ((1 - ssim(pred, target)) / 2).clamp(0, 1).mean(1, keepdim=True)
    return ssim_weight * structural + (1 - ssim_weight) * pixel


class PhotometricError(nn.Module):
    """``photometric_error`` with its weight and pixel loss fixed."""

    def __init__(self, ssim_weight: float = 0.85, pixel_loss: PixelLoss = l1) -> None:
        super().__init__()
        if not 0 <= ssim_weight <= 1:
            raise ValueError(f"ssim_weight must be in [0, 1], got {ssim_weight}")
        self.ssim_weight = ssim_weight
        self.pixel_loss = pixel_loss

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return photometric_error(pred, target, self.ssim_weight, self.pixel_loss)


def min_reprojection(errors: Tensor, identity_errors: Tensor | None = None, minimum: bool = True) -> tuple[Tensor, Tensor]:
    """Combine the reprojection errors of several source views per pixel.

    Args:
        errors: (B, S, H, W) error of each warped source against the target.
        identity_errors: (B, S, H, W) error of each *unwarped* source, for
            auto-masking: a pixel whose unwarped source already matches better
            than every warp (a static camera, an object moving with it) is
            masked out. None disables auto-masking.
        minimum: per-pixel minimum over sources (Monodepth2); the mean otherwise, of the warped and
            of the unwarped errors alike (Monodepth2's ``--avg_reprojection``).

    Returns:
        loss: (B, 1, H, W) per-pixel loss; where masked, the unwarped error,
            which is constant for the networks (no gradient), as in Monodepth2.
        mask: (B, 1, H, W) bool, True where a warped source wins.
    """
    loss = errors.min(1, keepdim=True).values if minimum else errors.mean(1, keepdim=True)
    if identity_errors is None:
        return loss, torch.ones_like(loss, dtype=torch.bool)
    # The unwarped errors combine as the warped ones do: Monodepth2's --avg_reprojection averages both.
    identity = identity_errors.min(1, keepdim=True).values if minimum else identity_errors.mean(1, keepdim=True)
    mask = loss < identity
    return torch.where(mask, loss, identity), mask
