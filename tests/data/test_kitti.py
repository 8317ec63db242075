"""KITTI raw: calibration, lidar ground truth and split handling (real data from ../shared when present)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from selfdepth.data.kitti import KittiDataset, lidar_depth, read_calibration, read_split

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
def test_calibration_of_the_left_colour_camera():
    calib = read_calibration(MINI / "2011_09_26")
    k = calib.intrinsics(2)
    assert k.fx == pytest.approx(721.5, abs=0.1) and k.fy == pytest.approx(721.5, abs=0.1)
    assert (k.width, k.height) == (1242, 375)
    assert calib.baseline() == pytest.approx(0.532, abs=0.005)  # KITTI's nominal 0.54 m


@needs_mini
def test_lidar_ground_truth_density_and_range():
    calib = read_calibration(MINI / "2011_09_26")
    for i in (0, 5, 9):
        depth = lidar_depth(MINI / DRIVE / "velodyne_points" / "data" / f"{i:010d}.bin", calib)
        valid = depth[depth > 0]
        assert depth.shape == (375, 1242)
        assert 15_000 <= valid.size <= 25_000, valid.size
        assert valid.min() > 1.0 and np.percentile(valid, 99) < 80.0
        assert (depth[: 375 // 4] == 0).mean() > 0.95, "lidar sees almost nothing in the top quarter"


@needs_mini
def test_right_camera_ground_truth_is_shifted_by_the_baseline():
    calib = read_calibration(MINI / "2011_09_26")
    scan = MINI / DRIVE / "velodyne_points" / "data" / "0000000004.bin"
    left, right = lidar_depth(scan, calib, 2), lidar_depth(scan, calib, 3)
    rows, cols = np.nonzero((left > 5) & (left < 20))
    # A point at depth z sits f * B / z pixels further left in the right image.
    shift = np.round(calib.P_rect[2][0, 0] * calib.baseline() / left[rows, cols]).astype(int)
    inside = cols - shift >= 0
    hits = right[rows[inside], cols[inside] - shift[inside]]
    assert np.mean(np.abs(hits - left[rows[inside], cols[inside]]) < 0.5) > 0.6


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


def test_calibration_with_missing_keys_names_the_file(tmp_path):
    date = tmp_path / "2011_09_26"
    date.mkdir()
    (date / "calib_cam_to_cam.txt").write_text("P_rect_00: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    (date / "calib_velo_to_cam.txt").write_text("R: 1 0 0 0 1 0 0 0 1\nT: 0 0 0\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_cam.txt: missing calibration keys \['P_rect_01'"):
        read_calibration(date)


@needs_mini
def test_truncated_velodyne_file_is_explained(tmp_path):
    calib = read_calibration(MINI / "2011_09_26")
    scan = tmp_path / "scan.bin"
    shutil.copy(MINI / DRIVE / "velodyne_points" / "data" / "0000000000.bin", scan)
    scan.write_bytes(scan.read_bytes()[:-6])
    with pytest.raises(ValueError, match=r"scan.bin: .* not a whole number of 16-byte points"):
        lidar_depth(scan, calib)


@needs_mini
@pytest.mark.slow
def test_stereo_fit_to_the_real_frames_beats_a_constant_depth(tmp_path):
    """Random init, 120 steps at 320x96 on frames 1-8 (both cameras), scored against lidar on all 10 frames.

    Does not collapse to maximum disparity, and comes out in metres. Measured figures for longer
    runs are in benchmarks/results/kitti_mini.json.
    """
    from selfdepth.config import load_config
    from selfdepth.evaluate import evaluate
    from selfdepth.predict import DepthModel
    from selfdepth.train import fit

    train = tmp_path / "train.txt"
    train.write_text("".join(f"{DRIVE} {i} {side}\n" for i in range(1, 9) for side in "lr"))
    config = load_config(None, [
        f"data.train={MINI}", f"data.kitti_split={train}", "data.height=96", "data.width=320", "train.mode=stereo",
        "train.batch_size=8", "train.max_steps=120", f"train.out_dir={tmp_path / 'run'}", "train.progress_bar=false",
        "train.image_every=0", "train.checkpoint_every=1000",
    ])
    model = DepthModel.load(fit(config))
    result = evaluate(model, KittiDataset(MINI, _split(tmp_path, range(10)), 96, 320, ground_truth=True), garg=True)
    assert model.metric
    assert result["model"]["abs_rel"] < 0.75 * result["constant"]["abs_rel"], result
