"""Training-step time: selfdepth against Monodepth2's own step, measured in the same run.

Setting (the issue's): batch 4, 640x192, mono+stereo with frames 0, -1, +1 and the stereo pair,
4 scales, separate ResNet18 pose network, random init, CPU threads as the machine gives.
The Monodepth2 step is its trainer's process_batch + compute_losses + backward + Adam step,
written out with its own networks and layers (its trainer calls .cuda(), so it cannot run as-is
on a CPU). Writes benchmarks/results/train_step.json. Target: ours <= 0.8x the reference.

    python benchmarks/train_step.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from selfdepth.config import load_config
from selfdepth.train import SelfDepth

from _machine import machine

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


def ours(batch, repeats: int, compiled: bool = True) -> list[float]:
    config = load_config(None, ["train.mode=mono+stereo", f"data.height={H}", f"data.width={W}",
                                f"train.compile_loss={compiled}"])
    torch.manual_seed(0)
    model = SelfDepth(config.to_dict(), 0.54).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def step():
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batch = make_batch()
    result = {"setting": f"batch {B}, {W}x{H}, mono+stereo (frames 0,-1,+1,s), 4 scales", "threads": torch.get_num_threads(),
              "machine": machine(), "device": "cpu"}
    ours_times = ours(batch, args.repeats)
    result["selfdepth_median_s"] = statistics.median(ours_times)
    result["selfdepth_eager_median_s"] = statistics.median(ours(batch, args.repeats, compiled=False))
    result["note"] = "selfdepth_median_s uses train.compile_loss=true (torch.compile of the photometric error)"
    md2 = import_monodepth2()
    if md2 is None:
        result["monodepth2_median_s"] = None
        result["note"] = "pip could not fetch monodepth2==1.0.0: no reference"
    else:
        ref_times = reference(batch, args.repeats, *md2)
        result["monodepth2_median_s"] = statistics.median(ref_times)
        result["ratio"] = result["selfdepth_median_s"] / result["monodepth2_median_s"]
        result["ratio_eager"] = result["selfdepth_eager_median_s"] / result["monodepth2_median_s"]
        result["target_ratio"] = 0.8
    out = Path(__file__).parent / "results" / "train_step.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
