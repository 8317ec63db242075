"""Losses. Each returns a per-pixel (or per-element) map; the caller reduces."""

from selfdepth.losses.photometric import PhotometricError, min_reprojection, photometric_error, ssim
from selfdepth.losses.robust import PIXEL_LOSSES, get_pixel_loss, l1
from selfdepth.losses.smoothness import EdgeAwareSmoothness, edge_aware_smoothness

__all__ = [
    "PIXEL_LOSSES",
    "EdgeAwareSmoothness",
    "PhotometricError",
    "edge_aware_smoothness",
    "get_pixel_loss",
    "l1",
    "min_reprojection",
    "photometric_error",
    "ssim",
]
