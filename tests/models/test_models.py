"""DepthNet and PoseNet: shapes, ranges, bad sizes and local pretrained weights."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from selfdepth.geometry import pose_vec_to_mat
from selfdepth.models import DepthNet, PoseNet, ResnetEncoder


@pytest.mark.parametrize("size", [(64, 96), (96, 320)])
def test_depth_outputs_four_scales_in_unit_range(size):
    net = DepthNet().eval()
    h, w = size
    with torch.no_grad():
        disps = net(torch.rand(2, 3, h, w))
    assert [d.shape for d in disps] == [(2, 1, h >> s, w >> s) for s in range(4)]
    for d in disps:
        assert 0 < d.min() and d.max() < 1


def test_depth_net_size_and_encoder_params():
    net = DepthNet()
    encoder = sum(p.numel() for p in net.encoder.parameters())
    assert 11.0e6 < encoder < 11.3e6  # ResNet18 without its classifier
    assert sum(p.numel() for p in net.parameters()) < 15e6


@pytest.mark.parametrize("shape", [(1, 3, 100, 96), (1, 3, 64, 90), (1, 1, 64, 64)])
def test_depth_rejects_bad_sizes(shape):
    with pytest.raises(ValueError, match=r"multiple of 32|\(B, 3, H, W\)"):
        DepthNet()(torch.rand(*shape))


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    ref = resnet18(weights=None)
    path = tmp_path / "resnet18-local.pth"
    torch.save(ref.state_dict(), path)
    enc = ResnetEncoder(1, path)
    torch.testing.assert_close(enc.net.layer3[0].conv1.weight, ref.layer3[0].conv1.weight)
    pose_enc = ResnetEncoder(2, path)
    assert pose_enc.net.conv1.weight.shape == (64, 6, 7, 7)
    torch.testing.assert_close(pose_enc.net.conv1.weight[:, :3] * 2, ref.conv1.weight)


def test_missing_or_wrong_weights_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.pth"):
        ResnetEncoder(1, tmp_path / "no-such.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision ResNet18"):
        ResnetEncoder(1, bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ResnetEncoder(1, bad)


def test_pose_transforms_invert_past_frames():
    torch.manual_seed(0)
    net = PoseNet().eval()
    target, prev, nxt = (torch.rand(2, 3, 64, 64) for _ in range(3))
    with torch.no_grad():
        T = net.transforms(target, torch.stack([prev, nxt], 1), (-1, 1))
        aa_prev, t_prev = net(prev, target)
        aa_next, t_next = net(target, nxt)
    assert T.shape == (2, 2, 4, 4)
    torch.testing.assert_close(T[:, 0], pose_vec_to_mat(aa_prev, t_prev, invert=True), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(T[:, 1], pose_vec_to_mat(aa_next, t_next), atol=1e-5, rtol=1e-5)
    assert t_next.abs().max() < 0.1  # scaled small at initialisation
