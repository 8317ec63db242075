"""Barron's general loss against closed forms and invariants, and the adaptive loss's NLL."""

from __future__ import annotations

import math

import pytest
import torch

from selfdepth.losses.log_partition import log_partition
from selfdepth.losses.representation import rgb_to_syuv
from selfdepth.losses.registry import PIXEL_LOSSES, get_pixel_loss
from selfdepth.losses.robust import (
    AdaptiveRobustLoss,
    RobustLoss,
    cauchy,
    charbonnier,
    general,
    geman_mcclure,
    l2,
    welsch,
)

X = torch.linspace(-30, 30, 601, dtype=torch.float64)
SCALES = (0.01, 0.3, 1.0, 4.0)

# Closed forms from Barron (2019), eq. 4-8, written out independently of the implementation.
CLOSED = {
    2.0: lambda x, c: 0.5 * (x / c) ** 2,  # L2
    1.0: lambda x, c: torch.sqrt((x / c) ** 2 + 1) - 1,  # Charbonnier
    0.0: lambda x, c: torch.log(0.5 * (x / c) ** 2 + 1),  # Cauchy
    -2.0: lambda x, c: 2 * (x / c) ** 2 / ((x / c) ** 2 + 4),  # Geman-McClure
    -math.inf: lambda x, c: 1 - torch.exp(-0.5 * (x / c) ** 2),  # Welsch
}


@pytest.mark.parametrize("alpha", list(CLOSED))
@pytest.mark.parametrize("c", SCALES)
def test_general_matches_closed_forms(alpha, c):
    torch.testing.assert_close(general(X, alpha, c), CLOSED[alpha](X, c), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", list(CLOSED))
def test_general_matches_closed_forms_in_float32(alpha):
    x = X.float() / 10
    torch.testing.assert_close(general(x, alpha, 0.3), CLOSED[alpha](x.double(), 0.3).float(), rtol=2e-5, atol=1e-6)


def test_named_shortcuts_are_the_closed_forms():
    for fn, alpha in ((l2, 2.0), (charbonnier, 1.0), (cauchy, 0.0), (geman_mcclure, -2.0), (welsch, -math.inf)):
        torch.testing.assert_close(fn(X, 0.7), CLOSED[alpha](X, 0.7))


def test_alpha_plus_infinity():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    torch.testing.assert_close(general(x, math.inf, 1.5), torch.exp(0.5 * (x / 1.5) ** 2) - 1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("special", [0.0, 2.0])
def test_continuous_across_alpha_0_and_2(special, dtype):
    """The exact special case and the general formula just beside it agree.

    The true rho moves by ~(delta / 2) log((x/c)^2 / delta) relative there: 5e-6 at |x/c| = 20, delta = 5e-7.
    """
    x = torch.linspace(-10, 10, 1000, dtype=dtype)
    exact = general(x, special, 0.5)
    for delta in (5e-7, -5e-7, 2.5e-7, -2.5e-7):
        near = general(x, special + delta, 0.5)
        rel = ((near - exact).abs() / exact).max().item()
        assert rel < 1e-5, f"alpha={special + delta}: relative jump {rel:.2e} ({dtype})"


@pytest.mark.parametrize("alpha", [1e-6, -1e-6, 1e-3, 0.5, 1.999, 2 - 1e-6, 2 + 1e-6, 2.5])
def test_float32_agrees_with_float64_near_the_special_alphas(alpha):
    x = torch.cat([-torch.logspace(-3, 4, 200), torch.logspace(-3, 4, 200)])
    rho64 = general(x.double(), alpha, 0.05)
    rho32 = general(x, alpha, 0.05)
    assert ((rho32.double() - rho64).abs() / rho64).max() < 1e-5


def test_scale_invariance_and_basic_shape():
    """rho(kx, alpha, kc) = rho(x, alpha, c); rho(0) = 0; rho >= 0, even, increasing in |x| and in alpha."""
    x = torch.linspace(0, 5, 101, dtype=torch.float64)
    alphas = (-math.inf, -8.0, -2.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    for alpha in alphas:
        for k in (0.1, 3.0, 250.0):
            torch.testing.assert_close(general(k * x, alpha, k * 0.8), general(x, alpha, 0.8))
        rho = general(x, alpha, 0.8)
        assert rho[0] == 0 and (rho.diff() > 0).all(), alpha
        torch.testing.assert_close(general(-x, alpha, 0.8), rho)
    stacked = torch.stack([general(x[1:], a, 0.8) for a in alphas])
    assert (stacked.diff(dim=0) > 0).all(), "rho must grow with alpha at every x != 0"


def test_quadratic_near_zero_for_every_alpha():
    """Every member has the same bowl, 0.5 (x/c)^2, for |x| << c."""
    x = torch.tensor([1e-4, -3e-4], dtype=torch.float64)
    for alpha in (-math.inf, -2.0, 0.0, 0.5, 1.0, 2.0, 5.0):
        torch.testing.assert_close(general(x, alpha, 1.0), 0.5 * x**2, rtol=1e-6, atol=0)


def test_stable_for_large_residuals_in_float32():
    x = torch.tensor([1e4, -1e6, 3e7], requires_grad=True)
    for alpha in (-math.inf, -2.0, 0.0, 1e-6, 0.5, 1.0, 1.999999, 2.0):
        rho = general(x, alpha, 0.01)
        (grad,) = torch.autograd.grad(rho.sum(), x)
        assert torch.isfinite(rho).all() and torch.isfinite(grad).all(), alpha


@pytest.mark.parametrize("alpha", [-3.0, -0.7, 0.3, 1.0, 1.6, 2.7])
def test_gradcheck_x_alpha_c(alpha):
    torch.manual_seed(0)
    x = (torch.randn(12, dtype=torch.float64) * 2).requires_grad_()
    a = torch.full((12,), alpha, dtype=torch.float64, requires_grad=True)
    c = (torch.rand(12, dtype=torch.float64) + 0.2).requires_grad_()
    assert torch.autograd.gradcheck(general, (x, a, c))


def test_gradients_finite_at_the_special_alphas():
    x = torch.tensor([0.0, 0.5, -2.0], dtype=torch.float64, requires_grad=True)
    for alpha in (-math.inf, 0.0, 2.0, math.inf):
        a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
        c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        grads = torch.autograd.grad(general(x, a, c).sum(), (x, a, c))
        assert all(torch.isfinite(g).all() for g in grads), alpha
        torch.testing.assert_close(grads[0], torch.autograd.grad(CLOSED.get(alpha, lambda x, c: torch.expm1(0.5 * x**2))(x, 1.0).sum(), x)[0])


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="scale c must be > 0"):
        general(X, 1.0, 0.0)
    with pytest.raises(ValueError, match="scale c must be > 0"):
        general(X, 1.0, torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="NaN"):
        general(X, math.nan, 1.0)
    with pytest.raises(ValueError, match="scale c must be > 0"):
        RobustLoss(1.0, -0.1)


def test_unknown_pixel_loss_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_pixel_loss("huber")
    for name in PIXEL_LOSSES:
        assert name in str(err.value)


def test_pixel_losses_are_in_intensity_units():
    """c * rho: Charbonnier with a small c is L1; every named loss has slope ~1 at |x| = c... and l1 is |x|."""
    x = torch.linspace(-1, 1, 201, dtype=torch.float64)
    torch.testing.assert_close(get_pixel_loss("l1")(x), x.abs())
    torch.testing.assert_close(get_pixel_loss("charbonnier", scale=1e-4)(x), x.abs(), atol=1e-4, rtol=0)
    torch.testing.assert_close(get_pixel_loss("barron", alpha=0.0, scale=0.05)(x), 0.05 * CLOSED[0.0](x, 0.05))
    torch.testing.assert_close(get_pixel_loss("welsch", scale=0.2)(x), 0.2 * CLOSED[-math.inf](x, 0.2))


def test_yuv_scores_the_converted_residual():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 0.1
    loss = get_pixel_loss("cauchy", scale=0.03, yuv=True)
    torch.testing.assert_close(loss(x), 0.03 * cauchy(rgb_to_syuv(x), 0.03))


# ----------------------------------------------------------------------------- adaptive


def _fit(samples: torch.Tensor, steps: int = 1000) -> AdaptiveRobustLoss:
    """Fit (alpha, c) to samples by minimising the mean NLL."""
    loss = AdaptiveRobustLoss(channels=1, scale_init=1.0).double()
    optimizer = torch.optim.Adam(loss.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(samples).mean().backward()
        optimizer.step()
    return loss


def test_adaptive_learns_alpha_2_from_gaussian_samples():
    torch.manual_seed(0)
    samples = (torch.randn(1, 1, 100, 100, dtype=torch.float64) * 0.5)
    fitted = _fit(samples)
    assert fitted.alpha().item() > 1.9
    assert abs(fitted.scale().item() - 0.5) < 0.03  # at alpha = 2, c is the standard deviation


def test_adaptive_learns_alpha_0_from_cauchy_samples():
    gen = torch.Generator().manual_seed(0)
    gamma = 0.5
    u = torch.rand(1, 1, 100, 100, dtype=torch.float64, generator=gen)
    samples = gamma * torch.tan(math.pi * (u - 0.5))
    fitted = _fit(samples)
    assert fitted.alpha().item() < 0.1
    assert abs(fitted.scale().item() - gamma / math.sqrt(2)) < 0.05  # alpha = 0 is Cauchy with gamma = c sqrt 2


def test_adaptive_nll_is_the_normalised_density():
    """NLL / c0 = rho + log c + log Z(alpha); it goes below zero for a narrow density."""
    loss = AdaptiveRobustLoss(channels=3, alpha_init=1.0, scale_init=0.01).double()
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    expected = math.log(0.01) + math.log(2 * math.e * 0.6019072301972346)  # Z(1) = 2 e K1(1)
    torch.testing.assert_close(loss(x) / 0.01, torch.full_like(x, expected), rtol=1e-6, atol=1e-6)
    assert (loss(x) < 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [0.3, 1.0, 1.7])
def test_adaptive_cached_log_z_table_matches_the_function(alpha, dtype):
    """The module's cached log Z table (buffers) gives exactly log_partition's NLL, at full float64 precision."""
    loss = AdaptiveRobustLoss(alpha_init=alpha, scale_init=0.05).to(dtype)
    x = torch.randn(2, 3, 4, 5, dtype=dtype) * 0.1
    a, c = loss.alpha(), loss.scale()
    expected = 0.05 * (general(x, a, c) + torch.log(c) + log_partition(a))
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(loss(x), expected, rtol=tol, atol=tol)


def test_adaptive_fixed_alpha_or_scale_are_not_trained_and_round_trip():
    fixed_alpha = AdaptiveRobustLoss(alpha_init=1.5, learn_alpha=False)
    assert [n for n, _ in fixed_alpha.named_parameters()] == ["latent_scale"]
    torch.testing.assert_close(fixed_alpha.alpha(), torch.full((3, 1, 1), 1.5))
    fixed_scale = AdaptiveRobustLoss(scale_init=0.2, learn_scale=False)
    assert [n for n, _ in fixed_scale.named_parameters()] == ["latent_alpha"]
    torch.testing.assert_close(fixed_scale.scale(), torch.full((3, 1, 1), 0.2))
    with torch.no_grad():
        fixed_scale.latent_alpha.fill_(2.0)
    again = AdaptiveRobustLoss(scale_init=0.2, learn_scale=False)
    assert sorted(fixed_scale.state_dict()) == ["latent_alpha", "latent_scale"]  # the log Z table is not saved
    again.load_state_dict(fixed_scale.state_dict())
    torch.testing.assert_close(again.alpha(), fixed_scale.alpha())


def test_adaptive_per_pixel_checks_the_image_size():
    loss = AdaptiveRobustLoss(channels=3, image_size=(8, 16))
    assert loss.alpha().shape == (3, 8, 16)
    assert loss(torch.zeros(2, 3, 8, 16)).shape == (2, 3, 8, 16)
    with pytest.raises(ValueError, match="built for 16x8 images"):
        loss(torch.zeros(2, 3, 16, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        loss(torch.zeros(2, 1, 8, 16))


def test_adaptive_invalid_ranges_raise():
    with pytest.raises(ValueError, match="alpha_range"):
        AdaptiveRobustLoss(alpha_range=(-0.5, 1.0))
    with pytest.raises(ValueError, match="alpha_range"):
        AdaptiveRobustLoss(alpha_range=(0.0, math.inf))  # the sigmoid map needs a finite top
    with pytest.raises(ValueError, match="alpha_range"):
        AdaptiveRobustLoss(alpha_range=(1.0, 1.0))


def test_adaptive_range_above_4_uses_the_whole_log_z():
    """alpha may exceed 4 now that log Z covers [0, inf]: the module's NLL matches the distribution's."""
    from selfdepth.losses.distribution import nll

    loss = AdaptiveRobustLoss(channels=1, alpha_range=(0.0, 10.0), alpha_init=7.5, scale_init=0.5).double()
    x = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(1, 1, 3, 3)
    expected = 0.5 * nll(x, loss.alpha().detach(), loss.scale().detach())  # times c0, as documented
    torch.testing.assert_close(loss(x), expected)
    with pytest.raises(ValueError, match="inside alpha_range"):
        AdaptiveRobustLoss(alpha_init=1.999)
    with pytest.raises(ValueError, match="scale_lo"):
        AdaptiveRobustLoss(scale_init=0.0)
