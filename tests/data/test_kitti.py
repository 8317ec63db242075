"""KITTI raw: split handling and samples (real data from ../shared when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfdepth.data.kitti import KittiDataset, read_split

MINI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kitti_raw_mini"
DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"
needs_mini = pytest.mark.skipif(not (MINI / DRIVE).is_dir(), reason="../shared/data/kitti_raw_mini not present")


def _split(tmp_path: Path, frames, side="l") -> Path:
    path = tmp_path / "split.txt"
    path.write_text("".join(f"{DRIVE} {f} {side}\n" for f in frames))
    return path


def test_shipped_splits_have_the_standard_sizes():
    assert len(read_split("eigen")) == 697
    assert len(read_split("eigen_benchmark")) == 652
    assert len(read_split("eigen_zhou")) == 39810
    assert read_split("eigen")[0] == ("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")


def test_bad_split_line_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{DRIVE} 3 l\n{DRIVE} three x\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: expected"):
        read_split(bad)
    with pytest.raises(FileNotFoundError, match="or use one of: eigen"):
        read_split(tmp_path / "nope.txt")


@needs_mini
def test_dataset_samples_stereo_video_and_ground_truth(tmp_path):
    data = KittiDataset(MINI, _split(tmp_path, [1, 5, 8], "l"), 128, 416, temporal_offsets=(-1, 1), stereo=True,
                        ground_truth=True)
    sample = data[1]
    assert sample["image"].shape == (3, 128, 416) and sample["temporal"].shape == (2, 3, 128, 416)
    assert sample["stereo_sign"] == 1.0 and sample["depth_gt"].shape == (1, 375, 1242)
    assert sample["K"][0, 0, 0] == pytest.approx(721.5377 * 416 / 1242, rel=1e-6)
    right_side = KittiDataset(MINI, _split(tmp_path, [5], "r"), 128, 416, stereo=True)
    assert right_side[0]["stereo_sign"] == -1.0


@needs_mini
def test_missing_frames_are_listed_or_skipped(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)2 files listed by split .* missing .*0000000042.png.*--skip-missing"):
        KittiDataset(MINI, _split(tmp_path, [3, 42, 43]), 128, 416)
    data = KittiDataset(MINI, _split(tmp_path, [3, 42, 43]), 128, 416, skip_missing=True)
    assert len(data) == 1


@needs_mini
@pytest.mark.slow
def test_stereo_fit_to_the_real_frames_beats_a_constant_depth(tmp_path):
    """Random init, 120 steps at 224x64 on frames 1-8 (both cameras), scored against lidar on all 10 frames.

    (224x64: 2 min on this project's 2-core CPU, AbsRel 0.16x the constant's when measured; 320x96 took 3.4 min.)

    Does not collapse to maximum disparity, and comes out in metres. Measured figures for longer
    runs are in benchmarks/results/kitti_mini.json.
    """
    from selfdepth.config import load_config
    from selfdepth.evaluate import evaluate
    from selfdepth.inference import DepthModel
    from selfdepth.train import fit

    train = tmp_path / "train.txt"
    train.write_text("".join(f"{DRIVE} {i} {side}\n" for i in range(1, 9) for side in "lr"))
    config = load_config(None, [
        f"data.train={MINI}", f"data.kitti_split={train}", "data.height=64", "data.width=224", "train.mode=stereo",
        "data.refuse_held_out=false",  # a deliberate fit to the 10-frame Eigen test sample
        "train.batch_size=8", "train.max_steps=120", f"train.out_dir={tmp_path / 'run'}", "train.progress_bar=false",
        "train.image_every=0", "train.checkpoint_every=1000",
    ])
    model = DepthModel.load(fit(config))
    result = evaluate(model, KittiDataset(MINI, _split(tmp_path, range(10)), 64, 224, ground_truth=True), garg=True)
    assert model.metric
    assert result["model"]["abs_rel"] < 0.75 * result["constant"]["abs_rel"], result


# ----------------------------------------------------------------------------- self-made KITTI trees: JPEG or PNG

_CAM_TO_CAM = """calib_time: 09-Jan-2012 13:57:47
S_rect_02: 6.400000e+01 3.200000e+01
R_rect_00: 1 0 0 0 1 0 0 0 1
P_rect_00: 50 0 32 0 0 50 16 0 0 0 1 0
P_rect_01: 50 0 32 -27 0 50 16 0 0 0 1 0
P_rect_02: 50 0 32 2.5 0 50 16 0 0 0 1 0
P_rect_03: 50 0 32 -24.5 0 50 16 0 0 0 1 0
"""
_VELO_TO_CAM = "R: 0 -1 0 0 0 -1 1 0 0\nT: 0 0 0\n"  # velodyne x forward -> camera z forward


def _make_drive(root: Path, suffix: str, frames: int = 4, scans=(0, 2), drive: str = DRIVE) -> Path:
    """A tiny KITTI raw tree: 64x32 images as ``suffix``, calibration, and velodyne scans for ``scans``."""
    from PIL import Image

    date = root / drive.split("/")[0]
    date.mkdir(parents=True, exist_ok=True)
    (date / "calib_cam_to_cam.txt").write_text(_CAM_TO_CAM)
    (date / "calib_velo_to_cam.txt").write_text(_VELO_TO_CAM)
    y, x = np.mgrid[0:32, 0:64]
    base = np.stack([128 + 100 * np.sin(x / 5.0), 128 + 100 * np.cos(y / 4.0), 128 + 60 * np.sin((x + y) / 7.0)], -1)
    base = base.astype(np.uint8)  # smooth, so JPEG keeps it close
    for camera in ("image_02", "image_03"):
        folder = root / drive / camera / "data"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(frames):
            Image.fromarray(np.roll(base, i, axis=1)).save(folder / f"{i:010d}{suffix}", quality=95)
    velo = root / drive / "velodyne_points" / "data"
    velo.mkdir(parents=True, exist_ok=True)
    for i in scans:  # a wall of points 10 m ahead
        y, z = np.meshgrid(np.linspace(-2, 2, 40), np.linspace(-1, 1, 20))
        pts = np.stack([np.full(y.size, 10.0), y.ravel(), z.ravel(), np.ones(y.size)], 1).astype(np.float32)
        pts.tofile(velo / f"{i:010d}.bin")
    return root


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_jpeg_and_png_drives_load_alike(tmp_path, suffix):
    png = _make_drive(tmp_path / "png", ".png")
    other = _make_drive(tmp_path / "other", suffix)
    split = _split(tmp_path, [1, 2])
    a = KittiDataset(png, split, 32, 64, temporal_offsets=(-1, 1), stereo=True)[0]
    b = KittiDataset(other, split, 32, 64, temporal_offsets=(-1, 1), stereo=True)[0]
    assert b["temporal"].shape == (2, 3, 32, 64) and b["stereo"].shape == (3, 32, 64)
    tolerance = 0.0 if suffix == ".png" else 0.02  # JPEG q95 of a smooth image: a small mean error
    for key in ("image", "temporal", "stereo"):
        assert float((a[key] - b[key]).abs().mean()) <= tolerance, key


def test_a_drive_mixing_formats_or_holding_none_is_named(tmp_path):
    from selfdepth.data.kitti import image_suffix

    root = _make_drive(tmp_path / "mixed", ".jpg")
    # A split frame that exists only as the other extension makes the drive mixed.
    src = root / DRIVE / "image_02" / "data" / "0000000001.jpg"
    from PIL import Image

    Image.open(src).save(src.with_name("0000000009.png"))
    image_suffix.cache_clear()
    with pytest.raises(ValueError, match=r"drive_0002_sync: image_02/image_03 mix .png and .jpg"):
        KittiDataset(root, _split(tmp_path, [9]), 32, 64)
    empty = tmp_path / "empty"
    (empty / DRIVE / "image_02" / "data").mkdir(parents=True)
    image_suffix.cache_clear()
    with pytest.raises(FileNotFoundError, match=r"drive_0002_sync: no .png or .jpg images"):
        KittiDataset(empty, _split(tmp_path, [1]), 32, 64)


def test_sparse_lidar_scores_the_frames_that_have_a_scan(tmp_path):
    root = _make_drive(tmp_path / "k", ".jpg", frames=4, scans=(0, 2))
    data = KittiDataset(root, _split(tmp_path, range(4)), 32, 64, ground_truth=True)
    assert len(data) == 2 and data.frames_without_lidar == 2
    depth = data[0]["depth_gt"][0].numpy()
    assert depth.shape == (32, 64) and np.allclose(depth[depth > 0], 10.0)
    with pytest.raises(FileNotFoundError, match=r"none of the 2 frames .* has a velodyne scan"):
        KittiDataset(root, _split(tmp_path, [1, 3]), 32, 64, ground_truth=True)


def test_a_drive_without_calibration_names_the_file(tmp_path):
    root = _make_drive(tmp_path / "k", ".jpg")
    (root / "2011_09_26" / "calib_cam_to_cam.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"calibration file not found: .*2011_09_26/calib_cam_to_cam.txt"):
        KittiDataset(root, _split(tmp_path, [1]), 32, 64)


def test_ground_truth_export_and_drive_split(tmp_path):
    from PIL import Image

    from selfdepth.data.kitti import drive_split
    from selfdepth.evaluate import export_ground_truth

    root = _make_drive(tmp_path / "k", ".jpg", frames=5, scans=(0, 2))
    split = drive_split(root, DRIVE, tmp_path / "all.txt", "lr", 1)
    assert split.read_text().splitlines() == [f"{DRIVE} {f} {s}" for f in (1, 2, 3) for s in "lr"]
    lidar = drive_split(root, DRIVE, tmp_path / "lidar.txt", "l", 0, with_lidar=True)
    assert [line.split()[1] for line in lidar.read_text().splitlines()] == ["0", "2"]
    written = export_ground_truth(root, lidar, tmp_path / "gt")
    depth = np.asarray(Image.open(written[0]), dtype=np.float32) / 1000
    assert len(written) == 2 and np.allclose(depth[depth > 0], 10.0)
    assert (tmp_path / "gt" / "files.txt").read_text().splitlines()[0].endswith("_0000000000_l.png")
    with pytest.raises(FileNotFoundError, match=r"(?s)2 velodyne scans .* missing.*--skip-missing"):
        export_ground_truth(root, _split(tmp_path, [1, 2, 3]), tmp_path / "gt2")
