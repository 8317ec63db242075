"""A street and the camera's drive along it: cameras, box layout, and the outliers that break the photometric assumption.

World frame: x right, y down, z forward (the camera convention), metres. The
road is the plane ``y = CAMERA_HEIGHT``; the car drives along +z. Everything
solid is an axis-aligned box (buildings, parked cars, poles, moving cars).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from selfdepth.data.synthetic.textures import CAR, FACADE, FACADE_PHOTO, POLE, TEXTURE_VARIANTS, sky_texture, texture_set

__all__ = ["CAMERA_HEIGHT", "BASELINE", "Camera", "Outliers", "Scene", "kitti_like_intrinsics", "check_size", "make_scene"]

CAMERA_HEIGHT = 1.65  # metres above the road, as KITTI's colour cameras
BASELINE = 0.54  # metres between left and right camera, as KITTI


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


STREETS = ("city", "varied")


def make_scene(seed: int, frames: int, outliers: Outliers | None = None, streets: str = "city") -> Scene:
    """Lay out a random street and a drive of ``frames`` frames along it.

    Args:
        seed: determines everything; the same seed gives the same scene.
        frames: number of camera poses to generate.
        outliers: moving cars, mirrors and exposure changes; None for none. The
            static scene is the same with or without them.
        streets: "city" (buildings close on both sides, the demo's streets) or "varied" (what
            KITTI's drives look like beyond a city centre: roads 3.5-9 m wide, each side open with
            probability 0.5, i.e. trees and poles in front of buildings 25-70 m back, else a
            building row set back 0-8 m more).

    Returns:
        The scene.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if streets not in STREETS:
        raise ValueError(f"streets must be one of {STREETS}, got {streets!r}")
    rng = np.random.default_rng(seed)
    road = float(rng.uniform(4.0, 6.0))
    # The varied layout's own draws come from a second generator, so "city" scenes stay as they were.
    layout = np.random.default_rng([seed, 1])
    varied = streets == "varied"
    if varied:
        road = float(layout.uniform(3.5, 9.0))
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
        open_side = varied and layout.random() < 0.5
        setback = float(layout.uniform(0.0, 8.0)) if varied else 0.0
        # Front row of buildings with setbacks (depth steps) and gaps; none on an open side.
        zc = length if open_side else -15.0
        while zc < length:
            block = rng.uniform(6.0, 22.0)
            if rng.random() < 0.25:  # a gap to the back row
                zc += rng.uniform(3.0, 9.0)
                continue
            near = road + rng.uniform(1.5, 5.0) + setback
            height = rng.uniform(5.0, 18.0)
            x0, x1 = (near, near + 12.0) if side > 0 else (-near - 12.0, -near)
            material = FACADE if rng.random() < 0.6 else FACADE_PHOTO
            box(x0, x1, ground - height, ground, zc, zc + block, material, rng.uniform(0.6, 1.15, size=3))
            zc += block
        # Back row, seen through the gaps.
        zc = -15.0
        while zc < length:
            block = rng.uniform(10.0, 30.0)
            near = road + rng.uniform(20.0, 30.0) + (layout.uniform(5.0, 40.0) if open_side else 0.0)
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
        # Trees along an open side: a trunk and a canopy, 4-14 m from the kerb.
        zc = float(layout.uniform(0.0, 10.0)) if open_side else length
        while zc < length:
            xc = side * (road + layout.uniform(4.0, 14.0))
            trunk, crown, top = layout.uniform(0.25, 0.45), layout.uniform(2.5, 6.0), layout.uniform(4.0, 9.0)
            box(xc - trunk / 2, xc + trunk / 2, ground - top + 1.0, ground, zc, zc + trunk, POLE, np.array([0.55, 0.4, 0.3]))
            greens = np.array([layout.uniform(0.25, 0.5), layout.uniform(0.5, 0.8), layout.uniform(0.2, 0.4)])
            box(xc - crown / 2, xc + crown / 2, ground - top, ground - top + crown * 0.8, zc - crown / 2 + trunk / 2,
                zc + crown / 2 + trunk / 2, POLE, greens)
            zc += layout.uniform(5.0, 20.0)
        # Thin poles on the pavement.
        zc = rng.uniform(0.0, 15.0)
        while zc < length:
            xc = side * (road + 0.6)
            box(xc - 0.08, xc + 0.08, ground - rng.uniform(4.0, 7.0), ground, zc, zc + 0.16, POLE, np.ones(3) * 0.9)
            zc += rng.uniform(8.0, 25.0)

    textures, tex_index = texture_set(int(rng.integers(TEXTURE_VARIANTS)))
    sky_map = sky_texture(rng)
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
        sky=sky_map,
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
