"""A checkpoint with random weights for speed benchmarks: the weights do not change the arithmetic."""

from __future__ import annotations

from pathlib import Path

import torch

from selfdepth._version import __version__
from selfdepth.config import Config
from selfdepth.models.depth import DepthNet

__all__ = ["untrained_checkpoint"]


def untrained_checkpoint(path: Path, height: int, width: int, mode: str = "stereo", encoder: str = "resnet18") -> Path:
    """A checkpoint in the trainer's format (stereo: metric, baseline 0.54 m) with random weights."""
    config = Config()
    config.data.height, config.data.width, config.train.mode = height, width, mode
    config.model.encoder = encoder
    state = {f"depth.{k}": v for k, v in DepthNet(None, 4, encoder=encoder).state_dict().items()}
    hyper = {"config": config.to_dict(), "baseline_m": 0.54, "selfdepth_version": __version__}
    torch.save({"hyper_parameters": hyper, "state_dict": state, "global_step": 0}, path)
    return path
