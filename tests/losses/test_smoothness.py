"""Edge-aware smoothness."""

from __future__ import annotations

import torch

from selfdepth.losses import edge_aware_smoothness


def test_zero_on_constant_disparity():
    image = torch.rand(2, 3, 10, 12)
    assert edge_aware_smoothness(torch.full((2, 1, 10, 12), 0.3), image).abs().max() == 0


def test_invariant_to_disparity_scale():
    torch.manual_seed(0)
    disp, image = torch.rand(2, 1, 10, 12) + 0.1, torch.rand(2, 3, 10, 12)
    torch.testing.assert_close(edge_aware_smoothness(disp, image), edge_aware_smoothness(5 * disp, image))


def test_edges_in_the_image_forgive_disparity_edges():
    disp = torch.zeros(1, 1, 4, 8)
    disp[..., 4:] = 1.0
    disp = disp + 0.5
    flat = torch.zeros(1, 3, 4, 8)
    edge = flat.clone()
    edge[..., 4:] = 1.0
    assert edge_aware_smoothness(disp, edge).sum() < 0.5 * edge_aware_smoothness(disp, flat).sum()
    assert edge_aware_smoothness(disp, flat).shape == (1, 1, 4, 8)


def test_mean_is_monodepth2s_two_means_over_the_differences():
    """Monodepth2 averages x-differences over H (W-1) and y-differences over (H-1) W; the map's mean over
    H W equals that. Closed form: disparity 1 + a x + b y on a flat image, normalised by its mean m, has
    |dx| = a / m at every one of the H (W-1) x-differences and |dy| = b / m at the (H-1) W y-differences."""
    h, w, a, b = 5, 7, 0.02, 0.05
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    disp = (1 + a * x + b * y)[None, None]
    m = float(disp.mean())
    flat = torch.zeros(1, 3, h, w, dtype=torch.float64)
    value = edge_aware_smoothness(disp, flat).mean()
    torch.testing.assert_close(value, torch.tensor(a / m + b / m, dtype=torch.float64))
    # The same through Monodepth2's own formula, written out.
    d = disp / disp.mean()
    ref = (d[..., :, :-1] - d[..., :, 1:]).abs().mean() + (d[..., :-1, :] - d[..., 1:, :]).abs().mean()
    torch.testing.assert_close(value, ref)
    assert edge_aware_smoothness(torch.rand(1, 1, 1, 4) + 0.5, torch.zeros(1, 3, 1, 4)).isfinite().all()
