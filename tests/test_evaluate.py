"""Depth metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from selfdepth.evaluate import METRICS, _score, depth_metrics, format_table


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
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-12)  # 0 and 90 m are excluded


def test_table_lists_every_metric():
    table = format_table({"a": dict.fromkeys(METRICS, 0.5)})
    assert all(m in table for m in METRICS) and "0.5000" in table
