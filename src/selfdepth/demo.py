"""``make demo``: render the built-in data, train in stereo, evaluate on held-out scenes, draw pictures."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np

from selfdepth.config import load_config
from selfdepth.data.synthetic import render_if_missing
from selfdepth.evaluate import evaluate, format_table
from selfdepth.inference import DepthModel, colorize
from selfdepth.io import save_image, save_json
from selfdepth.train import fit

__all__ = ["run_demo", "save_prediction_grid", "save_loss_curve"]

TRAIN_SCENES, TRAIN_FRAMES, TRAIN_SEED = 40, 20, 0  # 800 training frames
TEST_SCENES, TEST_FRAMES, TEST_SEED = 8, 8, 1  # held-out streets from another seed


def save_prediction_grid(model: DepthModel, root: Path, path: Path, rows: int = 4) -> None:
    """Picture of (input | predicted depth | true depth) for a few held-out frames."""
    from selfdepth.data.folder import FolderDataset

    data = FolderDataset(root, model.height, model.width)
    picks = np.linspace(0, len(data) - 1, rows).round().astype(int)
    lines = []
    for i in picks:
        sample = data[int(i)]
        image = (sample["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pred = model.predict(image)
        gt = sample["depth_gt"][0].numpy()
        gt_disp = np.where(gt > 0, 1.0 / np.maximum(gt, 1e-3), 0.0)
        pred_disp = 1.0 / pred.depth  # colour both as inverse metres, on the same scale
        vmax = float(np.percentile(gt_disp[gt > 0], 95))
        lines.append(np.concatenate([image, colorize(pred_disp, vmax), colorize(gt_disp, vmax)], axis=1))
    save_image(path, np.concatenate(lines, axis=0))


def save_loss_curve(loss_csv: Path, path: Path) -> None:
    """Training loss against step (raw and smoothed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with loss_csv.open() as f:
        rows = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
    steps, losses = np.array(rows).T
    window = max(1, len(losses) // 20)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, alpha=0.3, label="loss")
    ax.plot(steps[window - 1 :], smooth, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(config_path: str | Path, out: str | Path, overrides: list[str] | None = None) -> dict:
    """Render, train, evaluate and draw; returns the metrics written to ``<out>/metrics.json``."""
    start = time.perf_counter()
    config = load_config(config_path, overrides)
    d = config.data
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_root, test_root = Path(d.train), Path(d.test or "data/demo_test")
    render_if_missing(train_root, TRAIN_SCENES, TRAIN_FRAMES, d.width, d.height, TRAIN_SEED)
    render_if_missing(test_root, TEST_SCENES, TEST_FRAMES, d.width, d.height, TEST_SEED)

    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    config.train.out_dir = str(run_dir)
    checkpoint = fit(config)

    model = DepthModel.load(checkpoint)
    result = evaluate(model, test_root)
    ratio = result["model"]["abs_rel"] / result["constant"]["abs_rel"]
    result["abs_rel_vs_constant"] = ratio
    result["seconds"] = time.perf_counter() - start
    save_json(out / "metrics.json", result)
    save_prediction_grid(model, test_root, out / "predictions.png")
    save_loss_curve(run_dir / "loss.csv", out / "loss_curve.png")

    rows = {"stereo model (metric)": result["model"]}
    if "model_median_scaled" in result:
        rows["stereo model (median-scaled)"] = result["model_median_scaled"]
    rows["constant depth (median-scaled)"] = result["constant"]
    print(f"\nheld-out synthetic streets: {result['images']} frames, depth capped at {result['max_depth']:.0f} m")
    print(format_table(rows))
    print(f"AbsRel: model / constant baseline = {ratio:.3f}")
    print(f"wrote {out}/metrics.json, predictions.png, loss_curve.png in {result['seconds'] / 60:.1f} min")
    return result
