"""DepthNet: a U-Net (ResNet18 or EfficientNet-Lite encoder) predicting sigmoid disparity at four scales."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfdepth.models.encoder import ResnetEncoder, make_encoder

__all__ = ["ConvBlock", "DepthDecoder", "DepthNet", "check_input_size"]


def check_input_size(x: Tensor) -> None:
    """Raise ValueError unless ``x`` is (B, 3, H, W) with H and W multiples of 32."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % 32 or w % 32:
        raise ValueError(
            f"input size {w}x{h} (WxH) is not a multiple of 32: the encoder downsamples 5 times by 2 and the "
            "decoder's skip connections must line up; resize or pad to e.g. 640x192"
        )


class ConvBlock(nn.Sequential):
    """3x3 convolution with reflection padding, then ELU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3), nn.ELU(inplace=True))


class DepthDecoder(nn.Module):
    """U-Net decoder: upsample, concatenate the encoder's skip, convolve; disparity heads at scales 0-3.

    The layer layout follows Monodepth2's decoder so that its released weights
    map onto this one by renaming.

    Args:
        num_ch_enc: encoder channels at its five levels.
        scales: number of output scales (full, 1/2, 1/4, 1/8).
        init_sigmoid: the disparity heads' output before training (their bias is
            set to its logit); see ``ModelConfig.init_depth`` for why it matters.
    """

    num_ch_dec = (16, 32, 64, 128, 256)

    def __init__(
        self, num_ch_enc: tuple[int, ...] = ResnetEncoder.num_ch_enc, scales: int = 4, init_sigmoid: float = 0.5
    ) -> None:
        super().__init__()
        self.scales = scales
        up0, up1 = [], []
        for i in range(4, -1, -1):
            in_ch = num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            up0.append(ConvBlock(in_ch, self.num_ch_dec[i]))
            skip = num_ch_enc[i - 1] if i > 0 else 0
            up1.append(ConvBlock(self.num_ch_dec[i] + skip, self.num_ch_dec[i]))
        self.upconv0 = nn.ModuleList(up0)  # index k handles level 4 - k
        self.upconv1 = nn.ModuleList(up1)
        self.dispconv = nn.ModuleList(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(self.num_ch_dec[s], 1, 3)) for s in range(scales)
        )
        if not 0 < init_sigmoid < 1:
            raise ValueError(f"init_sigmoid must be in (0, 1), got {init_sigmoid}")
        for head in self.dispconv:
            nn.init.constant_(head[1].bias, math.log(init_sigmoid / (1 - init_sigmoid)))

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Encoder features -> disparities [(B, 1, H, W), (B, 1, H/2, W/2), ...] in (0, 1), finest first."""
        x = features[-1]
        disps: list[Tensor] = []
        for k, i in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.upconv0[k](x), scale_factor=2, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.upconv1[k](x)
            if i < self.scales:
                disps.append(self.dispconv[i](x).sigmoid())
        return disps[::-1]


class DepthNet(nn.Module):
    """Encoder + U-Net decoder.

    Args:
        weights: the encoder's pretrained weights (see ``models.encoder.make_encoder``), or None.
        scales: number of disparity outputs.
        init_sigmoid: the sigmoid disparity a fresh network outputs.
        encoder: one of ``models.encoder.ENCODERS`` (resnet18, efficientnet_lite0, ...).
    """

    def __init__(
        self, weights: str | Path | None = None, scales: int = 4, init_sigmoid: float = 0.5, encoder: str = "resnet18"
    ) -> None:
        super().__init__()
        self.encoder = make_encoder(encoder, 1, weights)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, scales, init_sigmoid)

    def forward(self, image: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1], H and W multiples of 32 -> list of (B, 1, H/2^s, W/2^s) sigmoid disparities."""
        if not torch.jit.is_tracing():  # the check is Python control flow; tracing sees a fixed size anyway
            check_input_size(image)
        return self.decoder(self.encoder(image))
