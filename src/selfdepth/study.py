"""``selfdepth study``: does a robust photometric loss give better depth than SSIM + L1, and where?

A study is a plan (``configs/study_quick.yaml``, ``configs/study_full.yaml``):

    seeds       runs per (arm, variant); seed k gives every variant the same initial weights and batches
    baseline    the variant the others are compared with, paired by seed (Monodepth2's ``l1``)
    config      the base training config, shared by every run
    variants    name -> config overrides (the loss, its representation, ...)
    arms        name -> the data (``clean`` / ``outliers`` synthetic streets, ``kitti``, or ``config``),
                config overrides (the mode) and optionally the variants it runs
    contrasts   optional [a, b] pairs of variants also compared paired (a - b), besides each against the baseline

Every run trains exactly ``train.max_steps`` steps (never a time budget, which a busy machine would
bias) and is evaluated on held-out data: on the synthetic streets in true metres, on all pixels and
inside each outlier region (moving cars, glass, occluded, rest; ``io.REGION_BITS``); on KITTI against
lidar (Garg crop). The study writes, under ``--out``:

    results.json   every run, the summary and the paired comparison (study_report.py)
    results.md     the tables; results.png the paired differences with their intervals
    records/<arm>/<variant>/seed<k>.json   one small file per finished run (commit these)
    runs/<arm>/<variant>/seed<k>/          checkpoints and logs (large; ignored by git)

It resumes: a run with a record is not repeated, and an unfinished run continues from its last
checkpoint. The tables are rewritten after every run, so a study stopped half-way still reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from selfdepth.config import Config, load_config, parse_overrides, with_overrides
from selfdepth.data.synthetic import Outliers, render_if_missing
from selfdepth.evaluate import evaluate
from selfdepth.inference import DepthModel, read_checkpoint
from selfdepth.io import load_json, load_yaml, save_json
from selfdepth.losses.registry import PIXEL_LOSSES
from selfdepth.module import adaptive_part
from selfdepth.study_report import contrasts, markdown_report, paired, save_chart, summarise
from selfdepth.train import fit

__all__ = ["Arm", "StudyPlan", "load_plan", "plan_from_losses", "run_study", "SYNTHETIC_SETS"]

# Built-in data for the synthetic arms: None = clean streets.
SYNTHETIC_SETS: dict[str, Outliers | None] = {
    "clean": None,
    "outliers": Outliers(moving_cars=3, glass=0.35, exposure=0.2),
}
_TRAIN, _TEST = (40, 20, 0), (8, 8, 1)  # (scenes, frames per scene, seed), as make demo: 800 / 64 frames
_DATA_KINDS = (*SYNTHETIC_SETS, "kitti", "config")


@dataclass
class Arm:
    """One data set and mode, on which every (listed) variant is trained with every seed."""

    name: str
    data: str  # clean | outliers (synthetic), kitti (plan.kitti), config (the config's data.train / data.test)
    overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"train.mode": "mono+stereo"}
    variants: list[str] | None = None  # None: all of the plan's variants


@dataclass
class StudyPlan:
    """What to run (see the module docstring)."""

    seeds: int
    baseline: str
    config: Config
    variants: dict[str, dict[str, Any]]
    arms: list[Arm]
    kitti: dict[str, str] | None = None  # train_root, train_drive, test_root, test_drive
    source: str = "command line"
    contrasts: list[tuple[str, str]] = field(default_factory=list)  # (a, b): also report a - b, paired

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"{self.source}: seeds must be >= 1, got {self.seeds}")
        if self.baseline not in self.variants:
            raise ValueError(f"{self.source}: baseline {self.baseline!r} is not a variant ({', '.join(self.variants)})")
        for pair in self.contrasts:
            if len(pair) != 2 or any(v not in self.variants for v in pair):
                raise ValueError(f"{self.source}: contrast {list(pair)} must name two variants "
                                 f"({', '.join(self.variants)})")
        for arm in self.arms:
            if arm.data not in _DATA_KINDS:
                raise ValueError(f"{self.source}: arm {arm.name!r}: unknown data {arm.data!r}; valid: {', '.join(_DATA_KINDS)}")
            unknown = [v for v in arm.variants or [] if v not in self.variants]
            if unknown:
                raise ValueError(f"{self.source}: arm {arm.name!r} lists unknown variant {unknown[0]!r}")
            if arm.data == "kitti" and not self.kitti:
                raise ValueError(f"{self.source}: arm {arm.name!r} uses kitti data but the plan has no kitti section")
        for name, overrides in self.variants.items():  # fail now, not an hour in
            for arm in self.arms:
                if arm.variants is None or name in arm.variants:
                    with_overrides(self.config, {**arm.overrides, **overrides}, f"{self.source}: {arm.name}/{name}")


def load_plan(path: str | Path, overrides: list[str] | None = None) -> StudyPlan:
    """Read a study plan from YAML; ``overrides`` (``section.key=value``) apply to its base config."""
    path = Path(path)
    raw = load_yaml(path, "study plan")
    unknown = set(raw) - {"seeds", "baseline", "config", "variants", "arms", "kitti", "contrasts"}
    if unknown:
        raise ValueError(f"{path}: unknown study keys {sorted(unknown)}; "
                         "valid: seeds, baseline, config, variants, arms, kitti, contrasts")
    base = Config.from_dict(raw.get("config") or {}, str(path))
    if overrides:
        base = with_overrides(base, parse_overrides(overrides))
    arms = [Arm(name, spec.get("data", "config"), spec.get("set") or {}, spec.get("variants"))
            for name, spec in (raw.get("arms") or {"main": {}}).items()]
    return StudyPlan(int(raw.get("seeds", 3)), raw.get("baseline", "l1"), base, raw.get("variants") or {"l1": {}}, arms,
                     raw.get("kitti"), str(path), [tuple(pair) for pair in raw.get("contrasts") or []])


def plan_from_losses(
    config_path: str | Path | None, losses: list[str], seeds: int, overrides: list[str] | None, synthetic: str | None
) -> StudyPlan:
    """The simple form: each loss name is a variant (``loss.pixel_loss``), one arm, the first loss the baseline."""
    unknown = [name for name in losses if name not in PIXEL_LOSSES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; valid: {', '.join(PIXEL_LOSSES)}")
    base = load_config(config_path, overrides)
    if synthetic is None and not base.data.test:
        raise ValueError("the study needs held-out data with depth: set data.test, or pass --synthetic")
    variants = {name: {"loss.pixel_loss": name} for name in losses}
    arm = Arm(synthetic or "main", synthetic or "config")
    return StudyPlan(seeds, losses[0], base, variants, [arm], source=str(config_path or "command line"))


# ----------------------------------------------------------------------------- data


def _synthetic_data(config: Config, kind: str, render: bool = True) -> tuple[str, str]:
    """The built-in streets for ``kind`` at the config's size, rendered when missing; (train, test) folders."""
    d = config.data
    root = Path("data") / f"study-{kind}-{d.width}x{d.height}"
    for part, (scenes, frames, seed) in (("train", _TRAIN), ("test", _TEST)) if render else ():
        # The test set has the same outliers: the question is which loss learns better depth from such data.
        render_if_missing(root / part, scenes, frames, d.width, d.height, seed, SYNTHETIC_SETS[kind])
    return str(root / "train"), str(root / "test")


def _kitti_splits(kitti: dict[str, str], folder: Path) -> tuple[Path, Path]:
    """Split files: every frame of the training drive with both neighbours, both cameras; the test drive's scans."""
    from selfdepth.data.kitti import drive_split

    train = drive_split(kitti["train_root"], kitti["train_drive"], folder / "train_files.txt", "lr", 1)
    test = drive_split(kitti["test_root"], kitti["test_drive"], folder / "test_files.txt", "l", 0, with_lidar=True)
    return train, test


# ----------------------------------------------------------------------------- runs


def _run_one(config: Config, run_dir: Path, record_path: Path, meta: dict, test) -> dict:
    """Train (or finish training) one run, evaluate it, and save its record; a saved record is returned as is."""
    if record_path.is_file():
        return load_json(record_path)
    config.train.out_dir = str(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    checkpoint = fit(config, resume=last.is_file())
    trained = time.perf_counter() - start
    result = test(DepthModel.load(checkpoint))
    record = {
        **meta,
        "steps": read_checkpoint(checkpoint)["global_step"],
        "train_seconds": trained,  # of the last invocation only, when resumed
        "eval_seconds": time.perf_counter() - start - trained,
        "metrics": result["model"],
        "constant": result["constant"],
        "regions": result.get("regions", {}),
        "median_scaling": result["median_scaling"],
        "images": result["images"],
    }
    robust = _robust_parameters(checkpoint)
    if robust:
        record["robust"] = robust
    save_json(record_path, record)
    return record


def _robust_parameters(checkpoint: Path) -> dict[str, list[float]] | None:
    """An adaptive loss's final alpha and c, averaged per channel (over pixels or coefficients); None otherwise."""
    ckpt = read_checkpoint(checkpoint)
    loss = Config.from_dict(ckpt["hyper_parameters"]["config"]).pixel_loss()  # just the loss, not the networks
    adaptive = adaptive_part(loss)
    if adaptive is None:
        return None
    prefix = "pixel_loss." + ("loss." if adaptive is not loss else "")
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    adaptive.load_state_dict(state)
    alpha, scale = adaptive.alpha().detach(), adaptive.scale().detach()
    return {"alpha": alpha.mean((1, 2)).tolist(), "scale": scale.mean((1, 2)).tolist(),
            "alpha_min": float(alpha.min()), "alpha_max": float(alpha.max())}


def _arm_config(plan: StudyPlan, arm: Arm, out: Path) -> tuple[Config, Any]:
    """The arm's base config with its data in place, and its evaluation."""
    config = with_overrides(plan.config, arm.overrides, f"{plan.source}: arm {arm.name}")
    if arm.data in SYNTHETIC_SETS:
        config.data.train, config.data.test = _synthetic_data(config, arm.data)
        test_root = config.data.test

        def test(model: DepthModel) -> dict:
            return evaluate(model, test_root)

    elif arm.data == "kitti":
        from selfdepth.data.kitti import KittiDataset

        kitti = plan.kitti or {}
        train_split, test_split = _kitti_splits(kitti, out / "runs" / arm.name)
        config.data.train, config.data.kitti_split = kitti["train_root"], str(train_split)
        data = KittiDataset(kitti["test_root"], test_split, config.data.height, config.data.width, ground_truth=True)

        def test(model: DepthModel) -> dict:
            return evaluate(model, data, garg=True)

    else:
        if not config.data.test:
            raise ValueError(f"{plan.source}: arm {arm.name!r} needs data.test (held-out data with depth)")
        test_root = config.data.test

        def test(model: DepthModel) -> dict:
            return evaluate(model, test_root)

    return config, test


def _describe(plan: StudyPlan, arm: Arm) -> str:
    """One line on what an arm trains and tests on (renders nothing)."""
    config = with_overrides(plan.config, arm.overrides, f"{plan.source}: arm {arm.name}")
    if arm.data in SYNTHETIC_SETS:
        test_root = _synthetic_data(config, arm.data, render=False)[1]
        where = f"synthetic streets ({arm.data}), test {test_root}, " + \
            ("depth in metres" if config.uses_stereo else "median-scaled")
    elif arm.data == "kitti":
        kitti = plan.kitti or {}
        where = f"KITTI: train {kitti.get('train_drive')}, test {kitti.get('test_drive')} lidar (Garg crop, 80 m)"
    else:
        where = f"train {config.data.train}, test {config.data.test}"
    t = config.train
    return (f"{t.mode}, {config.data.width}x{config.data.height}, {t.max_steps} steps of batch {t.batch_size}, "
            f"lr {t.lr:g}; {where}.")


def run_study(plan: StudyPlan, out: str | Path = "study", arms: list[str] | None = None) -> dict:
    """Run every (arm, variant, seed) of ``plan`` that has no record yet; returns what ``results.json`` holds.

    ``arms`` limits the runs to those arms (``[]`` runs nothing and only rewrites the report); the report
    always covers every record of the plan found under ``out``, so running one arm never hides another.
    """
    out = Path(out)
    chosen = [a for a in plan.arms if arms is None or a.name in arms]
    if arms is not None and len(chosen) != len(arms):
        raise ValueError(f"unknown arm in {arms}; valid: {', '.join(a.name for a in plan.arms)}")
    start = time.perf_counter()
    skipped: dict[str, str] = {}
    for arm in chosen:
        if arm.data == "kitti" and not all(Path(plan.kitti[k]).is_dir() for k in ("train_root", "test_root")):
            skipped[arm.name] = f"KITTI data not found ({plan.kitti['train_root']}, {plan.kitti['test_root']})"
            print(f"study: skipping arm {arm.name}: {skipped[arm.name]}")
            continue
        base, test = _arm_config(plan, arm, out)
        # Seed-major order: a study stopped part-way has every variant on the same seeds, so it pairs.
        for seed in range(plan.seeds):
            for variant in arm.variants or list(plan.variants):
                config = with_overrides(base, {**plan.variants[variant], "train.seed": seed, "train.max_minutes": None})
                where = Path(arm.name) / variant / f"seed{seed}"
                print(f"\n=== study: {arm.name}, {variant}, seed {seed} ===", flush=True)
                meta = {"arm": arm.name, "variant": variant, "seed": seed, "loss": config.loss.pixel_loss}
                _run_one(config, out / "runs" / where, out / "records" / f"{where}.json", meta, test)
                _write_results(plan, out, skipped, time.perf_counter() - start)
    return _write_results(plan, out, skipped, time.perf_counter() - start, final=True)


def _planned(plan: StudyPlan) -> list[Path]:
    """Every run of the plan, as its record's path relative to ``records/``."""
    return [Path(arm.name) / variant / f"seed{seed}.json"
            for arm in plan.arms for variant in arm.variants or list(plan.variants) for seed in range(plan.seeds)]


def _write_results(plan: StudyPlan, out: Path, skipped: dict[str, str],
                   seconds: float, final: bool = False) -> dict:
    """results.json, results.md and results.png from every record of the plan saved so far."""
    planned = _planned(plan)
    records = [load_json(out / "records" / path) for path in planned if (out / "records" / path).is_file()]
    complete = len(records) == len(planned)
    describe = {arm.name: _describe(plan, arm) for arm in plan.arms}
    result = {
        "plan": plan.source,
        "config": plan.config.to_dict(),
        "variants": plan.variants,
        "arms": {a.name: {"data": a.data, "set": a.overrides, "variants": a.variants} for a in plan.arms},
        "baseline": plan.baseline,
        "seeds": plan.seeds,
        "records": records,
        "summary": summarise(records),
        "paired": paired(records, plan.baseline),
        "contrasts": contrasts(records, plan.contrasts),
        "skipped_arms": skipped,
        "run_minutes": sum(r["train_seconds"] + r["eval_seconds"] for r in records) / 60,
        "minutes_this_invocation": seconds / 60,
        "runs_planned": len(planned),
        "complete": complete,
    }
    save_json(out / "results.json", result)
    header = (f"# Loss study ({plan.source})\n\n{plan.seeds} seeds per variant, baseline `{plan.baseline}`; "
              f"{len(records)} runs, {result['run_minutes']:.1f} min of training and evaluation"
              f"{'' if complete else f' so far (incomplete: {len(planned)} planned)'}.\n\n")
    notes = "".join(f"Skipped arm {name}: {why}.\n\n" for name, why in skipped.items())
    report = markdown_report(records, plan.baseline, describe, plan.contrasts)
    (out / "results.md").write_text(header + notes + report + "\n")
    if records:
        save_chart(records, plan.baseline, out / "results.png", f"loss study: paired ΔAbsRel vs {plan.baseline}")
    if final:
        print("\n" + report)
        print(f"wrote {out}/results.json, results.md, results.png")
    return result
