"""Monocular training from scratch on the synthetic streets, scored on held-out streets.

Trains ``train.mode=mono`` (frames t-1, t, t+1; no stereo, no ground truth) for a wall-clock
budget, then reports median-scaled AbsRel beside a constant-depth baseline scaled the same way.
Target: AbsRel <= 0.6x the baseline's within 60 minutes on a 2-core CPU.

The step budget is set from a measured step time so that the learning-rate drop
(``train.lr_decay_at``) lands inside the budget. Writes benchmarks/results/mono_synthetic.json.

    python benchmarks/mono_synthetic.py                                   # the committed result
    python benchmarks/mono_synthetic.py --minutes 10 --height 64 --width 224 --result NAME.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from selfdepth.config import load_config
from selfdepth.demo import TEST_FRAMES, TEST_SCENES, TRAIN_FRAMES, TRAIN_SCENES, render_if_missing
from selfdepth.evaluate import evaluate, format_table
from selfdepth.inference import DepthModel
from selfdepth.train import SelfDepth, fit, make_dataset


def seconds_per_step(config) -> float:
    """Median time of a few full training steps on real batches."""
    dataset = make_dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(config.train.batch_size)])
    model = SelfDepth(config.to_dict())
    optimizer = torch.optim.Adam(model.parameters(), config.train.lr)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        loss, _ = model.compute_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0, help="training wall-clock budget")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compile-loss", action=argparse.BooleanOptionalAction, default=True, help="train.compile_loss")
    parser.add_argument("--result", default="mono_synthetic.json", help="file name under benchmarks/results")
    parser.add_argument("--data", default="data", help="where to render (or find) the synthetic sets")
    parser.add_argument("--out", default="runs/bench_mono")
    args = parser.parse_args()
    H, W = args.height, args.width
    train_root, test_root = Path(args.data) / f"bench_train_{W}x{H}", Path(args.data) / f"bench_test_{W}x{H}"
    render_if_missing(train_root, TRAIN_SCENES, TRAIN_FRAMES, W, H, 0)
    render_if_missing(test_root, TEST_SCENES, TEST_FRAMES, W, H, 1)
    shutil.rmtree(args.out, ignore_errors=True)
    overrides = [f"data.train={train_root}", f"data.height={H}", f"data.width={W}", "train.mode=mono",
                 f"train.lr={args.lr}", f"train.out_dir={args.out}", "train.progress_bar=false", f"train.batch_size={args.batch}",
                 f"train.warmup_steps={args.warmup}", f"train.compile_loss={str(args.compile_loss).lower()}"]
    step_s = seconds_per_step(load_config(None, overrides))
    max_steps = int(args.minutes * 60 / step_s)  # the lr drop lands inside the budget; max_minutes caps the run
    config = load_config(None, overrides + [f"train.max_steps={max_steps}", f"train.max_minutes={args.minutes}"])
    start = time.perf_counter()
    checkpoint = fit(config)
    minutes = (time.perf_counter() - start) / 60
    steps = torch.load(checkpoint, weights_only=True)["global_step"]
    result = evaluate(DepthModel.load(checkpoint), test_root)
    print(format_table({"mono (median-scaled)": result["model"], "constant (median-scaled)": result["constant"]}))
    summary = {
        "setting": f"mono, {W}x{H}, batch {args.batch}, lr {args.lr} ({args.warmup} warm-up steps, x0.1 after 75%"
        f" of steps), compile_loss {args.compile_loss}, random init, CPU",
        "train_frames": TRAIN_SCENES * TRAIN_FRAMES,
        "test_frames": result["images"],
        "seconds_per_step": step_s,
        "steps": steps,
        "train_minutes": minutes,
        "abs_rel": result["model"]["abs_rel"],
        "constant_abs_rel": result["constant"]["abs_rel"],
        "ratio": result["model"]["abs_rel"] / result["constant"]["abs_rel"],
        "target_ratio": 0.6,
        "scale_ratio": result["scale_ratio"],
        "metrics": result["model"],
    }
    out = Path(__file__).parent / "results" / args.result
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
