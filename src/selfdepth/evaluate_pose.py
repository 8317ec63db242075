"""Pose evaluation on KITTI odometry: absolute trajectory error on 5-frame snippets (Zhou et al., as Monodepth2).

For every snippet of ``length`` consecutive frames, the relative motions between
neighbours are chained into a local trajectory that starts at the origin; the
predicted trajectory is shifted to the ground truth's start and scaled by the
least-squares factor (monocular motion has no scale), and the snippet's error is

    sqrt(sum of squared position errors) / length

which is Monodepth2's ``compute_ate`` (note: not a root *mean* square). The
report is the mean and std over snippets. A constant straight-ahead motion,
scored the same way, is the trivial baseline.

With ``refine_steps`` the pose network's motions are also polished by direct photometric alignment
against the depth network's depth (``pose_refine.py``: no training, both networks frozen), and the
refined trajectory is scored beside the network's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from selfdepth.data.kitti_calib import read_odometry_calibration
from selfdepth.data.kitti_odometry import OdometrySequence
from selfdepth.inference import DepthModel, checkpoint_encoder, read_checkpoint
from selfdepth.io import load_image, save_json
from selfdepth.models import PoseNet
from selfdepth.pose_refine import refine_motion

__all__ = ["local_trajectory", "snippet_ate", "trajectory_error", "relative_ground_truth", "constant_motion",
           "evaluate_pose", "load_frames", "refine_motions", "sequence_intrinsics"]


def relative_ground_truth(poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) camera-to-world -> (N-1, 4, 4) frame-i-to-frame-(i+1) point transforms, inv(G_{i+1}) G_i."""
    return np.stack([np.linalg.inv(poses[i + 1]) @ poses[i] for i in range(len(poses) - 1)])


def constant_motion(steps: int) -> np.ndarray:
    """(steps, 4, 4) straight-ahead motions, the trivial baseline: a static point comes 1 unit nearer each
    frame (the unit does not matter: the ATE aligns the scale of every snippet)."""
    straight = np.tile(np.eye(4), (steps, 1, 1))
    straight[:, 2, 3] = -1.0
    return straight


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
    net = PoseNet(None, checkpoint_encoder(ckpt))
    net.load_state_dict(state)
    data = ckpt["hyper_parameters"]["config"]["data"]
    return net.eval(), int(data["height"]), int(data["width"])


def load_frames(frames: tuple[Path, ...], height: int, width: int) -> torch.Tensor:
    """Image files -> (N, 3, height, width) in [0, 1], resized as the networks see them."""
    import torch.nn.functional as F

    def load(path: Path) -> torch.Tensor:
        x = torch.from_numpy(load_image(path)).permute(2, 0, 1)[None].float() / 255
        return F.interpolate(x, (height, width), mode="bilinear", align_corners=False, antialias=True)[0]

    return torch.stack([load(p) for p in frames])


@torch.no_grad()
def predict_motions(net: PoseNet, images: torch.Tensor, batch: int = 8) -> np.ndarray:
    """(N, 3, H, W) frames -> (N-1, 4, 4) frame-i-to-frame-(i+1) transforms from consecutive pairs."""
    out = []
    for start in range(0, len(images) - 1, batch):
        stop = min(start + batch, len(images) - 1)
        out.append(net.transforms(images[start:stop], images[start + 1 : stop + 1, None], (1,))[:, 0])
    return torch.cat(out).double().numpy()


def sequence_intrinsics(seq: OdometrySequence, width: int, height: int) -> np.ndarray:
    """(3, 3) intrinsics of ``seq``'s left colour camera (P2) for its frames resized to ``width`` x ``height``."""
    size = load_image(seq.frames[0]).shape[1::-1]  # (width, height) of this sequence's images
    folder = seq.frames[0].parent.parent  # <root>/sequences/<nn>, above image_2
    return read_odometry_calibration(folder / "calib.txt", size).intrinsics(2).resized(width, height).matrix()


def refine_motions(checkpoint: str | Path, images: torch.Tensor, K: np.ndarray, motions: np.ndarray,
                   steps: int) -> np.ndarray:
    """Each motion of ``motions`` (N-1, 4, 4) polished against frames i, i+1 of ``images`` (N, 3, H, W)
    with the checkpoint's depth of frame i, in network units (the pose network's unit)."""
    model = DepthModel.load(checkpoint)
    depth = 1.0 / model.disparity(images)  # (N, 1, H, W) network units, not metres: the motions' unit
    K_t = torch.as_tensor(K, dtype=torch.float32)[None]
    refined = [refine_motion(images[i : i + 1], images[i + 1 : i + 2], depth[i : i + 1], K_t,
                             torch.as_tensor(motions[i : i + 1], dtype=torch.float32), steps=steps)
               for i in range(len(motions))]
    return torch.cat(refined).double().numpy()


def evaluate_pose(checkpoint: str | Path, root: str | Path, sequence: str, length: int = 5,
                  out: str | Path | None = None, refine_steps: int = 0) -> dict:
    """ATE of a checkpoint's pose network on a KITTI odometry sequence, beside the constant-motion baseline;
    with ``refine_steps`` > 0, also of its motions refined by direct alignment (``refined``)."""
    seq = OdometrySequence.open(root, sequence)
    net, height, width = load_pose_net(checkpoint)
    gt = relative_ground_truth(seq.poses)
    images = load_frames(seq.frames, height, width)
    pred = predict_motions(net, images)
    result = {
        "sequence": sequence,
        "frames": len(seq.frames),
        "snippet_length": length,
        "model": trajectory_error(pred, gt, length),
        "constant_motion": trajectory_error(constant_motion(len(gt)), gt, length),
        "checkpoint": str(checkpoint),
    }
    if refine_steps > 0:
        K = sequence_intrinsics(seq, width, height)
        result["refined"] = trajectory_error(refine_motions(checkpoint, images, K, pred, refine_steps), gt, length)
        result["refine_steps"] = refine_steps
    print(f"ATE over {result['model']['snippets']} {length}-frame snippets of sequence {sequence}: "
          f"model {result['model']['mean']:.4f} ± {result['model']['std']:.4f}, "
          f"constant motion {result['constant_motion']['mean']:.4f} ± {result['constant_motion']['std']:.4f}"
          + (f", refined {result['refined']['mean']:.4f} ± {result['refined']['std']:.4f}" if refine_steps > 0 else ""))
    if out is not None:
        save_json(out, result)
    return result
