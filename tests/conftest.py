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
