"""The app in a real browser: time from clicking "Depth" to the depth image, and a screenshot of each tab.

    python benchmarks/app.py [--checkpoint demo_out/run/checkpoints/last.ckpt] [--repeats 3]

Timing: a 640x192 network (the issue's size) behind the app with its default
backend (onnxruntime, exported at start-up), a 1242x375 KITTI frame uploaded
(a rendered street when ../shared is absent), measured in Chromium by the same
code path as the browser test (``selfdepth.app.browser.drive``). The weights do
not change the arithmetic, so the timing model is untrained unless the given
checkpoint is itself 640x192. Screenshots: the given (trained) checkpoint on the
app's synthetic street example, written to docs/images/app_<tab>.png.
Run it alone: a timing benchmark must not share the 2 cores with another job.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from _checkpoints import untrained_checkpoint
from _machine import machine

ROOT = Path(__file__).resolve().parents[1]
KITTI_FRAME = ROOT / ".." / "shared" / "data" / "kitti_raw_mini" / "2011_09_26" / "2011_09_26_drive_0002_sync" / \
    "image_02" / "data" / "0000000003.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def walk(checkpoint: Path, image: Path, shots: Path):  # -> selfdepth.app.browser.BrowserRun
    from selfdepth.app import serve
    from selfdepth.app.browser import drive

    bad = shots / "not_an_image.png"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not an image")
    port = free_port()
    app = serve(checkpoint, port=port, backend="auto", block=False)
    try:
        return drive(f"http://127.0.0.1:{port}/", image, bad, shots)
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "demo_out" / "run" / "checkpoints" / "last.ckpt"),
                        help="a trained model for the screenshots (default: make demo's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "app.json"))
    parser.add_argument("--images", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    from selfdepth.app import example_images
    from selfdepth.inference import read_checkpoint
    from selfdepth.io import save_json

    work = Path(tempfile.mkdtemp(prefix="app-bench-"))
    trained = Path(args.checkpoint)
    if not trained.is_file():
        raise SystemExit(f"{trained} not found: run make demo first, or pass --checkpoint")
    data = read_checkpoint(trained)["hyper_parameters"]["config"]["data"]
    timing = trained if (data["height"], data["width"]) == (192, 640) else untrained_checkpoint(work / "t.ckpt", 192, 640)
    if KITTI_FRAME.is_file():
        upload = KITTI_FRAME
    else:  # a rendered street at KITTI's image size
        upload = example_images(work / "street", 1242, 375, shared=work / "none")[0]

    runs = [walk(timing, upload, work / f"shots{i}") for i in range(args.repeats)]  # --repeats 0: screenshots only
    seconds = [r.upload_to_depth_s for r in runs]
    shown = walk(trained, example_images(work / "example")[0], work / "shots")
    images = Path(args.images)
    images.mkdir(parents=True, exist_ok=True)
    for name, shot in shown.screenshots.items():
        shutil.copy(shot, images / f"app_{name}.png")
    result = {
        "what": "seconds from clicking Depth to the depth image in Chromium (upload already on the server)",
        "network_size": "640x192", "upload": f"{upload.name} ({'KITTI 1242x375' if upload == KITTI_FRAME else 'rendered'})",
        "backend": "onnxruntime (auto: exported at start-up)", "timing_weights": "trained" if timing == trained else
        "untrained (same arithmetic)", "upload_to_depth_s": seconds, "median_s": statistics.median(seconds) if seconds else None,
        "screenshots_from": str(trained.relative_to(ROOT) if trained.is_relative_to(ROOT) else trained),
        "canvas_drawn": shown.canvas_drawn, "machine": machine(), "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    if seconds:
        save_json(args.out, result)
    print(f"upload -> depth: {seconds} s (median {result['median_s']}); screenshots in {images}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
