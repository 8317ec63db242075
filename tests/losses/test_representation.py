"""Representations for the robust loss: exact inverses, |det| = 1, sums kept when spread to pixels, and adaptive fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfdepth.losses.representation import (
    ImageLoss,
    dct2,
    idct2,
    iwavelet2,
    rgb_to_syuv,
    spread_to_pixels,
    syuv_matrix,
    wavelet2,
)
from selfdepth.losses.registry import get_pixel_loss
from selfdepth.losses.robust import AdaptiveRobustLoss, RobustLoss


@pytest.mark.parametrize("wavelet", ["cdf97", "legall53"])
@pytest.mark.parametrize("levels", [1, 3, 5])
def test_wavelet_reconstructs_its_input(wavelet, levels):
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    y = wavelet2(x, levels, wavelet)
    assert y.shape == x.shape
    torch.testing.assert_close(iwavelet2(y, levels, wavelet), x, atol=1e-5, rtol=0)
    # float32, as in training
    torch.testing.assert_close(iwavelet2(wavelet2(x.float(), levels, wavelet), levels, wavelet), x.float(), atol=1e-5, rtol=0)


def test_dct_reconstructs_and_is_orthonormal():
    x = torch.randn(2, 3, 32, 48, dtype=torch.float64)
    torch.testing.assert_close(idct2(dct2(x)), x, atol=1e-10, rtol=0)
    assert float(dct2(x).pow(2).sum()) == pytest.approx(float(x.pow(2).sum()), rel=1e-10)  # Parseval


def _operator(transform, n: int) -> torch.Tensor:
    """The (n*n, n*n) matrix of a transform of one n x n plane, column k = transform of basis image k."""
    basis = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    return transform(basis).reshape(n * n, n * n).T


@pytest.mark.parametrize(
    "name, transform",
    [
        ("dct", dct2),
        ("cdf97, 3 levels", lambda x: wavelet2(x, 3, "cdf97")),
        ("legall53, 3 levels", lambda x: wavelet2(x, 3, "legall53")),
    ],
)
def test_transforms_preserve_volume(name, transform):
    matrix = _operator(transform, 16)
    sign, logdet = torch.linalg.slogdet(matrix)
    assert sign != 0 and abs(float(logdet)) < 1e-9, (name, float(logdet))


def test_cdf97_is_biorthogonal_not_orthonormal():
    matrix = _operator(lambda x: wavelet2(x, 1, "cdf97"), 16)  # documented: volume-preserving, not orthonormal
    assert float((matrix @ matrix.T - torch.eye(256, dtype=torch.float64)).abs().max()) > 1e-3


def test_volume_preserving_yuv():
    from kornia.color import rgb_to_yuv

    assert abs(np.linalg.det(syuv_matrix())) == pytest.approx(1.0, abs=1e-12)
    x = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    ratio = rgb_to_syuv(x) / rgb_to_yuv(x)  # kornia's YUV (not volume-preserving) up to one factor
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio.mean())), atol=1e-2, rtol=1e-2)
    assert float(ratio.mean()) == pytest.approx(1.58, abs=0.01)  # |det| of kornia's matrix is ~0.25


@pytest.mark.parametrize("representation", ["pixel", "dct", "wavelet"])
def test_spreading_to_pixels_keeps_the_total(representation):
    loss = torch.rand(2, 3, 32, 64, dtype=torch.float64)
    spread = spread_to_pixels(loss, representation, levels=4)
    assert spread.shape == loss.shape
    torch.testing.assert_close(spread.sum((-2, -1)), loss.sum((-2, -1)))


def test_a_wavelet_coefficient_spreads_over_its_block():
    # 32x32, 3 levels: level 3's bands are 4x4; its "highpass along H" band sits at rows 4..7, cols 0..3.
    loss = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    loss[0, 0, 5, 2] = 16.0  # that band's coefficient (1, 2): support rows 8..15, cols 16..23 (8x8 pixels)
    spread = spread_to_pixels(loss, "wavelet", levels=3)
    covered = spread[0, 0] > 0
    assert covered.sum() == 64 and covered[8:16, 16:24].all()
    torch.testing.assert_close(spread[0, 0, 8:16, 16:24], torch.full((8, 8), 0.25, dtype=torch.float64))


def test_coefficient_loss_builds_and_rejects_bad_configs():
    loss = get_pixel_loss("barron_adaptive", representation="wavelet", image_size=(64, 96), wavelet={"levels": 5})
    assert isinstance(loss, ImageLoss) and isinstance(loss.loss, AdaptiveRobustLoss)
    assert loss.loss.alpha().shape == (3, 64, 96)  # one alpha per coefficient
    out = loss(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 3, 64, 96)
    assert isinstance(get_pixel_loss("cauchy", representation="dct", image_size=(32, 32)).loss, RobustLoss)
    with pytest.raises(ValueError, match=r"unknown representation 'fft'; valid: pixel, dct, wavelet"):
        get_pixel_loss("barron", representation="fft", image_size=(32, 32))
    with pytest.raises(ValueError, match=r"unknown wavelet 'haar'; valid: cdf97, legall53"):
        get_pixel_loss("barron", representation="wavelet", image_size=(32, 32), wavelet={"wavelet": "haar", "levels": 2})
    with pytest.raises(ValueError, match=r"5-level wavelet needs image sides divisible by 32; 100x48 .* smallest size .* 32x32"):
        get_pixel_loss("barron", representation="wavelet", image_size=(48, 100), wavelet={"levels": 5})
    with pytest.raises(ValueError, match=r"'l1' has no per-coefficient form"):
        get_pixel_loss("l1", representation="dct", image_size=(32, 32))


def test_config_rejects_unknown_representation_with_the_valid_ones():
    from selfdepth.config import load_config

    with pytest.raises(ValueError, match="valid: pixel, dct, wavelet"):
        load_config(None, ["loss.pixel_loss=barron_adaptive", "loss.representation=fourier"])
    with pytest.raises(ValueError, match="photometric_scales must be 'all' or 'finest'"):
        load_config(None, ["loss.photometric_scales=coarsest"])
    cfg = load_config(None, ["loss.pixel_loss=barron_adaptive", "loss.representation=wavelet", "data.height=64",
                             "data.width=128"])
    assert isinstance(cfg.pixel_loss(), ImageLoss)


def _fit_alpha(representation: str, sample) -> torch.Tensor:
    torch.manual_seed(0)
    size = (8, 8)
    loss = get_pixel_loss("barron_adaptive", scale=0.05, adaptive={"image_size": size}, representation=representation,
                          image_size=size, wavelet={"levels": 2})
    optimizer = torch.optim.Adam(loss.parameters(), lr=0.3)
    for _ in range(200):
        value = loss(sample((64, 3, *size))).mean()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return getattr(loss, "loss", loss).alpha().detach()


@pytest.mark.parametrize("representation", ["pixel", "dct", "wavelet"])
def test_per_coefficient_alpha_learns_gaussian_and_cauchy_noise(representation):
    """Linear maps of Gaussian noise stay Gaussian (alpha -> 2), of Cauchy noise stay Cauchy (alpha -> 0)."""
    gauss = _fit_alpha(representation, lambda shape: 0.1 * torch.randn(shape))
    cauchy = _fit_alpha(representation, lambda shape: 0.1 * torch.distributions.Cauchy(0.0, 1.0).sample(shape))
    assert gauss.shape == (3, 8, 8)
    assert float(gauss.mean()) > 1.85 and float(gauss.min()) > 1.5, float(gauss.mean())
    assert float(cauchy.mean()) < 0.25 and float(cauchy.max()) < 0.8, float(cauchy.mean())
