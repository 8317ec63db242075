"""Materials and their textures: procedural value noise, scikit-image's photos, mip tables and the sky.

Every texture tiles, so a box of any size can be textured by wrapping its
metric surface coordinates; the mip chain (2x2 box filter per level) lets the
shader pick a level by the pixel's footprint.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["ROAD", "SIDEWALK", "FACADE", "FACADE_PHOTO", "CAR", "POLE", "TEXEL_M", "TEXTURE_VARIANTS", "texture_set", "sky_texture"]

# Material ids index the texture table built by _textures().
ROAD, SIDEWALK, FACADE, FACADE_PHOTO, CAR, POLE = range(6)
TEXEL_M = np.array([0.02, 0.025, 0.03, 0.03, 0.02, 0.01], dtype=np.float32)  # metres per texel
_TEX_SIZE = 512


def _upsample_wrap(grid: np.ndarray, size: int) -> np.ndarray:
    """Smooth tileable upsampling of a (n, n) grid to (size, size): smoothstep-weighted value noise."""
    n = grid.shape[0]
    x = (np.arange(size, dtype=np.float32) + 0.5) * n / size - 0.5
    i0 = np.floor(x).astype(np.int64)
    f = x - i0
    f = f * f * (3 - 2 * f)  # smoothstep: C1 across cell borders
    i0, i1 = i0 % n, (i0 + 1) % n
    rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]  # (size, n)
    return rows[:, i0] * (1 - f) + rows[:, i1] * f


def _tile_noise(rng: np.random.Generator, size: int, octaves: int, base: int = 4) -> np.ndarray:
    """Tileable multi-octave value noise in [0, 1], shape (size, size)."""
    out = np.zeros((size, size), dtype=np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = base * 2**k
        if cells > size:
            break
        out += amp * _upsample_wrap(rng.random((cells, cells), dtype=np.float32), size)
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / (np.ptp(out) + 1e-6)


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """Real grey-level photo textures shipped with scikit-image (no download)."""
    try:
        from skimage import data

        return tuple(np.asarray(f(), dtype=np.float32) / 255.0 for f in (data.brick, data.gravel, data.grass))
    except Exception:  # noqa: BLE001 - photos are a nicety; procedural noise stands in
        return ()


def _textures(rng: np.random.Generator) -> list[np.ndarray]:
    """Base textures (size, size, 3) in [0, 1], indexed by material id."""
    n = _TEX_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    photos = _photos()
    gravel = photos[1] if photos else _tile_noise(rng, n, 7, 16)

    # Road: asphalt grain over large stains.
    grain = _tile_noise(rng, n, 7, 16)
    stains = _tile_noise(rng, n, 3, 2)
    road = 0.22 + 0.22 * grain + 0.12 * stains + 0.08 * (gravel - 0.5)
    road = np.repeat(road[..., None], 3, axis=2)

    # Sidewalk: 0.64 m square slabs (texel 2.5 cm -> 25.6 texels) with joints.
    slab = (np.mod(xx, 25.6) < 1.5) | (np.mod(yy, 25.6) < 1.5)
    side = 0.55 + 0.25 * _tile_noise(rng, n, 6, 8) - 0.25 * slab
    side = np.repeat(side[..., None], 3, axis=2) * np.array([1.0, 0.97, 0.9], dtype=np.float32)

    # Facade: bricks with windows on a 3.2 m grid (texel 3 cm; the tile is 15.36 m).
    row = np.floor(yy / 2.5)
    brick_x = np.mod(xx + 4.0 * np.mod(row, 2), 8.0)
    mortar = (np.mod(yy, 2.5) < 0.6) | (brick_x < 0.6)
    brick_tone = np.repeat(np.repeat(rng.random((n // 2, n // 8), dtype=np.float32), 2, axis=0), 8, axis=1)
    facade = 0.55 + 0.2 * brick_tone + 0.15 * _tile_noise(rng, n, 6, 8) - 0.3 * mortar
    facade = facade[..., None] * np.array([0.85, 0.55, 0.42], dtype=np.float32)
    wx, wy = np.mod(xx, 128.0 / 1.2), np.mod(yy, 128.0 / 1.2)  # 1.2 windows per 3.84 m
    window = (wx > 25) & (wx < 80) & (wy > 20) & (wy < 75)
    frame = (wx > 21) & (wx < 84) & (wy > 16) & (wy < 79) & ~window
    glass = (0.15 + 0.35 * _tile_noise(rng, n, 5, 4))[..., None] * np.array([0.6, 0.75, 1.0], dtype=np.float32)
    facade = np.where(window[..., None], glass, facade)
    facade = np.where(frame[..., None], 0.85, facade)

    # Facade from a real photo of bricks, with plaster-coloured tint.
    base = photos[0] if photos else _tile_noise(rng, n, 7, 8)
    base = 0.5 * (base + np.flip(base, axis=1))  # make it tile horizontally
    photo = (0.25 + 0.9 * base)[..., None] * np.array([0.95, 0.9, 0.8], dtype=np.float32)
    photo = np.where(window[..., None], glass, photo)

    # Car: paint with speckle; a dark band for the windows is drawn by height in _shade.
    car = (0.75 + 0.25 * _tile_noise(rng, n, 6, 16))[..., None] * np.ones(3, dtype=np.float32)

    # Pole: grey with rust bands.
    pole = (0.5 + 0.3 * _tile_noise(rng, n, 6, 8) - 0.2 * (np.mod(yy, 64) < 8))[..., None]
    pole = pole * np.array([0.8, 0.8, 0.85], dtype=np.float32)
    return [np.clip(t, 0, 1).astype(np.float32) for t in (road, side, facade, photo, car, pole)]


def _mip_table(textures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten every texture's mip chain into one table, for a single gather per frame."""
    levels = int(math.log2(_TEX_SIZE)) - 2  # down to 8x8
    chunks, index, start = [], np.zeros((len(textures), levels, 2), dtype=np.int64), 0
    for m, tex in enumerate(textures):
        level = tex
        for lv in range(levels):
            index[m, lv] = (start, level.shape[0])
            chunks.append(level.reshape(-1, 3))
            start += level.shape[0] * level.shape[1]
            s = level.shape[0] // 2
            level = level.reshape(s, 2, s, 2, 3).mean(axis=(1, 3))  # 2x2 box filter, stays tileable
    return np.concatenate(chunks).astype(np.float32), index


TEXTURE_VARIANTS = 4


@functools.lru_cache(maxsize=TEXTURE_VARIANTS)
def texture_set(variant: int) -> tuple[np.ndarray, np.ndarray]:
    """Mip table of texture set ``variant``; cached, as building one takes about a second."""
    table, index = _mip_table(_textures(np.random.default_rng(1000 + variant)))
    table.setflags(write=False)
    return table, index


def sky_texture(rng: np.random.Generator) -> np.ndarray:
    """Sky colour by (elevation, azimuth): a blue gradient with soft clouds."""
    h, w = 128, 512
    elev = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    blue = np.array([0.45, 0.62, 0.9], dtype=np.float32)
    haze = np.array([0.85, 0.88, 0.92], dtype=np.float32)
    clouds = _tile_noise(rng, w, 6, 4)[:h] ** 2
    sky = haze + (blue - haze) * np.sqrt(elev)
    return np.clip(sky + 0.5 * clouds[..., None] * (1 - 0.5 * elev), 0, 1).astype(np.float32)
