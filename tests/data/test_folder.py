"""FolderDataset: what training gets, flips done right, and clear errors on bad input."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from selfdepth.data.folder import FolderDataset
from selfdepth.data.synthetic import BASELINE
from selfdepth.geometry import stereo_transform, warp


def test_sample_keys_and_shapes(synth_root):
    ds = FolderDataset(synth_root, 128, 416, temporal_offsets=(-1, 1), stereo=True, augment=True)
    assert len(ds) == 2 * 3  # frames 1..3 of each 5-frame scene have both neighbours
    s = ds[0]
    assert s["image"].shape == s["image_aug"].shape == s["stereo"].shape == (3, 128, 416)
    assert s["temporal"].shape == s["temporal_aug"].shape == (2, 3, 128, 416)
    assert s["K"].shape == (4, 3, 3) and s["depth_gt"].shape == (1, 128, 416) and s["pose_gt"].shape == (2, 4, 4)
    assert s["K"][1, 0, 0] == pytest.approx(s["K"][0, 0, 0] / 2)
    assert 0 <= s["image"].min() and s["image"].max() <= 1


def test_resizing_scales_intrinsics(synth_root):
    ds = FolderDataset(synth_root, 64, 224)
    K = ds[0]["K"][0]
    assert K[0, 0] == pytest.approx(0.58 * 416 * 224 / 416, rel=1e-5)
    assert K[0, 2] == pytest.approx((415 / 2 + 0.5) * 224 / 416 - 0.5, rel=1e-5)
    assert ds[0]["image"].shape == (3, 64, 224)


@pytest.mark.parametrize("flip", [False, True])
def test_stereo_warp_with_flip(synth_root, monkeypatch, flip):
    """Flipping mirrors images and principal point and swaps the stereo side: the true warp still works."""
    monkeypatch.setattr(random, "random", lambda: 0.0 if flip else 1.0)
    ds = FolderDataset(synth_root, 128, 416, stereo=True, augment=True)
    s = ds[1]
    assert float(s["stereo_sign"]) == (-1.0 if flip else 1.0)
    K = s["K"][:1]
    depth = s["depth_gt"][None]
    T = stereo_transform(s["stereo_sign"][None], BASELINE)
    warped, inside = warp(s["stereo"][None], depth, K, torch.linalg.inv(K), T)
    valid = inside & (depth > 0)
    err = (warped - s["image"][None]).abs().mean(1, keepdim=True)[valid].median()
    assert err < 0.02
    # With the side not swapped the warp fails: the flip really needs it.
    T_wrong = stereo_transform(-s["stereo_sign"][None], BASELINE)
    warped, _ = warp(s["stereo"][None], depth, K, torch.linalg.inv(K), T_wrong)
    assert (warped - s["image"][None]).abs().mean(1, keepdim=True)[valid].median() > 2 * err


def test_flipped_pose_is_mirrored(synth_root, monkeypatch):
    ds = FolderDataset(synth_root, 128, 416, temporal_offsets=(1,), augment=True)
    monkeypatch.setattr(random, "random", lambda: 1.0)
    plain = ds[1]["pose_gt"][0]
    monkeypatch.setattr(random, "random", lambda: 0.0)
    flipped = ds[1]["pose_gt"][0]
    M = torch.diag(torch.tensor([-1.0, 1, 1, 1]))
    torch.testing.assert_close(flipped, M @ plain @ M)
    assert ds[1]["K"][0, 0, 2] == pytest.approx(415 - 415 / 2)


@pytest.fixture
def scene_copy(synth_root, tmp_path) -> Path:
    dst = tmp_path / "scene"
    shutil.copytree(synth_root / "scene_0000", dst)
    return dst


def test_missing_frame_names_it(scene_copy):
    (scene_copy / "right" / "000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"right/ has no file for frame 000002\.png"):
        FolderDataset(scene_copy, 128, 416, stereo=True)


def test_corrupt_image_names_it(scene_copy):
    bad = scene_copy / "left" / "000001.png"
    bad.write_bytes(bad.read_bytes()[:100])
    ds = FolderDataset(scene_copy, 128, 416)
    with pytest.raises(ValueError, match=r"000001\.png: cannot decode image"):
        ds[1]


def test_grey_image_is_rejected(scene_copy):
    from PIL import Image

    Image.fromarray(np.zeros((128, 416), dtype=np.uint8)).save(scene_copy / "left" / "000000.png")
    with pytest.raises(ValueError, match=r"000000\.png: expected an RGB colour image, got mode 'L'"):
        FolderDataset(scene_copy, 128, 416)[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"fx": 100, "fy": 100, "cx": 50}', r"missing keys \['cy'\]"),
        ('{"fx": 100, "fy": 100, "cx": 900, "cy": 50}', "principal point .* outside the 416x128 image"),
        ('{"K": [[1, 0], [0, 1]]}', "K must be 3x3"),
        ("fx: [unclosed", "not valid YAML/JSON"),
        ('{"fx": "abc", "fy": 1, "cx": 1, "cy": 1}', "malformed intrinsics"),
    ],
)
def test_malformed_intrinsics_name_the_file(scene_copy, text, message):
    (scene_copy / "intrinsics.json").write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        FolderDataset(scene_copy, 128, 416)
    assert "intrinsics.json" in str(info.value)


def test_stereo_without_right_folder(scene_copy):
    shutil.rmtree(scene_copy / "right")
    with pytest.raises(ValueError, match="stereo needs a right/ folder"):
        FolderDataset(scene_copy, 128, 416, stereo=True)
