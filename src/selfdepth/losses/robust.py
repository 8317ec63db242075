"""Barron's general and adaptive robust loss (Barron, "A General and Adaptive Robust Loss Function", CVPR 2019).

    rho(x, alpha, c) = |alpha - 2| / alpha * (((x / c)^2 / |alpha - 2| + 1)^(alpha / 2) - 1)

One shape parameter ``alpha`` moves between familiar losses (special cases
below) and a scale ``c > 0`` sets the width of the quadratic bowl near zero.
Every function returns a per-element loss; the caller reduces.

The adaptive loss treats rho as a negative log-likelihood,

    -log p(x | alpha, c) = rho(x, alpha, c) + log c + log Z(alpha),

so alpha and c can be learned with the network: lowering alpha buys robustness
but costs probability mass (Z grows), which stops alpha from collapsing. The
NLL can be negative (a narrow density exceeds 1), which is expected.
``log Z`` comes from ``log_partition.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfdepth.losses.log_partition import ALPHA_MAX, log_partition, table_tensors
from selfdepth.losses.representation import rgb_to_syuv

__all__ = [
    "PixelLoss",
    "general",
    "l1",
    "l2",
    "charbonnier",
    "cauchy",
    "geman_mcclure",
    "welsch",
    "RobustLoss",
    "AdaptiveRobustLoss",
]

PixelLoss = Callable[[Tensor], Tensor]

# Below these distances from alpha = 0 and 2 the general formula divides by ~0; the exact
# limits are used *at* 0 and 2 and the clamped formula elsewhere, which agrees to ~1e-7.
_EPS = 1e-7


def _check_scale(c: Tensor | float) -> None:
    if (torch.as_tensor(c) <= 0).any():
        raise ValueError(f"the robust loss scale c must be > 0, got {c if isinstance(c, float) else c.min().item()}")


def general(x: Tensor, alpha: Tensor | float, c: Tensor | float, check: bool = True) -> Tensor:
    """Barron's general loss rho(x, alpha, c), per element.

    Special cases (exact, not approximated):
        alpha = 2: L2, ``0.5 (x/c)^2``;
        alpha = 1: Charbonnier / pseudo-Huber, ``sqrt((x/c)^2 + 1) - 1`` (general formula);
        alpha = 0: Cauchy / Lorentzian, ``log(0.5 (x/c)^2 + 1)``;
        alpha = -2: Geman-McClure, ``2 (x/c)^2 / ((x/c)^2 + 4)`` (general formula);
        alpha = -inf: Welsch / Leclerc, ``1 - exp(-0.5 (x/c)^2)``;
        alpha = +inf: ``exp(0.5 (x/c)^2) - 1``.

    Args:
        x: residuals, any shape.
        alpha: shape parameter, a float or a tensor broadcastable with ``x``; any
            real value or +-inf.
        c: scale > 0, a float or a tensor broadcastable with ``x``.
        check: raise for c <= 0 or a NaN alpha; False skips it (a host sync per call), for
            callers whose alpha and c are valid by construction.

    Returns:
        Loss of ``x``'s broadcast shape with ``alpha`` and ``c``; 0 at ``x = 0``.
        Differentiable in ``x``, ``alpha`` and ``c``.
    """
    if check:
        _check_scale(c)
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    if check and torch.isnan(alpha).any():
        raise ValueError("the robust loss shape alpha is NaN")
    sq = (x / c) ** 2
    alpha, sq = torch.broadcast_tensors(alpha, sq)

    # Dummy finite stand-ins where a branch is not selected, so that no branch yields
    # inf/NaN whose zero-weighted gradient would still poison the backward pass.
    finite = torch.isfinite(alpha)
    a = torch.where(finite, alpha, torch.ones_like(alpha))
    beta = (a - 2).abs().clamp(min=_EPS)
    a_safe = torch.where(a >= 0, a.clamp(min=_EPS), a.clamp(max=-_EPS))
    # (beta / a) * ((sq / beta + 1)^(a/2) - 1), with expm1/log1p so that small a and
    # small sq stay accurate in float32.
    rho = beta / a_safe * torch.expm1(0.5 * a_safe * torch.log1p(sq / beta))

    rho = torch.where(alpha == 2, 0.5 * sq, rho)  # L2
    rho = torch.where(alpha == 0, torch.log1p(0.5 * sq), rho)  # Cauchy
    rho = torch.where(alpha == -math.inf, -torch.expm1(-0.5 * sq), rho)  # Welsch
    pos_inf = alpha == math.inf
    if pos_inf.any():  # grows as exp(x^2): only evaluated where selected, to keep the gradient finite
        rho = torch.where(pos_inf, torch.expm1(0.5 * torch.where(pos_inf, sq, torch.zeros_like(sq))), rho)
    return rho


def l1(x: Tensor) -> Tensor:
    """Absolute residual ``|x|``, per element."""
    return x.abs()


def l2(x: Tensor, c: Tensor | float = 1.0) -> Tensor:
    """``0.5 (x/c)^2``: rho with alpha = 2."""
    return general(x, 2.0, c)


def charbonnier(x: Tensor, c: Tensor | float = 1.0) -> Tensor:
    """``sqrt((x/c)^2 + 1) - 1``: rho with alpha = 1, L1-like beyond c."""
    return general(x, 1.0, c)


def cauchy(x: Tensor, c: Tensor | float = 1.0) -> Tensor:
    """``log(0.5 (x/c)^2 + 1)``: rho with alpha = 0, grows logarithmically."""
    return general(x, 0.0, c)


def geman_mcclure(x: Tensor, c: Tensor | float = 1.0) -> Tensor:
    """``2 (x/c)^2 / ((x/c)^2 + 4)``: rho with alpha = -2, bounded by 2."""
    return general(x, -2.0, c)


def welsch(x: Tensor, c: Tensor | float = 1.0) -> Tensor:
    """``1 - exp(-0.5 (x/c)^2)``: rho with alpha = -inf, bounded by 1."""
    return general(x, -math.inf, c)


class RobustLoss(nn.Module):
    """rho with a fixed alpha and c, in intensity units: ``c * rho(x, alpha, c)``.

    The factor c makes every member comparable with L1 on image residuals:
    Charbonnier tends to |x| as c -> 0, and all members have slope 1 where
    |x| ~ c. Without it, swapping losses would also reweight the photometric
    term against SSIM and smoothness by 1/c, and a loss study would measure that.

    Args:
        alpha: shape parameter (any real, or +-inf).
        scale: c > 0, in image intensity units (images are in [0, 1]).
        yuv: score (N, 3, H, W) residuals in YUV instead of RGB.
    """

    def __init__(self, alpha: float, scale: float, yuv: bool = False) -> None:
        super().__init__()
        if math.isnan(alpha):
            raise ValueError("robust loss alpha is NaN")
        if not scale > 0:
            raise ValueError(f"robust loss scale c must be > 0, got {scale}")
        self.alpha, self.scale, self.yuv = alpha, scale, yuv

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * general(rgb_to_syuv(x) if self.yuv else x, self.alpha, self.scale)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, scale={self.scale}, yuv={self.yuv}"


class AdaptiveRobustLoss(nn.Module):
    """Barron's adaptive loss: NLL ``rho(x, alpha, c) + log c + log Z(alpha)`` with alpha and c learned.

    alpha and c are functions of free latent parameters, as in the paper:
    ``alpha = lo + (hi - lo) * sigmoid(a)`` keeps alpha in (lo, hi), and
    ``c = softplus(b) + c_lo`` keeps c above c_lo. There is one (alpha, c) per
    channel, or one per channel and pixel of a fixed image size.

    The NLL is multiplied by the initial scale c0, a constant: at the start
    its gradients match ``RobustLoss(alpha0, c0)`` (so swapping it in does not
    reweight the photometric term), and a positive constant factor does not
    change where alpha and c converge.

    Args:
        channels: channels of the residuals (3 for RGB).
        image_size: (H, W) for one (alpha, c) per pixel and channel; None for per channel.
        alpha_range: (lo, hi), with 0 <= lo < hi < inf (log Z is tabulated on [0, inf]).
        alpha_init: starting alpha (the range's middle when None). With
            ``learn_alpha=False`` it stays there.
        scale_init: starting c, intensity units.
        scale_lo: lower bound of c.
        learn_alpha: learn alpha (else fixed at alpha_init).
        learn_scale: learn c (else fixed at scale_init).
        yuv: score (N, 3, H, W) residuals in YUV instead of RGB.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: tuple[int, int] | None = None,
        alpha_range: tuple[float, float] = (0.001, 1.999),
        alpha_init: float | None = None,
        scale_init: float = 0.01,
        scale_lo: float = 1e-5,
        learn_alpha: bool = True,
        learn_scale: bool = True,
        yuv: bool = False,
    ) -> None:
        super().__init__()
        lo, hi = alpha_range
        if not 0 <= lo < hi < math.inf:
            raise ValueError(f"adaptive alpha_range must satisfy 0 <= lo < hi < inf, got ({lo}, {hi})")
        alpha_init = (lo + hi) / 2 if alpha_init is None else alpha_init
        if not lo < alpha_init < hi:
            raise ValueError(f"adaptive alpha_init {alpha_init} must lie inside alpha_range ({lo}, {hi})")
        if not 0 < scale_lo < scale_init:
            raise ValueError(f"adaptive scale must satisfy 0 < scale_lo < scale_init, got {scale_lo}, {scale_init}")
        if yuv and channels != 3:
            raise ValueError(f"yuv needs 3 channels, got {channels}")
        self.channels, self.image_size, self.yuv = channels, image_size, yuv
        self.alpha_lo, self.alpha_hi, self.scale_lo, self.scale_init = lo, hi, scale_lo, scale_init
        shape = (channels, *image_size) if image_size else (channels, 1, 1)  # broadcasts over (N, C, H, W)
        frac = (alpha_init - lo) / (hi - lo)
        a0 = torch.full(shape, math.log(frac / (1 - frac)))  # inverse sigmoid
        b0 = torch.full(shape, math.log(math.expm1(scale_init - scale_lo)))  # inverse softplus
        # A fixed alpha or c is a buffer: saved with the model, not trained.
        if learn_alpha:
            self.latent_alpha = nn.Parameter(a0)
        else:
            self.register_buffer("latent_alpha", a0)
        if learn_scale:
            self.latent_scale = nn.Parameter(b0)
        else:
            self.register_buffer("latent_scale", b0)
        # The log Z table moves with the module (.to(device)) but is not saved: it ships with the package.
        # Kept in float64 and cast to alpha's dtype per call, so a float64 module keeps full precision.
        log_z, dlog_z = table_tensors(torch.float64)
        self.register_buffer("log_z_values", log_z, persistent=False)
        self.register_buffer("log_z_slopes", dlog_z, persistent=False)

    def alpha(self) -> Tensor:
        """Current alpha, (C, 1, 1) or (C, H, W)."""
        return self.alpha_lo + (self.alpha_hi - self.alpha_lo) * torch.sigmoid(self.latent_alpha)

    def scale(self) -> Tensor:
        """Current c, (C, 1, 1) or (C, H, W)."""
        return F.softplus(self.latent_scale) + self.scale_lo

    def _log_z_table(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The log Z table in ``dtype`` (a no-op cast when the buffers already are)."""
        return self.log_z_values.to(dtype), self.log_z_slopes.to(dtype)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) residuals -> (N, C, H, W) NLL (times c0), per element."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"adaptive loss expects (N, {self.channels}, H, W) residuals, got {tuple(x.shape)}")
        if self.image_size and tuple(x.shape[-2:]) != tuple(self.image_size):
            h, w = self.image_size
            raise ValueError(
                f"adaptive loss was built for {w}x{h} images (one alpha and c per pixel), got "
                f"{x.shape[-1]}x{x.shape[-2]}"
            )
        alpha, c = self.alpha(), self.scale()
        # alpha in (lo, hi) and c > scale_lo by construction: no validation syncs on this hot path.
        rho = general(rgb_to_syuv(x) if self.yuv else x, alpha, c, check=False)
        table = self._log_z_table(alpha.dtype)
        log_z = log_partition(alpha, check=False, table=table, above_4=self.alpha_hi > ALPHA_MAX)
        nll = rho + torch.log(c) + log_z
        return self.scale_init * nll

    def extra_repr(self) -> str:
        where = f"per pixel of {self.image_size}" if self.image_size else "per channel"
        return f"channels={self.channels}, {where}, alpha in ({self.alpha_lo}, {self.alpha_hi}), yuv={self.yuv}"
