"""Train on one whole KITTI drive, test on a drive it never saw (issue: real images at the scale we can hold).

Trains ``configs/kitti_small.yaml`` on drive 0005 (``../shared/data/kitti_raw_0005``, 154 JPEG frames,
every frame with both neighbours, both cameras as targets) for a time budget, then scores it

- on drive 0002's 10 frames (``../shared/data/kitti_raw_mini``, an Eigen *test* drive) against lidar,
  Garg crop, 80 m cap: metric AbsRel for stereo-trained models, median-scaled for every model;
- on drive 0005's own frames that have a scan (every 10th);
- beside a median-scaled constant depth; and, for mono and mono+stereo models, the pose network's
  ATE on KITTI odometry sequence 04 (``../shared/data/kitti_odometry_04``) beside a constant motion.

    .venv/bin/python benchmarks/kitti_generalise.py --mode stereo --minutes 60
    .venv/bin/python benchmarks/kitti_generalise.py --mode mono+stereo --minutes 60 --set data.augment=false

Writes ``benchmarks/results/kitti_generalise_<mode>[_<tag>].json`` with the CPU, steps and minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from lightning.pytorch.callbacks import Callback, Timer

from _machine import machine, network_gflops

from selfdepth.config import load_config
from selfdepth.data.kitti import KittiDataset, drive_split
from selfdepth.evaluate import evaluate, format_table, garg_crop
from selfdepth.inference import DepthModel, colorize, read_checkpoint
from selfdepth.io import save_image, save_json
from selfdepth.train import fit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
TRAIN_ROOT, TRAIN_DRIVE = SHARED / "kitti_raw_0005", "2011_09_26/2011_09_26_drive_0005_sync"
TEST_ROOT, TEST_DRIVE = SHARED / "kitti_raw_mini", "2011_09_26/2011_09_26_drive_0002_sync"
ODOMETRY = SHARED / "kitti_odometry_04"


def picture_grid(model: DepthModel, data: KittiDataset, path: Path, frames: int = 5) -> Path:
    """Rows of input | predicted depth | lidar, the depth maps in one colour scale per row (near bright)."""
    rows = []
    for i in np.linspace(0, len(data) - 1, min(frames, len(data))).round().astype(int):
        sample = data[int(i)]
        gt = sample["depth_gt"][0].numpy()  # (H0, W0) lidar at the image's own resolution, 0 = no return
        h0, w0 = gt.shape
        image = F.interpolate(sample["image"][None], (h0, w0), mode="bilinear", align_corners=False)[0]
        image = (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        prediction = model.predict(image)
        vmax = 1.0 / max(float(np.percentile(gt[gt > 0], 5)), 1e-3)  # inverse depth of the nearest 5% of lidar
        lidar = np.where(gt > 0, 1.0 / np.maximum(gt, 1e-3), 0.0)
        lidar = np.maximum.reduce([np.roll(np.roll(lidar, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        lidar_picture = colorize(lidar, vmax)
        lidar_picture[lidar == 0] = 40  # no return: dark grey
        # Both depth maps in the lidar's metres: a mono model's depth is median-scaled to the lidar first.
        depth = prediction.depth
        if not model.metric:
            depth = depth * float(np.median(gt[gt > 0]) / np.median(depth[gt > 0]))
        rows.append(np.concatenate([image, colorize(1.0 / depth, vmax), lidar_picture], axis=1))
    width = rows[0].shape[1]  # streets differ in size (KITTI raw 1242x375, odometry 1226x370): one width
    rows = [r if r.shape[1] == width else np.asarray(Image.fromarray(r).resize(
        (width, round(r.shape[0] * width / r.shape[1])), Image.BILINEAR)) for r in rows]
    return save_image(path, np.concatenate(rows, axis=0))


class Snapshots(Callback):
    """Keeps the weights every ``minutes`` of training time as ``<folder>/min<M>.ckpt``, to score how
    the model's error on the unseen drive moves while it trains (does it overfit the one drive?)."""

    def __init__(self, folder: Path, minutes: float) -> None:
        self.folder, self.minutes = folder, minutes

    def on_train_batch_end(self, trainer, *args) -> None:
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        elapsed = timer.time_elapsed("train") / 60
        mark = int(elapsed // self.minutes) * self.minutes
        path = self.folder / f"min{mark:05.1f}.ckpt"
        if mark > 0 and not path.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            trainer.save_checkpoint(path, weights_only=True)


def _lidar_points(model: DepthModel, data: KittiDataset, cap: float = 80.0) -> dict[str, np.ndarray]:
    """Every lidar point of ``data`` inside the Garg crop and under ``cap`` metres, with the model's metric
    depth there and the point's place in the crop (0 = top / left edge, 1 = bottom / right edge)."""
    points: dict[str, list[np.ndarray]] = {"gt": [], "pred": [], "down": [], "across": []}
    for i in range(len(data)):
        sample = data[i]
        gt = sample["depth_gt"][0].numpy()
        pred = model.depth(sample["image"][None])
        pred = F.interpolate(pred, gt.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        crop = garg_crop(*gt.shape)
        rows, cols = np.nonzero(crop)
        ys, xs = np.nonzero((gt > 1e-3) & (gt < cap) & crop)
        points["gt"].append(gt[ys, xs])
        points["pred"].append(np.clip(pred[ys, xs], 1e-3, cap))
        points["down"].append((ys - rows.min()) / (rows.max() + 1 - rows.min()))
        points["across"].append((xs - cols.min()) / (cols.max() + 1 - cols.min()))
    return {k: np.concatenate(v) for k, v in points.items()}


def _bin(points: dict[str, np.ndarray], inside: np.ndarray, error: np.ndarray) -> dict:
    """The share of points ``inside``, their median predicted/true depth and their part of the AbsRel sum."""
    ratio = points["pred"][inside] / points["gt"][inside]
    return {"share": float(inside.mean()), "median_pred_over_true": float(np.median(ratio)),
            "abs_rel": float(error[inside].mean()), "abs_rel_part": float(error[inside].sum() / error.size)}


def error_breakdown(model: DepthModel, data: KittiDataset, edges: tuple[float, ...] = (0, 10, 20, 40, 80),
                    grid: tuple[int, int] = (3, 4)) -> dict[str, list[dict]]:
    """Where a metric model's error on a drive comes from: by lidar range (``by_range``) and by place in
    the Garg crop (``by_region``, a rows x cols grid, top-left first)."""
    points = _lidar_points(model, data, edges[-1])
    gt, down, across = points["gt"], points["down"], points["across"]
    error = np.abs(points["pred"] - gt) / gt
    by_range = [{"metres": [lo, hi], **_bin(points, (gt >= lo) & (gt < hi), error)}
                for lo, hi in zip(edges[:-1], edges[1:]) if ((gt >= lo) & (gt < hi)).any()]
    rows, cols = grid
    by_region = []
    for r in range(rows):
        for c in range(cols):
            inside = ((down * rows).astype(int) == r) & ((across * cols).astype(int) == c)
            if inside.any():
                by_region.append({"row": r, "col": c, **_bin(points, inside, error)})
    return {"by_range": by_range, "by_region": by_region}


def average_snapshots(snapshots: list[Path], out: Path) -> Path:
    """The uniform mean of the snapshots' weights (and batch-norm statistics), saved as a checkpoint: a
    stochastic-weight-averaging-style model (Izmailov et al., 2018) from one run's trajectory."""
    checkpoints = [read_checkpoint(path) for path in snapshots]
    averaged = checkpoints[-1]
    for name, tensor in averaged["state_dict"].items():
        if tensor.is_floating_point():  # counters such as num_batches_tracked stay the last snapshot's
            averaged["state_dict"][name] = torch.stack([c["state_dict"][name] for c in checkpoints]).mean(0)
    torch.save(averaged, out)
    return out


def _score_snapshot(checkpoint: Path, data: dict[str, KittiDataset]) -> dict:
    """AbsRel of one checkpoint on each drive (metric, median-scaled, flip TTA, and where the error is)."""
    model = DepthModel.load(checkpoint)
    row: dict = {"steps": read_checkpoint(checkpoint)["global_step"]}
    for label, drive_data in data.items():
        result = evaluate(model, drive_data, garg=True)
        tta = evaluate(model, drive_data, garg=True, flip_tta=True)["model"]
        row[label] = {"abs_rel": result["model"]["abs_rel"], "constant": result["constant"]["abs_rel"],
                      "abs_rel_median_scaled": result.get("model_median_scaled", result["model"])["abs_rel"],
                      "abs_rel_flip_tta": tta["abs_rel"]}
        if model.metric:
            row[label].update(error_breakdown(model, drive_data))
    return row


def _summary(name: str, row: dict) -> str:
    return f"{name}: " + ", ".join(f"{k} {v['abs_rel']:.3f} ({v['abs_rel'] / v['constant']:.3f}x)"
                                   for k, v in row.items() if isinstance(v, dict))


def curve(folder: Path, data: dict[str, KittiDataset], path: Path) -> Path:
    """AbsRel of every snapshot on each drive: the error along training. Also scores the mean of the
    second half's snapshots' weights, a rule fixed before looking at any score (no choice on the test drive)."""
    snapshots = sorted(folder.glob("min*.ckpt"))
    if not snapshots:
        raise SystemExit(f"{folder}: no snapshots to score (train with --snapshot-minutes first)")
    rows = []
    for snapshot in snapshots:
        rows.append({"minutes": float(snapshot.stem[3:]), **_score_snapshot(snapshot, data)})
        print(_summary(snapshot.name, rows[-1]), flush=True)
    second_half = [s for s in snapshots if float(s.stem[3:]) >= rows[-1]["minutes"] / 2]
    averaged = average_snapshots(second_half, folder / "second_half_average.ckpt")
    average = {"snapshots": [s.name for s in second_half], **_score_snapshot(averaged, data)}
    print(_summary("mean of the second half's weights", average), flush=True)
    return save_json(path, {"snapshots": rows, "second_half_average": average, "folder": str(folder)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="stereo", choices=("stereo", "mono", "mono+stereo"))
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--tag", default="", help="suffix of the result file, for ablations")
    parser.add_argument("--work", default="runs/kitti_generalise", help="checkpoints and logs")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    parser.add_argument("--score-only", action="store_true", help="score the run's last checkpoint; train nothing")
    parser.add_argument("--snapshot-minutes", type=float, default=0.0,
                        help="also keep the weights every this many training minutes (run/snapshots/)")
    args = parser.parse_args()
    for folder in (TRAIN_ROOT / TRAIN_DRIVE, TEST_ROOT / TEST_DRIVE):
        if not folder.is_dir():
            raise SystemExit(f"{folder} not found: this benchmark needs ../shared/data")
    name = "kitti_generalise_" + args.mode.replace("+", "_") + (f"_{args.tag}" if args.tag else "")
    work = Path(args.work) / name
    train_split = drive_split(TRAIN_ROOT, TRAIN_DRIVE, work / "train_files.txt", "lr", 1)
    config = load_config(ROOT / "configs" / "kitti_small.yaml", [
        f"data.train={TRAIN_ROOT}", f"data.kitti_split={train_split}", f"train.mode={args.mode}",
        f"train.max_minutes={args.minutes}", f"train.out_dir={work / 'run'}", *args.set,
    ])
    checkpoint, minutes = work / "run" / "checkpoints" / "last.ckpt", None
    if not args.score_only:
        start = time.perf_counter()
        extra = [Snapshots(work / "run" / "snapshots", args.snapshot_minutes)] if args.snapshot_minutes > 0 else []
        checkpoint = fit(config, resume=checkpoint.is_file(), callbacks=extra)
        minutes = (time.perf_counter() - start) / 60
    elif not checkpoint.is_file():
        raise SystemExit(f"{checkpoint} not found: nothing to score")
    model = DepthModel.load(checkpoint)
    h, w = config.data.height, config.data.width
    data = {label: KittiDataset(root, drive_split(root, drive, work / f"{label}.txt", "l", 0, with_lidar=True),
                                h, w, ground_truth=True)
            for label, root, drive in (("drive_0002", TEST_ROOT, TEST_DRIVE), ("drive_0005_own", TRAIN_ROOT, TRAIN_DRIVE))}
    if args.snapshot_minutes > 0:
        curve(work / "run" / "snapshots", data, ROOT / "benchmarks" / "results" / f"{name}_curve.json")
    scores = {}
    for label, drive_data in data.items():
        result = evaluate(model, drive_data, garg=True)
        # Also with Monodepth2's post-processing idea: the mean with the mirrored image's prediction.
        result["model_flip_tta"] = evaluate(model, drive_data, garg=True, flip_tta=True)["model"]
        if model.metric:
            result.update(error_breakdown(model, drive_data))
        scores[label] = result
        rows = {"model": result["model"], "constant": result["constant"]}
        if "model_median_scaled" in result:
            rows["model (median-scaled)"] = result["model_median_scaled"]
        rows["model (flip TTA)"] = result["model_flip_tta"]
        print(f"\n{label} ({result['images']} frames with lidar)\n" + format_table(rows))
        if label == "drive_0002":
            grid = picture_grid(model, drive_data,
                                ROOT / "benchmarks" / "results" / f"{name}.png")
            print(f"wrote {grid}: input | depth | lidar")
    trained = read_checkpoint(checkpoint)
    record = {
        "mode": args.mode, "config": config.to_dict(), "overrides": args.set,
        "machine": machine(), "depth_net_gflops": round(network_gflops(model.net, torch.rand(1, 3, h, w)), 2),
        "steps": trained["global_step"], "train_minutes_this_invocation": minutes,
        # Every invocation's training minutes (Lightning's Timer state), so a resumed run reports its whole budget.
        "train_minutes": trained["callbacks"]["Timer"]["time_elapsed"]["train"] / 60,
        "scores": scores,
        "abs_rel_vs_constant": {k: v["model"]["abs_rel"] / v["constant"]["abs_rel"] for k, v in scores.items()},
        "abs_rel_vs_constant_flip_tta": {k: v["model_flip_tta"]["abs_rel"] / v["constant"]["abs_rel"]
                                         for k, v in scores.items()},
    }
    if config.uses_temporal and (ODOMETRY / "poses" / "04.txt").is_file():
        from selfdepth.evaluate_pose import evaluate_pose

        record["pose_ate_odometry_04"] = evaluate_pose(checkpoint, ODOMETRY, "04")
    out = save_json(ROOT / "benchmarks" / "results" / f"{name}.json", record)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
