"""log Z(alpha), the log partition function of Barron's robust loss, for alpha in [0, +inf].

    Z(alpha) = integral over the real line of exp(-rho(x, alpha, 1)) dx

It has no closed form except at a few points (Z(0) = pi sqrt 2, the Cauchy
density; Z(2) = sqrt(2 pi), the Gaussian; Z(1) = 2 e K_1(1)). ``integrate``
computes it by quadrature; ``scripts/make_log_partition_table.py`` runs that
once on a grid (see ``alpha_to_knot``) and writes ``log_partition.json``:
values and the slopes of a cubic spline through them, which ships with the
package. ``log_partition`` evaluates it as a cubic Hermite interpolant:
smooth in alpha, differentiable in torch, and exact at the knots. Below alpha = 0 the density is not
normalisable (rho is bounded), so the adaptive loss keeps alpha >= 0.

Two tables cover [0, inf]: one over [0, ALPHA_MAX] = [0, 4] in the knot coordinate of
``alpha_to_knot`` (dense around alpha = 2), and one over (4, inf] in u = 4 / alpha in [0, 1)
(rho is analytic in 1/alpha as alpha grows, so log Z is smooth in u; u = 0 is alpha = +inf,
where rho = exp(x^2 / 2) - 1 and log Z = 0.70526025442...).
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ALPHA_MAX",
    "TABLE_FILE",
    "log_partition",
    "table_tensors",
    "integrate",
    "rho_float64",
    "alpha_to_knot",
    "LOG_Z_INF",
]

ALPHA_MAX = 4.0  # the first table covers [0, ALPHA_MAX]; the second (ALPHA_MAX, inf]
TABLE_FILE = "log_partition.json"
LOG_Z_INF = 0.7052602544167727  # log Z(+inf): log of the integral of exp(1 - exp(x^2 / 2)), by quadrature


def rho_float64(x: np.ndarray, alpha: float) -> np.ndarray:
    """rho(x, alpha, 1) in float64 numpy, for quadrature (alpha >= 0 or +inf; 0, 2 and inf exact)."""
    sq = np.square(x)
    if alpha == math.inf:
        return np.expm1(0.5 * sq)
    if alpha == 0:
        return np.log1p(0.5 * sq)
    if alpha == 2:
        return 0.5 * sq
    beta = abs(alpha - 2)
    return beta / alpha * np.expm1(0.5 * alpha * np.log1p(sq / beta))


def integrate(alpha: float) -> float:
    """log Z(alpha) by adaptive quadrature (scipy), float64, relative error ~1e-12."""
    from scipy.integrate import quad

    if not alpha >= 0:
        raise ValueError(f"alpha must be in [0, inf], got {alpha}")

    def density(x: float) -> float:
        with np.errstate(over="ignore"):  # rho overflows to inf far out for alpha > 2: density 0 there
            return math.exp(-float(rho_float64(np.float64(x), alpha)))

    opts = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": 1000}
    # Symmetric in x: twice the integral over [0, inf), split where the bowl ends.
    return math.log(2 * (quad(density, 0, 8, **opts)[0] + quad(density, 8, math.inf, **opts)[0]))


def alpha_to_knot(alpha: Tensor) -> Tensor:
    """The table's knot coordinate t = 1 + cbrt((alpha - 2) / 2), in [0, 2] for alpha in [0, 4].

    log Z is not smooth at alpha = 2: its slope falls like log|alpha - 2| there
    (d rho / d alpha has a log(x^2 / |alpha - 2|) factor). With alpha = 2 + 2 (t - 1)^3
    the knots crowd cubically around 2 and log Z is smooth enough in t for a
    cubic interpolant (error < 1e-7, checked by the tests against quadrature).
    """
    a = (alpha - 2) / 2
    return 1 + torch.sign(a) * a.abs().clamp(min=1e-30) ** (1 / 3)  # clamp: finite gradient at alpha = 2


@functools.cache
def _table(part: str = "low") -> tuple[float, np.ndarray, np.ndarray]:
    """(knot spacing, log Z at the knots, its derivative at the knots) of the "low" table (in t) or "high" (in u)."""
    text = resources.files("selfdepth.losses").joinpath(TABLE_FILE).read_text()
    data = json.loads(text)
    if part == "high":
        high = data["high"]
        return float(high["u_step"]), np.asarray(high["log_z"]), np.asarray(high["dlog_z_du"])
    return float(data["t_step"]), np.asarray(data["log_z"]), np.asarray(data["dlog_z_dt"])


def table_tensors(
    dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu", part: str = "low"
) -> tuple[Tensor, Tensor]:
    """A shipped table as (log Z at the knots, d log Z per knot interval), each (K,).

    Modules that call ``log_partition`` every step keep these as buffers, so the
    table is not copied to the device on every call.
    """
    step, log_z, dlog_z = _table(part)
    values = torch.as_tensor(log_z, dtype=dtype, device=device)
    slopes = torch.as_tensor(dlog_z * step, dtype=dtype, device=device)
    return values, slopes


def _hermite(pos: Tensor, values: Tensor, slopes: Tensor) -> Tensor:
    """Cubic Hermite interpolation at ``pos`` in knot units (knot k at pos = k); slopes per knot interval."""
    i = pos.detach().floor().clamp(0, len(values) - 2).long()
    t = pos - i  # in [0, 1], carries the gradient
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * values[i]
        + (t3 - 2 * t2 + t) * slopes[i]
        + (-2 * t3 + 3 * t2) * values[i + 1]
        + (t3 - t2) * slopes[i + 1]
    )


def log_partition(
    alpha: Tensor, check: bool = True, table: tuple[Tensor, Tensor] | None = None, above_4: bool | None = None
) -> Tensor:
    """log Z(alpha), elementwise, by cubic Hermite interpolation of the shipped tables.

    Args:
        alpha: any shape, values in [0, +inf] (+inf included).
        check: raise for alpha outside [0, inf] or NaN; False skips it (the check is a host sync),
            for callers whose alpha is in range by construction.
        table: the low table from ``table_tensors()`` already on alpha's device and dtype (used for
            alpha <= ALPHA_MAX); built here when None.
        above_4: whether any alpha may exceed ALPHA_MAX (then the second table is used there); None
            finds out (a host sync). Callers that bound alpha pass False.

    Returns:
        log Z of ``alpha``'s shape, dtype and device; differentiable in ``alpha`` (finite everywhere).
    """
    if check and (~(alpha >= 0)).any():
        raise ValueError(f"log Z(alpha) is defined for alpha in [0, inf], got {alpha.min().item()}")
    values, slopes = table_tensors(alpha.dtype, alpha.device) if table is None else table
    low_alpha = alpha.clamp(max=ALPHA_MAX)  # each branch sees only values in its own range
    low = _hermite(alpha_to_knot(low_alpha) / _table("low")[0], values, slopes)
    high_mask = alpha > ALPHA_MAX
    if above_4 is None:
        above_4 = bool(high_mask.any())
    if above_4:
        high_values, high_slopes = table_tensors(alpha.dtype, alpha.device, "high")
        u = ALPHA_MAX / torch.where(high_mask, alpha, torch.full_like(alpha, ALPHA_MAX))  # 1/inf = 0: alpha = inf
        high = _hermite(u / _table("high")[0], high_values, high_slopes)
        low = torch.where(high_mask, high, low)
    return low
