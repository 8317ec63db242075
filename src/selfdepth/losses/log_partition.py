"""log Z(alpha), the log partition function of Barron's robust loss, for alpha in [0, ALPHA_MAX].

    Z(alpha) = integral over the real line of exp(-rho(x, alpha, 1)) dx

It has no closed form except at a few points (Z(0) = pi sqrt 2, the Cauchy
density; Z(2) = sqrt(2 pi), the Gaussian; Z(1) = 2 e K_1(1)). ``integrate``
computes it by quadrature; ``scripts/make_log_partition_table.py`` runs that
once on a grid (see ``alpha_to_knot``) and writes ``log_partition.json``:
values and the slopes of a cubic spline through them, which ships with the
package. ``log_partition`` evaluates it as a cubic Hermite interpolant:
smooth in alpha, differentiable in torch, and exact at the knots. Below alpha = 0 the density is not
normalisable (rho is bounded), so the adaptive loss keeps alpha >= 0.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = ["ALPHA_MAX", "TABLE_FILE", "log_partition", "table_tensors", "integrate", "rho_float64", "alpha_to_knot"]

ALPHA_MAX = 4.0  # the table covers [0, ALPHA_MAX]
TABLE_FILE = "log_partition.json"


def rho_float64(x: np.ndarray, alpha: float) -> np.ndarray:
    """rho(x, alpha, 1) in float64 numpy, for quadrature (alpha >= 0; 0 and 2 exact)."""
    sq = np.square(x)
    if alpha == 0:
        return np.log1p(0.5 * sq)
    if alpha == 2:
        return 0.5 * sq
    beta = abs(alpha - 2)
    return beta / alpha * np.expm1(0.5 * alpha * np.log1p(sq / beta))


def integrate(alpha: float) -> float:
    """log Z(alpha) by adaptive quadrature (scipy), float64, relative error ~1e-12."""
    from scipy.integrate import quad

    if not 0 <= alpha <= ALPHA_MAX:
        raise ValueError(f"alpha must be in [0, {ALPHA_MAX}], got {alpha}")

    def density(x: float) -> float:
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
def _table() -> tuple[float, np.ndarray, np.ndarray]:
    """(knot spacing in t, log Z at the knots, d log Z / dt at the knots), read once."""
    text = resources.files("selfdepth.losses").joinpath(TABLE_FILE).read_text()
    data = json.loads(text)
    return float(data["t_step"]), np.asarray(data["log_z"]), np.asarray(data["dlog_z_dt"])


def table_tensors(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The shipped table as (log Z at the knots, d log Z per knot interval), each (K,).

    Modules that call ``log_partition`` every step keep these as buffers, so the
    table is not copied to the device on every call.
    """
    step, log_z, dlog_z = _table()
    values = torch.as_tensor(log_z, dtype=dtype, device=device)
    slopes = torch.as_tensor(dlog_z * step, dtype=dtype, device=device)
    return values, slopes


def log_partition(alpha: Tensor, check: bool = True, table: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """log Z(alpha), elementwise, by cubic Hermite interpolation of the shipped table.

    Args:
        alpha: any shape, values in [0, ALPHA_MAX].
        check: raise for alpha outside the table; False skips it (the check is a host sync),
            for callers whose alpha is in range by construction.
        table: ``table_tensors()`` already on alpha's device and dtype; built here when None.

    Returns:
        log Z of ``alpha``'s shape, dtype and device; differentiable in ``alpha``.
    """
    if check and ((alpha < 0) | (alpha > ALPHA_MAX)).any():
        raise ValueError(f"log Z(alpha) is tabulated for alpha in [0, {ALPHA_MAX}], got {alpha.min().item()} to "
                         f"{alpha.max().item()}")
    values, slopes = table_tensors(alpha.dtype, alpha.device) if table is None else table
    step = _table()[0]  # knots at t = 0, step, 2 step, ... 2
    pos = alpha_to_knot(alpha) / step
    i = pos.detach().floor().clamp(0, len(values) - 2).long()
    t = pos - i  # in [0, 1], carries the gradient
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * values[i]
        + (t3 - 2 * t2 + t) * slopes[i]
        + (-2 * t3 + 3 * t2) * values[i + 1]
        + (t3 - t2) * slopes[i + 1]
    )
