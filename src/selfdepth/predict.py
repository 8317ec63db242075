"""``selfdepth predict``: depth for images, folders of images and videos, written to files.

For an image ``<name>``: ``<name>_depth.npy`` (float32), ``<name>_depth.png`` (16-bit,
millimetres) and ``<name>_disp.png`` (magma); for a video, ``<name>_depth.mp4``.
The model itself (``DepthModel``, ``load``) lives in ``selfdepth.inference``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfdepth.inference import DepthModel, colorize, load
from selfdepth.io import IMAGE_SUFFIXES, load_image, save_depth_png, save_image, save_npy
from selfdepth.live import VIDEO_SUFFIXES, run_live

__all__ = ["predict_paths", "predict_video", "VIDEO_SUFFIXES"]


def _collect(inputs: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        elif item.exists():
            files.append(item)
        else:
            raise FileNotFoundError(f"input not found: {item}")
    if not files:
        raise FileNotFoundError(f"no images or videos found in {', '.join(map(str, inputs))}")
    return files


def predict_paths(
    inputs: list[str | Path],
    checkpoint: str | Path,
    out_dir: str | Path,
    batch_size: int = 4,
    flip_tta: bool = False,
    backend: str = "torch",
    progress: bool = True,
    scale: float | None = None,
) -> list[Path]:
    """Predict images, folders of images and video files.

    For an image ``<name>``: ``<name>_depth.npy`` (float32), ``<name>_depth.png`` (16-bit,
    millimetres) and ``<name>_disp.png`` (magma). For a video: ``<name>_depth.mp4``, the
    input and its colour-mapped disparity side by side. ``scale`` multiplies the depth
    (a mono model's known scale). Returns the files written.
    """
    from tqdm import tqdm

    model = load(checkpoint, backend)
    files = _collect(inputs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f not in videos]
    written: list[Path] = []
    bar = tqdm(total=len(images), unit="image", disable=not progress or not images)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        arrays = [load_image(path) for path in chunk]
        groups: dict[tuple[int, ...], list[int]] = {}  # one network pass per image size
        for i, array in enumerate(arrays):
            groups.setdefault(array.shape, []).append(i)
        for members in groups.values():
            preds = model.predict_batch([arrays[i] for i in members], flip_tta=flip_tta)
            for i, pred in zip(members, preds):
                if scale:
                    pred.depth = pred.depth * scale
                stem = out / chunk[i].stem
                save_npy(f"{stem}_depth.npy", pred.depth.astype(np.float32))
                save_depth_png(f"{stem}_depth.png", pred.depth)
                save_image(f"{stem}_disp.png", colorize(pred.disparity))
                written.append(Path(f"{stem}_depth.npy"))
        bar.update(len(chunk))
    bar.close()
    for video in videos:
        written.append(predict_video(model, video, out / f"{video.stem}_depth.mp4", batch_size, flip_tta, progress))
    return written


def predict_video(
    model: DepthModel, video: Path, out: Path, batch_size: int = 4, flip_tta: bool = False, progress: bool = True
) -> Path:
    """Write ``out``: each frame of ``video`` beside its colour-mapped disparity (the ``live`` pipeline)."""
    return run_live(model, video, out, batch_size, progress=progress, flip_tta=flip_tta).out
