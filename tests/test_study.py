"""The loss study: identical paired runs per variant, tables by region, paired intervals, and resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfdepth.evaluate import METRICS
from selfdepth.study import load_plan, plan_from_losses, run_study
from selfdepth.study_report import contrasts, markdown_report, paired, summarise


def _overrides(tiny_root):
    return [f"data.train={tiny_root}", f"data.test={tiny_root}", "data.height=64", "data.width=128",
            "train.batch_size=2", "train.max_steps=2", "train.max_minutes=5", "train.progress_bar=false",
            "train.image_every=0"]


def test_study_writes_tables_by_region_and_resumes(tiny_root, tmp_path):
    out = tmp_path / "study"
    plan = plan_from_losses(None, ["l1", "barron_adaptive"], 2, _overrides(tiny_root), None)
    result = run_study(plan, out)
    runs = [(r["variant"], r["seed"], r["steps"]) for r in result["records"]]
    assert runs == [("l1", 0, 2), ("l1", 1, 2), ("barron_adaptive", 0, 2), ("barron_adaptive", 1, 2)]
    assert result["complete"] and set(result["summary"]["main"]) == {"l1", "barron_adaptive"}
    assert {"all", "occluded", "rest"} <= set(result["summary"]["main"]["l1"])  # the rendered data has masks
    comparison = result["paired"]["main"]["barron_adaptive"]["all"]
    assert comparison["n"] == 2 and comparison["ci95"][0] <= comparison["mean"] <= comparison["ci95"][1]
    assert len(result["records"][2]["robust"]["alpha"]) == 3
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["paired"] == json.loads(json.dumps(result["paired"]))
    table = (out / "results.md").read_text()
    assert "| l1 | 2 |" in table and "| barron_adaptive | 2 |" in table and "Paired difference" in table
    assert (out / "results.png").stat().st_size > 1000

    # An interrupted study: one record is lost; its run resumes from its checkpoint, the others are kept.
    kept = (out / "records" / "main" / "barron_adaptive" / "seed1.json").read_text()
    (out / "records" / "main" / "l1" / "seed0.json").unlink()
    again = run_study(plan, out)
    assert (out / "records" / "main" / "barron_adaptive" / "seed1.json").read_text() == kept
    assert again["records"][0]["steps"] == 2, "the l1 run resumed from its checkpoint, not from scratch"
    assert again["records"][0]["metrics"]["abs_rel"] == pytest.approx(result["records"][0]["metrics"]["abs_rel"])


def test_a_plan_file_with_variants_and_arms(tiny_root, tmp_path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(f"""
seeds: 1
baseline: l1
config:
  data: {{train: {tiny_root}, test: {tiny_root}, height: 64, width: 128}}
  train: {{batch_size: 2, max_steps: 1, progress_bar: false, image_every: 0}}
variants:
  l1: {{}}
  wavelet: {{loss.pixel_loss: barron_adaptive, loss.representation: wavelet, loss.wavelet_levels: 2,
             loss.photometric_scales: finest}}
arms:
  a: {{set: {{train.mode: stereo}}}}
  b: {{set: {{train.mode: mono+stereo}}, variants: [wavelet]}}
""")
    plan = load_plan(plan_file)
    result = run_study(plan, tmp_path / "out", arms=["b"])
    assert [(r["arm"], r["variant"]) for r in result["records"]] == [("b", "wavelet")]
    assert result["records"][0]["robust"]["alpha_min"] > 0
    assert not result["complete"] and result["runs_planned"] == 3
    # Running the other arm later: the report keeps the first arm's record beside the new ones.
    result = run_study(plan, tmp_path / "out", arms=["a"])
    assert [(r["arm"], r["variant"]) for r in result["records"]] == [("a", "l1"), ("a", "wavelet"), ("b", "wavelet")]
    assert result["complete"] and "mono+stereo, 128x64" in (tmp_path / "out" / "results.md").read_text()
    # A report-only call (arms=[]) trains nothing and writes the same records.
    (tmp_path / "out" / "results.json").unlink()
    assert run_study(plan, tmp_path / "out", arms=[])["records"] == result["records"]
    with pytest.raises(ValueError, match="unknown arm"):
        run_study(plan, tmp_path / "out", arms=["c"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("variants: {l1: {}}\narms: {a: {data: moon}}", "unknown data 'moon'"),
        ("variants: {l1: {}}\narms: {a: {variants: [l2]}}", "unknown variant 'l2'"),
        ("baseline: l2\nvariants: {l1: {}}", "baseline 'l2' is not a variant"),
        ("variants: {l1: {loss.pixel_los: l1}}", "did you mean 'loss.pixel_loss'"),
        ("variants: {w: {loss.pixel_loss: barron, loss.representation: wavelet, loss.wavelet_levels: 6}}\n"
         "baseline: w\nconfig: {data: {height: 64, width: 96}}", "6-level wavelet needs image sides divisible by 64"),
        ("seed: 3", "unknown study keys"),
        ("variants: {l1: {}, b: {loss.pixel_loss: barron}}\ncontrasts: [[b, c]]", "contrast \\['b', 'c'\\] must name two"),
    ],
)
def test_bad_plans_are_explained(tmp_path, text, message):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_plan(plan_file)


def test_unknown_loss_and_missing_test_data(tiny_root):
    with pytest.raises(ValueError, match="unknown loss 'huber'; valid: l1, l2, charbonnier"):
        plan_from_losses(None, ["l1", "huber"], 1, None, None)
    with pytest.raises(ValueError, match="needs held-out data"):
        plan_from_losses(None, ["l1"], 1, [f"data.train={tiny_root}"], None)


def _record(variant: str, seed: int, abs_rel: float, moving: float | None = None) -> dict:
    metrics = dict.fromkeys(METRICS, 0.5) | {"abs_rel": abs_rel}
    regions = {} if moving is None else {
        "moving": {"model": dict(metrics, abs_rel=moving), "constant": metrics, "images": 1, "pixel_fraction": 0.1}}
    return {"arm": "x", "variant": variant, "seed": seed, "metrics": metrics, "constant": metrics, "regions": regions}


def test_paired_differences_match_a_hand_computation():
    from scipy import stats

    base = [0.30, 0.32, 0.31]
    robust = [0.28, 0.31, 0.32]  # differences -0.02, -0.01, +0.01
    records = [_record("l1", s, v, moving=v + 0.1) for s, v in enumerate(base)]
    records += [_record("rob", s, v, moving=v) for s, v in enumerate(robust)]
    entry = paired(records, "l1")["x"]["rob"]["all"]
    d = np.array([-0.02, -0.01, 0.01])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert entry["mean"] == pytest.approx(d.mean()) and entry["better"] == 2 and entry["n"] == 3
    assert entry["ci95"] == pytest.approx([d.mean() - half, d.mean() + half])
    assert entry["detectable"] == pytest.approx((stats.t.ppf(0.975, 2) + stats.t.ppf(0.8, 2)) * d.std(ddof=1) / np.sqrt(3))
    moving = paired(records, "l1")["x"]["rob"]["moving"]
    assert moving["mean"] == pytest.approx(np.mean(np.array(robust) - np.array(base) - 0.1)) and moving["better"] == 3
    summary = summarise(records)["x"]["l1"]["all"]["abs_rel"]
    assert summary == pytest.approx({"mean": np.mean(base), "std": np.std(base), "n": 3})
    table = markdown_report(records, "l1")
    assert "| rob | -0.0067 [" in table and "2/3" in table and "moving (10.0%)" in table


def test_contrasts_are_paired_differences_between_two_variants():
    base, a, b = [0.30, 0.32, 0.31], [0.28, 0.31, 0.32], [0.29, 0.35, 0.30]
    records = [_record("l1", s, v) for s, v in enumerate(base)]
    records += [_record("a", s, v, moving=v) for s, v in enumerate(a)]
    records += [_record("b", s, v, moving=v + 0.2) for s, v in enumerate(b)]
    entry = contrasts(records, [("a", "b")])["x"]["a - b"]
    d = np.array(a) - np.array(b)  # -0.01, -0.04, +0.02
    assert entry["all"]["mean"] == pytest.approx(d.mean()) and entry["all"]["better"] == 2
    assert entry["moving"]["mean"] == pytest.approx(d.mean() - 0.2) and entry["moving"]["better"] == 3
    # A contrast against the baseline is the baseline comparison itself.
    assert contrasts(records, [("a", "l1")])["x"]["a - l1"] == paired(records, "l1")["x"]["a"]
    assert contrasts(records, [("a", "missing")]) == {}  # an arm that did not run both has no contrast
    table = markdown_report(records, "l1", pairs=[("a", "b")])
    assert "Other paired contrasts" in table and f"| a - b | {d.mean():+.4f} [" in table
