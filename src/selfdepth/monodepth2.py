"""Convert Monodepth2's released weights (``encoder.pth`` + ``depth.pth``) into a selfdepth checkpoint.

selfdepth's DepthNet has Monodepth2's layers (same ResNet18 encoder and input
normalisation, same decoder convolutions), so conversion is renaming:

    encoder.<resnet key>                 -> depth.encoder.net.<resnet key>   (fc dropped)
    decoder.<2k>.conv.conv.*             -> depth.decoder.upconv0.<k>.1.*    (k = 0..4: levels 4..0)
    decoder.<2k+1>.conv.conv.*           -> depth.decoder.upconv1.<k>.1.*
    decoder.<10+s>.conv.*                -> depth.decoder.dispconv.<s>.1.*   (s = 0..3)

The result works with every selfdepth command: predict, evaluate, pointcloud, export.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from selfdepth._version import __version__
from selfdepth.config import Config, load_config
from selfdepth.io import load_tensors
from selfdepth.models import DepthNet

__all__ = ["convert_state_dicts", "import_monodepth2"]


def _load(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"Monodepth2 {what} weights not found: {path}")
    state = load_tensors(path, f"Monodepth2 {what} weights")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def convert_state_dicts(encoder: dict, decoder: dict, source: str = "weights") -> dict[str, torch.Tensor]:
    """Monodepth2 encoder and depth-decoder state dicts -> a selfdepth ``DepthNet`` state dict."""
    out: dict[str, torch.Tensor] = {}
    for key, value in encoder.items():
        if key.startswith("encoder.") and not key.startswith("encoder.fc."):
            out["encoder.net." + key[len("encoder.") :]] = value
    for key, value in decoder.items():
        parts = key.split(".")
        if parts[0] != "decoder" or not parts[1].isdigit():
            raise ValueError(f"{source}: unexpected depth decoder key {key!r}")
        index, param = int(parts[1]), parts[-1]
        if index < 10:
            out[f"decoder.upconv{index % 2}.{index // 2}.1.{param}"] = value
        else:
            out[f"decoder.dispconv.{index - 10}.1.{param}"] = value
    reference = DepthNet(None, 4).state_dict()
    missing = sorted(set(reference) - set(out))
    unexpected = sorted(set(out) - set(reference))
    if missing or unexpected:
        raise ValueError(f"{source}: not Monodepth2 ResNet18 depth weights (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    for key, value in out.items():
        if value.shape != reference[key].shape:
            raise ValueError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(reference[key].shape)}")
    return out


def import_monodepth2(
    encoder_path: str | Path,
    depth_path: str | Path,
    out: str | Path,
    mode: str = "mono",
    baseline_m: float = 0.54,
) -> Path:
    """Write a selfdepth checkpoint holding Monodepth2's depth network.

    Args:
        encoder_path: Monodepth2's ``encoder.pth`` (its ``height``/``width`` entries set the input size).
        depth_path: Monodepth2's ``depth.pth``.
        out: the checkpoint to write.
        mode: how the weights were trained: ``mono`` (relative depth), ``stereo`` or
            ``mono+stereo`` (metric depth with ``baseline_m``: Monodepth2's factor 5.4 = 0.54 / 0.1).
        baseline_m: the training stereo baseline, metres (KITTI 0.54, as Monodepth2 assumes).
    """
    encoder_path, depth_path, out = Path(encoder_path), Path(depth_path), Path(out)
    encoder = _load(encoder_path, "encoder")
    decoder = _load(depth_path, "depth")
    height, width = int(encoder.get("height", 192)), int(encoder.get("width", 640))
    state = convert_state_dicts(encoder, decoder, f"{encoder_path} / {depth_path}")
    config: Config = load_config(None, [f"train.mode={mode}", f"data.height={height}", f"data.width={width}"])
    ckpt = {
        "state_dict": {"depth." + k: v for k, v in state.items()},
        "hyper_parameters": {
            "config": config.to_dict(),
            "baseline_m": baseline_m if config.uses_stereo else None,
            "selfdepth_version": __version__,
            "imported_from": "monodepth2",
        },
        "global_step": 0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    torch.save(ckpt, tmp)
    os.replace(tmp, out)  # atomic: never a half-written checkpoint
    return out
