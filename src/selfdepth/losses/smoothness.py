"""Edge-aware smoothness of disparity."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["edge_aware_smoothness", "EdgeAwareSmoothness"]


def edge_aware_smoothness(disp: Tensor, image: Tensor) -> Tensor:
    """Disparity gradients, down-weighted where the image has edges, per pixel.

    The disparity is divided by its per-image mean first, so the term cannot be
    lowered by shrinking the disparity (Monodepth2).

    Args:
        disp: (B, 1, H, W) disparity.
        image: (B, C, H, W) image at the same size.

    Returns:
        (B, 1, H, W) ``W/(W-1) |dx d*| exp(-|dx I|) + H/(H-1) |dy d*| exp(-|dy I|)``, zero-padded at the
        last column / row. The factors make the map's mean over H x W exactly Monodepth2's term, the mean
        of the x part over its H (W-1) differences plus the mean of the y part over its (H-1) W.
    """
    if disp.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"disp {tuple(disp.shape)} and image {tuple(image.shape)} differ in size")
    d = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    dx = (d[..., :, :-1] - d[..., :, 1:]).abs()
    dy = (d[..., :-1, :] - d[..., 1:, :]).abs()
    ix = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    iy = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    h, w = disp.shape[-2:]
    # A one-pixel-wide (or -high) map has no differences on that axis: its part is empty, so 0.
    fx, fy = (w / (w - 1) if w > 1 else 0.0), (h / (h - 1) if h > 1 else 0.0)
    return F.pad(dx * (-ix).exp() * fx, (0, 1, 0, 0)) + F.pad(dy * (-iy).exp() * fy, (0, 0, 0, 1))


class EdgeAwareSmoothness(nn.Module):
    """Module form of ``edge_aware_smoothness``."""

    def forward(self, disp: Tensor, image: Tensor) -> Tensor:
        return edge_aware_smoothness(disp, image)
