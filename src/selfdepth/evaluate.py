"""The seven standard depth metrics, and evaluation of a checkpoint on held-out data with ground truth.

Stereo-trained models are scored in true metres (no scaling). Mono-trained
models only know depth up to scale, so each prediction is median-scaled to
its ground truth, and the ratios' mean and std are reported (a small std means
the model's scale is consistent). A constant-depth prediction, median-scaled
the same way, is scored alongside as the trivial baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from selfdepth.data.folder import FolderDataset
from selfdepth.inference import DepthModel
from selfdepth.io import regions, save_depth_png, save_json

__all__ = [
    "METRICS", "depth_metrics", "evaluate", "evaluate_to_files", "format_table", "garg_crop", "export_ground_truth",
]

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def depth_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """AbsRel, SqRel, RMSE, RMSElog and the δ < 1.25^k accuracies of valid pixels.

    Args:
        gt: (N,) positive ground-truth depths.
        pred: (N,) positive predicted depths.
    """
    if gt.shape != pred.shape or gt.size == 0:
        raise ValueError(f"need equal, non-empty shapes, got gt {gt.shape} and pred {pred.shape}")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def garg_crop(height: int, width: int) -> np.ndarray:
    """(H, W) bool: Garg et al.'s evaluation crop for KITTI (the lower, lidar-covered part of the image)."""
    from selfdepth.data.kitti import GARG_CROP

    y0, y1, x0, x1 = GARG_CROP
    mask = np.zeros((height, width), dtype=bool)
    mask[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)] = True
    return mask


def _score(
    gt: np.ndarray,
    pred: np.ndarray,
    median_scale: bool,
    min_depth: float,
    max_depth: float,
    crop: bool = False,
    regions: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, dict[str, float]], float]:
    """Metrics of one image (``"all"``) and of each region that has valid pixels, and the median ratio used.

    The median ratio (1.0 when not scaling) is the whole image's: a region is scored with the
    image's scale, as a depth map has one scale.
    """
    mask = (gt > min_depth) & (gt < max_depth)
    if crop:
        mask &= garg_crop(*gt.shape)
    ratio = float(np.median(gt[mask]) / np.median(pred[mask])) if median_scale else 1.0
    scaled = np.clip(pred * ratio, min_depth, max_depth)
    out = {"all": depth_metrics(gt[mask], scaled[mask])}
    for name, region in (regions or {}).items():
        inside = mask & region
        if inside.any():  # an image without this region does not count towards its mean
            out[name] = depth_metrics(gt[inside], scaled[inside])
    return out, ratio


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}


def evaluate(
    model: DepthModel,
    root: str | Path | FolderDataset,
    median_scaling: bool | None = None,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    flip_tta: bool = False,
    batch_size: int = 8,
    garg: bool = False,
) -> dict:
    """Score ``model`` on every frame with ground truth under ``root``.

    Args:
        model: the trained model.
        root: held-out data in the selfdepth folder layout, with depth/; or a data set
            with ground truth (e.g. ``KittiDataset(..., ground_truth=True)``).
        median_scaling: None = scale only models that are not metric.
        min_depth: ground truth at or below this is ignored (metres).
        max_depth: depth cap in metres (80 m as on KITTI).
        flip_tta: average with the prediction on the mirrored image.
        garg: score only Garg's crop (the KITTI Eigen protocol).

    Returns:
        ``{"model": metrics, "constant": metrics, "median_scaling": bool,
        "scale_ratio": {"mean", "std"}, "images": N}`` (and ``"model_median_scaled"``
        for metric models). When the data has region masks (``masks/``), also
        ``"regions": {name: {"model", "constant", "images", "pixel_fraction"}}`` for
        ``io.regions``' names: the same per-image means, over the images that have
        valid pixels in the region.
    """
    if median_scaling is None:
        median_scaling = not model.metric
    data = root if isinstance(root, FolderDataset) else FolderDataset(root, model.height, model.width)
    if data.scenes[0].depth is None:
        raise ValueError(f"{root}: evaluation needs ground truth (a depth/ folder per scene)")
    rows, rows_median, rows_const, ratios = [], [], [], []
    pixels: dict[str, list[int]] = {}  # region -> [valid pixels inside, valid pixels]
    for start in range(0, len(data), batch_size):
        samples = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        images = torch.stack([s["image"] for s in samples])
        depth = model.depth(images, flip_tta)
        for sample, d in zip(samples, depth):
            gt = sample["depth_gt"][0].numpy()
            named = regions(sample["regions"][0].numpy()) if "regions" in sample else None
            pred = F.interpolate(d[None], gt.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
            metrics, ratio = _score(gt, pred, median_scaling, min_depth, max_depth, garg, named)
            rows.append(metrics)
            ratios.append(ratio)
            if model.metric:
                rows_median.append(_score(gt, pred, True, min_depth, max_depth, garg)[0]["all"])
            rows_const.append(_score(gt, np.ones_like(gt), True, min_depth, max_depth, garg, named)[0])
            valid = (gt > min_depth) & (gt < max_depth)
            for name, region in (named or {}).items():
                counts = pixels.setdefault(name, [0, 0])
                counts[0] += int((valid & region).sum())
                counts[1] += int(valid.sum())
    result = {
        "model": _mean([r["all"] for r in rows]),
        "constant": _mean([r["all"] for r in rows_const]),
        "median_scaling": median_scaling,
        "metric_model": model.metric,
        "scale_ratio": {"mean": float(np.mean(ratios)), "std": float(np.std(ratios))},
        "images": len(rows),
        "max_depth": max_depth,
        "garg_crop": garg,
    }
    if rows_median:
        result["model_median_scaled"] = _mean(rows_median)
    if pixels:
        result["regions"] = {
            name: {
                "model": _mean([r[name] for r in rows if name in r]) if any(name in r for r in rows) else None,
                "constant": _mean([r[name] for r in rows_const if name in r]) if any(name in r for r in rows) else None,
                "images": sum(name in r for r in rows),
                "pixel_fraction": inside / max(total, 1),
            }
            for name, (inside, total) in pixels.items()
        }
    return result


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width table: one row per named metrics dict."""
    width = max(len(name) for name in rows) + 2
    lines = [" " * width + "".join(f"{m:>10}" for m in METRICS)]
    for name, metrics in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{metrics[m]:>10.4f}" for m in METRICS))
    return "\n".join(lines)


def evaluate_to_files(
    checkpoint: str | Path,
    root: str | Path,
    out: str | Path | None = None,
    kitti_split: str | None = None,
    skip_missing: bool = False,
    **kwargs,
) -> dict:
    """Evaluate a checkpoint, print the table and write the JSON (``out``).

    With ``kitti_split`` (e.g. "eigen"), ``root`` is a KITTI raw root: ground truth
    is the projected lidar and only Garg's crop is scored.
    """
    model = DepthModel.load(checkpoint)
    if kitti_split:
        from selfdepth.data.kitti import KittiDataset

        data = KittiDataset(root, kitti_split, model.height, model.width, ground_truth=True, skip_missing=skip_missing)
        result = evaluate(model, data, garg=True, **kwargs)
        result["frames_without_lidar"] = data.frames_without_lidar
        if data.frames_without_lidar:
            print(f"scored the {len(data)} split frames that have a velodyne scan; "
                  f"{data.frames_without_lidar} have none and were left out")
    else:
        result = evaluate(model, root, **kwargs)
    rows = {"model" + (" (metric)" if not result["median_scaling"] else " (median-scaled)"): result["model"]}
    if "model_median_scaled" in result:
        rows["model (median-scaled)"] = result["model_median_scaled"]
    rows["constant (median-scaled)"] = result["constant"]
    print(format_table(rows))
    if "regions" in result:
        print("\nby region (model; share of valid pixels):")
        print(format_table({f"{name} ({r['pixel_fraction']:.1%})": r["model"]
                            for name, r in result["regions"].items() if r["model"] is not None}))
    if result["median_scaling"]:
        print(f"scale ratio: mean {result['scale_ratio']['mean']:.3f}, std {result['scale_ratio']['std']:.3f}")
    if out is not None:
        save_json(out, result)
    return result


def export_ground_truth(root: str | Path, split: str | Path, out: str | Path, skip_missing: bool = False) -> list[Path]:
    """Write the lidar ground truth of every split frame as a 16-bit PNG in mm, plus ``files.txt``.

    Files are named ``<drive>_<frame>_<side>.png``; ``files.txt`` lists the split lines in order.
    """
    from selfdepth.data.kitti import read_split
    from selfdepth.data.kitti_calib import lidar_depth, read_calibration

    root, out = Path(root), Path(out)
    rows = read_split(split)
    out.mkdir(parents=True, exist_ok=True)
    written, lines, missing = [], [], []
    for drive, frame, side in rows:
        scan = root / drive / "velodyne_points" / "data" / f"{frame:010d}.bin"
        if not scan.is_file():
            missing.append(scan)
            continue
        depth = lidar_depth(scan, read_calibration(root / drive.split("/")[0]), 2 if side == "l" else 3)
        path = out / f"{drive.split('/')[-1]}_{frame:010d}_{side}.png"
        save_depth_png(path, depth)
        written.append(path)
        lines.append(f"{drive} {frame} {side} {path.name}")
    if missing and not skip_missing:
        shown = "\n  ".join(str(p) for p in missing[:5])
        raise FileNotFoundError(f"{len(missing)} velodyne scans of split {split} are missing, e.g.:\n  {shown}\n"
                                "(pass --skip-missing to export the others)")
    (out / "files.txt").write_text("".join(line + "\n" for line in lines))
    return written
