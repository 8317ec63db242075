"""Depth metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from selfdepth.evaluate import METRICS, _score, depth_metrics, evaluate, format_table


def test_perfect_prediction():
    gt = np.linspace(1, 50, 100)
    m = depth_metrics(gt, gt.copy())
    assert m["abs_rel"] == m["sq_rel"] == m["rmse"] == m["rmse_log"] == 0
    assert m["a1"] == m["a2"] == m["a3"] == 1


def test_known_values():
    gt = np.array([1.0, 2.0, 4.0, 8.0])
    pred = 2 * gt
    m = depth_metrics(gt, pred)
    assert m["abs_rel"] == pytest.approx(1.0)
    assert m["sq_rel"] == pytest.approx(np.mean(gt))  # (2g - g)^2 / g = g
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(gt**2)))
    assert m["rmse_log"] == pytest.approx(np.log(2))
    assert (m["a1"], m["a2"], m["a3"]) == (0.0, 0.0, 0.0)  # ratio 2 is above 1.25, 1.5625 and 1.953
    m = depth_metrics(gt, 1.5 * gt)
    assert (m["a1"], m["a2"], m["a3"]) == (0.0, 1.0, 1.0)  # ratio 1.5 is above 1.25, below 1.5625


def test_median_scaling_recovers_the_scale_and_cap_applies():
    gt = np.array([[0.0, 5.0, 10.0, 90.0]])
    metrics, ratio = _score(gt, gt / 3.0, True, 1e-3, 80.0)
    assert ratio == pytest.approx(3.0)
    assert metrics["all"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)  # 0 and 90 m are excluded


def test_table_lists_every_metric():
    table = format_table({"a": dict.fromkeys(METRICS, 0.5)})
    assert all(m in table for m in METRICS) and "0.5000" in table


def test_region_metrics_equal_the_whole_image_when_the_region_is_everything():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 60, (32, 48)).astype(np.float32)
    gt[:4] = 0  # invalid rows stay out of every region
    pred = gt * rng.uniform(0.7, 1.3, gt.shape).astype(np.float32) + 0.1
    everything, half = np.ones(gt.shape, bool), np.zeros(gt.shape, bool)
    half[:, :24] = True
    for median in (False, True):
        out, _ = _score(gt, pred, median, 1e-3, 80.0, regions={"everything": everything, "left": half, "none": ~everything})
        assert out["everything"] == out["all"]
        assert "none" not in out  # no valid pixel: not scored
        valid = (gt > 1e-3) & half
        expected = depth_metrics(gt[valid], np.clip(pred[valid] * (_score(gt, pred, median, 1e-3, 80.0)[1]), 1e-3, 80.0))
        assert out["left"] == pytest.approx(expected)


def test_evaluate_reports_regions_of_rendered_data(tmp_path, tiny_root):
    from selfdepth.config import load_config
    from selfdepth.inference import DepthModel
    from selfdepth.train import fit

    config = load_config(None, [f"data.train={tiny_root}", "data.height=64", "data.width=128", "train.max_steps=1",
                                "train.batch_size=2", f"train.out_dir={tmp_path}", "train.progress_bar=false"])
    result = evaluate(DepthModel.load(fit(config)), tiny_root)
    regions = result["regions"]
    assert set(regions) == {"moving", "glass", "occluded", "occluded_stereo", "occluded_temporal", "rest"}
    assert regions["moving"]["images"] == 0 and regions["moving"]["model"] is None  # clean streets
    assert 0 < regions["occluded"]["pixel_fraction"] < 0.5 and regions["rest"]["images"] == result["images"]
    assert regions["occluded"]["pixel_fraction"] + regions["rest"]["pixel_fraction"] == pytest.approx(1.0)
