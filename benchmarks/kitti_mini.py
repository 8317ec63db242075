"""Stereo training on the 10 real KITTI frames of ../shared/data/kitti_raw_mini, scored against lidar.

A smoke-scale check that the method learns from real images (it does not
collapse to maximum disparity) and that metric stereo depth comes out in metres.
Trains from random init on frames 1-8 (left and right as targets, with flips and
colour jitter), then evaluates every frame against the projected lidar inside
Garg's crop, beside a median-scaled constant-depth baseline. The frames are
few, so this measures fitting, not generalisation.

    .venv/bin/python benchmarks/kitti_mini.py --minutes 8
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from selfdepth.config import load_config
from selfdepth.data.kitti import KittiDataset
from selfdepth.evaluate import evaluate, format_table
from selfdepth.inference import DepthModel
from selfdepth.train import fit

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / ".." / "shared" / "data" / "kitti_raw_mini"
DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--size", default="416x128")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "kitti_mini.json"))
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    if not (MINI / DRIVE).is_dir():
        raise SystemExit(f"{MINI} not found: this benchmark needs ../shared/data/kitti_raw_mini")
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="kitti_mini_"))
    split = work / "train.txt"
    split.write_text("".join(f"{DRIVE} {i} {side}\n" for i in range(1, 9) for side in "lr"))
    test = work / "test.txt"
    test.write_text("".join(f"{DRIVE} {i} l\n" for i in range(10)))
    config = load_config(None, [
        f"data.train={MINI}", f"data.kitti_split={split}", f"data.height={height}", f"data.width={width}",
        "train.mode=stereo", "train.batch_size=8", f"train.lr={args.lr}", "train.max_steps=100000",
        f"train.max_minutes={args.minutes}", f"train.out_dir={work / 'run'}", "train.progress_bar=false",
        "train.image_every=0", "train.checkpoint_every=50",
        "data.refuse_held_out=false",  # this benchmark fits the Eigen test sample on purpose (a smoke check)
        *args.set,
    ])
    start = time.perf_counter()
    checkpoint = fit(config)
    minutes = (time.perf_counter() - start) / 60
    model = DepthModel.load(checkpoint)
    data = KittiDataset(MINI, test, height, width, ground_truth=True)
    result = evaluate(model, data, garg=True)
    rows = {"stereo model (metric)": result["model"], "stereo model (median-scaled)": result["model_median_scaled"],
            "constant (median-scaled)": result["constant"]}
    print(format_table(rows))
    steps = sum(1 for _ in open(work / "run" / "loss.csv")) - 1
    # Collapse diagnostics: the raw sigmoid on the test frames (1 = maximum disparity, 0.1 units).
    assert model.net is not None
    with torch.no_grad():
        sigmoid = model.net(torch.stack([data[i]["image"] for i in range(len(data))]))[0]
    record = {
        "setting": f"stereo, {width}x{height}, batch 8, lr {args.lr}, random init, 16 training views "
                   "(frames 1-8, left and right), evaluated on frames 0-9 (left) vs lidar, Garg crop, 80 m cap",
        "overrides": args.set,
        "machine": platform.machine(),
        "train_minutes": minutes,
        "steps": steps,
        "abs_rel_metric": result["model"]["abs_rel"],
        "abs_rel_median_scaled": result["model_median_scaled"]["abs_rel"],
        "constant_abs_rel": result["constant"]["abs_rel"],
        "ratio_metric": result["model"]["abs_rel"] / result["constant"]["abs_rel"],
        "sigmoid_mean": float(sigmoid.mean()),
        "sigmoid_saturated_fraction": float((sigmoid > 0.9).float().mean()),
        "scale_ratio": result["scale_ratio"],
        "metrics": result["model"],
        "metrics_median_scaled": result["model_median_scaled"],
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if not k.startswith("metrics")}, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
