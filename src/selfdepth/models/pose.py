"""PoseNet: relative camera motion between two frames, as Monodepth2's separate pose network."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from selfdepth.geometry import pose_vec_to_mat
from selfdepth.models.encoder import make_encoder

__all__ = ["PoseDecoder", "PoseNet"]


class PoseDecoder(nn.Module):
    """Encoder features -> axis-angle and translation, scaled by 0.01 so initial motions are small."""

    def __init__(self, num_ch_enc: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(num_ch_enc, 256, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1),
        )

    def forward(self, feature: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) deepest encoder features -> axisangle (B, 3), translation (B, 3)."""
        out = 0.01 * self.net(feature).mean(dim=(2, 3))  # (B, 6)
        return out[:, :3], out[:, 3:]


class PoseNet(nn.Module):
    """An encoder on two frames stacked along channels (6 input channels).

    Args:
        weights: the encoder's pretrained weights (see ``models.encoder.make_encoder``; its first
            conv is adapted to 6 channels), or None.
        encoder: one of ``models.encoder.ENCODERS``.
    """

    def __init__(self, weights: str | Path | None = None, encoder: str = "resnet18") -> None:
        super().__init__()
        self.encoder = make_encoder(encoder, 2, weights)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
        """Two (B, 3, H, W) frames in time order -> axisangle (B, 3), translation (B, 3) of first->second."""
        return self.decoder(self.encoder(torch.cat([first, second], dim=1))[-1])

    def transforms(self, target: Tensor, sources: Tensor, offsets: tuple[int, ...]) -> Tensor:
        """Target-to-source transforms for each temporal source, in one batched encoder pass.

        Frames are always fed in time order, and the motion of a past frame is
        inverted, as Monodepth2 does.

        Args:
            target: (B, 3, H, W) frame t.
            sources: (B, T, 3, H, W) frames t + offset.
            offsets: the T offsets, e.g. (-1, 1).

        Returns:
            (B, T, 4, 4) transforms from the target camera's frame into each source's.
        """
        b, t = sources.shape[:2]
        src = sources.transpose(0, 1).reshape(t * b, *sources.shape[2:])  # (T*B, 3, H, W), offset-major
        tgt = target.repeat(t, 1, 1, 1)  # (T*B, 3, H, W)
        past = torch.tensor([o < 0 for o in offsets], device=target.device).repeat_interleave(b)  # (T*B,)
        first = torch.where(past[:, None, None, None], src, tgt)
        second = torch.where(past[:, None, None, None], tgt, src)
        axisangle, translation = self(first, second)
        # The motion in fp32 even under bf16 autocast, which would run R @ t (a matmul) in bf16.
        axisangle, translation = axisangle.float(), translation.float()
        with torch.autocast(device_type=target.device.type, enabled=False):
            forward = pose_vec_to_mat(axisangle, translation)
            inverse = pose_vec_to_mat(axisangle, translation, invert=True)
        T = torch.where(past[:, None, None], inverse, forward)  # (T*B, 4, 4)
        return T.reshape(t, b, 4, 4).transpose(0, 1)
