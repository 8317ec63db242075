"""The renderer, its intrinsics and its poses agree: warping with the true geometry reconstructs each view."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfdepth.data.synthetic import (
    BASELINE,
    Camera,
    kitti_like_intrinsics,
    make_scene,
    render_view,
    synthesize,
)
from selfdepth.geometry import backproject, pixels_to_grid, project, warp


def _covisible(depth_t: np.ndarray, depth_s: np.ndarray, K: np.ndarray, T: np.ndarray) -> torch.Tensor:
    """Target pixels with valid depth that land inside the source and are not occluded there."""
    h, w = depth_t.shape
    d_t = torch.from_numpy(depth_t)[None, None].double()
    Kt = torch.from_numpy(K)[None]
    pts = backproject(d_t, torch.linalg.inv(Kt))
    pixels, z = project(pts, Kt, torch.from_numpy(T)[None])
    grid = pixels_to_grid(pixels, h, w)
    d_s = F.grid_sample(torch.from_numpy(depth_s)[None, None].double(), grid, mode="nearest", align_corners=False)
    inside = (grid.abs() <= 0.99).all(-1)
    agree = (d_s[0, 0] - z.reshape(h, w)).abs() < 0.01 * z.reshape(h, w)
    return (d_t[0, 0] > 0) & inside[0] & agree & (d_s[0, 0] > 0)


def _warp_error(target: np.ndarray, source: np.ndarray, depth_t: np.ndarray, K: np.ndarray, T: np.ndarray, mask) -> float:
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].double()  # noqa: E731
    Kt = torch.from_numpy(K)[None]
    warped, _ = warp(to_t(source), torch.from_numpy(depth_t)[None, None].double(), Kt, torch.linalg.inv(Kt), torch.from_numpy(T)[None])
    err = (warped - to_t(target)).abs().mean(1)[0]
    return float(err[mask].mean())


@pytest.fixture(scope="module")
def scene_and_camera():
    camera = Camera(kitti_like_intrinsics(416, 128), 416, 128)
    return make_scene(3, 6), camera


def test_stereo_warp_with_true_depth_reconstructs_left(scene_and_camera):
    scene, camera = scene_and_camera
    pose_l = scene.poses[2]
    pose_r = pose_l.copy()
    pose_r[:3, 3] += pose_l[:3, :3] @ np.array([BASELINE, 0, 0])
    left, depth_l = render_view(scene, pose_l, camera)
    right, depth_r = render_view(scene, pose_r, camera)
    T = np.eye(4)
    T[0, 3] = -BASELINE  # left camera frame -> right camera frame
    mask = _covisible(depth_l, depth_r, camera.K, T)
    assert mask.float().mean() > 0.6, "most pixels should be visible in both views"
    err = _warp_error(left, right, depth_l, camera.K, T, mask)
    assert err < 0.02, f"stereo warp MAE {err:.4f}"
    # And a wrong baseline does not: the test can fail.
    T_bad = T.copy()
    T_bad[0, 3] = -2 * BASELINE
    assert _warp_error(left, right, depth_l, camera.K, T_bad, mask) > 2 * err


def test_temporal_warp_with_true_pose_reconstructs_target(scene_and_camera):
    scene, camera = scene_and_camera
    i = next(k for k in range(1, 5) if np.linalg.norm(scene.poses[k + 1, :3, 3] - scene.poses[k, :3, 3]) > 0.4)
    target, depth_t = render_view(scene, scene.poses[i], camera)
    source, depth_s = render_view(scene, scene.poses[i + 1], camera)
    T = np.linalg.inv(scene.poses[i + 1]) @ scene.poses[i]  # target camera -> source camera
    mask = _covisible(depth_t, depth_s, camera.K, T)
    assert mask.float().mean() > 0.6
    err = _warp_error(target, source, depth_t, camera.K, T, mask)
    assert err < 0.02, f"temporal warp MAE {err:.4f}"
    assert _warp_error(target, source, depth_t, camera.K, np.eye(4), mask) > 2 * err


def test_scene_has_static_frames_and_plausible_motion():
    moves = []
    for seed in range(6):
        poses = make_scene(seed, 30).poses
        moves.append(np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1))
    moves = np.concatenate(moves)
    assert (moves < 0.25).any(), "some frames must not move, for auto-masking"
    moving = moves[moves > 0.25]
    assert moving.min() > 0.4 and moving.max() < 1.3


def test_depth_range_and_sky(scene_and_camera):
    scene, camera = scene_and_camera
    image, depth = render_view(scene, scene.poses[0], camera)
    assert image.shape == (128, 416, 3) and depth.shape == (128, 416)
    assert 0 <= image.min() and image.max() <= 1
    sky = depth == 0
    assert 0.001 < sky.mean() < 0.4 and sky[:10].mean() > sky[-10:].mean()  # sky is at the top
    valid = depth[~sky]
    assert valid.min() > 1.0 and np.median(valid) < 60
    # The bottom row sees the road ahead: depth = height / tan(angle below the horizon).
    assert np.median(depth[-1, 150:250]) == pytest.approx(1.65 * camera.K[1, 1] / (127 - camera.K[1, 2]), rel=0.05)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_is_byte_identical_and_different_seeds_differ(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synthesize(a, 1, 3, 128, 64, seed=5, sheet=False)
    synthesize(b, 1, 3, 128, 64, seed=5, workers=2, sheet=False)
    synthesize(c, 1, 3, 128, 64, seed=6, sheet=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    assert da.keys() == dc.keys()
    images = [k for k in da if k.endswith(".png") and "/masks/" not in k]
    assert len(images) == 6 and all(da[k] != dc[k] for k in images)  # every left and right image differs


def test_layout_and_contact_sheet(tmp_path):
    synthesize(tmp_path, 2, 3, 128, 64, seed=1)
    scene = tmp_path / "scene_0000"
    for sub in ("left", "right", "masks"):
        assert sorted(p.name for p in (scene / sub).iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert np.load(scene / "depth" / "000000.npy").dtype == np.float32
    assert np.loadtxt(scene / "poses.txt").shape == (3, 12)
    from PIL import Image

    with Image.open(tmp_path / "contact_sheet.png") as im:
        assert im.size == (256, 128)  # two rows of (image | depth)


@pytest.mark.parametrize("size", [(100, 64), (128, 50)])
def test_size_not_multiple_of_32_explains(tmp_path, size):
    with pytest.raises(ValueError, match="multiple of 32.*downsamples"):
        synthesize(tmp_path, 1, 3, *size)


# ----------------------------------------------------------------------------- outliers


def test_outliers_leave_the_static_street_alone_and_break_the_warp(scene_and_camera):
    """Mirrors make the true-geometry stereo warp fail where they are; exposure scales whole images."""
    from selfdepth.data.synthetic import Outliers, render_frame

    clean, camera = scene_and_camera
    dirty = make_scene(3, 6, Outliers(glass=0.5))
    n = len(clean.box_lo)
    assert np.array_equal(dirty.poses, clean.poses) and np.array_equal(dirty.box_lo[:n], clean.box_lo)
    T = np.eye(4)
    T[0, 3] = -BASELINE
    errors = []
    for scene in (clean, dirty):
        left, right, depth = render_frame(scene, 2, camera)
        pose_r = scene.poses[2].copy()
        pose_r[:3, 3] += scene.poses[2][:3, :3] @ np.array([BASELINE, 0, 0])
        mask = _covisible(depth, render_view(scene, pose_r, camera)[1], camera.K, T)
        errors.append(_warp_error(left, right, depth, camera.K, T, mask))
    assert errors[1] > 2 * errors[0], f"mirrors should break the stereo warp: {errors}"

    exposed = make_scene(3, 6, Outliers(exposure=0.3))
    left0, right0, _ = render_frame(clean, 2, camera)
    left1, right1, _ = render_frame(exposed, 2, camera)
    gains = exposed.exposure[2]
    assert 0.7 <= gains.min() and gains.max() <= 1.3 and gains[0] != gains[1]
    unclipped = (left1 < 1) & (left0 * gains[0] < 1)
    np.testing.assert_allclose(left1[unclipped], left0[unclipped] * gains[0], atol=1e-6)


def test_moving_cars_move_and_carry_their_texture(scene_and_camera):
    from selfdepth.data.synthetic import CAR, Outliers

    clean, camera = scene_and_camera
    scene = make_scene(3, 6, Outliers(moving_cars=3))
    n = len(clean.box_lo)
    assert len(scene.box_lo) == n + 3 and (scene.box_material[n:] == CAR).all()
    moving = np.flatnonzero(np.abs(scene.box_velocity[:, 2]) > 0)
    assert set(moving) <= set(range(n, n + 3)) and len(moving) > 0
    later = scene.at_frame(4)
    np.testing.assert_allclose(later.box_lo[:n], scene.box_lo[:n])
    np.testing.assert_allclose(later.box_lo[moving] - scene.box_lo[moving], 4 * scene.box_velocity[moving], atol=1e-5)
    with pytest.raises(ValueError, match="glass in"):
        Outliers(glass=2.0)


def test_outlier_options_are_recorded(tmp_path):
    from selfdepth.data.synthetic import Outliers

    synthesize(tmp_path, 1, 3, 128, 64, seed=0, sheet=False, outliers=Outliers(moving_cars=1, exposure=0.1))
    meta = (tmp_path / "synth.json").read_text()
    assert '"moving_cars": 1' in meta and '"exposure": 0.1' in meta


# ----------------------------------------------------------------------------- outlier masks


def _views(scene, camera):
    from selfdepth.data.synthetic.render import render_frame_views

    return [render_frame_views(scene, i, camera) for i in range(len(scene.poses))]


def _direct_occlusion(depth_t: np.ndarray, depth_s: np.ndarray, K: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Through selfdepth.geometry: target pixels whose warped depth is not bracketed (1%) by the source's depth
    at the four pixels around where they land, or that leave the source image."""
    h, w = depth_t.shape
    Kt = torch.from_numpy(K)[None]
    pts = backproject(torch.from_numpy(depth_t)[None, None].double(), torch.linalg.inv(Kt))
    pixels, z = project(pts, Kt, torch.from_numpy(T)[None])  # (1, H*W, 2), (1, H*W)
    u, v, z = pixels[0, :, 0], pixels[0, :, 1], z[0]
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1) & (z > 1e-3)
    source = torch.from_numpy(depth_s).double()
    u0 = torch.where(inside, u, torch.zeros_like(u)).floor().long().clamp(0, w - 2)
    v0 = torch.where(inside, v, torch.zeros_like(v)).floor().long().clamp(0, h - 2)
    corners = torch.stack([source[v0, u0], source[v0, u0 + 1], source[v0 + 1, u0], source[v0 + 1, u0 + 1]])
    lo = torch.where(corners > 0, corners, torch.full_like(corners, float("inf"))).amin(0)
    agree = inside & (z >= 0.99 * lo) & (z <= 1.01 * corners.amax(0)) & (corners.amax(0) > 0)
    return ((torch.from_numpy(depth_t).reshape(-1) > 0) & ~agree).reshape(h, w).numpy()


def test_stereo_and_temporal_occlusion_masks_match_a_direct_check(scene_and_camera):
    from selfdepth.data.synthetic.masks import frame_masks
    from selfdepth.io import REGION_BITS

    scene, camera = scene_and_camera
    views = _views(scene, camera)
    i = 3
    bits = frame_masks(scene, views, i, camera)
    left, right = views[i]
    T = np.eye(4)
    T[0, 3] = -BASELINE
    stereo = (bits & REGION_BITS["occluded_stereo"]) > 0
    direct = _direct_occlusion(left.depth, right.depth, camera.K, T)
    assert 0.005 < direct.mean() < 0.3  # some pixels are occluded, most are not
    assert (stereo != direct).mean() < 0.002
    prev = (bits & REGION_BITS["occluded_prev"]) > 0
    direct_prev = _direct_occlusion(left.depth, views[i - 1][0].depth, camera.K,
                                    np.linalg.inv(scene.poses[i - 1]) @ scene.poses[i])
    assert (prev != direct_prev).mean() < 0.002
    assert not (bits & (REGION_BITS["moving"] | REGION_BITS["glass"])).any()  # a clean scene
    first = frame_masks(scene, views, 0, camera)
    assert not (first & REGION_BITS["occluded_prev"]).any()  # frame 0 has no frame t-1


def test_moving_and_glass_masks_mark_exactly_what_changed():
    from selfdepth.data.synthetic import Outliers, make_scene
    from selfdepth.data.synthetic.masks import frame_masks
    from selfdepth.io import REGION_BITS

    camera = Camera(kitti_like_intrinsics(320, 96), 320, 96)
    # Glass: the pixels whose colour the mirrors change are the glass mask.
    plain, glassy = make_scene(11, 4), make_scene(11, 4, Outliers(glass=0.5))
    glass_views, plain_views = _views(glassy, camera), _views(plain, camera)
    bits = frame_masks(glassy, glass_views, 2, camera)
    changed = np.abs(glass_views[2][0].image - plain_views[2][0].image).max(-1) > 1e-6
    glass = (bits & REGION_BITS["glass"]) > 0
    assert glass.mean() > 0.01 and (glass != changed).mean() < 0.002
    # Moving cars: the mask is the pixels showing a moving box, and the temporal occlusion of a
    # car that is visible in both frames accounts for its motion (not flagged wholesale).
    moving_scene = make_scene(12, 4, Outliers(moving_cars=4))
    views = _views(moving_scene, camera)
    hits = []
    for i in (1, 2):
        bits = frame_masks(moving_scene, views, i, camera)
        moving = (bits & REGION_BITS["moving"]) > 0
        box = views[i][0].box
        velocity = np.abs(moving_scene.box_velocity).sum(1) > 0
        assert np.array_equal(moving, (box >= 0) & velocity[np.maximum(box, 0)])
        if moving.sum() > 50:
            hits.append(((bits & REGION_BITS["occluded_prev"]) > 0)[moving].mean())
    assert hits and min(hits) < 0.5, hits


def test_rendered_folders_hold_region_masks(tmp_path):
    from selfdepth.data.folder import FolderDataset

    synthesize(tmp_path, 1, 3, 64, 64, seed=2, sheet=False)
    sample = FolderDataset(tmp_path, 64, 64)[1]
    assert sample["regions"].shape == (1, 64, 64) and sample["regions"].dtype == torch.uint8


def test_varied_streets_open_sides_trees_and_widths():
    """`streets="varied"`: the KITTI-like layout (open sides with trees, far buildings, varied widths); the
    default "city" layout draws from its own generator, so the demo's streets stay as they were."""
    from selfdepth.data.synthetic import POLE, make_scene

    widths, open_sides = [], 0
    for seed in range(12):
        city, varied = make_scene(seed, 4), make_scene(seed, 4, streets="varied")
        assert np.array_equal(city.box_lo, make_scene(seed, 4, streets="city").box_lo)
        widths.append(varied.road_half_width)
        for side in (-1, 1):
            near = np.where(side > 0, varied.box_lo[:, 0], -varied.box_hi[:, 0])  # distance of each box's near face
            tall = (varied.box_hi[:, 1] - varied.box_lo[:, 1]) > 4.5  # buildings (cars are < 1.7 m, poles thin)
            buildings = tall & (varied.box_material != POLE) & (near > 0)
            if buildings.any() and near[buildings].min() > varied.road_half_width + 20:
                open_sides += 1
                greens = (varied.box_material == POLE) & (varied.box_tint[:, 1] > varied.box_tint[:, 0])
                assert greens.any()  # trees stand on an open side
    assert 3 <= open_sides <= 21  # about half of 24 sides
    assert min(widths) >= 3.5 and max(widths) <= 9.0 and max(widths) - min(widths) > 2
    with pytest.raises(ValueError, match="streets must be one of"):
        make_scene(0, 4, streets="rural")
