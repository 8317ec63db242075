"""What the app's tabs do, without Gradio: depth for an upload, a 3-D mesh, measuring, video, live frames.

Every function here takes arrays or server-side temporary paths and returns
arrays, text or files written under a work folder the app owns; none uses a
name the user chose as a path. Bad input raises ``ValueError`` with a message
for the page.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfdepth.inference import DepthModel, Prediction, colorize
from selfdepth.io import Intrinsics, load_image, load_intrinsics, save_depth_png, save_npy
from selfdepth.live import SteadyColour
from selfdepth.pointcloud import depth_to_points, intrinsics_for_image, sky_mask

__all__ = [
    "AppLimits", "DepthResult", "WorkDir", "model_info", "depth_for_upload", "depth_ticks", "colour_bar", "intrinsics_from",
    "depth_mesh", "save_glb", "measure", "check_video", "depth_video", "host_warning", "LiveMeter",
]


@dataclass(frozen=True)
class AppLimits:
    """What one request may ask of the server."""

    max_upload_mb: float = 25.0  # refused by the server before our code sees it
    max_pixels: int = 4096 * 4096  # larger images are refused before they are decoded
    max_video_seconds: float = 60.0  # longer videos are refused (2 CPU cores: ~10 frames/s)
    max_mesh_vertices: int = 400_000  # the 3-D view's stride grows until the mesh fits


class WorkDir:
    """The app's own temporary folder: one sub-folder per request, pruned after ``keep_s``, removed on close."""

    def __init__(self, root: Path | None = None, keep_s: float = 3600.0) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="selfdepth-app-", dir=root))
        self.keep_s = keep_s

    def new(self) -> Path:
        """A fresh folder for one request's files (older request folders are deleted first)."""
        now = time.time()
        for old in self.root.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > self.keep_s:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def model_info(model: DepthModel, source: str, backend: str) -> str:
    """Markdown lines: which model, how it was trained, its input size, its units and its backend."""
    units = "metres (stereo-trained)" if model.metric else "relative (mono-trained: scale unknown)"
    return (f"**Model** `{Path(source).name}` · trained {model.config.train.mode} · network input "
            f"{model.width}x{model.height} · depth in {units} · backend {backend}")


@dataclass
class DepthResult:
    """One upload's depth and the files offered for download."""

    prediction: Prediction
    colour: np.ndarray  # (H, W, 3) uint8 colour-mapped disparity
    vmax: float  # the disparity that maps to the top of the colour map
    files: list[Path] = field(default_factory=list)  # 16-bit PNG (mm), .npy, coloured PLY
    notes: list[str] = field(default_factory=list)  # shown beside the result


def depth_for_upload(model: DepthModel, path: str | Path, out: Path, limits: AppLimits,
                     intrinsics: Intrinsics | None = None) -> DepthResult:
    """Depth for one uploaded image file; writes ``depth_mm.png``, ``depth.npy`` and ``points.ply`` to ``out``."""
    path = Path(path)
    if path.stat().st_size > limits.max_upload_mb * 1e6:
        raise ValueError(f"upload is {path.stat().st_size / 1e6:.1f} MB, more than {limits.max_upload_mb:g} MB")
    try:
        image = load_image(path, limits.max_pixels)
    except ValueError as err:  # the message names the server's temporary file: never show that path
        raise ValueError("upload: " + str(err).replace(f"{path}: ", "").replace(str(path), "the file")) from None
    h, w = image.shape[:2]
    if min(h, w) < 16:
        raise ValueError(f"upload: image is {w}x{h}; at least 16 pixels on each side are needed")
    intrinsics = intrinsics or _fov_intrinsics(w, h, 60.0)
    prediction = model.predict(image, intrinsics)
    vmax = float(np.percentile(prediction.disparity, 95)) or 1.0
    files = [save_depth_png(out / "depth_mm.png", prediction.depth), save_npy(out / "depth.npy", prediction.depth),
             prediction.points().save_ply(out / "points.ply")]
    notes = [] if model.metric else ["Mono-trained model: depth is relative (its scale is unknown), not metres."]
    if model.metric and float(prediction.depth.max()) > 65.535:
        notes.append("The 16-bit PNG holds millimetres up to 65.535 m; farther depths are capped there (the .npy is not).")
    return DepthResult(prediction, colorize(prediction.disparity, vmax), vmax, files, notes)


def depth_ticks(scale: float, vmax: float, gap: float = 0.06) -> tuple[list[float], list[float]]:
    """Where depths of 80 m down to 1 m sit on the colour bar of ``colorize(disparity, vmax)``.

    The bar's position t is disparity / vmax and depth is scale / disparity, so depth d
    sits at t = scale / (d vmax). Ticks closer than ``gap`` to the previous one are skipped.

    Returns:
        positions in [0, 1] (increasing) and the depths in metres there.
    """
    positions: list[float] = []
    metres: list[float] = []
    for d in (80, 40, 20, 10, 5, 3, 2, 1.5, 1):  # far to near
        t = scale / (d * vmax)
        if t <= 1 and (not positions or t - positions[-1] >= gap):
            positions.append(t)
            metres.append(d)
    return positions, metres


def colour_bar(model: DepthModel, vmax: float, width: int = 640) -> np.ndarray:
    """(60, width, 3) uint8: the colour map with depth ticks (metres, or 'near'/'far' for a relative model)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(width / 100, 0.6), dpi=100)
    ax.imshow(np.linspace(0, 1, 256)[None], cmap="magma", aspect="auto", extent=(0, 1, 0, 1))
    ax.set_yticks([])
    if model.metric:
        # colour t = disparity / vmax and depth = scale / disparity, so depth d sits at t = scale / (d vmax).
        positions, metres = depth_ticks(model.scale, vmax)
        ax.set_xticks(positions, [f"{d:g} m" for d in metres])
    else:
        ax.set_xticks([0.02, 0.98], ["far", "near (relative depth)"])
    ax.tick_params(labelsize=8, length=2)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.45)
    fig.canvas.draw()
    bar = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return bar


def _fov_intrinsics(width: int, height: int, fov_deg: float) -> Intrinsics:
    """A centred pinhole camera whose horizontal field of view is ``fov_deg``."""
    if not 1.0 <= fov_deg <= 170.0:
        raise ValueError(f"field of view must be between 1 and 170 degrees, got {fov_deg:g}")
    f = width / 2 / math.tan(math.radians(fov_deg) / 2)
    return Intrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width, height)


def intrinsics_from(width: int, height: int, mode: str, fov_deg: float = 60.0,
                    fxfycxcy: tuple[float, float, float, float] | None = None,
                    file: str | Path | None = None) -> Intrinsics:
    """The camera for a ``width x height`` image from a field of view, from fx/fy/cx/cy (pixels), or from a file.

    Args:
        mode: ``"fov"``, ``"pixels"`` or ``"file"`` (YAML/JSON as read by ``io.load_intrinsics``).
    """
    if mode == "fov":
        return _fov_intrinsics(width, height, fov_deg)
    if mode == "pixels":
        if fxfycxcy is None or not all(math.isfinite(v) for v in fxfycxcy):
            raise ValueError("give fx, fy, cx and cy in pixels of the uploaded image")
        fx, fy, cx, cy = fxfycxcy
        if fx <= 0 or fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={fx:g}, fy={fy:g}")
        return Intrinsics(fx, fy, cx, cy, width, height)
    if mode == "file":
        if file is None:
            raise ValueError("choose an intrinsics file (YAML or JSON with fx, fy, cx, cy or K)")
        try:
            loaded = load_intrinsics(file, width, height)
            return intrinsics_for_image(loaded, width, height, "intrinsics file")
        except (ValueError, FileNotFoundError) as err:
            raise ValueError("intrinsics file: " + str(err).split(": ", 1)[-1]) from None
    raise ValueError(f"unknown intrinsics mode {mode!r}; valid: fov, pixels, file")


def depth_mesh(prediction: Prediction, intrinsics: Intrinsics, stride: int = 2, max_depth: float | None = None,
               remove_sky: bool = False, edge_ratio: float = 1.08) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A triangle mesh of the depth map with occlusion edges cut (as ZoeDepth's app does).

    Every ``stride``-th pixel becomes a vertex; each grid cell becomes two triangles,
    dropped when a vertex is invalid or when the triangle spans a depth jump (its
    largest depth over its smallest above ``edge_ratio`` per grid step), which is
    where one surface occludes another.

    Returns:
        vertices (V, 3) float32 in glTF axes (x right, y up, z towards the viewer),
        faces (F, 3) int64, colours (V, 3) uint8.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    depth, image = prediction.depth, prediction.image
    h, w = depth.shape
    cloud = depth_to_points(depth, intrinsics)  # back-projection of every valid pixel, row-major
    keep = np.isfinite(depth) & (depth > 0)
    xyz = np.zeros((h * w, 3), np.float32)
    xyz[keep.ravel()] = cloud.xyz
    if max_depth is not None:
        keep &= depth <= max_depth
    if remove_sky:
        keep &= ~sky_mask(depth)
    rows, cols = np.arange(0, h, stride), np.arange(0, w, stride)
    grid = rows[:, None] * w + cols[None, :]  # (h', w') pixel index of each vertex
    a, b, c, d = grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]  # cell corners, (h'-1, w'-1) each
    faces = []
    for tri in ((a, c, b), (b, c, d)):
        zs = np.stack([depth.ravel()[t] for t in tri])  # (3, h'-1, w'-1)
        ok = np.all(np.stack([keep.ravel()[t] for t in tri]), axis=0)
        ok &= zs.max(0) <= zs.min(0) * edge_ratio ** stride
        faces.append(np.stack([t[ok] for t in tri], axis=1))
    faces = np.concatenate(faces)  # (F, 3) pixel indices
    used, inverse = np.unique(faces, return_inverse=True)
    vertices = xyz[used] * np.array([1, -1, -1], np.float32)  # camera (y down, z forward) -> glTF (y up, z back)
    colours = image.reshape(-1, 3)[used] if image is not None else np.full((len(used), 3), 200, np.uint8)
    return vertices, inverse.reshape(-1, 3), colours


def save_glb(path: Path, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> Path:
    """Write a vertex-coloured binary glTF (via trimesh), which the browser's 3-D viewer shows."""
    import trimesh

    if len(faces) == 0:
        raise ValueError("nothing to show in 3-D: every point was removed (raise the max depth or turn off sky removal)")
    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=np.concatenate([colours, np.full((len(colours), 1), 255, np.uint8)], 1),
                           process=False)
    path.write_bytes(mesh.export(file_type="glb"))
    return path


def measure(prediction: Prediction, intrinsics: Intrinsics, clicks: list[tuple[int, int]], metric: bool) -> str:
    """Text for the last clicks (x, y pixels): the depth at the last one, and the 3-D distance between the last two."""
    if not clicks:
        return "Click the depth map to read a depth; click a second point for the distance between them."
    unit = "m" if metric else "(relative units)"
    h, w = prediction.depth.shape
    k = intrinsics_for_image(intrinsics, w, h)

    def point(x: int, y: int) -> np.ndarray:
        z = float(prediction.depth[y, x])
        return np.array([(x - k.cx) / k.fx * z, (y - k.cy) / k.fy * z, z])

    for x, y in clicks[-2:]:
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"pixel ({x}, {y}) lies outside the {w}x{h} image")
    x, y = clicks[-1]
    text = f"Depth at ({x}, {y}): {prediction.depth[y, x]:.2f} {unit}"
    if len(clicks) >= 2:
        (x0, y0), (x1, y1) = clicks[-2:]
        distance = float(np.linalg.norm(point(x1, y1) - point(x0, y0)))
        text += f"\nDistance from ({x0}, {y0}) to ({x1}, {y1}): {distance:.2f} {unit}"
    return text


def check_video(path: str | Path, limits: AppLimits) -> float:
    """The video's length in seconds from its container; ValueError when unreadable or too long."""
    import imageio.v2 as imageio

    path = Path(path)
    if path.stat().st_size > limits.max_upload_mb * 1e6:
        raise ValueError(f"upload is {path.stat().st_size / 1e6:.1f} MB, more than {limits.max_upload_mb:g} MB")
    try:
        with imageio.get_reader(path) as reader:
            meta = reader.get_meta_data()
    except Exception as err:  # noqa: BLE001 - imageio/ffmpeg raise many types for bad files
        raise ValueError(f"video upload: cannot decode it ({type(err).__name__})") from None
    seconds = float(meta.get("duration") or 0.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("video upload: its length is unknown (no duration in the container)")
    if seconds > limits.max_video_seconds:
        raise ValueError(f"video upload: {seconds:.0f} s long, more than the {limits.max_video_seconds:g} s allowed")
    return seconds


def depth_video(model: DepthModel, path: str | Path, out: Path, limits: AppLimits) -> Path:
    """``out/depth.mp4``: each frame of the uploaded video beside its depth (after ``check_video``)."""
    from selfdepth.predict import predict_video

    check_video(path, limits)
    out.mkdir(parents=True, exist_ok=True)
    try:
        return predict_video(model, Path(path), out / "depth.mp4", progress=True)
    except ValueError as err:  # never show the server's temporary path
        raise ValueError(str(err).replace(str(path), "video upload")) from None


def host_warning(host: str) -> str | None:
    """A warning when ``host`` exposes the app beyond this machine, else None."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    return f"warning: serving on {host}: other machines on the network can reach this app and use its CPU"


class LiveMeter:
    """Depth for a stream of frames, with frames per second over the last ``window`` frames."""

    def __init__(self, model: DepthModel, window: int = 20) -> None:
        self.model = model
        self.times: deque[float] = deque(maxlen=window)
        self.colour = SteadyColour()

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, str]:
        """(H, W, 3) uint8 frame -> its colour-mapped depth and a line with the frame rate."""
        if frame.ndim != 3 or frame.shape[2] < 3:
            raise ValueError(f"expected an (H, W, 3) colour frame, got shape {frame.shape}")
        disparity = self.model.predict(np.ascontiguousarray(frame[..., :3])).disparity
        self.times.append(time.perf_counter())
        fps = (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0
        return self.colour(disparity), f"{fps:.1f} frames/s"

