"""Ray casting and shading: one view of a scene, and a stereo frame.

A ray cast is the slab test against axis-aligned boxes, vectorised over pixels
and looped over the few boxes that reach the image. The sky is a backdrop at
infinity: its colour depends on the ray direction only, so it is consistent
between views, and its depth is 0 (invalid), as lidar gives none either.
Shading is ambient + Lambertian from one sun direction, identical in every view.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from selfdepth.data.synthetic.scene import BASELINE, CAMERA_HEIGHT, Camera, Scene
from selfdepth.data.synthetic.textures import CAR, ROAD, SIDEWALK, TEXEL_M

__all__ = ["View", "cast_view", "render_view", "render_frame", "render_frame_views", "right_pose"]

_SUN = np.array([-0.45, -0.75, 0.48], dtype=np.float32)
_SUN /= np.linalg.norm(_SUN)
_AMBIENT = 0.4


@functools.lru_cache(maxsize=8)
def _camera_rays(K_bytes: bytes, width: int, height: int) -> np.ndarray:
    """Ray directions in camera coordinates with z = 1, (H, W, 3) float32."""
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, dtype=np.float64)], -1)
    rays.setflags(write=False)
    return rays.astype(np.float32)


_CORNERS = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3).astype(bool)


@dataclass(frozen=True)
class View:
    """One rendered view and what each pixel shows.

    Attributes:
        image: (H, W, 3) float32 in [0, 1].
        depth: (H, W) float32 camera-z depth in metres, 0 for the sky.
        box: (H, W) int64 index of the box each pixel shows; -1 for the road and the sky.
        glass: (H, W) bool, pixels whose colour mixes in a mirror reflection.
    """

    image: np.ndarray
    depth: np.ndarray
    box: np.ndarray
    glass: np.ndarray


def render_view(scene: Scene, cam_to_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast one view: ``(image, depth)`` of ``cast_view`` (see there)."""
    view = cast_view(scene, cam_to_world, camera)
    return view.image, view.depth


def cast_view(scene: Scene, cam_to_world: np.ndarray, camera: Camera) -> View:
    """Ray-cast one view.

    Args:
        scene: the street.
        cam_to_world: (4, 4) pose of the camera.
        camera: its intrinsics and size.

    Returns:
        The image, its depth, and which box and whether glass each pixel shows.
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

    image, glass = _shade(scene, d, origin, t_best, hit_id, axis, camera)
    depth = np.where(np.isfinite(t_best), t_best, 0.0).astype(np.float32)
    return View(image, depth, np.where(np.isfinite(t_best), hit_id, -1), glass)


def _shade(
    scene: Scene,
    d: np.ndarray,
    origin: np.ndarray,
    t: np.ndarray,
    hit_id: np.ndarray,
    axis: np.ndarray,
    camera: Camera,
) -> tuple[np.ndarray, np.ndarray]:
    """Texture and light every pixel: (H, W, 3) float32 image in [0, 1], and (H, W) bool mirror pixels."""
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
    texel_m = TEXEL_M[mat]
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
    mirror = np.zeros(H * W, dtype=bool)
    if scene.box_glass is not None:
        mirror[idx[shiny]] = True
    return np.clip(image, 0.0, 1.0), mirror.reshape(H, W)


def render_frame(
    scene: Scene, index: int, camera: Camera, baseline: float = BASELINE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render frame ``index``: left image, right image and left depth.

    The right camera sits ``baseline`` metres along the left camera's +x axis.
    """
    left, right = render_frame_views(scene, index, camera, baseline)
    return left.image, right.image, left.depth


def right_pose(left_pose: np.ndarray, baseline: float = BASELINE) -> np.ndarray:
    """(4, 4) camera-to-world of the right camera, ``baseline`` metres along the left camera's +x axis."""
    pose = left_pose.copy()
    pose[:3, 3] += left_pose[:3, :3] @ np.array([baseline, 0.0, 0.0])
    return pose


def render_frame_views(scene: Scene, index: int, camera: Camera, baseline: float = BASELINE) -> tuple[View, View]:
    """The left and right ``View`` of frame ``index``, with the frame's exposure gains applied."""
    now = scene.at_frame(index)  # moving cars where they are at this frame
    left = cast_view(now, scene.poses[index], camera)
    right = cast_view(now, right_pose(scene.poses[index], baseline), camera)
    if scene.exposure is not None:
        left = dataclasses.replace(left, image=np.clip(left.image * np.float32(scene.exposure[index, 0]), 0, 1))
        right = dataclasses.replace(right, image=np.clip(right.image * np.float32(scene.exposure[index, 1]), 0, 1))
    return left, right
