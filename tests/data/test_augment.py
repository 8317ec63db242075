"""Random zoom and turned sources: images, intrinsics and poses agree, so true depth and poses still warp views exactly."""

from __future__ import annotations

import random

import pytest
import torch

from selfdepth.data.augment import Window, crop_resize, random_window, turn_sources, zoom_intrinsics
from selfdepth.data.folder import FolderDataset
from selfdepth.data.synthetic import BASELINE
from selfdepth.geometry import stereo_transform, warp
from selfdepth.io import Intrinsics


def test_random_windows_stay_inside_and_keep_the_aspect():
    random.seed(0)
    for _ in range(200):
        w = random_window(1.25, 520, 160)
        assert 0 <= w.left and w.left + w.width <= 1 + 1e-9 and 0 <= w.top and w.top + w.height <= 1 + 1e-9
        assert 1 / 1.25 - 1 / 160 <= w.height <= 1 and w.width == pytest.approx(w.height, abs=1 / 160)
        assert (w.left * 520).is_integer() and (w.width * 520).is_integer()  # snapped to whole pixels
    assert random_window(1.0, 520, 160) == Window()
    with pytest.raises(ValueError, match="zoom 0.5 must be >= 1"):
        random_window(0.5, 520, 160)


def test_zoomed_intrinsics_match_the_cropped_pixels():
    """A coordinate ramp, cropped and resized: each pixel of the crop holds the source column and row that
    the zoomed camera says it sees (bilinear resizing reproduces a linear ramp exactly, away from edges)."""
    h, w = 60, 200
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = torch.stack([u, v])  # (2, H, W)
    k = Intrinsics(150.0, 140.0, 97.3, 31.2, w, h)
    window = Window(left=30 / w, top=6 / h, width=120 / w, height=36 / h)
    crop = crop_resize(ramp, window, (h, w))
    kz = zoom_intrinsics(k, window)
    # The ray through crop pixel (u', v') under kz hits the source image at u = cx + fx (u' - cx') / fx'.
    expected_u = k.cx + k.fx * (u - kz.cx) / kz.fx
    expected_v = k.cy + k.fy * (v - kz.cy) / kz.fy
    inner = (slice(3, -3), slice(3, -3))
    torch.testing.assert_close(crop[0][inner], expected_u[inner], atol=1e-6, rtol=0)
    torch.testing.assert_close(crop[1][inner], expected_v[inner], atol=1e-6, rtol=0)
    assert zoom_intrinsics(k, Window()) == k


@pytest.mark.parametrize("flip", [False, True])
def test_zoomed_stereo_pair_still_warps(synth_root, monkeypatch, flip):
    random.seed(1)
    monkeypatch.setattr(random, "random", lambda: 0.0 if flip else 1.0)
    ds = FolderDataset(synth_root, 128, 416, stereo=True, augment=True, zoom=1.5)
    s = ds[1]
    K, depth = s["K"][:1], s["depth_gt"][None]
    assert depth.shape == (1, 1, 128, 416) and K[0, 0, 0] > 1.01 * FolderDataset(synth_root, 128, 416)[1]["K"][0, 0, 0]
    T = stereo_transform(s["stereo_sign"][None], BASELINE)
    warped, inside = warp(s["stereo"][None], depth, K, torch.linalg.inv(K), T)
    valid = inside & (depth > 0)
    err = (warped - s["image"][None]).abs().mean(1, keepdim=True)[valid].median()
    assert err < 0.02
    # The unzoomed focal length would warp by the wrong disparity.
    K_plain = FolderDataset(synth_root, 128, 416)[1]["K"][:1]
    warped, _ = warp(s["stereo"][None], depth, K_plain, torch.linalg.inv(K_plain), T)
    assert (warped - s["image"][None]).abs().mean(1, keepdim=True)[valid].median() > 1.5 * err


def test_zoomed_video_frames_still_warp(synth_root):
    """Zoomed video frames, their zoomed camera and the true pose still warp the next frame onto the target
    (the principal point's shift is pinned by the ramp test above: forward motion barely shows it)."""
    random.seed(2)
    ds = FolderDataset(synth_root, 128, 416, temporal_offsets=(1,), augment=True, zoom=1.5)
    errors = []
    for _ in range(4):
        s = ds[1]
        K, depth = s["K"][:1], s["depth_gt"][None]
        warped, inside = warp(s["temporal"][:1], depth, K, torch.linalg.inv(K), s["pose_gt"][:1])
        valid = inside & (depth > 0)
        errors.append(float((warped - s["image"][None]).abs().mean(1, keepdim=True)[valid].median()))
    assert max(errors) < 0.03


def test_zoom_is_training_only(synth_root):
    ds = FolderDataset(synth_root, 128, 416, zoom=1.5)  # no augment: evaluation data is never cropped
    plain = FolderDataset(synth_root, 128, 416)
    torch.testing.assert_close(ds[0]["image"], plain[0]["image"])
    torch.testing.assert_close(ds[0]["K"], plain[0]["K"])


def test_config_zoom_reaches_the_training_data_only(synth_root, tmp_path):
    from selfdepth.config import load_config
    from selfdepth.train import make_dataset

    config = load_config(None, [f"data.train={synth_root}", "data.zoom=1.2", "data.height=128", "data.width=416"])
    assert make_dataset(config).zoom == 1.2 and make_dataset(config, train=False).zoom == 1.0
    with pytest.raises(ValueError, match=r"data.zoom must be in \[1, 2\]"):
        load_config(None, ["data.zoom=0.8"])


def test_turned_sources_still_warp_onto_the_target_with_the_turned_pose(synth_root):
    """Each turned neighbour, warped with the true depth and its turned true pose (R T), lands on the target;
    with the pose before the turn it does not. The turns stay within their limits; the target is untouched."""
    ds = FolderDataset(synth_root, 128, 416, temporal_offsets=(-1, 1))
    batch = torch.utils.data.default_collate([ds[i] for i in (1, 2, 3)])
    torch.manual_seed(0)
    turned = turn_sources(batch, 6.0)
    assert turned["image"] is batch["image"] and turned["image_aug"] is batch["image_aug"]
    b, t = batch["temporal"].shape[:2]
    depth = batch["depth_gt"].repeat_interleave(t, 0)  # (B*T, 1, H, W), depth at the network size here
    K = batch["K"][:, 0].repeat_interleave(t, 0)
    target = batch["image"].repeat_interleave(t, 0)
    valid_depth = depth > 0

    def error(sources: torch.Tensor, poses: torch.Tensor) -> float:
        warped, inside = warp(sources.flatten(0, 1), depth, K, torch.linalg.inv(K), poses.flatten(0, 1))
        return float((warped - target).abs().mean(1, keepdim=True)[inside & valid_depth].median())

    assert error(batch["temporal"], batch["pose_gt"]) < 0.03  # the data itself warps
    assert error(turned["temporal"], turned["pose_gt"]) < 0.03
    assert error(turned["temporal"], batch["pose_gt"]) > 2 * error(turned["temporal"], turned["pose_gt"])
    # The added rotation, R = (R T) T^-1, about x (pitch), y (yaw) and z (roll): within the limits, not all tiny.
    R = (turned["pose_gt"] @ torch.linalg.inv(batch["pose_gt"]))[..., :3, :3]
    pitch, yaw = torch.asin(-R[..., 1, 2]).rad2deg(), torch.atan2(R[..., 0, 2], R[..., 2, 2]).rad2deg()
    assert yaw.abs().max() <= 6.0 + 1e-4 and pitch.abs().max() <= 1.5 + 1e-4 and yaw.abs().max() > 1.0
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(b, t))
    # The jittered copies the pose network sees turn with the same rotation as the frames the loss warps.
    torch.testing.assert_close(turned["temporal_aug"], turned["temporal"])  # no jitter here: the same images


def test_turn_sources_reaches_training_only(tiny_root, tmp_path):
    """data.turn_sources_deg changes the training loss (the sources turn) and never an evaluation pass. Auto-masking
    is off: its tie-breaking noise would make the losses differ whenever the turns only drew random numbers."""
    from selfdepth.config import load_config
    from selfdepth.module import SelfDepth
    from selfdepth.train import make_dataset

    def loss(turn: float, training: bool) -> float:
        config = load_config(None, [f"data.train={tiny_root}", "train.mode=mono", f"data.turn_sources_deg={turn}",
                                    "data.height=64", "data.width=128", "data.augment=false", "loss.automask=false"])
        batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
        torch.manual_seed(0)
        model = SelfDepth(config.to_dict())
        torch.manual_seed(1)  # the same turns for every call
        with torch.no_grad():
            return float(model.train(training).compute_loss(batch)[0])

    assert loss(5.0, training=False) == loss(0.0, training=False)
    assert loss(0.0, training=True) == loss(0.0, training=True)  # deterministic: a difference below is the turns
    assert loss(5.0, training=True) != loss(0.0, training=True)
    with pytest.raises(ValueError, match=r"data.turn_sources_deg must be in \[0, 15\]"):
        load_config(None, ["data.turn_sources_deg=30"])
