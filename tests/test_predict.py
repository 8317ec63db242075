"""Inference from checkpoints: any input size, metric output, and clear errors for bad checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from selfdepth.config import load_config
from selfdepth.geometry import metric_scale
from selfdepth.predict import DepthModel, load, predict_paths
from selfdepth.train import fit


@pytest.fixture(scope="module")
def checkpoint(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    config = load_config(None, [f"data.train={tiny_root}", "data.height=64", "data.width=128", "train.max_steps=2",
                                "train.batch_size=2", f"train.out_dir={out}", "train.progress_bar=false"])
    return fit(config)


@pytest.mark.parametrize("size", [(75, 100), (64, 64), (200, 37)])
def test_any_input_size(checkpoint, size):
    model = load(checkpoint)
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    pred = model.predict(image)
    assert pred.depth.shape == pred.disparity.shape == size
    assert np.isfinite(pred.depth).all() and (pred.depth > 0).all()


def test_stereo_model_is_metric(checkpoint):
    model = load(checkpoint)
    assert model.metric and model.scale == pytest.approx(metric_scale(0.54))
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model.depth(x), model.scale / model.disparity(x))


def test_predict_paths_writes_outputs(checkpoint, tiny_root, tmp_path):
    written = predict_paths([tiny_root / "scene_0000" / "left"], checkpoint, tmp_path)
    assert len(written) == 4
    assert np.load(written[0]).shape == (64, 128)
    with Image.open(tmp_path / "000000_disp.png") as im:
        assert im.size == (128, 64) and im.mode == "RGB"


def test_truncated_checkpoint(checkpoint, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"bad\.ckpt: cannot read checkpoint \(truncated or corrupt"):
        DepthModel.load(bad)


def test_checkpoint_of_another_model(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match=r"resnet\.pth: not a selfdepth checkpoint"):
        DepthModel.load(other)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        DepthModel.load(tmp_path / "missing.ckpt")
