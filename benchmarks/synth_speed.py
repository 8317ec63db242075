"""Rendering speed of the synthetic street renderer (target: >= 20 frames/s at 416x128).

A frame is left image + right image + left depth. Reports one process rendering
frames in memory, and ``synthesize`` writing PNG/NPY to disk with 1 and 2 worker
processes. Writes benchmarks/results/synth_speed.json.

    python benchmarks/synth_speed.py
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from selfdepth.data.synthetic import Camera, kitti_like_intrinsics, make_scene, render_frame, synthesize

WIDTH, HEIGHT = 416, 128


def main() -> None:
    camera = Camera(kitti_like_intrinsics(WIDTH, HEIGHT), WIDTH, HEIGHT)
    scenes = [make_scene(100 + i, 20) for i in range(4)]
    render_frame(scenes[0], 0, camera)  # warm caches
    start = time.perf_counter()
    frames = 0
    for scene in scenes:
        for i in range(len(scene.poses)):
            render_frame(scene, i, camera)
            frames += 1
    in_memory = frames / (time.perf_counter() - start)

    to_disk = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            summary = synthesize(tmp, scenes=8, frames_per_scene=20, width=WIDTH, height=HEIGHT, seed=1, workers=workers, sheet=False)
        to_disk[workers] = summary.frames / summary.seconds

    result = {
        "size": f"{WIDTH}x{HEIGHT}",
        "frame": "left + right + depth",
        "render_fps_1_process_in_memory": round(in_memory, 1),
        "synthesize_fps_to_disk_1_worker": round(to_disk[1], 1),
        "synthesize_fps_to_disk_2_workers": round(to_disk[2], 1),
        "target_fps": 20,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    out = Path(__file__).parent / "results" / "synth_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
