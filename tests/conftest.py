"""Shared fixtures: small synthetic data sets rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfdepth.data.synthetic import synthesize


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scenes of 5 frames at 416x128 (train seed 0)."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, scenes=2, frames_per_scene=5, width=416, height=128, seed=0, sheet=False)
    return root


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three scenes of 4 frames at 128x64, for fast training tests."""
    root = tmp_path_factory.mktemp("tiny")
    synthesize(root, scenes=3, frames_per_scene=4, width=128, height=64, seed=7, sheet=False)
    return root


def untrained_checkpoint(
    path: Path, height: int = 64, width: int = 128, mode: str = "stereo", seed: int = 0, encoder: str = "resnet18"
) -> Path:
    """A checkpoint in the trainer's format with random weights, for tests of what runs a model (not of training)."""
    import torch

    from selfdepth._version import __version__
    from selfdepth.config import Config
    from selfdepth.models.depth import DepthNet

    config = Config()
    config.data.height, config.data.width, config.train.mode = height, width, mode
    config.model.encoder = encoder
    torch.manual_seed(seed)
    state = {f"depth.{k}": v for k, v in DepthNet(None, 4, encoder=encoder).state_dict().items()}
    hyper = {"config": config.to_dict(), "baseline_m": 0.54, "selfdepth_version": __version__}
    torch.save({"hyper_parameters": hyper, "state_dict": state, "global_step": 0}, path)
    return path


@pytest.fixture(scope="session")
def make_checkpoint():
    """``untrained_checkpoint`` as a fixture: ``make_checkpoint(path, height, width, mode)``."""
    return untrained_checkpoint
