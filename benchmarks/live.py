"""End-to-end live depth: frames per second over a 300-frame 1242x375 video at the network size 640x192.

    python benchmarks/live.py [--frames 300]

The video is a rendered street (the synthetic renderer, left camera), encoded to
mp4 once and kept under runs/bench_live/. Each backend runs ``selfdepth.live.run_live``
(decode thread -> network -> colour map + encode thread) from the mp4 to a side-by-side
mp4, batch 1, x264 preset ultrafast (the default; for the fastest backend also veryfast and medium), with its default
network workers (onnxruntime: two passes at once, each on half the cores; also timed with one pass of
all the cores); beside it, the same work done one step after another in one thread
(what ``predict`` did before the pipeline) and the network alone on decoded frames.
The weights are untrained: they do not change the arithmetic. Each backend runs with the ResNet18
network (keys as named) and with EfficientNet-Lite0 (the same keys prefixed ``lite0_``, issue 41). Writes
benchmarks/results/live.json. Target: >= 15 frames/s end to end (25 where the CPU has
bf16 or VNNI); with Lite0 >= 24 frames/s. ``stage_ms_per_frame`` / ``stage_cpu_ms_per_frame``: each stage alone (elapsed and CPU
time), so a reader sees where the time goes; ``ceiling_fps``: what the machine could give at most, the
network's arithmetic at the measured int8 matmul peak plus the other stages' CPU time over the cores.
Run it alone: a timing benchmark must not share the 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from selfdepth.data.synthetic.render import render_frame
from selfdepth.data.synthetic.scene import Camera, Outliers, kitti_like_intrinsics, make_scene
from selfdepth.export import export_onnx
from selfdepth.hardware import has_native_bf16
from selfdepth.inference import DepthModel, colorize, load
from selfdepth.io import save_image, save_json
from selfdepth.live import (
    ENCODER_PRESET, SteadyColour, even_size, network_workers, onnx_threads, run_live, side_by_side, video_writer,
)
from selfdepth.models.depth import DepthNet

from _checkpoints import untrained_checkpoint
from _machine import machine, network_gflops

ROOT = Path(__file__).resolve().parents[1]
H, W = 192, 640


def rendered_video(path: Path, frames: int, width: int = 1242, height: int = 375) -> Path:
    """A street drive with moving cars, rendered once and encoded as mp4 at 10 frames/s (H.264 pads 375 to 376 rows)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    camera = Camera(kitti_like_intrinsics(width, height), width, height)
    scene = make_scene(seed=5, frames=frames, outliers=Outliers(moving_cars=3))
    tmp = path.with_suffix(".tmp.mp4")
    with imageio.get_writer(tmp, fps=10, macro_block_size=1, quality=8) as writer:
        for i in range(frames):
            writer.append_data(even_size((render_frame(scene, i, camera)[0] * 255).round().astype(np.uint8)))
    tmp.replace(path)
    return path


def sequential_fps(model: DepthModel, video: Path, out: Path) -> float:
    """Decode, network, colour map and encode one after another in one thread."""
    start = time.perf_counter()
    count = 0
    with imageio.get_reader(video) as reader, imageio.get_writer(out, fps=10, macro_block_size=1) as writer:
        for frame in reader:
            disparity = model.predict(np.asarray(frame)[..., :3]).disparity
            writer.append_data(even_size(np.concatenate([frame, colorize(disparity)], axis=1)))
            count += 1
    return count / (time.perf_counter() - start)


def network_fps(model: DepthModel, video: Path, frames: int = 50) -> float:
    """The network alone (with its resize in, as the live pipeline runs it) on already decoded frames."""
    with imageio.get_reader(video) as reader:
        decoded = [np.asarray(f)[..., :3] for _, f in zip(range(frames), reader)]
    model.network_disparity(decoded[:1])
    start = time.perf_counter()
    for frame in decoded:
        model.network_disparity([frame])
    return len(decoded) / (time.perf_counter() - start)


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (ffmpeg's decoder and encoder)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stage_ms(model: DepthModel, video: Path, out: Path, frames: int = 50) -> dict[str, dict[str, float]]:
    """Milliseconds per frame of each stage alone, one after another: what the pipeline overlaps. ``wall``:
    elapsed time; ``cpu``: CPU time of this process and ffmpeg's (ffmpeg decodes and encodes on threads of its
    own, so its CPU time is what the stage takes from the network when they share the cores)."""
    wall, cpu = {}, {}

    def timed(name: str, start: float, start_cpu: float) -> None:
        wall[name], cpu[name] = time.perf_counter() - start, _cpu_s() - start_cpu

    start, start_cpu = time.perf_counter(), _cpu_s()
    with imageio.get_reader(video) as reader:
        decoded = [np.asarray(f)[..., :3] for _, f in zip(range(frames), reader)]
    timed("decode", start, start_cpu)
    start, start_cpu = time.perf_counter(), _cpu_s()
    disparities = [model.network_disparity([f])[0, 0].numpy() for f in decoded]
    timed("network_with_resize_in", start, start_cpu)
    colour = SteadyColour()
    start, start_cpu = time.perf_counter(), _cpu_s()
    pictures = [side_by_side(f, colour(d)) for f, d in zip(decoded, disparities)]
    timed("colour_map_and_scale_up", start, start_cpu)
    start, start_cpu = time.perf_counter(), _cpu_s()
    for f in decoded:  # for comparison: depth scaled up to the frame (predict's path), colour-mapped at full size
        even_size(np.concatenate([f, colorize(model.predict(f).disparity)], axis=1))
    timed("network_and_full_size_colour_map", start, start_cpu)
    for preset in ("ultrafast", "veryfast", "medium"):
        start, start_cpu = time.perf_counter(), _cpu_s()
        with video_writer(out, 10, preset) as writer:
            for picture in pictures:
                writer.append_data(picture)
        timed(f"encode_{preset}", start, start_cpu)
    return {"wall": {k: round(1000 * v / frames, 1) for k, v in wall.items()},
            "cpu": {k: round(1000 * v / frames, 1) for k, v in cpu.items()}}


def ceiling_fps(gflops: float, int8_gops: float, stage_cpu_ms: dict[str, float], threads: int) -> float:
    """The most frames/s the machine could give: the network's arithmetic at the int8 matmul peak (all cores)
    plus the CPU time of decoding, colour-mapping and encoding (``ultrafast``) spread over the cores, as if
    everything else in the network (pads, ELUs, resizes, quantisation) cost nothing."""
    other_ms = sum(stage_cpu_ms[k] for k in ("decode", "colour_map_and_scale_up", "encode_ultrafast"))
    return 1000 / (1000 * gflops / int8_gops + other_ms / threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(2)
    video = rendered_video(ROOT / "runs" / "bench_live" / f"drive_{args.frames}_1242x375.mp4", args.frames)
    result: dict = {"video": f"{args.frames} frames, 1242x375, rendered street, mp4", "network_size": f"{W}x{H}",
                    "batch": 1, "machine": machine(), "gflops": round(network_gflops(DepthNet().eval(),
                                                                                     torch.rand(1, 3, H, W)), 2),
                    "lite0_gflops": round(network_gflops(DepthNet(encoder="efficientnet_lite0").eval(),
                                                         torch.rand(1, 3, H, W)), 2)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calibration = tmp / "calibration"
        with imageio.get_reader(video) as reader:
            for i, frame in enumerate(reader):
                if i % 10 == 0:
                    save_image(calibration / f"{i:04d}.png", np.asarray(frame)[..., :3])
        onnx, models = {}, {}
        for prefix, encoder in (("", "resnet18"), ("lite0_", "efficientnet_lite0")):
            ckpt = untrained_checkpoint(tmp / f"{prefix}m.ckpt", H, W, encoder=encoder)
            onnx[f"{prefix}onnxruntime_fp32"] = export_onnx(ckpt, tmp / f"{prefix}fp32.onnx")
            onnx[f"{prefix}onnxruntime_int8"] = export_onnx(ckpt, tmp / f"{prefix}int8.onnx", int8=True,
                                                            calibration=calibration)
            models[f"{prefix}torchscript"] = load(ckpt)
            models.update({name: load(onnx[name]) for name in (f"{prefix}onnxruntime_fp32", f"{prefix}onnxruntime_int8")})
            if has_native_bf16():  # emulated bf16 is slower than fp32: only where the CPU has it
                models[f"{prefix}torchscript_bf16"] = load(ckpt, "torch-bf16")
        # What `predict --live` runs: onnxruntime with its threads split between the network workers.
        live_models = {name: load(onnx[name], threads=onnx_threads()) if name in onnx else model
                       for name, model in models.items()}
        backends = {name: "onnxruntime" if name in onnx else "torch" for name in models}
        for name, model in models.items():
            model.predict(np.zeros((375, 1242, 3), np.uint8))  # warm-up (TorchScript builds on first use)
            live = run_live(live_models[name], video, tmp / f"{name}.mp4", batch_size=1, progress=False,
                            backend=backends[name])
            result[name] = {
                "pipeline_fps": round(live.fps, 2),
                "network_workers": network_workers(0, backends[name]),
                "encoder_preset": ENCODER_PRESET,
                "sequential_fps": round(sequential_fps(model, video, tmp / f"{name}_seq.mp4"), 2),
                "network_only_fps": round(network_fps(model, video), 2),
                "frames_written": live.frames,
            }
            if name in onnx:  # one pass at a time on every core, as before the workers
                result[name]["pipeline_fps_one_worker"] = round(
                    run_live(model, video, tmp / f"{name}_1.mp4", progress=False, backend=backends[name],
                             workers=1).fps, 2)
            print(name, result[name], flush=True)
        best_name = max((k for k in models if not k.startswith("lite0_")), key=lambda k: result[k]["pipeline_fps"])
        for preset in ("medium", "veryfast"):
            result[best_name][f"pipeline_fps_x264_{preset}"] = round(
                run_live(live_models[best_name], video, tmp / f"{preset}.mp4", progress=False,
                         backend=backends[best_name], encoder_preset=preset).fps, 2)
        stages = stage_ms(models[best_name], video, tmp / "s.mp4")
        result["stage_ms_per_frame"] = {"backend": best_name, **stages["wall"]}
        result["stage_cpu_ms_per_frame"] = {"backend": best_name, **stages["cpu"]}
        print(result["stage_ms_per_frame"], result["stage_cpu_ms_per_frame"], flush=True)
        lite0_best = max((k for k in models if k.startswith("lite0_")), key=lambda k: result[k]["pipeline_fps"])
        stages = stage_ms(models[lite0_best], video, tmp / "s.mp4")
        result["lite0_stage_ms_per_frame"] = {"backend": lite0_best, **stages["wall"]}
        result["lite0_stage_cpu_ms_per_frame"] = {"backend": lite0_best, **stages["cpu"]}
    fps = {k: v["pipeline_fps"] for k, v in result.items() if isinstance(v, dict) and "pipeline_fps" in v}
    best = max(v for k, v in fps.items() if not k.startswith("lite0_"))
    result["best_pipeline_fps"] = best
    result["target_fps"] = 15
    result["lite0_best_pipeline_fps"] = max(v for k, v in fps.items() if k.startswith("lite0_"))
    result["lite0_target_fps"] = 24
    machine_info = result["machine"]
    result["int8_network_lower_bound_ms"] = round(1000 * result["gflops"] / machine_info["int8_matmul_gops"], 1)
    result["ceiling_fps"] = round(ceiling_fps(result["gflops"], machine_info["int8_matmul_gops"],
                                              result["stage_cpu_ms_per_frame"], machine_info["threads"]), 1)
    result["fraction_of_ceiling"] = round(best / result["ceiling_fps"], 2)
    result["lite0_ceiling_fps"] = round(ceiling_fps(result["lite0_gflops"], machine_info["int8_matmul_gops"],
                                                    result["lite0_stage_cpu_ms_per_frame"], machine_info["threads"]), 1)
    save_json(ROOT / "benchmarks" / "results" / "live.json", result)
    print(f"best end-to-end: {best:.1f} frames/s (target 15); Lite0 {result['lite0_best_pipeline_fps']:.1f} (target 24)")


if __name__ == "__main__":
    main()
