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
