"""Does the pose network measure turning? Predicted against true yaw per frame pair (issue 28 diagnostic).

On the 10-frame odometry excerpts the pose networks barely beat, or lose to, constant motion. This
asks why, one number per source: the least-squares slope of predicted on true yaw (1 = the turn is
measured at its true size, 0 = every pair looks straight) and their correlation, over every
consecutive pair of

- rendered scenes (``data/synth_varied``, every 6th of the 60), where pre-training supervised the pose;
- real odometry sequences the runs trained on (01, 02, 03, 06, 08; their poses were never used);
- the held-out pose sequences (09, 10, 04);

for the pose network alone and, with ``--refine``, after direct photometric refinement with the
run's own depth (``evaluate_pose.refine_motions``). Yaw is the rotation about the camera's vertical
axis, ``atan2(R[0, 2], R[0, 0])``, in degrees per frame. Beside it, per sequence, the mean angle
between the predicted and the true direction of travel (translation), and constant straight-ahead
motion's, and the spread of the step lengths against the true ones (``step_length_cv``): the parts
of a trajectory's shape the yaw does not cover.

    .venv/bin/python benchmarks/pose_yaw.py --refine \\
        runs/pretrain60/checkpoints/last.ckpt runs/real_streets/<run>/run/checkpoints/last.ckpt ...

Writes ``benchmarks/results/pose_yaw.json`` (a record per checkpoint, keyed by its run folder; name
every checkpoint to keep, about 11 s each on a 2-core CPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _machine import machine
from real_streets import ODOMETRY, POSE, REFINE_STEPS, ROOT

from selfdepth.data.kitti_odometry import OdometrySequence
from selfdepth.evaluate_pose import (constant_motion, load_frames, load_pose_net, predict_motions, refine_motions,
                                     relative_ground_truth, sequence_intrinsics)
from selfdepth.io import save_json
from selfdepth.models import PoseNet

SYNTHETIC = ROOT / "data" / "synth_varied"
SEQUENCES = {  # label -> (root, sequence): the runs' odometry training sequences, then the pose test ones
    **{f"train_{s}": (ODOMETRY, s) for s in ("01", "02", "03", "06", "08")},
    **{f"test_{s}": (root, s) for s, root in POSE.items()},
}
MIN_SPREAD_DEG = 0.1  # a sequence that barely turns has no slope to speak of (06: 0.04 deg every pair)


def yaw_degrees(transforms: np.ndarray) -> np.ndarray:
    """(N, 4, 4) frame-to-frame transforms -> (N,) yaw in degrees (rotation about the camera's y axis)."""
    return np.degrees(np.arctan2(transforms[:, 0, 2], transforms[:, 0, 0]))


def fit(true: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Slope of predicted on true yaw (least squares, with intercept), correlation, and the spread of each;
    slope and correlation are None where the true yaw hardly varies (std under ``MIN_SPREAD_DEG``)."""
    varied = true.std() >= MIN_SPREAD_DEG
    return {"slope": float(np.polyfit(true, predicted, 1)[0]) if varied else None,
            "correlation": float(np.corrcoef(true, predicted)[0, 1]) if varied else None, "pairs": int(len(true)),
            "true_std_deg": float(true.std()), "predicted_std_deg": float(predicted.std())}


def synthetic_pairs(net: PoseNet, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted yaw over every consecutive pair of every 6th rendered scene."""
    true, predicted = [], []
    for scene in sorted(SYNTHETIC.glob("scene_*"))[::6]:
        frames = tuple(sorted((scene / "left").glob("*.png")))
        poses = np.tile(np.eye(4), (len(frames), 1, 1))
        poses[:, :3, :] = np.loadtxt(scene / "poses.txt").reshape(-1, 3, 4)
        true.append(yaw_degrees(relative_ground_truth(poses)))
        predicted.append(yaw_degrees(predict_motions(net, load_frames(frames, h, w))))
    return np.concatenate(true), np.concatenate(predicted)


def direction_error_degrees(transforms: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N,) angle in degrees between the translations of (N, 4, 4) ``transforms`` and of ``true``: the
    direction of travel, which per-snippet scale alignment cannot fix."""
    a, b = transforms[:, :3, 3], true[:, :3, 3]
    cos = np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def step_length_cv(transforms: np.ndarray, true: np.ndarray) -> float:
    """Spread (std / mean) of the ratio of each step's length to the true one: 0 when every step has the
    right length up to one scale (what per-snippet alignment forgives), larger when steps vary wrongly."""
    ratio = np.linalg.norm(transforms[:, :3, 3], axis=1) / np.maximum(np.linalg.norm(true[:, :3, 3], axis=1), 1e-12)
    return float(ratio.std() / ratio.mean())


def sequence_measures(checkpoint: Path, net: PoseNet, h: int, w: int, root: Path, sequence: str,
                      refine: bool) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """One odometry sequence: true, predicted and (with ``refine``) refined yaw per consecutive pair, and
    the trajectory shape beside yaw (mean direction-of-travel error, ``step_length_cv``) for the network
    and for constant motion. ``net`` is ``checkpoint``'s pose network, (h, w) its input size;
    refinement uses its depth network."""
    seq = OdometrySequence.open(root, sequence)
    images = load_frames(seq.frames, h, w)
    predicted = predict_motions(net, images)
    true = relative_ground_truth(seq.poses)
    yaws = {"true": yaw_degrees(true).tolist(), "network": yaw_degrees(predicted).tolist()}
    if refine:
        K = sequence_intrinsics(seq, w, h)
        yaws["refined"] = yaw_degrees(refine_motions(checkpoint, images, K, predicted, REFINE_STEPS)).tolist()
    motions = {"network": predicted, "constant_motion": constant_motion(len(true))}
    shape = {"direction_error_deg": {k: float(direction_error_degrees(m, true).mean()) for k, m in motions.items()},
             "step_length_cv": {k: step_length_cv(m, true) for k, m in motions.items()}}
    return yaws, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--refine", action="store_true", help="also score the refined motions' yaw")
    args = parser.parse_args()
    path = ROOT / "benchmarks" / "results" / "pose_yaw.json"
    records = {}
    for checkpoint in args.checkpoints:
        name = checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.stem
        if name == "run":  # runs/real_streets/<run>/run/checkpoints/last.ckpt: the run's folder names it
            name = checkpoint.parents[2].name
        net, h, w = load_pose_net(checkpoint)  # once per checkpoint, for every source below
        record: dict = {"checkpoint": str(checkpoint), "sequences": {}}
        if SYNTHETIC.is_dir():
            record["synthetic"] = fit(*synthetic_pairs(net, h, w))
        pooled: dict[str, dict[str, list[float]]] = {"train": {}, "test": {}}
        for label, (root, sequence) in SEQUENCES.items():
            yaws, shape = sequence_measures(checkpoint, net, h, w, root, sequence, args.refine)
            record["sequences"][label] = {"yaw_deg": yaws, **shape,
                                          **{k: fit(np.array(yaws["true"]), np.array(v))
                                             for k, v in yaws.items() if k != "true"}}
            for k, v in yaws.items():
                pooled[label.split("_")[0]].setdefault(k, []).extend(v)
        for group, yaws in pooled.items():
            record[group] = {k: fit(np.array(yaws["true"]), np.array(v)) for k, v in yaws.items() if k != "true"}
        records[name] = record
        print(f"{name}: synthetic slope {record.get('synthetic', {}).get('slope', float('nan')):.2f}; "
              + "; ".join(f"{g} {k} slope {v['slope']:.2f} (r {v['correlation']:.2f})"
                          for g in ("train", "test") for k, v in record[g].items()), flush=True)
    save_json(path, {"machine": machine(), "refine_steps": REFINE_STEPS if args.refine else 0, "runs": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
