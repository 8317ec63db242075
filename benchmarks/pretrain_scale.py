"""Is a pre-trained model's metric scale right on the rendered streets it trained on? (issue 28 diagnostic)

A model trained with a stereo baseline reports metres as network units times ``baseline / 0.1``
(5.4 m per unit on KITTI's 0.54 m). This measures what its depth actually is in metres per unit, the
median over rendered frames (every 6th scene of ``data/synth_varied``, every frame) of
``true depth / predicted units`` on pixels with depth, beside the factor the model assumes. Equal:
the scale it learned is the one its stereo warps use; apart: something pulled it away (while the
supervised depth term compared network units with metres, until 2026-12-06, it pulled pre-training
to about 1 m per unit).

    .venv/bin/python benchmarks/pretrain_scale.py runs/pretrain60/checkpoints/last.ckpt ...

Writes ``benchmarks/results/pretrain_scale.json`` (a record per checkpoint, keyed by its run folder;
name every checkpoint to keep, a few seconds each).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from _machine import machine

from selfdepth.data.folder import find_scenes
from selfdepth.inference import DepthModel
from selfdepth.io import load_depth, load_image, save_json

ROOT = Path(__file__).resolve().parents[1]
RENDERED = ROOT / "data" / "synth_varied"
OUT = ROOT / "benchmarks" / "results" / "pretrain_scale.json"


def metres_per_unit(model: DepthModel, scenes: list[Path]) -> list[float]:
    """Per frame of ``scenes``: median of true depth (m) over predicted depth (network units)."""
    ratios = []
    for scene in scenes:
        for frame in sorted((scene / "left").glob("*.png")):
            image = torch.from_numpy(load_image(frame)).permute(2, 0, 1)[None].float() / 255
            units = 1.0 / model.disparity(image)[0, 0].numpy()  # (H, W) network units
            truth = load_depth(scene / "depth" / f"{frame.stem}.npy")  # (H, W) metres, 0 = none (sky)
            valid = truth > 0
            ratios.append(float(np.median(truth[valid] / units[valid])))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    if not RENDERED.is_dir():
        raise SystemExit(f"{RENDERED} not found: render it first (configs/pretrain_synthetic.yaml says how)")
    scenes = find_scenes(RENDERED)[::6]
    records = {}
    for path in args.checkpoints:
        model = DepthModel.load(path)
        ratios = metres_per_unit(model, scenes)
        assumed = model.scale  # metres per unit the model reports with (None: a mono model, no metric scale)
        records[Path(path).parent.parent.name] = {
            "checkpoint": path, "frames": len(ratios), "metres_per_unit": float(np.median(ratios)),
            "metres_per_unit_p10_p90": [float(np.percentile(ratios, 10)), float(np.percentile(ratios, 90))],
            "assumed_metres_per_unit": assumed,
            "assumed_over_learned": assumed / float(np.median(ratios)) if assumed else None,
        }
        print(path, records[Path(path).parent.parent.name])
    save_json(OUT, {"rendered_scenes": [s.name for s in scenes], "machine": machine(), "checkpoints": records})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
