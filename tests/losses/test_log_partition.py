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


def test_float32_and_batched_shapes():
    alpha = torch.rand(2, 3, 4) * 2
    out = log_partition(alpha)
    assert out.shape == alpha.shape and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), log_partition(alpha.double()), atol=1e-6, rtol=0)



# ----------------------------------------------------------------------------- the whole range [0, inf], sampling


def _mp_log_z(alpha: float) -> float:
    """An independent high-precision quadrature (mpmath, 30 digits) of log Z(alpha)."""
    import mpmath

    mpmath.mp.dps = 30
    a = mpmath.mpf(alpha)
    if alpha == 0:
        rho = lambda x: mpmath.log(1 + x * x / 2)  # noqa: E731
    elif alpha == 2:
        rho = lambda x: x * x / 2  # noqa: E731
    else:
        b = abs(a - 2)
        rho = lambda x: b / a * ((x * x / b + 1) ** (a / 2) - 1)  # noqa: E731
    return float(mpmath.log(2 * mpmath.quad(lambda x: mpmath.exp(-rho(x)), [0, 1, 4, 16, mpmath.inf])))


@pytest.mark.parametrize("n", range(23))
def test_log_z_at_n_over_11_matches_high_precision_quadrature(n):
    assert _log_z(n / 11) == pytest.approx(_mp_log_z(n / 11), abs=1e-7)


@pytest.mark.parametrize("alpha", [4.5, 7.0, 13.7, 100.0, 1234.5, math.exp(8)])
def test_log_z_above_4_matches_quadrature(alpha):
    assert _log_z(alpha) == pytest.approx(integrate(alpha), abs=1e-7)


def test_log_z_at_infinity():
    assert _log_z(math.inf) == pytest.approx(0.70526025442, abs=1e-7)
    alpha = torch.tensor([1.0, 4.0, 5.0, math.inf], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(log_partition(alpha).sum(), alpha)
    assert torch.isfinite(grad).all()
    # Continuous across the two tables at alpha = 4.
    assert _log_z(4.0 - 1e-9) == pytest.approx(_log_z(4.0 + 1e-9), abs=1e-8)


@pytest.mark.parametrize("k", range(-4, 9))
def test_density_integrates_to_one_from_e_minus_4_to_e_8(k):
    from selfdepth.losses.distribution import nll

    alpha, c = math.exp(k), 0.7

    def density(x: float) -> float:
        return math.exp(-nll(torch.tensor(x, dtype=torch.float64), alpha, c).item())

    total = 2 * (quad(density, 0, 8 * c, limit=200)[0] + quad(density, 8 * c, math.inf, limit=200)[0])
    assert total == pytest.approx(1.0, abs=1e-6)


def test_samples_follow_cauchy_at_0_and_normal_at_2():
    from scipy import stats

    from selfdepth.losses.distribution import sample

    g = torch.Generator().manual_seed(0)
    c = 0.3
    cauchy = sample(0.0, c, (16384,), g).numpy()
    normal = sample(2.0, c, (16384,), g).numpy()
    assert stats.kstest(cauchy, stats.cauchy(scale=c * math.sqrt(2)).cdf).statistic < 0.01
    assert stats.kstest(normal, stats.norm(scale=c).cdf).statistic < 0.01
    # ...and not the other way round: the test can tell them apart.
    assert stats.kstest(cauchy, stats.norm(scale=c).cdf).statistic > 0.05


def test_samples_at_other_alphas_match_the_density():
    """At alpha = 1 and +inf the empirical CDF matches the numerically integrated one."""

    from selfdepth.losses.distribution import nll, sample

    g = torch.Generator().manual_seed(1)
    for alpha in (1.0, math.inf):
        draws = sample(alpha, 1.0, (16384,), g).numpy()

        def cdf(x, alpha=alpha):
            f = lambda t: math.exp(-nll(torch.tensor(t, dtype=torch.float64), alpha, 1.0).item())  # noqa: E731
            return np.array([0.5 + np.sign(v) * quad(f, 0, abs(v))[0] for v in np.atleast_1d(x)])

        xs = np.sort(draws)[:: 512]
        empirical = (np.searchsorted(np.sort(draws), xs, side="right")) / len(draws)
        assert np.abs(empirical - cdf(xs)).max() < 0.015, alpha


def test_out_of_range_alpha_raises_for_negative_or_nan():
    with pytest.raises(ValueError, match=r"alpha in \[0, inf\]"):
        log_partition(torch.tensor([-0.1, 1.0]))
    with pytest.raises(ValueError, match=r"alpha in \[0, inf\]"):
        log_partition(torch.tensor(float("nan")))
