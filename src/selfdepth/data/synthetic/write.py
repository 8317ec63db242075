"""Writing rendered scenes in the folder layout that ``FolderDataset`` reads, in parallel, and a contact sheet."""

from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from selfdepth.data.synthetic.masks import frame_masks
from selfdepth.data.synthetic.render import View, render_frame_views
from selfdepth.data.synthetic.scene import (
    BASELINE,
    Camera,
    Outliers,
    Scene,
    check_size,
    kitti_like_intrinsics,
    make_scene,
)
from selfdepth.io import load_image, load_json, save_image, save_json, save_npy

# 2: adds masks/ (region bits); 3: occlusion brackets the depth around the projection. render_if_missing
# re-renders a folder written with another layout.
LAYOUT_VERSION = 3

__all__ = ["LAYOUT_VERSION", "write_scene", "SynthSummary", "synthesize", "render_if_missing", "contact_sheet"]


def _without_image(view: View) -> View:
    return dataclasses.replace(view, image=np.empty(0, dtype=np.float32))


def write_scene(scene: Scene, out: Path, camera: Camera, baseline: float = BASELINE) -> None:
    """Write a rendered scene in the folder layout that ``FolderDataset`` reads (see README)."""
    for sub in ("left", "right", "depth", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    views = []
    for i in range(len(scene.poses)):
        left, right = render_frame_views(scene, i, camera, baseline)
        save_image(out / "left" / f"{i:06d}.png", left.image, compress_level=1)  # fast; sizes barely differ
        save_image(out / "right" / f"{i:06d}.png", right.image, compress_level=1)
        save_npy(out / "depth" / f"{i:06d}.npy", left.depth)
        views.append((_without_image(left), _without_image(right)))  # the masks need every frame's depth
    for i in range(len(scene.poses)):
        save_image(out / "masks" / f"{i:06d}.png", frame_masks(scene, views, i, camera, baseline), compress_level=9)
    np.savetxt(out / "poses.txt", scene.poses[:, :3, :].reshape(len(scene.poses), 12), fmt="%.9f")
    K = camera.K
    calib = {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}
    calib.update(width=camera.width, height=camera.height, baseline=baseline)
    save_json(out / "intrinsics.json", calib)


@dataclass(frozen=True)
class SynthSummary:
    """What ``synthesize`` wrote and how fast."""

    scenes: int
    frames: int
    seconds: float
    out: str


def _render_scene(job: tuple[int, int, Path, Camera, Outliers | None, str]) -> None:
    seed, frames, out, camera, outliers, streets = job
    write_scene(make_scene(seed, frames, outliers, streets), out, camera)


def synthesize(
    out: str | Path,
    scenes: int,
    frames_per_scene: int,
    width: int = 416,
    height: int = 128,
    seed: int = 0,
    workers: int = 1,
    sheet: bool = True,
    outliers: Outliers | None = None,
    streets: str = "city",
) -> SynthSummary:
    """Render ``scenes`` streets of ``frames_per_scene`` frames into ``out``.

    Scene ``i`` uses seed ``seed * 100003 + i``, so different ``seed`` values give
    disjoint scene sets (use one seed for training and another for testing).
    The output does not depend on ``workers``. ``outliers`` adds moving cars,
    mirrors and exposure changes to the same streets. ``streets`` is the layout (scene.make_scene).
    """
    check_size(width, height)
    if scenes < 1 or frames_per_scene < 3:
        raise ValueError(f"need scenes >= 1 and frames_per_scene >= 3, got {scenes} and {frames_per_scene}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    camera = Camera(kitti_like_intrinsics(width, height), width, height)
    jobs = [(seed * 100003 + i, frames_per_scene, out / f"scene_{i:04d}", camera, outliers, streets)
            for i in range(scenes)]
    start = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_render_scene, jobs, chunksize=1)
    else:
        for job in jobs:
            _render_scene(job)
    seconds = time.perf_counter() - start
    summary = SynthSummary(scenes, scenes * frames_per_scene, seconds, str(out))
    meta = asdict(summary) | {"seed": seed, "width": width, "height": height, "layout": LAYOUT_VERSION}
    if outliers is not None and outliers.any:
        meta["outliers"] = asdict(outliers)
    if streets != "city":
        meta["streets"] = streets
    meta.pop("seconds"), meta.pop("out")  # keep the folder byte-identical between runs and places
    save_json(out / "synth.json", meta)
    if sheet:
        contact_sheet(out, out / "contact_sheet.png")
    return summary


def render_if_missing(
    root: str | Path, scenes: int, frames: int, width: int, height: int, seed: int, outliers: Outliers | None = None
) -> None:
    """Render a synthetic set unless ``root`` already holds exactly this one (per its synth.json)."""
    root = Path(root)
    meta = root / "synth.json"
    want = {"scenes": scenes, "frames": scenes * frames, "seed": seed, "width": width, "height": height,
            "layout": LAYOUT_VERSION}
    if outliers is not None and outliers.any:
        want["outliers"] = asdict(outliers)
    if meta.is_file() and load_json(meta) == want:
        return
    shutil.rmtree(root, ignore_errors=True)
    s = synthesize(root, scenes, frames, width, height, seed, workers=2, outliers=outliers)
    print(f"rendered {s.frames} frames to {root} in {s.seconds:.0f} s")


def contact_sheet(root: str | Path, path: str | Path, rows: int = 8) -> Path:
    """Save a picture of (left image | colour-mapped depth) for the first frames of a folder data set."""
    from matplotlib import colormaps

    root = Path(root)
    scenes = sorted(p.parent for p in root.glob("*/intrinsics.json"))[:rows]
    if not scenes:
        raise FileNotFoundError(f"no scenes (folders with intrinsics.json) under {root}")
    lines = []
    for scene in scenes:
        first = sorted((scene / "left").glob("*.png"))[len(list((scene / "left").glob("*.png"))) // 2]
        image = load_image(first).astype(np.float32) / 255
        depth = np.load(scene / "depth" / (first.stem + ".npy"), allow_pickle=False)
        disp = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 0.0)
        disp = disp / max(np.percentile(disp, 99), 1e-6)
        lines.append(np.concatenate([image, colormaps["magma"](np.clip(disp, 0, 1))[..., :3]], axis=1))
    sheet = np.concatenate(lines, axis=0)
    return save_image(path, sheet)
