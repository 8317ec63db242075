"""The pixel losses by name: what ``loss.pixel_loss`` and ``loss.representation`` build (see robust.py)."""

from __future__ import annotations

import math

from torch import nn

from selfdepth.losses.representation import REPRESENTATIONS, ImageLoss, check_wavelet_size, rgb_to_syuv
from selfdepth.losses.robust import AdaptiveRobustLoss, PixelLoss, RobustLoss, l1

__all__ = ["PIXEL_LOSSES", "get_pixel_loss"]

# Named pixel losses with alpha fixed; "barron" takes alpha from the config and
# "barron_adaptive" learns it (built by get_pixel_loss).
_NAMED_ALPHA = {"l2": 2.0, "charbonnier": 1.0, "cauchy": 0.0, "geman_mcclure": -2.0, "welsch": -math.inf}
PIXEL_LOSSES = ("l1", *_NAMED_ALPHA, "barron", "barron_adaptive")


def get_pixel_loss(
    name: str,
    alpha: float = 1.0,
    scale: float = 0.01,
    yuv: bool = False,
    adaptive: dict | None = None,
    representation: str = "pixel",
    image_size: tuple[int, int] | None = None,
    wavelet: dict | None = None,
) -> PixelLoss:
    """The pixel loss called ``name``, as a callable from residuals to per-element losses.

    Args:
        name: one of ``PIXEL_LOSSES``.
        alpha: shape for ``barron`` (and the start for ``barron_adaptive`` when given in ``adaptive``).
        scale: c for the rho family; the initial c for ``barron_adaptive``.
        yuv: score residuals in the volume-preserving YUV.
        adaptive: extra ``AdaptiveRobustLoss`` arguments for ``barron_adaptive``.
        representation: "pixel", "dct" or "wavelet" (see representation.py); the last two
            score transform coefficients, with one adaptive (alpha, c) per coefficient, and
            return each coefficient's loss spread over its pixels.
        image_size: (H, W) of the residuals; needed by "dct" and "wavelet".
        wavelet: ``ImageLoss`` arguments ``wavelet``, ``levels``, ``scale_base``.

    Raises:
        ValueError: unknown name or representation (the message lists the valid ones), invalid
            alpha / c, a loss with no per-coefficient form, or an image too small for the wavelet.
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}")
    if representation != "pixel":
        return _coefficient_loss(name, alpha, scale, yuv, adaptive, representation, image_size, wavelet or {})
    if name == "l1":
        return (lambda x: l1(rgb_to_syuv(x))) if yuv else l1
    if name in _NAMED_ALPHA:
        return RobustLoss(_NAMED_ALPHA[name], scale, yuv)
    if name == "barron":
        return RobustLoss(alpha, scale, yuv)
    if name == "barron_adaptive":
        return AdaptiveRobustLoss(scale_init=scale, yuv=yuv, **(adaptive or {}))
    raise ValueError(f"unknown pixel loss {name!r}; valid: {', '.join(PIXEL_LOSSES)}")


def _coefficient_loss(
    name: str,
    alpha: float,
    scale: float,
    yuv: bool,
    adaptive: dict | None,
    representation: str,
    image_size: tuple[int, int] | None,
    wavelet: dict,
) -> ImageLoss:
    """A rho-family loss on DCT or wavelet coefficients, per coefficient, spread back to pixels."""
    if name == "l1":  # Monodepth2's pixel term; the rho family (e.g. charbonnier, small c) is its coefficient form
        raise ValueError(f"pixel loss 'l1' has no per-coefficient form for representation {representation!r}; "
                         f"use one of {', '.join(PIXEL_LOSSES[1:])} (charbonnier with a small scale is L1-like)")
    if image_size is None:
        raise ValueError(f"representation {representation!r} needs the image size")
    if representation == "wavelet":
        check_wavelet_size(*image_size, wavelet.get("levels", 5))
    if name == "barron_adaptive":  # one alpha and c per coefficient of the (C, H, W) representation
        loss: nn.Module = AdaptiveRobustLoss(scale_init=scale, **{**(adaptive or {}), "image_size": tuple(image_size)})
    else:
        loss = RobustLoss(alpha if name == "barron" else _NAMED_ALPHA[name], scale)
    return ImageLoss(loss, representation, yuv, **wavelet)
