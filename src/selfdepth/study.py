"""``selfdepth study``: compare photometric pixel losses fairly and write one table.

Every loss trains with the same config, data, number of steps and seeds; only
``loss.pixel_loss`` changes. A fixed number of steps (never a time budget) keeps
runs comparable whatever else the machine is doing. Each run is evaluated on the
held-out set, and the study writes

    <out>/results.json   every run's metrics and the mean / std per loss
    <out>/results.md     a Markdown table, mean ± std of the 7 metrics per loss
    <out>/results.png    AbsRel and delta < 1.25 per loss with std error bars
    <out>/runs/<loss>/seed<k>/   each run's checkpoints, logs and metrics.json

Interrupted studies resume: finished runs (with metrics.json) are kept, and an
unfinished run continues from its last checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from selfdepth.config import Config, load_config
from selfdepth.data.synthetic import Outliers, render_if_missing
from selfdepth.evaluate import METRICS, evaluate
from selfdepth.losses.robust import PIXEL_LOSSES, AdaptiveRobustLoss
from selfdepth.inference import DepthModel, read_checkpoint
from selfdepth.io import load_json, save_json
from selfdepth.train import fit

__all__ = ["run_study", "summarise", "markdown_table", "save_bar_chart", "SYNTHETIC_SETS"]

# Built-in data for --synthetic: (scenes, frames per scene, seed) for train and test, and the outliers.
SYNTHETIC_SETS: dict[str, Outliers | None] = {
    "clean": None,
    "outliers": Outliers(moving_cars=3, glass=0.35, exposure=0.2),
}
_TRAIN, _TEST = (40, 20, 0), (8, 8, 1)  # as make demo: 800 training frames, 64 held-out frames

_LABELS = {"abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse": "RMSE", "rmse_log": "RMSElog",
           "a1": "δ<1.25", "a2": "δ<1.25²", "a3": "δ<1.25³"}


def _prepare_data(config: Config, synthetic: str | None) -> None:
    """Point the config at the built-in synthetic set ``synthetic`` (rendered when missing)."""
    if synthetic is None:
        if not config.data.test:
            raise ValueError("the study needs held-out data with depth: set data.test, or pass --synthetic")
        return
    if synthetic not in SYNTHETIC_SETS:
        raise ValueError(f"unknown synthetic set {synthetic!r}; valid: {', '.join(SYNTHETIC_SETS)}")
    outliers, d = SYNTHETIC_SETS[synthetic], config.data
    root = Path("data") / f"study-{synthetic}-{d.width}x{d.height}"
    for part, (scenes, frames, seed) in (("train", _TRAIN), ("test", _TEST)):
        # The test set has outliers too: the question is which loss learns better depth from such data.
        render_if_missing(root / part, scenes, frames, d.width, d.height, seed, outliers)
    d.train, d.test = str(root / "train"), str(root / "test")


def _run_one(config: Config, run_dir: Path) -> dict:
    """Train (or finish training) one run and evaluate it; the result is cached in metrics.json."""
    done = run_dir / "metrics.json"
    if done.is_file():
        return load_json(done)
    config.train.out_dir = str(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    checkpoint = fit(config, resume=last.is_file())
    seconds = time.perf_counter() - start
    result = evaluate(DepthModel.load(checkpoint), config.data.test)
    record = {
        "loss": config.loss.pixel_loss,
        "seed": config.train.seed,
        "steps": read_checkpoint(checkpoint)["global_step"],
        "train_seconds": seconds,  # of this invocation only, when resumed
        "metrics": result["model"],
        "constant": result["constant"],
        "median_scaling": result["median_scaling"],
    }
    if config.loss.pixel_loss == "barron_adaptive":
        record["robust"] = _robust_parameters(checkpoint)
    save_json(done, record)
    return record


def _robust_parameters(checkpoint: Path) -> dict[str, list[float]]:
    """The adaptive loss's final alpha and c per channel."""
    ckpt = read_checkpoint(checkpoint)
    loss = Config.from_dict(ckpt["hyper_parameters"]["config"]).pixel_loss()  # just the loss, not the networks
    assert isinstance(loss, AdaptiveRobustLoss)
    prefix = "pixel_loss."
    loss.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    return {"alpha": loss.alpha().detach().mean((1, 2)).tolist(), "scale": loss.scale().detach().mean((1, 2)).tolist()}


def summarise(runs: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and std (over seeds) of every metric, per loss: ``{loss: {metric: {"mean", "std", "n"}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for loss in dict.fromkeys(r["loss"] for r in runs):
        rows = [r["metrics"] for r in runs if r["loss"] == loss]
        out[loss] = {
            m: {"mean": float(np.mean([r[m] for r in rows])), "std": float(np.std([r[m] for r in rows])), "n": len(rows)}
            for m in METRICS
        }
    return out


def markdown_table(summary: dict[str, dict[str, dict[str, float]]], constant: dict[str, float] | None = None) -> str:
    """Mean ± std per loss (std over seeds), lower-is-better errors then higher-is-better accuracies."""
    lines = ["| loss | seeds | " + " | ".join(_LABELS[m] for m in METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for loss, metrics in summary.items():
        cells = [f"{metrics[m]['mean']:.4f} ± {metrics[m]['std']:.4f}" for m in METRICS]
        lines.append(f"| {loss} | {metrics[METRICS[0]]['n']} | " + " | ".join(cells) + " |")
    if constant is not None:
        lines.append("| constant depth (baseline) | - | " + " | ".join(f"{constant[m]:.4f}" for m in METRICS) + " |")
    return "\n".join(lines)


def save_bar_chart(summary: dict[str, dict[str, dict[str, float]]], path: Path, title: str = "") -> None:
    """AbsRel and delta < 1.25 per loss, mean with std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = list(summary)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric, note in zip(axes, ("abs_rel", "a1"), ("lower is better", "higher is better")):
        means = [summary[loss][metric]["mean"] for loss in losses]
        stds = [summary[loss][metric]["std"] for loss in losses]
        ax.bar(range(len(losses)), means, yerr=stds, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(losses)), losses, rotation=30, ha="right")
        ax.set_title(f"{_LABELS[metric]} ({note})")
        low, high = min(m - s for m, s in zip(means, stds)), max(m + s for m, s in zip(means, stds))
        pad = 0.15 * (high - low) + 1e-3
        ax.set_ylim(max(0.0, low - pad), high + pad)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_study(
    config_path: str | Path | None,
    losses: list[str],
    seeds: int,
    out: str | Path = "study",
    overrides: list[str] | None = None,
    synthetic: str | None = None,
) -> dict:
    """Train and evaluate every loss with seeds 0..seeds-1; returns what ``results.json`` holds."""
    unknown = [name for name in losses if name not in PIXEL_LOSSES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; valid: {', '.join(PIXEL_LOSSES)}")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    base = load_config(config_path, overrides)
    if base.train.max_minutes is not None:
        print(f"study: ignoring train.max_minutes={base.train.max_minutes}; every run trains "
              f"{base.train.max_steps} steps so that losses are compared at equal steps")
    _prepare_data(base, synthetic)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs = []
    for loss in losses:
        for seed in range(seeds):
            config = Config.from_dict(base.to_dict())  # an independent copy
            config.loss.pixel_loss, config.train.seed, config.train.max_minutes = loss, seed, None
            config.validate()
            print(f"\n=== study: {loss}, seed {seed} ===", flush=True)
            runs.append(_run_one(config, out / "runs" / loss / f"seed{seed}"))
    summary = summarise(runs)
    result = {
        "config": base.to_dict(),
        "config_file": str(config_path) if config_path else None,
        "synthetic": synthetic,
        "outliers": asdict(SYNTHETIC_SETS[synthetic]) if synthetic and SYNTHETIC_SETS[synthetic] else None,
        "losses": losses,
        "seeds": seeds,
        "steps": base.train.max_steps,
        "runs": runs,
        "summary": summary,
        "constant": runs[0]["constant"],
        "minutes_this_invocation": (time.perf_counter() - start) / 60,
    }
    save_json(out / "results.json", result)
    table = markdown_table(summary, runs[0]["constant"])
    scaling = "median-scaled" if runs[0]["median_scaling"] else "metric (stereo scale)"
    header = (f"Loss study: {len(losses)} losses x {seeds} seeds, {base.train.max_steps} steps each, "
              f"mode {base.train.mode}, {base.data.width}x{base.data.height}, data {base.data.train} "
              f"(test {base.data.test}), depth {scaling}, capped at 80 m. Mean ± std over seeds.\n\n")
    (out / "results.md").write_text(header + table + "\n")
    save_bar_chart(summary, out / "results.png", f"{base.train.mode}, {synthetic or base.data.train}")
    print("\n" + header + table)
    print(f"\nwrote {out}/results.json, results.md, results.png")
    return result
