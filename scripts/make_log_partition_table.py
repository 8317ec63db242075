"""Tabulate log Z(alpha) of Barron's robust loss for ``selfdepth.losses.log_partition``.

Integrates exp(-rho(x, alpha, 1)) over the real line with scipy's adaptive
quadrature at the knots alpha = 2 + 2 (t - 1)^3, t = 0, 1/1024, ..., 2 (dense
around alpha = 2, where log Z is not smooth in alpha), and for alpha > 4 at
u = 4 / alpha = 0, 1/256, ..., 1 (u = 0 is alpha = +inf); fits cubic splines
for the slopes, and writes src/selfdepth/losses/log_partition.json.
Takes about 20 seconds.

    .venv/bin/python scripts/make_log_partition_table.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from selfdepth.losses.log_partition import ALPHA_MAX, TABLE_FILE, integrate

STEP = 1 / 1024
HIGH_STEP = 1 / 256
OUT = Path(__file__).resolve().parents[1] / "src" / "selfdepth" / "losses" / TABLE_FILE


def main() -> None:
    assert ALPHA_MAX == 4.0, "the knot map alpha = 2 + 2 (t - 1)^3 assumes [0, 4]"
    t = np.arange(round(2 / STEP) + 1) * STEP
    alpha = np.clip(2 + 2 * (t - 1) ** 3, 0.0, ALPHA_MAX)
    log_z = np.array([integrate(float(a)) for a in alpha])
    slopes = CubicSpline(t, log_z)(t, 1)  # not-a-knot ends
    u = np.arange(round(1 / HIGH_STEP) + 1) * HIGH_STEP
    high_alpha = [math.inf if ui == 0 else ALPHA_MAX / ui for ui in u]
    high = np.array([integrate(a) for a in high_alpha])
    high_slopes = CubicSpline(u, high)(u, 1)
    table = {
        "about": "log Z(alpha), Z = integral of exp(-rho(x, alpha, 1)) dx, at alpha = 2 + 2 (t - 1)^3 for "
        "t = i * t_step, with d log Z / dt from a cubic spline; written by scripts/make_log_partition_table.py",
        "t_step": STEP,
        "log_z": log_z.tolist(),
        "dlog_z_dt": slopes.tolist(),
        "high": {
            "about": "log Z at alpha = 4 / u for u = i * u_step (u = 0: alpha = +inf), with d log Z / du",
            "u_step": HIGH_STEP,
            "log_z": high.tolist(),
            "dlog_z_du": high_slopes.tolist(),
        },
    }
    OUT.write_text(json.dumps(table) + "\n")
    print(f"wrote {len(t)} knots to {OUT}")
    print(f"log Z(0) = {log_z[0]:.12f} (closed form {math.log(math.pi * math.sqrt(2)):.12f})")
    print(f"log Z(2) = {log_z[len(t) // 2]:.12f} (closed form {0.5 * math.log(2 * math.pi):.12f})")
    print(f"log Z(inf) = {high[0]:.12f}")


if __name__ == "__main__":
    main()
