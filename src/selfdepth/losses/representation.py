"""Image representations for the robust loss: pixels, an orthonormal 2-D DCT, or a wavelet pyramid.

Barron's recipe for images (CVPR 2019, Section 4 and Appendix H) scores the
residual image ``I - I'`` not pixel by pixel but in a wavelet representation
(CDF 9/7, 5 levels, of a volume-preserving YUV), with one adaptive (alpha, c)
per coefficient. This module provides the transforms and a loss wrapper:

    residual (B, C, H, W) -> colour transform -> representation -> per-coefficient loss
        -> spread back to pixels (B, C, H, W)

**Volume preservation.** Every transform here has |det| = 1 (the DCT is
orthonormal; PyWavelets' periodized CDF 9/7 and LeGall 5/3 are biorthogonal but
their analysis matrices have log|det| = 0, checked in the tests; the YUV matrix
is scaled to det 1), so a likelihood is comparable across representations and
colour spaces.

**Why matrices, not a wavelet package's conv transform.** ptwt (maintained)
pads instead of periodizing: a 64x96 image gives 36x52 level-1 bands, 1.2x as
many coefficients as pixels per level, so its transform is not square and has no
determinant. pytorch_wavelets has periodization but fails to import here (it needs
``pkg_resources``; last release 2020). So each 1-D periodized transform is taken
from PyWavelets itself, as the (n, n) matrix of ``pywt.dwt`` on the unit vectors
(and ``pywt.idwt`` for the inverse), and applied along each axis with a matmul,
which autograd differentiates.

**Back to pixels.** The per-pixel minimum over source views and the auto-mask
need a per-pixel error map; a coefficient is not a pixel. Each coefficient's loss
is spread evenly over its spatial support at its level (a 2^l x 2^l block for a
level-l wavelet coefficient, the whole image for a DCT coefficient), so the map
sums to the representation's total loss (NLL, log c and log Z included).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "REPRESENTATIONS",
    "WAVELETS",
    "rgb_to_syuv",
    "syuv_matrix",
    "dct_matrix",
    "dwt_matrices",
    "dct2",
    "idct2",
    "wavelet2",
    "iwavelet2",
    "spread_to_pixels",
    "check_wavelet_size",
    "ImageLoss",
]

REPRESENTATIONS = ("pixel", "dct", "wavelet")
WAVELETS = {"cdf97": "bior4.4", "legall53": "bior2.2"}  # name -> PyWavelets' name

# RGB -> YUV (BT.601, as kornia.color.rgb_to_yuv), rows Y, U, V.
_YUV = np.array([[0.299, 0.587, 0.114], [-0.147, -0.289, 0.436], [0.615, -0.515, -0.100]])


@functools.lru_cache(maxsize=1)
def syuv_matrix() -> np.ndarray:
    """(3, 3) float64 volume-preserving YUV: BT.601 YUV scaled so that |det| = 1 (kornia's has det ~0.25)."""
    return _YUV / abs(np.linalg.det(_YUV)) ** (1 / 3)


def rgb_to_syuv(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB (or RGB residuals: the map is linear) -> volume-preserving YUV."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_syuv expects (B, 3, H, W), got {tuple(x.shape)}")
    m = torch.as_tensor(syuv_matrix(), dtype=x.dtype, device=x.device)
    return torch.einsum("ij,bjhw->bihw", m, x)


@functools.lru_cache(maxsize=32)
def dct_matrix(n: int) -> np.ndarray:
    """(n, n) float64 orthonormal DCT-II matrix ``D`` (``D @ x`` is scipy's ``dct(x, norm="ortho")``)."""
    from scipy.fft import dct

    return dct(np.eye(n), norm="ortho", axis=0)


@functools.lru_cache(maxsize=64)
def dwt_matrices(n: int, wavelet: str) -> tuple[np.ndarray, np.ndarray]:
    """One level of PyWavelets' periodized 1-D DWT on length ``n`` (even), as matrices.

    Returns:
        analysis: (n, n) float64 ``A``; ``A @ x`` is [lowpass (n/2), highpass (n/2)].
        synthesis: (n, n) float64 ``S`` with ``S @ A = I`` (from ``pywt.idwt``).
    """
    import pywt

    if wavelet not in WAVELETS:
        raise ValueError(f"unknown wavelet {wavelet!r}; valid: {', '.join(WAVELETS)}")
    if n < 2 or n % 2:
        raise ValueError(f"a one-level periodized DWT needs an even length >= 2, got {n}")
    w = pywt.Wavelet(WAVELETS[wavelet])
    lo, hi = pywt.dwt(np.eye(n), w, mode="periodization", axis=-1)  # row i: coefficients of unit vector e_i
    analysis = np.concatenate([lo, hi], 1).T
    half = n // 2
    basis = np.eye(n)  # coefficient unit vectors -> the signals they synthesise
    synthesis = pywt.idwt(basis[:, :half], basis[:, half:], w, mode="periodization", axis=-1).T
    return analysis, synthesis


@functools.lru_cache(maxsize=64)
def _as_tensor(matrix_key: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A transform matrix as a constant tensor, converted once per (matrix, dtype, device), not every step."""
    kind, n, wavelet, index = matrix_key
    matrix = dct_matrix(n) if kind in ("dct", "idct") else dwt_matrices(n, wavelet)[index]
    return torch.as_tensor(matrix.T if kind == "idct" else matrix, dtype=dtype, device=device)


def _along_axes(x: Tensor, rows: tuple, cols: tuple) -> Tensor:
    """``rows @ x @ cols.T`` on the last two axes of (..., H, W); rows and cols are ``_as_tensor`` keys."""
    r = _as_tensor(rows, x.dtype, x.device)
    c = _as_tensor(cols, x.dtype, x.device)
    return r @ x @ c.transpose(0, 1)


def dct2(x: Tensor) -> Tensor:
    """Orthonormal 2-D DCT-II of each (H, W) plane of (..., H, W)."""
    return _along_axes(x, ("dct", x.shape[-2], None, 0), ("dct", x.shape[-1], None, 0))


def idct2(x: Tensor) -> Tensor:
    """Inverse of ``dct2`` (the transpose: the DCT is orthonormal)."""
    return _along_axes(x, ("idct", x.shape[-2], None, 0), ("idct", x.shape[-1], None, 0))


def check_wavelet_size(height: int, width: int, levels: int) -> None:
    """Raise ValueError unless ``levels`` halvings of ``height x width`` stay whole (each side divisible by 2^levels)."""
    if levels < 1:
        raise ValueError(f"wavelet levels must be >= 1, got {levels}")
    step = 2**levels
    if height % step or width % step:
        raise ValueError(
            f"a {levels}-level wavelet needs image sides divisible by {step}; {width}x{height} is not "
            f"(the smallest size that works is {step}x{step}; multiples of {step} work, e.g. "
            f"{-(-width // step) * step}x{-(-height // step) * step})"
        )


def wavelet2(x: Tensor, levels: int = 5, wavelet: str = "cdf97") -> Tensor:
    """Multi-level 2-D periodized DWT of (..., H, W), in the Mallat layout, same shape as ``x``.

    Level 1's three detail bands fill everything outside the top-left (H/2, W/2)
    quadrant (top-right: highpass along W, bottom-left: along H, bottom-right:
    both); that quadrant holds levels 2.. recursively, ending in the lowpass
    residual of size (H / 2^levels, W / 2^levels) at the top left.
    """
    check_wavelet_size(x.shape[-2], x.shape[-1], levels)
    h, w = x.shape[-2:]
    y = _along_axes(x, ("dwt", h, wavelet, 0), ("dwt", w, wavelet, 0))  # analysis
    if levels == 1:
        return y
    inner = wavelet2(y[..., : h // 2, : w // 2], levels - 1, wavelet)
    return torch.cat([torch.cat([inner, y[..., : h // 2, w // 2 :]], -1), y[..., h // 2 :, :]], -2)


def iwavelet2(y: Tensor, levels: int = 5, wavelet: str = "cdf97") -> Tensor:
    """Inverse of ``wavelet2``."""
    check_wavelet_size(y.shape[-2], y.shape[-1], levels)
    h, w = y.shape[-2:]
    if levels > 1:
        inner = iwavelet2(y[..., : h // 2, : w // 2], levels - 1, wavelet)
        y = torch.cat([torch.cat([inner, y[..., : h // 2, w // 2 :]], -1), y[..., h // 2 :, :]], -2)
    return _along_axes(y, ("dwt", h, wavelet, 1), ("dwt", w, wavelet, 1))  # synthesis


def _level_weights(height: int, width: int, levels: int, base: float) -> np.ndarray:
    """(H, W) factor per Mallat-layout coefficient: base^(l - 1) for level l's details, base^levels for the residual.

    Barron's ``wavelet_scale_base``: values above 1 emphasise coarse scales; 1 leaves the transform as is.
    """
    weights = np.ones((height, width))
    for level in range(1, levels + 1):
        h, w = height >> (level - 1), width >> (level - 1)
        weights[:h, :w] = base ** (level - 1)
    weights[: height >> levels, : width >> levels] = base**levels
    return weights


def spread_to_pixels(loss: Tensor, representation: str, levels: int = 5) -> Tensor:
    """Spread per-coefficient losses evenly over each coefficient's spatial support.

    Args:
        loss: (B, C, H, W) loss per coefficient, in the layout of ``dct2`` / ``wavelet2``.
        representation: "pixel" (returned as is), "dct" or "wavelet".
        levels: the wavelet's levels.

    Returns:
        (B, C, H, W) per-pixel map with the same sum as ``loss``.
    """
    if representation == "pixel":
        return loss
    if representation == "dct":  # every DCT coefficient's support is the whole image
        return loss.mean((-2, -1), keepdim=True).expand_as(loss)
    h, w = loss.shape[-2:]
    out = torch.zeros_like(loss)
    for level in range(1, levels + 1):
        hl, wl = h >> level, w >> level
        details = loss[..., :hl, wl : 2 * wl] + loss[..., hl : 2 * hl, :wl] + loss[..., hl : 2 * hl, wl : 2 * wl]
        side = 2**level
        out = out + details.repeat_interleave(side, -2).repeat_interleave(side, -1) / side**2
    residual = loss[..., : h >> levels, : w >> levels]
    side = 2**levels
    return out + residual.repeat_interleave(side, -2).repeat_interleave(side, -1) / side**2


class ImageLoss(nn.Module):
    """A robust loss of residual images in a colour space and representation, as a per-pixel map.

    Args:
        loss: per-element loss of the coefficients (``RobustLoss``, or ``AdaptiveRobustLoss``
            built with ``image_size`` for one alpha and c per coefficient).
        representation: "pixel", "dct" or "wavelet".
        yuv: transform RGB residuals to the volume-preserving YUV first.
        wavelet: "cdf97" or "legall53".
        levels: wavelet levels.
        scale_base: Barron's ``wavelet_scale_base`` (coefficients of level l scaled by base^(l-1)).
    """

    def __init__(
        self,
        loss: nn.Module,
        representation: str = "pixel",
        yuv: bool = False,
        wavelet: str = "cdf97",
        levels: int = 5,
        scale_base: float = 1.0,
    ) -> None:
        super().__init__()
        if representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}")
        if representation == "wavelet" and wavelet not in WAVELETS:
            raise ValueError(f"unknown wavelet {wavelet!r}; valid: {', '.join(WAVELETS)}")
        if not scale_base > 0:
            raise ValueError(f"wavelet_scale_base must be > 0, got {scale_base}")
        self.loss, self.representation, self.yuv = loss, representation, yuv
        self.wavelet, self.levels, self.scale_base = wavelet, levels, scale_base

    def coefficients(self, x: Tensor) -> Tensor:
        """(B, C, H, W) residuals -> (B, C, H, W) coefficients of the representation."""
        if self.yuv:
            x = rgb_to_syuv(x)
        if self.representation == "dct":
            return dct2(x)
        if self.representation == "wavelet":
            y = wavelet2(x, self.levels, self.wavelet)
            if self.scale_base != 1:
                weights = _level_weights(*y.shape[-2:], self.levels, self.scale_base)
                y = y * torch.as_tensor(weights, dtype=y.dtype, device=y.device)
            return y
        return x

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) residuals -> (B, C, H, W) per-pixel loss (each coefficient's loss spread over its support)."""
        return spread_to_pixels(self.loss(self.coefficients(x)), self.representation, self.levels)

    def extra_repr(self) -> str:
        where = f"wavelet={self.wavelet}, levels={self.levels}, " if self.representation == "wavelet" else ""
        return f"representation={self.representation}, {where}yuv={self.yuv}"
