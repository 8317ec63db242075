"""Pose evaluation: Zhou et al.'s snippet ATE, checked by hand and on ground truth, and the command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from selfdepth.evaluate_pose import (constant_motion, local_trajectory, relative_ground_truth, snippet_ate,
                                     trajectory_error)

ODOMETRY = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kitti_odometry_04"


def _drive(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4, 4) camera-to-world poses of a wobbly forward drive."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(1, n):
        yaw = rng.normal(0, 0.05)
        step = np.eye(4)
        step[:3, :3] = [[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]]
        step[:3, 3] = [rng.normal(0, 0.05), rng.normal(0, 0.01), 1.0 + rng.normal(0, 0.1)]
        poses[i] = poses[i - 1] @ step
    return poses


def test_ground_truth_scores_zero_at_any_scale():
    gt = relative_ground_truth(_drive(12))
    assert trajectory_error(gt, gt)["mean"] == pytest.approx(0.0, abs=1e-12)
    scaled = gt.copy()
    scaled[:, :3, 3] *= 3.7  # monocular: only the scale is unknown
    result = trajectory_error(scaled, gt)
    assert result["mean"] == pytest.approx(0.0, abs=1e-12) and result["snippets"] == 8


def test_a_hand_computed_snippet():
    gt = np.array([[0.0, 0, 0], [0, 0, 1]])
    pred = np.array([[0.0, 0, 0], [1, 0, 1]])
    # offset 0; scale = (0*1 + 1*1) / (1 + 1) = 0.5; errors (0.5, 0, -0.5): sqrt(0.5) / 2
    assert snippet_ate(gt, pred) == pytest.approx(math.sqrt(0.5) / 2)
    assert snippet_ate(gt, np.array([[5.0, 5, 5], [5, 5, 7]])) == pytest.approx(0.0)  # shifted and scaled
    steps = np.tile(np.eye(4), (2, 1, 1))
    steps[:, 2, 3] = 1.0
    np.testing.assert_allclose(local_trajectory(steps), [[0, 0, 0], [0, 0, 1], [0, 0, 2]])


def test_constant_motion_is_worse_than_truth_but_finite():
    gt = relative_ground_truth(_drive(20, seed=3))
    err = trajectory_error(constant_motion(len(gt)), gt)["mean"]
    assert 0 < err < 1.0


def test_pose_evaluation_needs_a_pose_network(tiny_root, tmp_path):
    from selfdepth.config import load_config
    from selfdepth.evaluate_pose import load_pose_net
    from selfdepth.train import fit

    common = [f"data.train={tiny_root}", "data.height=64", "data.width=128", "train.max_steps=1",
              "train.batch_size=2", "train.progress_bar=false", "train.image_every=0"]
    stereo = fit(load_config(None, common + [f"train.out_dir={tmp_path / 's'}", "train.mode=stereo"]))
    with pytest.raises(ValueError, match="has no pose network"):
        load_pose_net(stereo)
    mono = fit(load_config(None, common + [f"train.out_dir={tmp_path / 'm'}", "train.mode=mono"]))
    net, height, width = load_pose_net(mono)
    assert (height, width) == (64, 128)

    # The command end to end, on a rendered scene laid out as a KITTI odometry sequence.
    import shutil

    from selfdepth.cli import main
    from selfdepth.evaluate_pose import evaluate_pose

    scene = sorted(tiny_root.glob("scene_*"))[0]
    seq = tmp_path / "odometry"
    (seq / "sequences" / "00" / "image_2").mkdir(parents=True)
    (seq / "poses").mkdir()
    for i, frame in enumerate(sorted((scene / "left").glob("*.png"))):
        shutil.copy(frame, seq / "sequences" / "00" / "image_2" / f"{i:06d}.png")
    shutil.copy(scene / "poses.txt", seq / "poses" / "00.txt")
    result = evaluate_pose(mono, seq, "00", length=3)
    assert result["frames"] == 4 and result["model"]["snippets"] == 2
    assert np.isfinite(result["model"]["mean"]) and result["constant_motion"]["mean"] >= 0
    assert "refined" not in result

    # With refinement: the sequence's calib.txt gives the intrinsics (P2, P3 as the odometry download).
    import json

    k = json.loads((scene / "intrinsics.json").read_text())
    p2 = f"{k['fx']} 0 {k['cx']} 0 0 {k['fy']} {k['cy']} 0 0 0 1 0"
    p3 = f"{k['fx']} 0 {k['cx']} {-k['fx'] * k['baseline']} 0 {k['fy']} {k['cy']} 0 0 0 1 0"
    (seq / "sequences" / "00" / "calib.txt").write_text(f"P0: {p2}\nP1: {p3}\nP2: {p2}\nP3: {p3}\n")
    refined = evaluate_pose(mono, seq, "00", length=3, refine_steps=2)
    assert refined["model"] == result["model"] and refined["refine_steps"] == 2
    assert refined["refined"]["snippets"] == 2 and np.isfinite(refined["refined"]["mean"])
    assert main(["evaluate-pose", "--checkpoint", str(stereo), "--root", str(seq), "--sequence", "00"]) == 2


@pytest.mark.skipif(not (ODOMETRY / "poses" / "04.txt").is_file(), reason="../shared/data/kitti_odometry_04 absent")
def test_real_sequence_ground_truth_and_reader():
    from selfdepth.data.kitti_odometry import OdometrySequence

    seq = OdometrySequence.open(ODOMETRY, "04")
    assert len(seq.frames) == 51 and seq.poses.shape == (51, 4, 4)
    gt = relative_ground_truth(seq.poses)
    assert trajectory_error(gt, gt)["mean"] == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(gt[:, :3, 3], axis=1).mean() > 0.5  # the car moves about a metre per frame


def test_bad_pose_file_is_named(tmp_path):
    from selfdepth.data.kitti_odometry import read_poses

    bad = tmp_path / "04.txt"
    bad.write_text("1 0 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(ValueError, match=r"04.txt: expected 12 numbers per line"):
        read_poses(bad)
