"""Procedural street scenes, ray-cast with numpy, with exact depth and poses.

The renderer is selfdepth's built-in data set and its best test fixture: it
knows the true depth and camera motion of every frame, so training can be
scored exactly and the geometry can be checked against the truth.

World frame: x right, y down, z forward (the camera convention), metres. The
road is the plane ``y = camera_height``; the car drives along +z. Everything
solid is an axis-aligned box (buildings, parked cars, poles), so a ray cast is
the slab test, vectorised over pixels and looped over the few boxes that reach
the image. The sky is a backdrop at infinity: its colour depends on the ray
direction only, so it is consistent between views, and its depth is 0
(invalid), as lidar gives none either.

Texture lookups use a mip pyramid chosen per pixel by the pixel's footprint,
so distant surfaces do not alias differently in the two views. Shading is
ambient + Lambertian from one sun direction, identical in every view.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "Camera",
    "Outliers",
    "Scene",
    "make_scene",
    "render_view",
    "render_frame",
    "write_scene",
    "synthesize",
    "render_if_missing",
    "kitti_like_intrinsics",
    "contact_sheet",
]

CAMERA_HEIGHT = 1.65  # metres above the road, as KITTI's colour cameras
BASELINE = 0.54  # metres between left and right camera, as KITTI
_SUN = np.array([-0.45, -0.75, 0.48], dtype=np.float32)
_SUN /= np.linalg.norm(_SUN)
_AMBIENT = 0.4

# Material ids index the texture table built by _textures().
ROAD, SIDEWALK, FACADE, FACADE_PHOTO, CAR, POLE = range(6)
_TEXEL_M = np.array([0.02, 0.025, 0.03, 0.03, 0.02, 0.01], dtype=np.float32)  # metres per texel
_TEX_SIZE = 512


def kitti_like_intrinsics(width: int, height: int) -> np.ndarray:
    """KITTI's colour-camera intrinsics scaled to ``width x height``.

    Pixel centres sit at integer coordinates, so the principal point of a
    centred camera is ``((W-1)/2, (H-1)/2)``.

    Returns:
        (3, 3) float64 camera matrix in pixels.
    """
    return np.array(
        [[0.58 * width, 0.0, (width - 1) / 2], [0.0, 1.92 * height, (height - 1) / 2], [0.0, 0.0, 1.0]]
    )


def check_size(width: int, height: int) -> None:
    """Raise ValueError unless both sides are positive multiples of 32."""
    if width <= 0 or height <= 0 or width % 32 or height % 32:
        raise ValueError(
            f"image size {width}x{height} is not a multiple of 32 on both sides: the ResNet encoder "
            "downsamples 5 times by 2 and the decoder's skip connections need every level to divide "
            "evenly (try e.g. 416x128 or 640x192)"
        )


@dataclass(frozen=True)
class Camera:
    """Pinhole camera of a rendered frame.

    Attributes:
        K: (3, 3) intrinsics in pixels.
        width: image width in pixels.
        height: image height in pixels.
    """

    K: np.ndarray
    width: int
    height: int


@dataclass(frozen=True)
class Outliers:
    """Things that break the photometric assumption, for studying robust losses (all off by default).

    Attributes:
        moving_cars: cars driving in the lanes, each at its own speed: the scene is
            not static, which breaks the temporal (mono) warp; stereo pairs are
            taken at one instant and stay consistent.
        glass: fraction of facades that are part mirror, and cars' windows too: they
            reflect an environment at infinity, which moves with the viewpoint, not
            with the surface, so the left and right views disagree there.
        exposure: each image (left and right separately) gets a random gain in
            [1 - exposure, 1 + exposure], as auto-exposure does.
    """

    moving_cars: int = 0
    glass: float = 0.0
    exposure: float = 0.0

    def __post_init__(self) -> None:
        if self.moving_cars < 0 or not 0 <= self.glass <= 1 or not 0 <= self.exposure < 1:
            raise ValueError(f"outliers need moving_cars >= 0, glass in [0, 1], exposure in [0, 1): got {self}")

    @property
    def any(self) -> bool:
        return bool(self.moving_cars or self.glass or self.exposure)


@dataclass
class Scene:
    """One street and the camera's drive along it.

    Attributes:
        box_lo: (B, 3) lower corners of the boxes, metres.
        box_hi: (B, 3) upper corners.
        box_material: (B,) material id of each box.
        box_tint: (B, 3) RGB multiplier of each box's texture.
        box_offset: (B, 2) texture-coordinate offset of each box, metres.
        road_half_width: half width of the road, metres.
        poses: (M, 4, 4) camera-to-world transforms of the left camera.
        textures: flat float32 texel table of every material's mip chain, (N, 3).
        tex_index: (materials, levels, 2) start offset and side length of each mip level.
        sky: (Hs, Ws, 3) sky texture indexed by azimuth and elevation.
        box_velocity: (B, 3) metres per frame each box moves (moving cars; else 0).
        box_glass: (B,) how much of each box's colour is a mirror reflection (0 = none).
        environment: (He, We, 3) what mirrors reflect, by azimuth and elevation, or None.
        exposure: (M, 2) gain of each frame's left and right image.
    """

    box_lo: np.ndarray
    box_hi: np.ndarray
    box_material: np.ndarray
    box_tint: np.ndarray
    box_offset: np.ndarray
    road_half_width: float
    poses: np.ndarray
    textures: np.ndarray
    tex_index: np.ndarray
    sky: np.ndarray
    box_velocity: np.ndarray | None = None
    box_glass: np.ndarray | None = None
    environment: np.ndarray | None = None
    exposure: np.ndarray | None = None
    box_shift: np.ndarray | None = None  # (B, 3) how far each box has moved at the rendered frame

    def at_frame(self, index: int) -> Scene:
        """The scene with moving boxes where they are at frame ``index``."""
        if self.box_velocity is None:
            return self
        shift = (self.box_velocity * index).astype(np.float32)
        return dataclasses.replace(self, box_lo=self.box_lo + shift, box_hi=self.box_hi + shift, box_shift=shift)


# ----------------------------------------------------------------------------- textures


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


_TEXTURE_VARIANTS = 4


@functools.lru_cache(maxsize=_TEXTURE_VARIANTS)
def _texture_set(variant: int) -> tuple[np.ndarray, np.ndarray]:
    """Mip table of texture set ``variant``; cached, as building one takes about a second."""
    table, index = _mip_table(_textures(np.random.default_rng(1000 + variant)))
    table.setflags(write=False)
    return table, index


def _sky(rng: np.random.Generator) -> np.ndarray:
    """Sky colour by (elevation, azimuth): a blue gradient with soft clouds."""
    h, w = 128, 512
    elev = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    blue = np.array([0.45, 0.62, 0.9], dtype=np.float32)
    haze = np.array([0.85, 0.88, 0.92], dtype=np.float32)
    clouds = _tile_noise(rng, w, 6, 4)[:h] ** 2
    sky = haze + (blue - haze) * np.sqrt(elev)
    return np.clip(sky + 0.5 * clouds[..., None] * (1 - 0.5 * elev), 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- scene layout


def make_scene(seed: int, frames: int, outliers: Outliers | None = None) -> Scene:
    """Lay out a random street and a drive of ``frames`` frames along it.

    Args:
        seed: determines everything; the same seed gives the same scene.
        frames: number of camera poses to generate.
        outliers: moving cars, mirrors and exposure changes; None for none. The
            static scene is the same with or without them.

    Returns:
        The scene.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    rng = np.random.default_rng(seed)
    road = float(rng.uniform(4.0, 6.0))
    ground = CAMERA_HEIGHT

    # Camera drive: 0.5-1.2 m per frame, ~12% of steps standing still, small jitter.
    steps = rng.uniform(0.5, 1.2, size=frames)
    steps[0] = 0.0
    steps[rng.random(frames) < 0.12] = 0.0
    z = np.cumsum(steps)
    length = float(z[-1]) + 140.0
    poses = np.zeros((frames, 4, 4))
    for i in range(frames):
        if i > 0 and steps[i] == 0.0:  # standing still: exactly the previous pose
            poses[i] = poses[i - 1]
            continue
        yaw, pitch = np.deg2rad(rng.normal(0, 1.0)), np.deg2rad(rng.normal(0, 0.4))
        cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        poses[i, :3, :3] = r_yaw @ r_pitch
        poses[i, :3, 3] = (rng.normal(0, 0.05), rng.normal(0, 0.02), z[i])
        poses[i, 3, 3] = 1.0

    lo, hi, mat, tint, offset = [], [], [], [], []

    def box(x0, x1, y0, y1, z0, z1, material, colour):
        lo.append((x0, y0, z0))
        hi.append((x1, y1, z1))
        mat.append(material)
        tint.append(colour)
        offset.append(rng.uniform(0, 50, size=2))

    for side in (-1.0, 1.0):
        # Front row of buildings with setbacks (depth steps) and gaps.
        zc = -15.0
        while zc < length:
            block = rng.uniform(6.0, 22.0)
            if rng.random() < 0.25:  # a gap to the back row
                zc += rng.uniform(3.0, 9.0)
                continue
            near = road + rng.uniform(1.5, 5.0)
            height = rng.uniform(5.0, 18.0)
            x0, x1 = (near, near + 12.0) if side > 0 else (-near - 12.0, -near)
            material = FACADE if rng.random() < 0.6 else FACADE_PHOTO
            box(x0, x1, ground - height, ground, zc, zc + block, material, rng.uniform(0.6, 1.15, size=3))
            zc += block
        # Back row, seen through the gaps.
        zc = -15.0
        while zc < length:
            block = rng.uniform(10.0, 30.0)
            near = road + rng.uniform(20.0, 30.0)
            x0, x1 = (near, near + 10.0) if side > 0 else (-near - 10.0, -near)
            box(x0, x1, ground - rng.uniform(10, 25), ground, zc, zc + block, FACADE, rng.uniform(0.5, 1.0, size=3))
            zc += block
        # Parked cars along the kerb.
        zc = rng.uniform(0.0, 8.0)
        while zc < length:
            if rng.random() < 0.55:
                xc = side * (road - 1.2 + rng.uniform(-0.15, 0.15))
                car_len, car_w, car_h = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9), rng.uniform(1.35, 1.7)
                colour = rng.uniform(0.15, 1.0, size=3)
                box(xc - car_w / 2, xc + car_w / 2, ground - car_h, ground, zc, zc + car_len, CAR, colour)
                zc += car_len
            zc += rng.uniform(1.0, 9.0)
        # Thin poles on the pavement.
        zc = rng.uniform(0.0, 15.0)
        while zc < length:
            xc = side * (road + 0.6)
            box(xc - 0.08, xc + 0.08, ground - rng.uniform(4.0, 7.0), ground, zc, zc + 0.16, POLE, np.ones(3) * 0.9)
            zc += rng.uniform(8.0, 25.0)

    textures, tex_index = _texture_set(int(rng.integers(_TEXTURE_VARIANTS)))
    sky = _sky(rng)
    extra = _add_outliers(outliers, seed, frames, float(z[-1]), box, mat) if outliers and outliers.any else {}
    f32 = functools.partial(np.asarray, dtype=np.float32)
    return Scene(
        box_lo=f32(lo),
        box_hi=f32(hi),
        box_material=np.asarray(mat, dtype=np.int64),
        box_tint=f32(tint),
        box_offset=f32(offset),
        road_half_width=road,
        poses=poses,
        textures=textures,
        tex_index=tex_index,
        sky=sky,
        **extra,
    )


def _add_outliers(outliers: Outliers, seed: int, frames: int, drive: float, box, materials: list) -> dict:
    """Moving cars (appended through ``box``), mirror weights, an environment map and exposures.

    Draws from its own generator, so the static scene does not change with the options.
    """
    rng = np.random.default_rng([seed, 1])
    velocity = np.zeros((len(materials) + outliers.moving_cars, 3), dtype=np.float32)
    for k in range(outliers.moving_cars):
        lane = rng.choice([-1.8, 1.8])  # the two lanes' centres, metres
        car_len, car_w, car_h = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9), rng.uniform(1.35, 1.7)
        z0 = rng.uniform(8.0, 40.0) + drive * rng.uniform(0, 1)
        box(lane - car_w / 2, lane + car_w / 2, CAMERA_HEIGHT - car_h, CAMERA_HEIGHT, z0, z0 + car_len, CAR,
            rng.uniform(0.15, 1.0, size=3))
        velocity[len(materials) - 1, 2] = rng.uniform(-1.5, 1.5)  # m per frame; ahead of or towards the camera
    mat = np.asarray(materials)
    glass = np.where(np.isin(mat, (FACADE, FACADE_PHOTO)) & (rng.random(len(mat)) < outliers.glass), 0.6, 0.0)
    glass = np.where((mat == CAR) & (outliers.glass > 0), 0.5, glass).astype(np.float32)  # car windows only
    # What the mirrors show: a skyline of blocks against a bright sky, sharp-edged, so that the
    # reflection visibly disagrees between two viewpoints 0.54 m apart.
    eh, ew = 256, 1024
    edges = np.cumsum(rng.integers(4, 24, size=ew))  # block boundaries along the azimuth, texels
    block = np.searchsorted(edges, np.arange(ew), side="right")
    shade, skyline = rng.uniform(0.05, 0.8, size=ew)[block], rng.uniform(0.45, 0.75, size=ew)[block]
    rows = np.linspace(1, 0, eh)[:, None]  # 1 = straight up ... 0 = straight down (elevation mapped to rows)
    environment = np.where(rows > skyline, 0.95, shade)[..., None] * np.float32([0.9, 0.95, 1.0])
    exposure = rng.uniform(1 - outliers.exposure, 1 + outliers.exposure, size=(frames, 2))
    return {"box_velocity": velocity, "box_glass": glass, "environment": environment.astype(np.float32),
            "exposure": exposure}


# ----------------------------------------------------------------------------- ray casting


@functools.lru_cache(maxsize=8)
def _camera_rays(K_bytes: bytes, width: int, height: int) -> np.ndarray:
    """Ray directions in camera coordinates with z = 1, (H, W, 3) float32."""
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, dtype=np.float64)], -1)
    rays.setflags(write=False)
    return rays.astype(np.float32)


_CORNERS = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3).astype(bool)


def render_view(scene: Scene, cam_to_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast one view.

    Args:
        scene: the street.
        cam_to_world: (4, 4) pose of the camera.
        camera: its intrinsics and size.

    Returns:
        image: (H, W, 3) float32 in [0, 1].
        depth: (H, W) float32 camera-z depth in metres, 0 for the sky.
    """
    H, W = camera.height, camera.width
    R = cam_to_world[:3, :3].astype(np.float32)
    origin = cam_to_world[:3, 3].astype(np.float32)
    rays_cam = _camera_rays(np.ascontiguousarray(camera.K, dtype=np.float64).tobytes(), W, H)
    d = rays_cam @ R.T  # (H, W, 3) world directions; the ray parameter t equals camera-z depth
    with np.errstate(divide="ignore"):
        inv_d = 1.0 / d

    # Road plane y = CAMERA_HEIGHT (y points down).
    t_best = np.full((H, W), np.inf, dtype=np.float32)
    hit_id = np.full((H, W), -1, dtype=np.int64)  # -1 ground, >= 0 box, sky where t_best is inf
    axis = np.ones((H, W), dtype=np.int64)  # face normal axis
    t_ground = (CAMERA_HEIGHT - origin[1]) * inv_d[..., 1]
    down = d[..., 1] > 1e-6
    t_best[down] = t_ground[down]

    # Boxes: cull to those in front, then slab-test only the pixel rectangle each projects to.
    world_to_cam = np.linalg.inv(cam_to_world).astype(np.float32)
    corners = np.where(_CORNERS[None], scene.box_hi[:, None], scene.box_lo[:, None])  # (B, 8, 3) world
    pts = corners @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # (B, 8, 3) in camera
    z = pts[..., 2]
    front = z.min(1) > 0.05  # wholly in front: its projection bounds its pixels
    keep = (z.max(1) > 0.05) & (z.min(1) < 200.0)
    K = camera.K
    uv = pts[..., :2] / np.maximum(z, 0.05)[..., None] * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
    lo_px = np.where(front[:, None], np.floor(uv.min(1)), 0).clip(0, [W, H]).astype(int)
    hi_px = np.where(front[:, None], np.ceil(uv.max(1)) + 1, [W, H]).clip(0, [W, H]).astype(int)
    keep &= np.all(hi_px > lo_px, axis=1)
    inv_planes = [np.ascontiguousarray(inv_d[..., k]) for k in range(3)]  # per-axis planes reduce fastest
    for b in np.flatnonzero(keep)[np.argsort(z.min(1)[keep])]:  # front to back, so occluded boxes skip
        (u0, v0), (u1, v1) = lo_px[b], hi_px[b]
        best = t_best[v0:v1, u0:u1]
        if z[b].min() >= best.max():
            continue  # everything in its rectangle is already nearer
        tmins, tfar = [], None
        for k in range(3):
            inv = inv_planes[k][v0:v1, u0:u1]
            t1 = (scene.box_lo[b, k] - origin[k]) * inv
            t2 = (scene.box_hi[b, k] - origin[k]) * inv
            tmins.append(np.fmin(t1, t2))  # fmin/fmax skip the NaN of 0 * inf on rays parallel to a slab
            far = np.fmax(t1, t2)
            tfar = far if tfar is None else np.fmin(tfar, far)
        tnear = np.fmax(np.fmax(tmins[0], tmins[1]), tmins[2])
        hit = (tnear <= tfar) & (tnear > 0) & (tnear < best)
        if not hit.any():
            continue
        best[hit] = tnear[hit]
        hit_id[v0:v1, u0:u1][hit] = b
        face = np.where(tmins[0] == tnear, 0, np.where(tmins[1] == tnear, 1, 2))
        axis[v0:v1, u0:u1][hit] = face[hit]

    image = _shade(scene, d, origin, t_best, hit_id, axis, camera)
    depth = np.where(np.isfinite(t_best), t_best, 0.0).astype(np.float32)
    return image, depth


def _shade(
    scene: Scene,
    d: np.ndarray,
    origin: np.ndarray,
    t: np.ndarray,
    hit_id: np.ndarray,
    axis: np.ndarray,
    camera: Camera,
) -> np.ndarray:
    """Texture and light every pixel; (H, W, 3) float32 image in [0, 1]."""
    H, W = t.shape
    image = np.empty((H, W, 3), dtype=np.float32)
    solid = np.isfinite(t)

    # Sky: colour by direction only, so it sits at infinity in every view.
    ds = d[~solid]
    norm = np.linalg.norm(ds, axis=-1)
    elev = np.clip(-ds[:, 1] / norm, 0, 1)
    azim = np.arctan2(ds[:, 0], ds[:, 2]) / (2 * np.pi) + 0.5
    sh, sw = scene.sky.shape[:2]
    image[~solid] = scene.sky[(elev * (sh - 1)).astype(int), (azim * (sw - 1)).astype(int)]

    idx = np.flatnonzero(solid)
    ts, ids, ax = t.ravel().take(idx), hit_id.ravel().take(idx), axis.ravel().take(idx)
    dd = d.reshape(-1, 3).take(idx, axis=0)
    p = origin + ts[:, None] * dd  # (N, 3) world hit points
    is_box = ids >= 0
    bid = np.where(is_box, ids, 0)
    x_abs = np.abs(p[:, 0])
    ground_mat = np.where(x_abs < scene.road_half_width, ROAD, SIDEWALK)
    mat = np.where(is_box, scene.box_material[bid], ground_mat)

    # Texture coordinates: the two world axes spanning the hit face, in metres (moving boxes carry theirs).
    pt = p if scene.box_shift is None else p - np.where(is_box[:, None], scene.box_shift.take(bid, axis=0), 0.0)
    su = np.choose(ax, [pt[:, 2], pt[:, 0], pt[:, 0]])
    sv = np.choose(ax, [pt[:, 1], pt[:, 2], pt[:, 1]])
    offset = np.where(is_box[:, None], scene.box_offset.take(bid, axis=0), 0.0)
    su, sv = su + offset[:, 0], sv + offset[:, 1]

    # Mip level from the pixel footprint (metres per pixel), widened at grazing angles.
    d_axis = np.choose(ax, [dd[:, 0], dd[:, 1], dd[:, 2]])  # ray component along the face normal
    d_norm = np.sqrt(np.einsum("ij,ij->i", dd, dd))
    cos = np.abs(d_axis) / d_norm
    texel_m = _TEXEL_M[mat]
    footprint = ts * d_norm / np.float32(camera.K[0, 0]) / np.sqrt(np.maximum(cos, 0.05))
    levels = scene.tex_index.shape[1]
    level = np.clip(np.rint(np.log2(np.maximum(footprint / texel_m, 1e-6))), 0, levels - 1).astype(np.int32)
    start = scene.tex_index[..., 0].ravel().take(mat * levels + level)
    size = scene.tex_index[..., 1].ravel().take(mat * levels + level)
    scale = np.ldexp(texel_m, level)  # metres per texel at that level
    x, y = su / scale - 0.5, sv / scale - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    mask = size - 1  # sizes are powers of two, so & wraps
    tex = scene.textures

    def texel(xi, yi):
        return tex.take(start + (yi & mask) * size + (xi & mask), axis=0)  # take: ~8x faster than []

    colour = (texel(x0, y0) * (1 - fx) + texel(x0 + 1, y0) * fx) * (1 - fy) + (
        texel(x0, y0 + 1) * (1 - fx) + texel(x0 + 1, y0 + 1) * fx
    ) * fy

    # Road markings: a dashed lane line and solid edge lines (analytic, no texture).
    on_road = mat == ROAD
    edge = scene.road_half_width - 0.3
    lane = (np.abs(p[:, 0] + 1.8) < 0.07) & (np.mod(p[:, 2], 6.0) < 3.0)
    kerb = np.abs(x_abs - edge) < 0.07
    colour[on_road & (lane | kerb)] = 0.9

    # Cars: tinted paint with a dark window band in the upper third.
    tint = np.where(is_box[:, None], scene.box_tint.take(bid, axis=0), 1.0)
    colour = colour * tint
    is_car = mat == CAR
    if is_car.any():
        top = scene.box_lo[bid[is_car], 1]
        rel = (p[is_car, 1] - top) / (CAMERA_HEIGHT - top)
        band = (rel > 0.1) & (rel < 0.4)
        colour[np.flatnonzero(is_car)[band]] *= 0.25

    lambert = -np.sign(d_axis) * _SUN[ax]  # the face normal is -sign(d) along its axis
    light = _AMBIENT + (1 - _AMBIENT) * np.maximum(lambert, 0.0)
    colour = colour * light[:, None]
    if scene.box_glass is not None:  # mirrors: mix in the environment seen along the reflected ray
        glass = np.where(is_box, scene.box_glass[bid], 0.0)
        if is_car.any():
            glass[np.flatnonzero(is_car)[~band]] = 0.0  # on cars, the windows only
        shiny = np.flatnonzero(glass > 0)
        r = dd[shiny].copy()
        r[np.arange(len(shiny)), ax[shiny]] *= -1  # reflect about the axis-aligned face normal
        r /= np.linalg.norm(r, axis=-1, keepdims=True)
        eh, ew = scene.environment.shape[:2]
        row = ((np.clip(-r[:, 1], -1, 1) + 1) / 2 * (eh - 1)).astype(int)
        col = ((np.arctan2(r[:, 0], r[:, 2]) / (2 * np.pi) + 0.5) * (ew - 1)).astype(int)
        g = glass[shiny, None]
        colour[shiny] = (1 - g) * colour[shiny] + g * scene.environment[row, col]
    image.reshape(-1, 3)[idx] = colour
    return np.clip(image, 0.0, 1.0)


def render_frame(
    scene: Scene, index: int, camera: Camera, baseline: float = BASELINE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render frame ``index``: left image, right image and left depth.

    The right camera sits ``baseline`` metres along the left camera's +x axis.
    """
    left_pose = scene.poses[index]
    right_pose = left_pose.copy()
    right_pose[:3, 3] += left_pose[:3, :3] @ np.array([baseline, 0.0, 0.0])
    now = scene.at_frame(index)  # moving cars where they are at this frame
    left, depth = render_view(now, left_pose, camera)
    right, _ = render_view(now, right_pose, camera)
    if scene.exposure is not None:
        left = np.clip(left * np.float32(scene.exposure[index, 0]), 0, 1)
        right = np.clip(right * np.float32(scene.exposure[index, 1]), 0, 1)
    return left, right, depth


# ----------------------------------------------------------------------------- writing


def _to_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path, compress_level=1)  # fast; sizes barely differ


def write_scene(scene: Scene, out: Path, camera: Camera, baseline: float = BASELINE) -> None:
    """Write a rendered scene in the folder layout that ``FolderDataset`` reads (see README)."""
    for sub in ("left", "right", "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i in range(len(scene.poses)):
        left, right, depth = render_frame(scene, i, camera, baseline)
        _to_png(left, out / "left" / f"{i:06d}.png")
        _to_png(right, out / "right" / f"{i:06d}.png")
        np.save(out / "depth" / f"{i:06d}.npy", depth)
    np.savetxt(out / "poses.txt", scene.poses[:, :3, :].reshape(len(scene.poses), 12), fmt="%.9f")
    K = camera.K
    calib = {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}
    calib.update(width=camera.width, height=camera.height, baseline=baseline)
    (out / "intrinsics.json").write_text(json.dumps(calib, indent=2) + "\n")


@dataclass(frozen=True)
class SynthSummary:
    """What ``synthesize`` wrote and how fast."""

    scenes: int
    frames: int
    seconds: float
    out: str


def _render_scene(job: tuple[int, int, Path, Camera, Outliers | None]) -> None:
    seed, frames, out, camera, outliers = job
    write_scene(make_scene(seed, frames, outliers), out, camera)


def synthesize(
    out: str | Path,
    scenes: int,
    frames_per_scene: int,
    width: int = 416,
    height: int = 128,
    seed: int = 0,
    workers: int = 1,
    sheet: bool = True,
    outliers: Outliers | None = None,
) -> SynthSummary:
    """Render ``scenes`` streets of ``frames_per_scene`` frames into ``out``.

    Scene ``i`` uses seed ``seed * 100003 + i``, so different ``seed`` values give
    disjoint scene sets (use one seed for training and another for testing).
    The output does not depend on ``workers``. ``outliers`` adds moving cars,
    mirrors and exposure changes to the same streets.
    """
    check_size(width, height)
    if scenes < 1 or frames_per_scene < 3:
        raise ValueError(f"need scenes >= 1 and frames_per_scene >= 3, got {scenes} and {frames_per_scene}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    camera = Camera(kitti_like_intrinsics(width, height), width, height)
    jobs = [(seed * 100003 + i, frames_per_scene, out / f"scene_{i:04d}", camera, outliers) for i in range(scenes)]
    start = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_render_scene, jobs, chunksize=1)
    else:
        for job in jobs:
            _render_scene(job)
    seconds = time.perf_counter() - start
    summary = SynthSummary(scenes, scenes * frames_per_scene, seconds, str(out))
    meta = asdict(summary) | {"seed": seed, "width": width, "height": height}
    if outliers is not None and outliers.any:
        meta["outliers"] = asdict(outliers)
    meta.pop("seconds"), meta.pop("out")  # keep the folder byte-identical between runs and places
    (out / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")
    if sheet:
        contact_sheet(out, out / "contact_sheet.png")
    return summary


def render_if_missing(
    root: str | Path, scenes: int, frames: int, width: int, height: int, seed: int, outliers: Outliers | None = None
) -> None:
    """Render a synthetic set unless ``root`` already holds exactly this one (per its synth.json)."""
    import shutil

    root = Path(root)
    meta = root / "synth.json"
    want = {"scenes": scenes, "frames": scenes * frames, "seed": seed, "width": width, "height": height}
    if outliers is not None and outliers.any:
        want["outliers"] = asdict(outliers)
    if meta.is_file() and json.loads(meta.read_text()) == want:
        return
    shutil.rmtree(root, ignore_errors=True)
    s = synthesize(root, scenes, frames, width, height, seed, workers=2, outliers=outliers)
    print(f"rendered {s.frames} frames to {root} in {s.seconds:.0f} s")


def contact_sheet(root: str | Path, path: str | Path, rows: int = 8) -> Path:
    """Save a picture of (left image | colour-mapped depth) for the first frames of a folder data set."""
    from matplotlib import colormaps

    root = Path(root)
    scenes = sorted(p.parent for p in root.glob("*/intrinsics.json"))[:rows]
    if not scenes:
        raise FileNotFoundError(f"no scenes (folders with intrinsics.json) under {root}")
    lines = []
    for scene in scenes:
        first = sorted((scene / "left").glob("*.png"))[len(list((scene / "left").glob("*.png"))) // 2]
        image = np.asarray(Image.open(first).convert("RGB"), dtype=np.float32) / 255
        depth = np.load(scene / "depth" / (first.stem + ".npy"))
        disp = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 0.0)
        disp = disp / max(np.percentile(disp, 99), 1e-6)
        lines.append(np.concatenate([image, colormaps["magma"](np.clip(disp, 0, 1))[..., :3]], axis=1))
    sheet = np.concatenate(lines, axis=0)
    Image.fromarray(np.round(sheet * 255).astype(np.uint8)).save(path)
    return Path(path)
