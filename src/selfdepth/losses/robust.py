"""Per-pixel robust losses for the photometric term's pixel part.

Every function maps a residual map to a per-element loss map of the same
shape; the caller reduces. ``get_pixel_loss`` looks one up by name.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["PixelLoss", "l1", "PIXEL_LOSSES", "get_pixel_loss"]

PixelLoss = Callable[[Tensor], Tensor]


def l1(x: Tensor) -> Tensor:
    """Absolute residual ``|x|``, per element."""
    return x.abs()


PIXEL_LOSSES: dict[str, PixelLoss] = {"l1": l1}


def get_pixel_loss(name: str) -> PixelLoss:
    """The pixel loss called ``name``; ValueError listing the valid names otherwise."""
    try:
        return PIXEL_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown pixel loss {name!r}; valid: {', '.join(sorted(PIXEL_LOSSES))}") from None
