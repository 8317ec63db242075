"""Real streets: train on every training drive in ../shared, score on four held-out streets (issue 28).

Training drives (``../shared/data``): raw 0005 and 0001 and the odometry sequences that are not held
out (01, 02, 03, 06, 08: 00, 05 and 07 are Eigen test drives, 04 too, 09 and 10 the pose benchmark;
the loader refuses them, see kitti_held_out.py). ``configs/kitti_small.yaml`` for a time budget, then:

- metric AbsRel (stereo, mono+stereo) and median-scaled AbsRel (all modes) against lidar, Garg crop,
  80 m cap, on raw 0002 (10 frames), raw 0013 (144), odometry 09 and 10 (10 each), beside the
  median-scaled constant depth; ``pooled`` weighs each street equally (the mean of the four AbsRels
  over the mean of the four constants), so 0013 does not drown the rest;
- the same on the training drives' own scans (0005, 0001 every 10th frame; odometry 06, 08);
- for mono modes, the pose ATE on odometry 09, 10 (5-frame snippets) and 04 beside constant motion.

    .venv/bin/python benchmarks/real_streets.py --mode stereo --minutes 45
    .venv/bin/python benchmarks/real_streets.py --mode stereo --minutes 45 --variant synthetic_pretrained \
        --init runs/pretrain/checkpoints/last.ckpt --pretrain-minutes 60
    .venv/bin/python benchmarks/real_streets.py --mode stereo --variant lite0_imagenet --int8   # its int8 export
    .venv/bin/python benchmarks/real_streets.py --summary     # rebuild real_streets.json and the plot only

ImageNet encoders (issue 41): ``--set model.encoder=efficientnet_lite0 --set model.pretrained_encoder=imagenet``,
variants named by encoder (``lite0_imagenet``, ``lite0_imagenet_synthetic``).

Writes ``benchmarks/results/real_streets_<mode>_<variant>.json`` (resumable: a killed run continues)
and rebuilds ``benchmarks/results/real_streets.json`` from every such file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from _machine import machine, network_gflops
from kitti_generalise import picture_grid

from selfdepth.config import Config, load_config
from selfdepth.data.kitti import KittiDataset, drive_split
from selfdepth.data.kitti_odometry import KittiOdometryDataset
from selfdepth.evaluate import evaluate
from selfdepth.export import export_onnx
from selfdepth.inference import DepthModel, load, read_checkpoint
from selfdepth.io import save_json
from selfdepth.train import fit, make_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
ODOMETRY = SHARED / "kitti_odometry_mini"
TRAIN_SOURCES = [SHARED / "kitti_raw_0005", SHARED / "kitti_raw_0001", ODOMETRY]
# Held-out streets with lidar: label -> (root, raw drive or odometry sequence).
TEST_STREETS = {
    "0002": (SHARED / "kitti_raw_mini", "2011_09_26/2011_09_26_drive_0002_sync"),
    "0013": (SHARED / "kitti_raw_0013", "2011_09_26/2011_09_26_drive_0013_sync"),
    "odometry_09": (ODOMETRY, "09"),
    "odometry_10": (ODOMETRY, "10"),
}
OWN_SCANS = {
    "0005_own": (SHARED / "kitti_raw_0005", "2011_09_26/2011_09_26_drive_0005_sync"),
    "0001_own": (SHARED / "kitti_raw_0001", "2011_09_26/2011_09_26_drive_0001_sync"),
    "odometry_06_own": (ODOMETRY, "06"),
    "odometry_08_own": (ODOMETRY, "08"),
}
POSE = {"09": ODOMETRY, "10": ODOMETRY, "04": SHARED / "kitti_odometry_04"}
MODE_KEY = {"stereo": "stereo", "mono": "mono", "mono+stereo": "mono_stereo"}
REFINE_STEPS = 20  # L-BFGS steps per pyramid level when the pose network's motions are also refined


def street_data(root: Path, drive: str, work: Path, height: int, width: int):
    """The lidar-scored frames of one street (left camera), raw drive or odometry sequence."""
    if "/" not in drive:
        return KittiOdometryDataset(root, (drive,), height, width, ground_truth=True)
    split = drive_split(root, drive, work / f"{drive.split('/')[-1]}.txt", "l", 0, with_lidar=True)
    return KittiDataset(root, split, height, width, ground_truth=True)


def score(checkpoint: Path, work: Path, temporal: bool, picture: Path | None, flip_tta: bool = False,
          onnx: Path | None = None) -> dict:
    """AbsRel on every street (held out and own), the pooled ratios and, with a pose network, the ATEs;
    ``picture``: input | depth | lidar for the middle frame of each held-out street (0002, 0013, 09, 10),
    or None;
    ``flip_tta``: depth averaged with the mirrored image's (Monodepth2's post-processing);
    ``onnx``: score this export of the checkpoint (e.g. int8) under onnxruntime instead."""
    model = load(onnx) if onnx else DepthModel.load(checkpoint)
    h, w = model.height, model.width
    streets, middles = {}, []
    for label, (root, drive) in {**TEST_STREETS, **OWN_SCANS}.items():
        data = street_data(root, drive, work, h, w)
        result = evaluate(model, data, garg=True, flip_tta=flip_tta)
        if label in TEST_STREETS:
            middles.append(data[len(data) // 2])  # one frame per held-out street for the picture
        streets[label] = {
            "frames": result["images"], "abs_rel": result["model"]["abs_rel"],
            "abs_rel_median_scaled": result.get("model_median_scaled", result["model"])["abs_rel"],
            "constant": result["constant"]["abs_rel"], "metrics": result["model"],
        }
        s = streets[label]
        print(f"{label:>16}: {s['frames']:3d} frames, AbsRel {s['abs_rel']:.3f} (median-scaled "
              f"{s['abs_rel_median_scaled']:.3f}), constant {s['constant']:.3f}", flush=True)
    record = {"streets": streets, "metric": model.metric,
              "picture": picture_grid(model, middles, picture).name if picture else None}
    kinds = ["abs_rel", "abs_rel_median_scaled"] if model.metric else ["abs_rel_median_scaled"]
    for kind in kinds:
        ratios = {label: streets[label][kind] / streets[label]["constant"] for label in TEST_STREETS}
        pooled = sum(streets[k][kind] for k in TEST_STREETS) / sum(streets[k]["constant"] for k in TEST_STREETS)
        record[f"{kind}_vs_constant"] = {**ratios, "pooled": pooled}
    if temporal:
        from selfdepth.evaluate_pose import evaluate_pose

        record["pose"] = {seq: evaluate_pose(checkpoint, root, seq, refine_steps=REFINE_STEPS)
                          for seq, root in POSE.items()}
    return record


def kitti_config(sources: list[Path], overrides: list[str]) -> Config:
    """``configs/kitti_small.yaml`` training on ``sources`` (every one a ``data.train`` entry), with ``overrides``."""
    return load_config(ROOT / "configs" / "kitti_small.yaml", [f"data.train={','.join(map(str, sources))}", *overrides])


def summary() -> Path:
    """``real_streets.json`` from every run file: the issue's schema, plus where each figure came from."""
    out: dict = {"stereo": {}, "mono": {}, "mono_stereo": {}, "pose": {}, "pose_by_run": {}, "files": {}}
    runs, fullness = [], {}  # fullness: run key -> how full its recipe is (the pose rule below)
    for path in sorted(RESULTS.glob("real_streets_*.json")):
        run = json.loads(path.read_text())
        if "mode" not in run:
            continue
        runs.append(run)
        key = MODE_KEY[run["mode"]]
        kind = "abs_rel_median_scaled" if key == "mono" else "abs_rel"
        out[key][run["variant"]] = run["scores"][f"{kind}_vs_constant"]
        out["files"][f"{key}/{run['variant']}"] = path.name
        if "pose" in run["scores"]:
            out["pose_by_run"][f"{key}/{run['variant']}"] = {
                seq: {"ate": pose["model"]["mean"], "constant_motion": pose["constant_motion"]["mean"],
                      **({"refined": pose["refined"]["mean"]} if "refined" in pose else {})}
                for seq, pose in run["scores"]["pose"].items()}
            if run["training_samples"]:  # a zero-shot model trained on no real frame: never the recipe
                fullness[f"{key}/{run['variant']}"] = (
                    run["config"]["model"].get("pretrained_encoder") == "imagenet", run.get("pretrain_minutes") or 0,
                    key == "mono_stereo", run["config"]["train"]["max_minutes"], run["fraction"],
                    run["config"]["data"].get("turn_sources_deg", 0) > 0,
                    not any(o.startswith("train.seed=") for o in run["overrides"]))
    # "pose" holds one run, chosen by a rule fixed before any score, not the best: the fullest recipe
    # (an ImageNet encoder, put first with issue 41 before any such run was scored; then the longest
    # pre-training, then mono+stereo before mono, then the longest real training, then all frames, then
    # turned sources (data.turn_sources_deg), then the default seed).
    chosen = max(fullness, key=fullness.get, default=None)
    if chosen:
        out["pose"] = {seq: {**v, "run": chosen} for seq, v in out["pose_by_run"][chosen].items()}
    scaling_plot(runs)
    return save_json(RESULTS / "real_streets.json", out)


def machine_label(run: dict) -> str:
    """'AMD EPYC, bf16' / 'Intel Xeon, fp32': the CPU and the networks' precision (``precision: auto``
    picks bf16 only where the CPU has it natively)."""
    cpu = run["machine"]["cpu"].replace("(R)", "").split(" Processor")[0].split(" @")[0]
    bf16 = run["config"]["train"]["precision"] == "auto" and "avx512_bf16" in run["machine"]["flags"]
    return f"{cpu}, {'bf16' if bf16 else 'fp32'}"


def markdown_table() -> str:
    """Every run as a table row (for docs/results.md): AbsRel / constant per street, pooled, own scans, pose."""
    head = ("| run | real training | 0002 | 0013 | odometry 09 | odometry 10 | pooled | own scans | ATE 09 / 10 / 04 "
            "| refined ATE | machine |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for path in sorted(RESULTS.glob("real_streets_*.json")):
        run = json.loads(path.read_text())
        if "mode" not in run:
            continue
        s = run["scores"]
        kinds = ["abs_rel", "abs_rel_median_scaled"] if s["metric"] else ["abs_rel_median_scaled"]
        for kind in kinds:
            r = s[f"{kind}_vs_constant"]
            own = [k for k in s["streets"] if k.endswith("_own")]
            own_ratio = sum(s["streets"][k][kind] for k in own) / sum(s["streets"][k]["constant"] for k in own)
            pose = " / ".join(f"{p['model']['mean']:.4f}" for p in s.get("pose", {}).values()) or "-"
            refined = " / ".join(f"{p['refined']['mean']:.4f}" for p in s.get("pose", {}).values() if "refined" in p) or "-"
            steps = f"{run['steps']} steps, {run['train_minutes']:.0f} min" if run["training_samples"] else "none"
            label = f"{run['mode']} {run['variant']}, {'metric' if kind == 'abs_rel' else 'median-scaled'}"
            rows.append(f"| {label} | {steps} | " + " | ".join(f"{r[k]:.3f}x" for k in (*TEST_STREETS, "pooled"))
                        + f" | {own_ratio:.3f}x | {pose} | {refined} | {machine_label(run)} |")
    return "\n".join(rows)


def scaling_plot(runs: list[dict]) -> Path | None:
    """Pooled AbsRel / constant against the real training samples, a line per mode and start (scratch or
    pre-trained): what more data would buy, and whether pre-training is worth it. The zero-shot model
    (no real frame) is the point at 0. Runs of another seed at the same point are dots on the same line,
    which joins their means; a run with another budget than 30 minutes, or with turned sources, gets its own line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[int, list[float]]] = {}  # label -> training samples -> pooled ratio per run (seeds)
    for run in runs:
        if run.get("flip_tta") or run.get("int8"):
            continue  # a re-scoring of a run already on the plot, not another data point
        key = MODE_KEY[run["mode"]]
        kind = "abs_rel_median_scaled" if key == "mono" else "abs_rel"
        # Each pre-training length is another start, so another line.
        pretrain = f"{run['pretrain_minutes']:g}-min pre-training" if run.get("pretrain_minutes") else ""
        budget = run["config"]["train"]["max_minutes"]
        turn = run["config"]["data"].get("turn_sources_deg", 0)
        label = (f"synthetic only ({pretrain}), zero-shot (metric)" if run.get("scored_checkpoint")
                 else f"{run['mode']}, {pretrain or 'scratch'}" + ("" if budget == 30 else f", {budget:g} min on real frames")
                 + (f", sources turned up to {turn:g}°" if turn else ""))
        points = series.setdefault(label, {}).setdefault(run["training_samples"], [])
        points.append(run["scores"][f"{kind}_vs_constant"]["pooled"])
    if not series:
        return None
    # Left: every run on a log axis (a collapsed run and the zero-shot metric scale sit at 6x);
    # right: the same runs on a linear axis around the target, where the trained runs are.
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(12, 4.4))
    tab20 = plt.get_cmap("tab20").colors  # more lines than the default cycle's 10 colours: dark ones first
    colours = [*tab20[::2], *tab20[1::2]]
    for ax in (full, zoom):
        for n, (label, by_samples) in enumerate(sorted(series.items())):
            xs = sorted(by_samples)
            # The line joins each point's mean over its runs (seeds); every run is drawn as its own dot.
            (line,) = ax.plot(xs, [sum(by_samples[x]) / len(by_samples[x]) for x in xs], "-",
                              color=colours[n % len(colours)])
            for i, x in enumerate(xs):
                ax.plot([x] * len(by_samples[x]), by_samples[x], "o", color=line.get_color(),
                        label=None if i else label)
        ax.axhline(0.4, color="grey", ls="--", lw=1, label="target (stereo): 0.4x")
        ax.axhline(0.5, color="grey", ls=":", lw=1, label="target (mono): 0.5x")
        ax.axhline(1.0, color="black", lw=0.8, label="the constant depth: 1x")
        ax.set_xlabel("real training samples (frames x cameras)")
    full.set_yscale("log")  # before the formatters: setting the scale resets them
    for ax in (full, zoom):
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}x"))
    full.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}x" if y in (0.3, 0.5, 2, 5) else ""))
    full.set_ylabel("pooled AbsRel / constant's (4 held-out streets)")
    full.set_title("every run (log scale)", fontsize=10)
    zoom.set_ylim(0.35, 0.7)
    zoom.set_title("the trained runs, around the targets", fontsize=10)
    zoom.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("Real streets: what more data and synthetic pre-training buy", fontsize=11)
    fig.tight_layout()
    path = RESULTS / "real_streets_scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="stereo", choices=tuple(MODE_KEY))
    parser.add_argument("--minutes", type=float, default=45.0, help="real-data training budget")
    parser.add_argument("--variant", default="scratch", help="names the run, e.g. scratch, synthetic_pretrained")
    parser.add_argument("--init", help="checkpoint to start from (model.init_from)")
    parser.add_argument("--pretrain-minutes", type=float, help="minutes the --init checkpoint took (recorded)")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of each drive's frames (data scaling)")
    parser.add_argument("--beside", help="a folder of rendered streets trained beside the real drives, with "
                        "their true depth (and motion) as supervised terms (set loss.supervised_*_weight)")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    parser.add_argument("--work", default="runs/real_streets")
    parser.add_argument("--score-only", action="store_true", help="score the run's last checkpoint")
    parser.add_argument("--checkpoint", help="score this checkpoint as the variant, training nothing (e.g. the "
                        "synthetic-only model: zero-shot sim-to-real)")
    parser.add_argument("--flip-tta", action="store_true", help="score the trained run's checkpoint again with "
                        "Monodepth2's post-processing (mirrored image's depth averaged in), as variant <variant>_flip_tta")
    parser.add_argument("--int8", action="store_true", help="score the trained run's int8 ONNX export (calibrated "
                        "on 32 frames of training drive 0005) under onnxruntime, as variant <variant>_int8")
    parser.add_argument("--summary", action="store_true", help="only rebuild real_streets.json")
    args = parser.parse_args()
    if args.summary:
        print(f"wrote {summary()}\n\n{markdown_table()}")
        return
    for folder in [*TRAIN_SOURCES, *(r for r, _ in TEST_STREETS.values())]:
        if not folder.is_dir():
            raise SystemExit(f"{folder} not found: this benchmark needs ../shared/data")
    name = f"real_streets_{MODE_KEY[args.mode]}_{args.variant}"
    work = Path(args.work) / name
    overrides = [f"train.mode={args.mode}", f"train.max_minutes={args.minutes}", f"train.out_dir={work / 'run'}",
                 f"data.fraction={args.fraction}", *([f"model.init_from={args.init}"] if args.init else []), *args.set]
    config = kitti_config([*TRAIN_SOURCES, *([Path(args.beside)] if args.beside else [])], overrides)
    checkpoint, minutes = work / "run" / "checkpoints" / "last.ckpt", None
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    elif not (args.score_only or args.flip_tta or args.int8):
        start = time.perf_counter()
        checkpoint = fit(config, resume=checkpoint.is_file())
        minutes = (time.perf_counter() - start) / 60
    elif not checkpoint.is_file():
        raise SystemExit(f"{checkpoint} not found: nothing to score")
    trained = read_checkpoint(checkpoint)
    # Real samples only: a zero-shot model saw none, and rendered streets trained beside are not counted.
    samples = 0 if args.checkpoint else len(make_dataset(kitti_config(TRAIN_SOURCES, overrides)))
    variant = f"{args.variant}_flip_tta" if args.flip_tta else f"{args.variant}_int8" if args.int8 else args.variant
    out_name = f"real_streets_{MODE_KEY[args.mode]}_{variant}"
    # A flip-TTA or int8 re-scoring changes only the depth scores: the picture (drawn without TTA, in fp32)
    # and the pose would repeat the run's own, so they are left to its file.
    onnx = None
    if args.int8:  # calibrated on a training drive's frames, as a user would
        calibration = TRAIN_SOURCES[0] / "2011_09_26" / "2011_09_26_drive_0005_sync" / "image_02" / "data"
        onnx = export_onnx(checkpoint, work / "int8.onnx", int8=True, calibration=calibration)
    rescoring = args.flip_tta or args.int8
    scores = score(checkpoint, work, config.uses_temporal and not rescoring,
                   None if rescoring else RESULTS / f"{out_name}.png", args.flip_tta, onnx)
    h, w = config.data.height, config.data.width
    record = {
        "mode": args.mode, "variant": variant, "fraction": args.fraction, "training_samples": samples,
        "flip_tta": args.flip_tta, "int8": args.int8,
        "init": args.init, "pretrain_minutes": args.pretrain_minutes, "scored_checkpoint": args.checkpoint,
        "trained_beside": args.beside,
        "config": config.to_dict(), "overrides": args.set, "machine": machine(),
        "depth_net_gflops": round(network_gflops(DepthModel.load(checkpoint).net, torch.rand(1, 3, h, w)), 2),
        "steps": trained["global_step"], "train_minutes_this_invocation": minutes,
        "train_minutes": trained["callbacks"]["Timer"]["time_elapsed"]["train"] / 60 if not args.checkpoint else 0.0,
        "scores": scores,
    }
    out = save_json(RESULTS / f"{out_name}.json", record)
    print(f"wrote {out}\nwrote {summary()}")


if __name__ == "__main__":
    main()
