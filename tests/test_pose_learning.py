"""Monocular mode learns motion: with depth frozen to the truth, PoseNet recovers the true relative poses."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from selfdepth.config import load_config
from selfdepth.data.folder import FolderDataset
from selfdepth.data.synthetic import synthesize
from selfdepth.losses import min_reprojection
from selfdepth.train import SelfDepth

H, W = 64, 192


def _rotation_deg(R: torch.Tensor) -> torch.Tensor:
    """Angle of each (N, 3, 3) rotation, degrees."""
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))


@pytest.mark.slow
def test_pose_net_learns_true_motion_with_true_depth(tmp_path):
    synthesize(tmp_path / "train", scenes=8, frames_per_scene=6, width=W, height=H, seed=11, sheet=False)
    config = load_config(None, ["train.mode=mono", f"data.height={H}", f"data.width={W}"])
    torch.manual_seed(0)
    model = SelfDepth(config.to_dict())
    assert model.pose is not None
    optimizer = torch.optim.Adam(model.pose.parameters(), lr=1e-3)
    offsets = config.train.temporal_offsets
    train = FolderDataset(tmp_path / "train", H, W, temporal_offsets=offsets, cache=True)

    def frozen_depth(batch):
        gt = batch["depth_gt"]
        return torch.where(gt > 0, gt, torch.full_like(gt, 1e4))  # the sky is (nearly) at infinity

    loader = DataLoader(train, batch_size=8, shuffle=True)
    step = 0
    while step < 450:
        for batch in loader:
            target, sources, K = batch["image"], batch["temporal"], batch["K"][:, 0]
            transforms = model.pose.transforms(target, sources, offsets)
            errors = model.reprojection_errors(frozen_depth(batch), sources, transforms, target, K)
            b, s = sources.shape[:2]
            identity = model.photometric(sources.flatten(0, 1), target.repeat_interleave(s, 0)).reshape(errors.shape)
            loss, _ = min_reprojection(errors, identity + 1e-5 * torch.randn_like(identity))
            optimizer.zero_grad()
            loss.mean().backward()
            optimizer.step()
            step += 1

    # Scored on the frames it trained on: this checks that the objective, the geometry and the pose
    # plumbing have their minimum at the true motion and that PoseNet can reach it.
    batch = next(iter(DataLoader(train, batch_size=len(train))))
    with torch.no_grad():
        pred = model.pose.eval().transforms(batch["image"], batch["temporal"], offsets).flatten(0, 1)
    true = batch["pose_gt"].flatten(0, 1)
    moving = true[:, :3, 3].norm(dim=-1) > 0.3
    assert moving.sum() >= 5
    cos = torch.nn.functional.cosine_similarity(pred[moving, :3, 3], true[moving, :3, 3], dim=-1)
    rot_err = _rotation_deg(pred[:, :3, :3].transpose(1, 2) @ true[:, :3, :3])
    assert _rotation_deg(true[:, :3, :3]).mean() > 0.8, "the frames must really rotate for this to test anything"
    assert cos.mean() >= 0.95, f"translation direction cosine {cos.mean():.3f}"
    assert rot_err.mean() < 1.0, f"rotation error {rot_err.mean():.2f} deg"
    # Metric scale comes for free when depth is metric.
    scale = pred[moving, :3, 3].norm(dim=-1) / true[moving, :3, 3].norm(dim=-1)
    assert math.isclose(float(scale.median()), 1.0, rel_tol=0.25)
