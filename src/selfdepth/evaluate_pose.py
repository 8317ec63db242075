"""Pose evaluation on KITTI odometry: absolute trajectory error on 5-frame snippets (Zhou et al., as Monodepth2).

For every snippet of ``length`` consecutive frames, the relative motions between
neighbours are chained into a local trajectory that starts at the origin; the
predicted trajectory is shifted to the ground truth's start and scaled by the
least-squares factor (monocular motion has no scale), and the snippet's error is

    sqrt(sum of squared position errors) / length

which is Monodepth2's ``compute_ate`` (note: not a root *mean* square). The
report is the mean and std over snippets. A constant straight-ahead motion,
scored the same way, is the trivial baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from selfdepth.data.kitti_odometry import OdometrySequence
from selfdepth.inference import read_checkpoint
from selfdepth.io import load_image, save_json
from selfdepth.models import PoseNet

__all__ = ["local_trajectory", "snippet_ate", "trajectory_error", "relative_ground_truth", "evaluate_pose"]


def relative_ground_truth(poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) camera-to-world -> (N-1, 4, 4) frame-i-to-frame-(i+1) point transforms, inv(G_{i+1}) G_i."""
    return np.stack([np.linalg.inv(poses[i + 1]) @ poses[i] for i in range(len(poses) - 1)])


def local_trajectory(transforms: np.ndarray) -> np.ndarray:
    """(L-1, 4, 4) chained motions -> (L, 3) positions, starting at the origin (Monodepth2's ``dump_xyz``)."""
    pose = np.eye(4)
    xyz = [pose[:3, 3].copy()]
    for t in transforms:
        pose = pose @ t
        xyz.append(pose[:3, 3].copy())
    return np.stack(xyz)


def snippet_ate(gt_xyz: np.ndarray, pred_xyz: np.ndarray) -> float:
    """Monodepth2's ``compute_ate`` of one snippet: align start and scale, sqrt(sum sq error) / length."""
    pred = pred_xyz + (gt_xyz[0] - pred_xyz[0])[None]
    denom = np.sum(pred**2)
    scale = np.sum(gt_xyz * pred) / denom if denom > 0 else 0.0  # a zero motion cannot be scaled
    return float(np.sqrt(np.sum((pred * scale - gt_xyz) ** 2)) / len(gt_xyz))


def trajectory_error(pred: np.ndarray, gt: np.ndarray, length: int = 5) -> dict[str, float]:
    """ATE over every ``length``-frame snippet of relative motions ``pred`` and ``gt``, each (N-1, 4, 4)."""
    if pred.shape != gt.shape:
        raise ValueError(f"predicted and true motions differ in shape: {pred.shape} vs {gt.shape}")
    if len(gt) < length - 1:
        raise ValueError(f"need at least {length} frames for {length}-frame snippets, got {len(gt) + 1}")
    errors = [snippet_ate(local_trajectory(gt[i : i + length - 1]), local_trajectory(pred[i : i + length - 1]))
              for i in range(len(gt) - length + 2)]
    return {"mean": float(np.mean(errors)), "std": float(np.std(errors)), "snippets": len(errors)}


def load_pose_net(checkpoint: str | Path) -> tuple[PoseNet, int, int]:
    """The pose network of a mono / mono+stereo checkpoint, and its input (height, width)."""
    ckpt = read_checkpoint(checkpoint)
    state = {k[len("pose."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("pose.")}
    if not state:
        raise ValueError(f"{checkpoint}: has no pose network (trained in stereo mode); use a mono or mono+stereo model")
    net = PoseNet(None)
    net.load_state_dict(state)
    data = ckpt["hyper_parameters"]["config"]["data"]
    return net.eval(), int(data["height"]), int(data["width"])


@torch.no_grad()
def predict_motions(net: PoseNet, frames: tuple[Path, ...], height: int, width: int, batch: int = 8) -> np.ndarray:
    """(N-1, 4, 4) frame-i-to-frame-(i+1) transforms predicted from consecutive frame pairs."""
    import torch.nn.functional as F

    def load(path: Path) -> torch.Tensor:
        x = torch.from_numpy(load_image(path)).permute(2, 0, 1)[None].float() / 255
        return F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)[0]

    images = [load(p) for p in frames]
    out = []
    for start in range(0, len(images) - 1, batch):
        pairs = range(start, min(start + batch, len(images) - 1))
        target = torch.stack([images[i] for i in pairs])
        source = torch.stack([images[i + 1] for i in pairs])[:, None]
        out.append(net.transforms(target, source, (1,))[:, 0])  # target (i) -> source (i + 1)
    return torch.cat(out).double().numpy()


def evaluate_pose(checkpoint: str | Path, root: str | Path, sequence: str, length: int = 5,
                  out: str | Path | None = None) -> dict:
    """ATE of a checkpoint's pose network on a KITTI odometry sequence, beside the constant-motion baseline."""
    seq = OdometrySequence.open(root, sequence)
    net, height, width = load_pose_net(checkpoint)
    gt = relative_ground_truth(seq.poses)
    pred = predict_motions(net, seq.frames, height, width)
    straight = np.tile(np.eye(4), (len(gt), 1, 1))
    straight[:, 2, 3] = -1.0  # driving forward: a static point comes 1 unit nearer (scale is aligned away)
    result = {
        "sequence": sequence,
        "frames": len(seq.frames),
        "snippet_length": length,
        "model": trajectory_error(pred, gt, length),
        "constant_motion": trajectory_error(straight, gt, length),
        "checkpoint": str(checkpoint),
    }
    print(f"ATE over {result['model']['snippets']} {length}-frame snippets of sequence {sequence}: "
          f"model {result['model']['mean']:.4f} ± {result['model']['std']:.4f}, "
          f"constant motion {result['constant_motion']['mean']:.4f} ± {result['constant_motion']['std']:.4f}")
    if out is not None:
        save_json(out, result)
    return result
