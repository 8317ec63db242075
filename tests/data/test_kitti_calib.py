"""KITTI calibration and lidar ground truth (real data from ../shared when present)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from selfdepth.data.kitti_calib import lidar_depth, read_calibration

MINI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kitti_raw_mini"
DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"
needs_mini = pytest.mark.skipif(not (MINI / DRIVE).is_dir(), reason="../shared/data/kitti_raw_mini not present")


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
