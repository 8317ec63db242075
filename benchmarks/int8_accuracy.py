"""Does int8 keep the depth? Held-out AbsRel of a model exported in fp32 and in int8, side by side.

    python benchmarks/int8_accuracy.py --checkpoint demo_out/run/checkpoints/last.ckpt --data data/demo_test \
        --calibration data/demo_train [--kitti-checkpoint KITTI.ckpt]

The synthetic part scores the ``make demo`` model on its held-out streets (metres);
the KITTI part, when a KITTI-trained checkpoint is given and ../shared is present,
scores it on drive 0002's lidar (Garg crop, 80 m), calibrated on drive 0005's frames.
Writes benchmarks/results/int8_accuracy.json. Target: int8 within 2% (relative) of fp32.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from selfdepth.evaluate import evaluate
from selfdepth.export import KEEP_FP32, export_onnx
from selfdepth.inference import load
from selfdepth.io import save_json

from _machine import machine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"


def compare(checkpoint: Path, calibration: Path, score) -> dict:
    """Metrics of the fp32 export, the int8 export, and an int8 export with every convolution quantised."""
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = score(load(export_onnx(checkpoint, Path(tmp) / "fp32.onnx")))
        int8 = score(load(export_onnx(checkpoint, Path(tmp) / "int8.onnx", int8=True, calibration=calibration)))
        every = score(load(export_onnx(checkpoint, Path(tmp) / "all.onnx", int8=True, calibration=calibration,
                                       keep_fp32=())))
    return {"fp32": fp32["model"], "int8": int8["model"], "int8_every_conv": every["model"],
            "abs_rel_change": int8["model"]["abs_rel"] / fp32["model"]["abs_rel"] - 1,
            "abs_rel_change_every_conv": every["model"]["abs_rel"] / fp32["model"]["abs_rel"] - 1,
            "median_scaling": fp32["median_scaling"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model trained on the synthetic streets")
    parser.add_argument("--data", required=True, help="its held-out frames (with depth)")
    parser.add_argument("--calibration", required=True, help="training images to calibrate int8 on")
    parser.add_argument("--kitti-checkpoint", help="a model trained on KITTI drive 0005")
    args = parser.parse_args()
    result: dict = {"kept_fp32": list(KEEP_FP32), "target_change": 0.02, "machine": machine()}
    result["synthetic"] = compare(Path(args.checkpoint), Path(args.calibration), lambda m: evaluate(m, args.data))
    result["synthetic"].update(checkpoint=args.checkpoint, data=args.data)
    if args.kitti_checkpoint and (SHARED / "kitti_raw_mini").is_dir():
        from selfdepth.data.kitti import KittiDataset, drive_split

        tmp = Path(tempfile.mkdtemp())
        drive = "2011_09_26/2011_09_26_drive_0002_sync"
        split = drive_split(SHARED / "kitti_raw_mini", drive, tmp / "test.txt", "l", 0, with_lidar=True)
        model = load(args.kitti_checkpoint)
        data = KittiDataset(SHARED / "kitti_raw_mini", split, model.height, model.width, ground_truth=True)
        calibration = SHARED / "kitti_raw_0005" / "2011_09_26" / "2011_09_26_drive_0005_sync" / "image_02" / "data"
        result["kitti"] = compare(Path(args.kitti_checkpoint), calibration, lambda m: evaluate(m, data, garg=True))
        result["kitti"]["checkpoint"] = args.kitti_checkpoint
    save_json(ROOT / "benchmarks" / "results" / "int8_accuracy.json", result)
    for part in ("synthetic", "kitti"):
        if part in result:
            r = result[part]
            print(f"{part}: AbsRel fp32 {r['fp32']['abs_rel']:.4f}, int8 {r['int8']['abs_rel']:.4f} "
                  f"({100 * r['abs_rel_change']:+.2f}%)")


if __name__ == "__main__":
    main()
