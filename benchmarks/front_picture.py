"""The README's picture: a held-out synthetic street, its predicted depth, and the point cloud in 3-D.

    .venv/bin/python benchmarks/front_picture.py \
        --checkpoint runs/real_streets/real_streets_stereo_scratch/run/checkpoints/last.ckpt

Renders one varied street the training never saw (its own seed), predicts depth, turns it into a
coloured point cloud with the renderer's intrinsics, and draws the cloud from a virtual camera 4 m
higher and 10 m behind, looking down 12 degrees (a z-buffered splat: the nearest point wins each pixel).
Writes ``docs/images/front.png`` (input | depth | 3-D view).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from selfdepth.data.synthetic import Camera, kitti_like_intrinsics, make_scene, render_frame
from selfdepth.inference import DepthModel, colorize
from selfdepth.io import Intrinsics, save_image

ROOT = Path(__file__).resolve().parents[1]


def novel_view(xyz: np.ndarray, rgb: np.ndarray, K: np.ndarray, width: int, height: int,
               up: float = 4.0, back: float = 10.0, pitch_deg: float = 12.0) -> np.ndarray:
    """(N, 3) camera-frame points (x right, y down, z forward) with (N, 3) uint8 colours, seen from a
    camera ``up`` metres higher and ``back`` metres behind, pitched down: an (H, W, 3) picture."""
    pitch = np.deg2rad(pitch_deg)
    rotation = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    points = (xyz - np.array([0.0, -up, -back])) @ rotation.T  # into the virtual camera's frame
    front = points[:, 2] > 0.5
    points, colours = points[front], rgb[front]
    u = np.round(K[0, 0] * points[:, 0] / points[:, 2] + K[0, 2]).astype(int)
    v = np.round(K[1, 1] * points[:, 1] / points[:, 2] + K[1, 2]).astype(int)
    inside = (u >= 0) & (u < width - 1) & (v >= 0) & (v < height - 1)
    u, v, z, colours = u[inside], v[inside], points[inside, 2], colours[inside]
    picture = np.full((height, width, 3), 24, np.uint8)
    order = np.argsort(-z)  # far first, so nearer points overwrite them
    for du in (0, 1):  # 2x2 splats close the gaps between neighbouring points seen from above
        for dv in (0, 1):
            picture[v[order] + dv, u[order] + du] = colours[order]
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--seed", type=int, default=424242, help="the street (not a training seed)")
    parser.add_argument("--frame", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "front.png"))
    args = parser.parse_args()
    model = DepthModel.load(args.checkpoint)
    width, height = 640, 192
    K = kitti_like_intrinsics(width, height)
    scene = make_scene(args.seed, args.frame + 1, streets="varied")
    image = render_frame(scene, args.frame, Camera(K, width, height))[0]  # (H, W, 3) float in [0, 1]
    image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    intrinsics = Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height)
    prediction = model.predict(image, intrinsics)
    cloud = prediction.points(max_depth=60)
    view = novel_view(cloud.xyz, cloud.rgb, K, width, height)
    picture = np.concatenate([image, colorize(prediction.disparity), view], axis=1)
    print(f"wrote {save_image(Path(args.out), picture)}: {len(cloud)} points, "
          f"{'metric' if model.metric else 'relative'} depth")


if __name__ == "__main__":
    main()
