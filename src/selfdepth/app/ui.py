"""The Gradio page: tabs wired to the functions in ``app.core``.

Privacy: analytics are off, the theme uses system fonts (the default theme
fetches Google Fonts), server-side rendering through Node is off and there are
no share links, so the page asks nothing of any host but the app's own (the
browser test checks every request).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no usage reports

import gradio as gr  # noqa: E402 - after the environment above

from selfdepth.app.core import (  # noqa: E402
    AppLimits, DepthResult, LiveMeter, WorkDir, colour_bar, depth_for_upload, depth_mesh, depth_video, intrinsics_from,
    measure, model_info, save_glb,
)
from selfdepth.inference import DepthModel  # noqa: E402

__all__ = ["build", "theme"]



def theme():
    """Gradio's default look with local fonts only (its default fetches Google Fonts)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


@dataclass
class _Session:
    """One browser session's last result (Gradio keeps a copy per session)."""

    result: DepthResult | None = None
    clicks: list[tuple[int, int]] = field(default_factory=list)


def build(model: DepthModel, source: str = "model", backend: str = "torch", limits: AppLimits | None = None,
          examples: list[Path] | None = None, work: WorkDir | None = None) -> gr.Blocks:
    """The app as a ``gradio.Blocks``: ``build(model).launch(theme=theme())``, or mount it in another app.

    Args:
        model: the depth model every tab uses.
        source: the checkpoint or ONNX file it came from (shown in the model info).
        backend: what runs it, for the model info.
        limits: request limits (upload size, image size, video length).
        examples: image files offered as examples in the image tab.
        work: the folder for the files the app writes (a fresh temporary one by default).
    """
    limits = limits or AppLimits()
    work = work or WorkDir()
    meter = LiveMeter(model)
    # Warm up before the first visitor: the first prediction builds the TorchScript copy, the
    # first colour bar imports matplotlib; both take seconds on 2 cores.
    model.predict(np.zeros((model.height, model.width, 3), np.uint8))
    colour_bar(model, 1.0)

    def run_image(path: str | None, session: _Session):
        if not path:
            raise gr.Error("Upload an image first.")
        try:
            result = depth_for_upload(model, path, work.new(), limits)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        session = _Session(result)
        image = result.prediction.image
        notes = "\n".join(result.notes) or ("Depth in metres." if model.metric else "")
        return ((image, result.colour), colour_bar(model, result.vmax), [str(f) for f in result.files],
                result.colour, measure(result.prediction, result.prediction.intrinsics, [], model.metric),
                notes, session)

    def run_3d(session: _Session, max_depth: float, remove_sky: bool, stride: int, mode: str, fov: float,
               fx: float, fy: float, cx: float, cy: float, file: str | None):
        if session is None or session.result is None:
            raise gr.Error("Compute depth for an image in the Image tab first.")
        prediction = session.result.prediction
        h, w = prediction.depth.shape
        try:
            k = intrinsics_from(w, h, mode, fov, (fx, fy, cx, cy), file)
            stride = max(int(stride), int(np.ceil(np.sqrt(h * w / limits.max_mesh_vertices))))
            mesh = depth_mesh(prediction, k, stride, max_depth if max_depth > 0 else None, remove_sky)
            out = work.new()
            glb = save_glb(out / "scene.glb", *mesh)
            ply = prediction.points(k, max_depth if max_depth > 0 else None, remove_sky).save_ply(out / "points.ply")
        except ValueError as err:
            raise gr.Error(str(err)) from None
        prediction.intrinsics = k  # measuring uses the same camera
        return str(glb), [str(glb), str(ply)], f"{len(mesh[0])} vertices, {len(mesh[1])} triangles, stride {stride}"

    def click(session: _Session, event: gr.SelectData):
        if session is None or session.result is None:
            raise gr.Error("Compute depth for an image first.")
        x, y = (int(v) for v in event.index)
        session.clicks = (session.clicks + [(x, y)])[-2:]
        prediction = session.result.prediction
        try:
            return measure(prediction, prediction.intrinsics, session.clicks, model.metric), session
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def run_video(path: str | None, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        if not path:
            raise gr.Error("Upload a video first.")
        try:
            return str(depth_video(model, path, work.new(), limits))
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def run_live(frame: np.ndarray | None):
        if frame is None:
            return None, ""
        try:
            return meter(frame)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    with gr.Blocks(title="selfdepth", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        session = gr.State(_Session())
        gr.Markdown("## selfdepth: depth from one colour image\n" + model_info(model, source, backend))
        with gr.Tab("Image", id="image"):
            with gr.Row():
                upload = gr.File(label="Image (PNG or JPEG)", file_types=["image"], type="filepath",
                                 elem_id="upload")
                run = gr.Button("Depth", variant="primary", elem_id="run-depth")
            if examples:
                gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples")
            slider = gr.ImageSlider(label="Input | depth", type="numpy", elem_id="slider")
            bar = gr.Image(label="Colour map", show_label=False, height=70, elem_id="colour-bar", buttons=["download"])
            notes = gr.Markdown(elem_id="notes")
            downloads = gr.File(label="Downloads: 16-bit PNG (mm), .npy, coloured PLY", file_count="multiple")
            gr.Markdown("**Measure**: click a point of the depth map, then another. Distances use the camera of "
                        "the 3-D tab (a 60° horizontal field of view until you make a 3-D view with your own).")
            depth_view = gr.Image(label="Depth (click to measure)", interactive=False, elem_id="depth-view",
                                  buttons=["download", "fullscreen"])
            readout = gr.Textbox(label="Measurement", lines=2, elem_id="readout")
        with gr.Tab("3-D", id="3d"):
            with gr.Row():
                max_depth = gr.Slider(0, 100, value=50, step=1, label="Max depth (0: no limit)")
                remove_sky = gr.Checkbox(value=True, label="Remove sky")
                stride = gr.Slider(1, 8, value=2, step=1, label="Point spacing (pixels)")
            with gr.Row():
                mode = gr.Radio(["fov", "pixels", "file"], value="fov", label="Intrinsics from")
                fov = gr.Number(60, label="Horizontal field of view (degrees)")
                fx, fy = gr.Number(0, label="fx"), gr.Number(0, label="fy")
                cx, cy = gr.Number(0, label="cx"), gr.Number(0, label="cy")
                k_file = gr.File(label="Intrinsics YAML/JSON", file_types=[".yaml", ".yml", ".json"], type="filepath")
            make_3d = gr.Button("Make 3-D", variant="primary", elem_id="make-3d")
            # Seen from behind the camera that took the photo (babylon's alpha 90, beta 90: on the +z axis).
            viewer = gr.Model3D(label="Scene (drag to turn, scroll to zoom)", clear_color=(0.1, 0.1, 0.12, 1.0),
                                camera_position=(90, 90, None), height=480, elem_id="viewer")
            mesh_info = gr.Markdown()
            mesh_files = gr.File(label="Downloads: mesh (.glb), points (.ply)", file_count="multiple")
        with gr.Tab("Video", id="video"):
            video_in = gr.Video(label=f"Video (at most {limits.max_video_seconds:g} s)", sources=["upload"])
            video_run = gr.Button("Depth video", variant="primary")
            video_out = gr.Video(label="Input | depth")
        with gr.Tab("Live", id="live"):
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam")
                live_out = gr.Image(label="Depth", elem_id="live-depth", buttons=["fullscreen"])
            fps = gr.Textbox(label="Speed", elem_id="fps")

        run.click(run_image, [upload, session], [slider, bar, downloads, depth_view, readout, notes, session])
        depth_view.select(click, [session], [readout, session])
        make_3d.click(run_3d, [session, max_depth, remove_sky, stride, mode, fov, fx, fy, cx, cy, k_file],
                      [viewer, mesh_files, mesh_info])
        video_run.click(run_video, [video_in], [video_out])
        camera.stream(run_live, [camera], [live_out, fps], stream_every=0.1, concurrency_limit=1)
    app.queue(default_concurrency_limit=1, max_size=32)  # 2 cores: one request at a time, the rest wait
    return app
