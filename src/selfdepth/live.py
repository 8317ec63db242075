"""Depth for a stream of frames: ``selfdepth predict --live SOURCE``, and the video path of ``predict``.

Decoding, the network and colour-mapping/encoding run in a pipeline of threads
joined by short queues, so the network never waits for ffmpeg:

    decode (ffmpeg / image files) -> queue -> network (batches, ``workers`` at once) -> queue -> colour map + encode

With onnxruntime the network runs two frames at once, each on its own share of
the cores: on 2 cores two single-thread runs side by side take 0.78x the time
per frame of one two-thread run (int8; convolutions this small do not split
well across threads). The writer still gets the frames in order.

A source is a video file, a folder of images, a stream URL that ffmpeg reads,
or a webcam (``webcam:0`` or ``/dev/video0``). The output is an mp4 of each
frame beside its depth, or, when ``out`` has no video suffix, a folder of PNGs.
A source that cannot be opened, that ends or that stalls stops the run with a
clear message; what was written so far is kept (the video file is closed).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from selfdepth.inference import DepthModel, colorize
from selfdepth.io import IMAGE_SUFFIXES, load_image, save_image

__all__ = [
    "LiveResult", "SteadyColour", "open_source", "run_live", "even_size", "side_by_side", "video_writer", "onnx_threads",
    "network_workers", "ENCODER_PRESET", "ENCODER_PRESETS", "VIDEO_SUFFIXES",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_END = object()  # the decoder's last message
ENCODER_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass
class LiveResult:
    """What a run wrote and how fast it went."""

    out: Path
    frames: int  # frames written
    seconds: float  # wall time from the first decoded frame to the last written one
    backend: str  # what ran the network

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def open_source(source: str | Path) -> tuple[Iterator[np.ndarray], float, int | None]:
    """Frames of ``source`` as (H, W, 3) uint8, its frame rate, and its frame count when the container knows it."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images in this folder")
        return (load_image(f) for f in files), 10.0, len(files)
    import imageio.v2 as imageio

    if text.startswith("webcam:") or text.startswith("/dev/video"):
        index = text.split(":", 1)[1] if text.startswith("webcam:") else text[len("/dev/video"):]
        uri = f"<video{index}>"
    elif "://" in text:
        uri = text  # a stream ffmpeg reads (rtsp, http ...)
    else:
        if not path.is_file():
            raise FileNotFoundError(f"live source not found: {text}")
        uri = text
    try:
        reader = imageio.get_reader(uri, format="ffmpeg") if uri.startswith("<video") else imageio.get_reader(uri)
        meta = reader.get_meta_data()
    except Exception as err:  # noqa: BLE001 - imageio/ffmpeg raise many types for bad sources
        what = "cannot decode video" if path.is_file() else "cannot open live source"
        raise ValueError(f"{text}: {what}: {err}") from None
    fps = float(meta.get("fps") or 10.0)
    frames = meta.get("nframes")
    if not isinstance(frames, int) or frames <= 0:  # unknown (inf): estimate from the duration, or give none
        duration = meta.get("duration")
        frames = round(duration * fps) if isinstance(duration, (int, float)) and duration > 0 else None

    def read() -> Iterator[np.ndarray]:
        try:
            for frame in reader:
                yield np.asarray(frame)[..., :3]
        finally:
            reader.close()

    return read(), fps, frames


def _decode(frames: Iterable[np.ndarray], out: queue.Queue, stop: threading.Event) -> None:
    """Thread: push decoded frames, then ``_END`` (or the exception that ended decoding)."""
    try:
        for frame in frames:
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        out.put(_END)
    except Exception as err:  # noqa: BLE001 - handed to the main thread, which reports it
        out.put(err)


class SteadyColour:
    """Colour-maps a stream of disparities with a scale that follows the scene slowly, so it does not flicker."""

    def __init__(self, follow: float = 0.1) -> None:
        self.follow = follow  # how far each frame moves the scale toward its own 95th percentile
        self.vmax: float | None = None

    def __call__(self, disparity: np.ndarray) -> np.ndarray:
        step = max(1, int(np.sqrt(disparity.size / 30_000)))  # ~30k samples: the sorting stays cheap at any size
        p95 = float(np.percentile(disparity[::step, ::step], 95)) or 1.0
        self.vmax = p95 if self.vmax is None else (1 - self.follow) * self.vmax + self.follow * p95
        return colorize(disparity, self.vmax)


def even_size(picture: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) picture by one edge row/column where H or W is odd: H.264 in yuv420p needs even sizes
    (KITTI's 1242x375 frames are not)."""
    h, w = picture.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return picture
    return np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


ENCODER_PRESET = "ultrafast"  # x264's cheapest: 18.1 frames/s end to end against 14.6 with "veryfast" (live.json)


def video_writer(out: Path, fps: float, preset: str = ENCODER_PRESET):
    """An imageio H.264 writer of any frame size. x264's "ultrafast" preset by default: a live preview needs
    encoding cheap, not the smallest file (x264's own default "medium" and even "veryfast" take CPU from the
    network; benchmarks/live.py measures all three), at the price of larger files."""
    import imageio.v2 as imageio

    return imageio.get_writer(out, fps=fps, macro_block_size=1, codec="libx264", output_params=["-preset", preset])


def side_by_side(frame: np.ndarray, colour: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The (H, W, 3) frame beside its (h, w, 3) colour-mapped depth scaled up to H x W, in an even-sized
    picture (an odd H gets a copy of the last row, as in ``even_size``); ``out``: a buffer of that shape to fill.

    The depth picture is scaled up as uint8 colours (bilinear), not as a float disparity map that is then
    colour-mapped: 4x fewer pixels go through the colour map (with ``network_input``'s uint8 resize, live
    video went from 15.2 to 16.8 frames/s, benchmarks/results/live_ab.json).
    """
    h, w = frame.shape[:2]
    if out is None or out.shape != (h + h % 2, 2 * w, 3):
        out = np.empty((h + h % 2, 2 * w, 3), np.uint8)
    if colour.shape[:2] != (h, w):
        small = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)[None]  # (1, 3, h, w), NHWC memory
        colour = F.interpolate(small, (h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    out[:h, :w], out[:h, w:2 * w] = frame, colour
    if h % 2:
        out[h] = out[h - 1]
    return out


class _Writer:
    """Thread: colour-map each (frame, network-size disparity) and write it, in arrival order."""

    def __init__(self, out: Path, fps: float, preset: str = ENCODER_PRESET) -> None:
        self.out, self.count, self.error = out, 0, None
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.colour = SteadyColour()
        self.video = out.suffix.lower() in VIDEO_SUFFIXES
        if self.video:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.writer = video_writer(out, fps, preset)
        else:
            out.mkdir(parents=True, exist_ok=True)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        picture = None  # reused while the frame size stays
        try:
            while (item := self.queue.get()) is not _END:
                frame, disparity = item
                picture = side_by_side(frame, self.colour(disparity), picture)
                if self.video:
                    self.writer.append_data(picture)
                else:  # PNGs at the frame's own size (no padding row)
                    save_image(self.out / f"{self.count:06d}.png", picture[:frame.shape[0]], compress_level=1)
                self.count += 1
        except Exception as err:  # noqa: BLE001 - reported by close()
            self.error = err
            while self.queue.get() is not _END:  # drain, so the producer never blocks
                pass

    def close(self) -> None:
        self.queue.put(_END)
        self.thread.join()
        if self.video:
            self.writer.close()
        if self.error is not None:
            raise ValueError(f"{self.out}: cannot write output after {self.count} frames: {self.error}")


def network_workers(workers: int, backend: str) -> int:
    """Network passes run at once: ``workers``, or for 0 two with onnxruntime and one with torch (whose
    TorchScript copy already spreads one pass over every core)."""
    if workers < 0:
        raise ValueError(f"workers must be 0 (automatic) or more, got {workers}")
    return workers if workers > 0 else (2 if backend == "onnxruntime" else 1)


def onnx_threads(workers: int = 0) -> int:
    """onnxruntime intra-op threads per pass, so that the ``workers`` passes share the cores between them."""
    return max(1, (os.cpu_count() or 1) // network_workers(workers, "onnxruntime"))


def run_live(model: DepthModel, source: str | Path | Iterable[np.ndarray], out: str | Path, batch_size: int = 1,
             stall_s: float = 10.0, progress: bool = True, name: str | None = None, fps: float | None = None,
             total: int | None = None, backend: str = "torch", flip_tta: bool = False,
             encoder_preset: str = ENCODER_PRESET, workers: int = 0) -> LiveResult:
    """Run ``model`` over every frame of ``source`` and write each frame beside its depth to ``out``.

    Args:
        source: see ``open_source``; or any iterable of (H, W, 3) uint8 frames.
        out: an ``.mp4`` (or other video suffix) file, or a folder for numbered PNGs.
        batch_size: frames per network pass (1 for the lowest latency); a pass takes
            whatever frames are already decoded, up to this many, and never waits for more.
        stall_s: give up when no frame arrives for this long.
        name: what the progress bar calls the source.
        encoder_preset: x264's speed/size trade-off for a video ``out`` (ultrafast ... medium ... veryslow).
        backend: what runs ``model`` ("onnxruntime", "torch", ...), for the report and for ``workers``.
        workers: network passes at once (0: see ``network_workers``); for onnxruntime load the model with
            ``onnx_threads(workers)`` threads so that they share the cores.
    """
    from tqdm import tqdm

    if encoder_preset not in ENCODER_PRESETS:
        raise ValueError(f"encoder preset must be one of {', '.join(ENCODER_PRESETS)}, got {encoder_preset!r}")
    out = Path(out)
    if isinstance(source, (str, Path)):
        name = name or Path(str(source)).name or str(source)
        frames, fps_found, total_found = open_source(source)
        fps, total = fps or fps_found, total if total is not None else total_found
    else:
        frames = iter(source)
    decoded: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()
    threading.Thread(target=_decode, args=(frames, decoded, stop), daemon=True).start()
    writer = _Writer(out, fps or 10.0, encoder_preset)
    bar = tqdm(total=total, unit="frame", desc=name or "live", disable=not progress)
    parallel = network_workers(workers, backend)
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="network")
    running: deque[tuple[list[np.ndarray], Future]] = deque()  # passes in frame order, oldest first

    def infer(batch: list[np.ndarray]) -> list[np.ndarray]:  # disparity at the network's size, (h, w) each
        return list(model.network_disparity(batch, flip_tta=flip_tta)[:, 0].numpy())

    def hand_over_oldest() -> None:
        batch, future = running.popleft()
        for frame, disparity in zip(batch, future.result()):
            writer.queue.put((frame, disparity))
        bar.update(len(batch))
        bar.set_postfix(fps=f"{bar.n / (time.perf_counter() - start):.1f}", refresh=False)

    start, failure, ended = None, None, False
    try:
        while not ended:
            try:
                first = decoded.get(timeout=stall_s)
            except queue.Empty:
                failure = f"no frame for {stall_s:g} s: the source stalled"
                break
            batch = [first]
            while len(batch) < batch_size and not decoded.empty():
                batch.append(decoded.get_nowait())
            if isinstance(batch[-1], Exception) or batch[-1] is _END:
                last = batch.pop()
                ended = True
                if last is not _END:
                    failure = f"decoding stopped: {last}"
            if not batch:
                break
            if start is None:
                start = time.perf_counter()
            running.append((batch, pool.submit(infer, batch)))
            while len(running) >= parallel:  # the next pass starts when the oldest is handed on
                hand_over_oldest()
        while running:  # also after a stall or a decoding error: what the network did is written
            hand_over_oldest()
    finally:
        stop.set()
        pool.shutdown(cancel_futures=True)
        bar.close()
        writer.close()  # every frame handed over is written, and the video file is finalised
    seconds = time.perf_counter() - start if start is not None else 0.0
    if failure is not None:
        raise ValueError(f"{name or 'live source'}: {failure}; kept the {writer.count} frames written to {out}")
    if writer.count == 0:
        raise ValueError(f"{name or 'live source'}: no frames could be decoded")
    return LiveResult(out, writer.count, seconds, backend)
