"""Photometric error, SSIM, minimum reprojection and auto-masking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfdepth.losses import min_reprojection, photometric_error, ssim


def _ssim_reference(x, y):
    """Monodepth2's SSIM: reflection pad + 3x3 average pooling of each statistic."""
    pad = lambda t: F.pad(t, (1, 1, 1, 1), mode="reflect")  # noqa: E731
    pool = lambda t: F.avg_pool2d(pad(t), 3, 1)  # noqa: E731
    mu_x, mu_y = pool(x), pool(y)
    sx, sy, sxy = pool(x * x) - mu_x**2, pool(y * y) - mu_y**2, pool(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return (2 * mu_x * mu_y + c1) * (2 * sxy + c2) / ((mu_x**2 + mu_y**2 + c1) * (sx + sy + c2))


def test_ssim_of_image_with_itself_is_one():
    x = torch.rand(2, 3, 16, 20, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, x), torch.ones_like(x))


def test_ssim_matches_the_pooling_definition():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 16, 20, dtype=torch.float64), torch.rand(2, 3, 16, 20, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, y), _ssim_reference(x, y))
    assert ssim(x, y).mean() < 0.5


def test_photometric_error_is_zero_for_equal_images_and_weighted():
    torch.manual_seed(1)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    assert photometric_error(x, x).abs().max() < 1e-12
    y = x + 0.1
    l1_only = photometric_error(y, x, ssim_weight=0.0)
    torch.testing.assert_close(l1_only, torch.full((1, 1, 8, 8), 0.1, dtype=torch.float64))
    # A constant offset barely changes structure, so SSIM-heavy weighting scores it lower.
    assert photometric_error(y, x, ssim_weight=0.85).mean() < l1_only.mean()


def test_min_reprojection_takes_the_per_pixel_minimum():
    errors = torch.tensor([[[[0.5, 0.1]], [[0.2, 0.4]]]])  # (B=1, S=2, H=1, W=2)
    loss, mask = min_reprojection(errors)
    torch.testing.assert_close(loss, torch.tensor([[[[0.2, 0.1]]]]))
    assert mask.all()
    mean, _ = min_reprojection(errors, minimum=False)
    torch.testing.assert_close(mean, torch.tensor([[[[0.35, 0.25]]]]))


def test_automask_drops_pixels_the_unwarped_source_explains():
    errors = torch.tensor([[[[0.3, 0.3]], [[0.4, 0.2]]]])
    identity = torch.tensor([[[[0.1, 0.9]], [[0.9, 0.9]]]])  # pixel 0: a source already matches unwarped
    loss, mask = min_reprojection(errors, identity)
    assert mask.tolist() == [[[[False, True]]]]
    torch.testing.assert_close(loss, torch.tensor([[[[0.1, 0.2]]]]))  # masked: the unwarped error


def test_mean_reprojection_averages_the_unwarped_errors_too():
    """min_reprojection=false is Monodepth2's --avg_reprojection: both the warped and the unwarped errors are
    averaged over the sources before the auto-mask compares them (closed form on two pixels)."""
    errors = torch.tensor([[[[0.3, 0.3]], [[0.4, 0.2]]]])  # warped means: 0.35, 0.25
    identity = torch.tensor([[[[0.1, 0.9]], [[0.9, 0.9]]]])  # unwarped means: 0.5, 0.9 (minima 0.1, 0.9)
    loss, mask = min_reprojection(errors, identity, minimum=False)
    assert mask.tolist() == [[[[True, True]]]]  # with the minimum of the unwarped errors pixel 0 was masked
    torch.testing.assert_close(loss, torch.tensor([[[[0.35, 0.25]]]]))
    loss, mask = min_reprojection(errors, torch.tensor([[[[0.2, 0.9]], [[0.3, 0.1]]]]), minimum=False)
    assert mask.tolist() == [[[[False, True]]]]  # pixel 0: unwarped mean 0.25 < 0.35
    torch.testing.assert_close(loss, torch.tensor([[[[0.25, 0.25]]]]))
