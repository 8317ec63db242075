"""log Z(alpha): closed forms, quadrature, normalisation and smoothness of the shipped table."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import k1

from selfdepth.losses.log_partition import ALPHA_MAX, integrate, log_partition
from selfdepth.losses.robust import general


def _log_z(alpha: float) -> float:
    return log_partition(torch.tensor(alpha, dtype=torch.float64)).item()


def test_closed_forms():
    assert _log_z(0.0) == pytest.approx(math.log(math.pi * math.sqrt(2)), abs=1e-12)  # Cauchy
    assert _log_z(2.0) == pytest.approx(0.5 * math.log(2 * math.pi), abs=1e-12)  # Gaussian
    # alpha = 1 is not a knot: integral of exp(1 - sqrt(x^2 + 1)) = 2 e K1(1).
    assert _log_z(1.0) == pytest.approx(math.log(2 * math.e * k1(1.0)), abs=1e-9)


@pytest.mark.parametrize("alpha", [0.0007, 0.013, 0.21, 0.5, 0.93, 1.37, 1.8, 1.99, 1.999, 1.99999, 2.003, 2.7, 3.9])
def test_interpolant_matches_quadrature_between_knots(alpha):
    assert _log_z(alpha) == pytest.approx(integrate(alpha), abs=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0, 1.7, 1.999, 3.0])
@pytest.mark.parametrize("c", [0.05, 1.0])
def test_density_integrates_to_one(alpha, c):
    """exp(-rho(x, alpha, c)) / (c Z(alpha)) is a probability density, with Z from the table."""
    z = math.exp(_log_z(alpha))

    def density(x: float) -> float:
        return math.exp(-general(torch.tensor(x, dtype=torch.float64), alpha, c).item()) / (c * z)

    total = 2 * (quad(density, 0, 8 * c, limit=200)[0] + quad(density, 8 * c, math.inf, limit=200)[0])
    assert total == pytest.approx(1.0, abs=1e-6)


def test_gradcheck_and_derivative_against_quadrature():
    alpha = torch.tensor([0.01, 0.4, 1.1, 1.6, 1.95, 2.4, 3.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(log_partition, (alpha,))
    (grad,) = torch.autograd.grad(log_partition(alpha).sum(), alpha)
    h = 1e-4
    numeric = [(integrate(a + h) - integrate(a - h)) / (2 * h) for a in alpha.tolist()]
    np.testing.assert_allclose(grad.numpy(), numeric, atol=1e-4)


def test_decreasing_and_steep_towards_alpha_2():
    """Z falls as alpha grows (rho grows with alpha), and its slope diverges like log|alpha - 2| at 2."""
    alpha = torch.linspace(0, ALPHA_MAX, 4001, dtype=torch.float64)
    assert (log_partition(alpha).diff() < 0).all()
    near = torch.tensor([1.9, 1.99, 1.999, 1.9999], dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(log_partition(near).sum(), near)
    assert (slope.diff() < 0).all() and torch.isfinite(slope).all()


def test_shipped_table_matches_fresh_quadrature_at_its_knots():
    data = json.loads(resources.files("selfdepth.losses").joinpath("log_partition.json").read_text())
    step, log_z = data["t_step"], data["log_z"]
    for i in (1, 300, 777, 1024, 1500, len(log_z) - 1):
        alpha = min(max(2 + 2 * (i * step - 1) ** 3, 0.0), ALPHA_MAX)
        assert log_z[i] == pytest.approx(integrate(alpha), abs=1e-10)


def test_out_of_range_alpha_raises():
    with pytest.raises(ValueError, match=r"alpha in \[0, 4"):
        log_partition(torch.tensor([-0.1, 1.0]))
    with pytest.raises(ValueError, match=r"alpha in \[0, 4"):
        log_partition(torch.tensor(4.5))


def test_float32_and_batched_shapes():
    alpha = torch.rand(2, 3, 4) * 2
    out = log_partition(alpha)
    assert out.shape == alpha.shape and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), log_partition(alpha.double()), atol=1e-6, rtol=0)

