"""Training-step time: selfdepth against Monodepth2's own step, measured in the same run.

Setting (the issue's): batch 4, 640x192, mono+stereo with frames 0, -1, +1 and the stereo pair,
4 scales, separate ResNet18 pose network, random init, CPU threads as the machine gives.
The Monodepth2 step is its trainer's process_batch + compute_losses + backward + Adam step,
written out with its own networks and layers (its trainer calls .cuda(), so it cannot run as-is
on a CPU). Each variant runs in a fresh subprocess, which also reports its peak resident memory.
Variants: ours with torch.compile'd photometric error (the presets' setting), ours eager, ours under
bf16 autocast (networks in bf16, warps and losses in fp32; only where the CPU has native bf16), the
compiled fp32 and bf16 ones with the networks in channels-last (NHWC) memory order, the same two with
EfficientNet-Lite0 depth and pose networks (``lite0_*``, issue 41), and Monodepth2.
Also recorded: the networks' GFLOPs per step (forward x 3 for forward + backward) and
the time that takes at the measured matmul peak, the floor no implementation goes under.
Writes benchmarks/results/train_step.json. Targets: ours <= 0.5x the reference's time and
<= 0.8x its peak memory.

    python benchmarks/train_step.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from selfdepth.config import load_config
from selfdepth.train import SelfDepth

from selfdepth.hardware import has_native_bf16

from _machine import machine, network_gflops

from _monodepth2 import import_monodepth2

B, H, W = 4, 192, 640


def make_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[0.58 * W, 0, W / 2], [0, 1.92 * H, H / 2], [0, 0, 1.0]])
    Ks = torch.stack([torch.diag(torch.tensor([0.5**s, 0.5**s, 1.0])) @ K for s in range(4)])
    return {
        "image": torch.rand(B, 3, H, W, generator=g),
        "image_aug": torch.rand(B, 3, H, W, generator=g),
        "temporal": torch.rand(B, 2, 3, H, W, generator=g),
        "temporal_aug": torch.rand(B, 2, 3, H, W, generator=g),
        "stereo": torch.rand(B, 3, H, W, generator=g),
        "stereo_sign": torch.ones(B),
        "K": Ks.expand(B, 4, 3, 3).clone(),
    }


def time_steps(step, repeats: int) -> list[float]:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def ours(batch, repeats: int, compiled: bool = True, bf16: bool = False, channels_last: bool = False,
         encoder: str = "resnet18") -> list[float]:
    config = load_config(None, ["train.mode=mono+stereo", f"data.height={H}", f"data.width={W}",
                                f"train.compile_loss={compiled}", f"train.channels_last={channels_last}",
                                f"model.encoder={encoder}"])
    torch.manual_seed(0)
    model = SelfDepth(config.to_dict(), 0.54).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what Lightning's bf16-mixed does
            loss, _ = model.compute_loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, repeats)


def reference(batch, repeats: int, networks, layers) -> list[float]:
    torch.manual_seed(0)
    encoder = networks.ResnetEncoder(18, False)
    depth = networks.DepthDecoder(encoder.num_ch_enc, range(4))
    pose_encoder = networks.ResnetEncoder(18, False, num_input_images=2)
    pose = networks.PoseDecoder(pose_encoder.num_ch_enc, num_input_features=1, num_frames_to_predict_for=2)
    params = [p for m in (encoder, depth, pose_encoder, pose) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, 1e-4)
    ssim = layers.SSIM()
    backproject = layers.BackprojectDepth(B, H, W)
    project = layers.Project3D(B, H, W)
    K = torch.eye(4).repeat(B, 1, 1)
    K[:, :3, :3] = batch["K"][:, 0]
    inv_K = torch.linalg.inv(K)
    stereo_T = torch.eye(4).repeat(B, 1, 1)
    stereo_T[:, 0, 3] = -0.1
    colors = {0: batch["image"], -1: batch["temporal"][:, 0], 1: batch["temporal"][:, 1], "s": batch["stereo"]}
    color_aug = {0: batch["image_aug"], -1: batch["temporal_aug"][:, 0], 1: batch["temporal_aug"][:, 1]}
    scaled = {s: F.interpolate(colors[0], (H >> s, W >> s), mode="area") for s in range(4)}  # the loader's job

    def reprojection(pred, target):
        return 0.85 * ssim(pred, target).mean(1, True) + 0.15 * (target - pred).abs().mean(1, True)

    def step():  # trainer.process_batch + compute_losses, frame_ids [0, -1, 1, "s"]
        outputs = depth(encoder(color_aug[0]))
        Ts = {}
        for f in (-1, 1):
            inputs = [color_aug[f], color_aug[0]] if f < 0 else [color_aug[0], color_aug[f]]
            axisangle, translation = pose([pose_encoder(torch.cat(inputs, 1))])
            Ts[f] = layers.transformation_from_parameters(axisangle[:, 0], translation[:, 0], invert=f < 0)
        Ts["s"] = stereo_T
        total = 0
        for scale in range(4):
            disp = F.interpolate(outputs[("disp", scale)], [H, W], mode="bilinear", align_corners=False)
            _, d = layers.disp_to_depth(disp, 0.1, 100.0)
            reproj, ident = [], []
            for f in (-1, 1, "s"):
                pix = project(backproject(d, inv_K), K, Ts[f])
                warped = F.grid_sample(colors[f], pix, padding_mode="border", align_corners=True)
                reproj.append(reprojection(warped, colors[0]))
                ident.append(reprojection(colors[f], colors[0]))
            ident = torch.cat(ident, 1)
            ident = ident + torch.randn(ident.shape) * 1e-5
            to_optimise, _ = torch.min(torch.cat([ident, torch.cat(reproj, 1)], 1), dim=1)
            raw = outputs[("disp", scale)]
            norm = raw / (raw.mean(2, True).mean(3, True) + 1e-7)
            smooth = layers.get_smooth_loss(norm, scaled[scale])
            total = total + to_optimise.mean() + 1e-3 * smooth / (2**scale)
        loss = total / 4
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, repeats)


VARIANTS = ("selfdepth", "selfdepth_eager", "selfdepth_channels_last", "selfdepth_bf16", "selfdepth_bf16_channels_last",
            "lite0_channels_last", "lite0_bf16_channels_last", "monodepth2")


def run_variant(name: str, repeats: int) -> dict:
    """Time one variant in this process; its peak resident memory is this process's."""
    batch = make_batch()
    if name == "monodepth2":
        md2 = import_monodepth2()
        if md2 is None:
            return {"error": "pip could not fetch monodepth2==1.0.0: no reference"}
        times = reference(batch, repeats, *md2)
    else:
        times = ours(batch, repeats, compiled=name != "selfdepth_eager", bf16="bf16" in name,
                     channels_last=name.endswith("channels_last"),
                     encoder="efficientnet_lite0" if name.startswith("lite0") else "resnet18")
    return {"median_s": statistics.median(times), "times_s": times,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def step_gflops(encoder: str = "resnet18") -> float:
    """The networks' arithmetic in one step: the depth net on the target, the pose net on two pairs,
    forward + backward taken as 3x the forward."""
    from selfdepth.models import DepthNet, PoseNet

    depth = network_gflops(DepthNet(encoder=encoder).train(), torch.rand(B, 3, H, W))
    net = PoseNet(encoder=encoder).train()
    pose = network_gflops(lambda pair: net(pair[:, :3], pair[:, 3:]), torch.rand(2 * B, 6, H, W))  # 2 pairs each
    return 3 * (depth + pose)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # the subprocess's job
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_variant(args.one, args.repeats)))
        return
    info = machine()
    gflops = step_gflops()
    result = {"setting": f"batch {B}, {W}x{H}, mono+stereo (frames 0,-1,+1,s), 4 scales", "threads": torch.get_num_threads(),
              "machine": info, "device": "cpu", "network_gflops_per_step": round(gflops, 1),
              "floor_s_at_fp32_peak": round(gflops / info["fp32_matmul_gflops"], 3),
              "lite0_network_gflops_per_step": round(step_gflops("efficientnet_lite0"), 1)}
    if "bf16_matmul_gflops" in info:
        result["floor_s_at_bf16_peak"] = round(gflops / info["bf16_matmul_gflops"], 3)
    for name in VARIANTS:
        if "bf16" in name and not has_native_bf16():
            result[name] = {"skipped": "this CPU has no native bf16 (avx512_bf16/amx_bf16)"}
            continue
        out = subprocess.run([sys.executable, __file__, "--one", name, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        result[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, result[name], flush=True)
    ref = result["monodepth2"]
    if "median_s" in ref:
        for name in VARIANTS[:-1]:
            if "median_s" in result[name]:
                result[name]["time_vs_monodepth2"] = round(result[name]["median_s"] / ref["median_s"], 3)
                result[name]["memory_vs_monodepth2"] = round(result[name]["peak_rss_mb"] / ref["peak_rss_mb"], 3)
    result["targets"] = {"time_vs_monodepth2": 0.5, "memory_vs_monodepth2": 0.8}
    result["note"] = ("selfdepth: train.compile_loss=true (the presets'); selfdepth_bf16: that under bf16 autocast "
                      "(train.precision=bf16-mixed); *_channels_last: the networks' weights in NHWC order "
                      "(train.channels_last=true); peak_rss_mb: the whole subprocess's peak, Python and imports included")
    out = Path(__file__).parent / "results" / "train_step.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
