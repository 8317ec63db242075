"""Does int8 keep the depth, and what does each choice of what to quantise cost and buy?

    python benchmarks/int8_accuracy.py --checkpoint demo_out/run/checkpoints/last.ckpt --data data/demo_test \
        --calibration data/demo_train [--kitti-checkpoint KITTI.ckpt]

Held-out AbsRel of a model exported in fp32 and in several int8 variants, side by side:
``int8`` (the export's defaults: every convolution but the disparity head, plus the decoder's pads
and concatenations), ``int8_every_conv`` (the head too), ``int8_head_and_first_conv_fp32``
and ``int8_convolutions_only`` (the first convolution and the head in fp32, only convolutions quantised:
the defaults before 2026-12-03). The synthetic part scores the ``make demo`` model on its held-out
streets (metres); the KITTI part, when a KITTI-trained checkpoint is given and ../shared is present,
scores it on drive 0002's lidar (Garg crop, 80 m), calibrated on drive 0005's frames. Each variant's
speed: ms per 640x192 frame with two single-thread onnxruntime passes side by side (what live video
runs), median of 8 interleaved rounds of 16 frames; run it alone. Writes benchmarks/results/int8_accuracy.json.
Target: int8 within 2% (relative) of fp32.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from selfdepth.evaluate import evaluate
from selfdepth.export import KEEP_FP32, QUANTISED_OPS, export_onnx
from selfdepth.inference import OnnxRunner, load
from selfdepth.io import save_json

from _checkpoints import untrained_checkpoint
from _machine import machine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
# name -> (convolutions left in fp32, operator types quantised)
VARIANTS = {
    "int8": (KEEP_FP32, QUANTISED_OPS),
    "int8_every_conv": ((), QUANTISED_OPS),
    "int8_head_and_first_conv_fp32": (("/encoder/conv1/", "/dispconv."), QUANTISED_OPS),
    "int8_convolutions_only": (("/encoder/conv1/", "/dispconv."), ("Conv",)),
}


def export_all(checkpoint: Path, calibration: Path, folder: Path) -> dict[str, Path]:
    """The fp32 export and each int8 variant of ``checkpoint``, written to ``folder``."""
    paths = {"fp32": export_onnx(checkpoint, folder / "fp32.onnx")}
    for name, (keep, ops) in VARIANTS.items():
        paths[name] = export_onnx(checkpoint, folder / f"{name}.onnx", int8=True, calibration=calibration,
                                  keep_fp32=keep, op_types=ops)
    return paths


def compare(checkpoint: Path, calibration: Path, score) -> dict:
    """Metrics of the fp32 export and of each int8 variant, and each variant's AbsRel change."""
    with tempfile.TemporaryDirectory() as tmp:
        result = {name: score(load(path)) for name, path in export_all(checkpoint, calibration, Path(tmp)).items()}
    out = {name: r["model"] for name, r in result.items()}
    for name in VARIANTS:
        out[f"abs_rel_change_{name}"] = out[name]["abs_rel"] / out["fp32"]["abs_rel"] - 1
    out["median_scaling"] = result["fp32"]["median_scaling"]
    return out


def two_pass_seconds(sessions: list, x: np.ndarray, frames: int = 16) -> float:
    """Seconds per frame with two single-thread onnxruntime sessions running side by side (live video's set-up)."""
    def loop(session) -> None:
        for _ in range(frames // 2):
            session.run(None, {"image": x})

    threads = [threading.Thread(target=loop, args=(s,)) for s in sessions]
    start = time.perf_counter()
    [t.start() for t in threads]
    [t.join() for t in threads]
    return (time.perf_counter() - start) / frames


def speeds(calibration: Path, height: int = 192, width: int = 640, rounds: int = 8) -> dict[str, float]:
    """Median ms per frame of the fp32 export and of each int8 variant (untrained weights: the same arithmetic),
    timed in interleaved rounds so that the machine's drift hits them alike."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_all(untrained_checkpoint(Path(tmp) / "m.ckpt", height, width), calibration, Path(tmp))
        sessions = {name: [OnnxRunner(path, threads=1).session for _ in range(2)] for name, path in paths.items()}
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for name, pair in sessions.items():
        two_pass_seconds(pair, x, 2)  # warm-up
    names = list(sessions)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # a different one goes first each round
            times[name].append(two_pass_seconds(sessions[name], x))
    return {name: round(1000 * float(np.median(t)), 1) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model trained on the synthetic streets")
    parser.add_argument("--data", required=True, help="its held-out frames (with depth)")
    parser.add_argument("--calibration", required=True, help="training images to calibrate int8 on")
    parser.add_argument("--kitti-checkpoint", help="a model trained on KITTI drive 0005")
    args = parser.parse_args()
    result: dict = {"variants": {k: {"kept_fp32": list(keep), "quantised_ops": list(ops)}
                                 for k, (keep, ops) in VARIANTS.items()},
                    "target_change": 0.02, "machine": machine()}
    result["ms_per_frame_640x192_two_single_thread_passes"] = speeds(Path(args.calibration))
    print(result["ms_per_frame_640x192_two_single_thread_passes"], flush=True)
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
            changes = ", ".join(f"{k} {r[k]['abs_rel']:.4f} ({100 * r[f'abs_rel_change_{k}']:+.2f}%)" for k in VARIANTS)
            print(f"{part}: AbsRel fp32 {r['fp32']['abs_rel']:.4f}; {changes}")


if __name__ == "__main__":
    main()
