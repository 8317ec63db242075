"""``selfdepth app``: a local web page from a photo to depth, a 3-D view and measurements.

    from selfdepth.app import build
    build(selfdepth.load("model.ckpt")).launch()

Needs the ``app`` extra: ``pip install 'selfdepth[app]'`` (Gradio, trimesh).
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

from selfdepth.app.core import AppLimits, WorkDir, host_warning
from selfdepth.app.ui import build, theme

__all__ = ["build", "serve", "AppLimits", "example_images"]


def example_images(out: Path, width: int = 640, height: int = 192, shared: Path = Path("../shared/data")) -> list[Path]:
    """A synthetic street rendered now, and the first KITTI frames of ``shared`` when present."""
    from selfdepth.data.synthetic.render import render_frame
    from selfdepth.data.synthetic.scene import Camera, kitti_like_intrinsics, make_scene
    from selfdepth.io import save_image

    camera = Camera(kitti_like_intrinsics(width, height), width, height)
    left, _, _ = render_frame(make_scene(seed=11, frames=1), 0, camera)
    paths = [save_image(out / "synthetic_street.png", (left * 255).round().astype("uint8"))]
    kitti = shared / "kitti_raw_mini" / "2011_09_26" / "2011_09_26_drive_0002_sync" / "image_02" / "data"
    if kitti.is_dir():
        paths += sorted(p.resolve() for p in kitti.glob("*.png"))[:2]
    return paths


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 7860, backend: str = "auto",
          limits: AppLimits | None = None, block: bool = True):
    """Load a model and serve the app; returns the running Blocks when ``block`` is False.

    Args:
        backend: ``torch``, ``torch-bf16``, ``onnxruntime``, or ``auto``: the fastest path on this CPU
            (``export.load_fastest``: torch-bf16 where the CPU has native bf16, else onnxruntime,
            exporting a checkpoint to ONNX at start-up).
    """
    from selfdepth.export import load_fastest

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"model not found: {checkpoint}")
    work = WorkDir()
    atexit.register(work.close)  # the exported model, examples and every result go with the process
    model, backend = load_fastest(checkpoint, backend, work.root)
    warning = host_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    app = build(model, str(checkpoint), backend, limits, example_images(work.new()), work)
    limits = limits or AppLimits()
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, theme=theme(),
               max_file_size=int(limits.max_upload_mb * 1e6), prevent_thread_lock=not block, quiet=not block,
               show_error=True, footer_links=[])
    return app
