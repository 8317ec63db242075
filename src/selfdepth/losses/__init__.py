"""Losses. Each returns a per-pixel (or per-element) map; the caller reduces."""

from selfdepth.losses.log_partition import log_partition
from selfdepth.losses.photometric import PhotometricError, min_reprojection, photometric_error, ssim
from selfdepth.losses.registry import PIXEL_LOSSES, get_pixel_loss
from selfdepth.losses.robust import (
    AdaptiveRobustLoss,
    RobustLoss,
    cauchy,
    charbonnier,
    general,
    geman_mcclure,
    l1,
    l2,
    welsch,
)
from selfdepth.losses.smoothness import EdgeAwareSmoothness, edge_aware_smoothness

__all__ = [
    "PIXEL_LOSSES",
    "AdaptiveRobustLoss",
    "EdgeAwareSmoothness",
    "PhotometricError",
    "RobustLoss",
    "cauchy",
    "charbonnier",
    "edge_aware_smoothness",
    "general",
    "geman_mcclure",
    "get_pixel_loss",
    "l1",
    "l2",
    "log_partition",
    "min_reprojection",
    "photometric_error",
    "ssim",
    "welsch",
]
