"""The loss study: identical runs per loss, one table, and it resumes where it stopped."""

from __future__ import annotations

import json

import pytest

from selfdepth.study import markdown_table, run_study, summarise


def _overrides(tiny_root, tmp_path):
    return [f"data.train={tiny_root}", f"data.test={tiny_root}", "data.height=64", "data.width=128",
            "train.batch_size=2", "train.max_steps=2", "train.max_minutes=5", "train.progress_bar=false",
            "train.image_every=0"]


def test_study_writes_table_chart_and_resumes(tiny_root, tmp_path):
    out = tmp_path / "study"
    result = run_study(None, ["l1", "barron_adaptive"], 1, out, _overrides(tiny_root, tmp_path))
    assert [(r["loss"], r["seed"], r["steps"]) for r in result["runs"]] == [("l1", 0, 2), ("barron_adaptive", 0, 2)]
    assert set(result["summary"]) == {"l1", "barron_adaptive"}
    assert 0 < result["summary"]["l1"]["abs_rel"]["mean"] and result["summary"]["l1"]["abs_rel"]["std"] == 0
    assert len(result["runs"][1]["robust"]["alpha"]) == 3
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["summary"] == result["summary"] and on_disk["config"]["train"]["max_minutes"] == 5.0
    table = (out / "results.md").read_text()
    assert "| l1 | 1 |" in table and "| barron_adaptive | 1 |" in table and "δ<1.25" in table
    assert (out / "results.png").stat().st_size > 1000

    # An interrupted study: the adaptive run is finished, the l1 run lost its result.
    adaptive = out / "runs" / "barron_adaptive" / "seed0" / "metrics.json"
    kept = adaptive.read_text()
    (out / "runs" / "l1" / "seed0" / "metrics.json").unlink()
    again = run_study(None, ["l1", "barron_adaptive"], 1, out, _overrides(tiny_root, tmp_path))
    assert adaptive.read_text() == kept, "a finished run is not trained again"
    assert again["runs"][0]["steps"] == 2, "the l1 run resumed from its checkpoint, not from scratch"
    assert again["summary"]["l1"]["abs_rel"]["mean"] == pytest.approx(result["summary"]["l1"]["abs_rel"]["mean"])


def test_unknown_loss_and_missing_test_data(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="unknown loss 'huber'; valid: l1, l2, charbonnier"):
        run_study(None, ["l1", "huber"], 1, tmp_path)
    with pytest.raises(ValueError, match="needs held-out data"):
        run_study(None, ["l1"], 1, tmp_path, [f"data.train={tiny_root}"])


def test_summary_is_mean_and_population_std_over_seeds():
    runs = [{"loss": "a", "metrics": dict.fromkeys(["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"], v)}
            for v in (0.1, 0.3)]
    summary = summarise(runs)
    assert summary["a"]["abs_rel"] == pytest.approx({"mean": 0.2, "std": 0.1, "n": 2})
    assert "| a | 2 | 0.2000 ± 0.1000 |" in markdown_table(summary)
