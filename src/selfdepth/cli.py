"""The ``selfdepth`` command line: argument parsing only; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfdepth._version import __version__

__all__ = ["main", "build_parser"]


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 416x128, got {text!r}") from None
    return w, h


def _synth(args: argparse.Namespace) -> None:
    from selfdepth.data.synthetic import Outliers, synthesize

    w, h = args.size
    outliers = Outliers(args.moving_cars, args.glass, args.exposure)
    s = synthesize(args.out, args.scenes, args.frames_per_scene, w, h, args.seed, args.workers, args.contact_sheet,
                   outliers, args.streets)
    print(f"wrote {s.frames} frames in {s.scenes} scenes to {s.out} ({s.frames / s.seconds:.1f} frames/s)")


def _train(args: argparse.Namespace) -> None:
    from selfdepth.config import load_config
    from selfdepth.train import fit, is_global_zero

    config = load_config(args.config, args.set + _shortcuts(args))
    last = fit(config, resume=args.resume)
    if is_global_zero():  # DDP runs this in every process
        print(f"last checkpoint: {last}")


def _shortcuts(args: argparse.Namespace) -> list[str]:
    """The training flags that stand for config values, as overrides."""
    pairs = {"train.devices": args.devices, "train.num_nodes": args.num_nodes, "train.strategy": args.strategy,
             "train.accelerator": args.accelerator, "model.init_from": args.init,
             "data.skip_missing": True if args.skip_missing else None}
    return [f"{k}={v}" for k, v in pairs.items() if v is not None]


def _evaluate(args: argparse.Namespace) -> None:
    from selfdepth.evaluate import evaluate_to_files

    scaling = {"auto": None, "median": True, "none": False}[args.scaling]
    evaluate_to_files(args.checkpoint, args.data, args.out, kitti_split=args.kitti_split,
                      skip_missing=args.skip_missing, median_scaling=scaling, max_depth=args.max_depth,
                      flip_tta=args.flip_tta)


def _predict(args: argparse.Namespace) -> None:
    if args.live:
        return _live(args)
    if not args.inputs:
        raise ValueError("give image files, folders or videos to predict (or --live SOURCE)")
    from selfdepth.predict import predict_paths

    written = predict_paths(args.inputs, args.checkpoint, args.out, args.batch_size, args.flip_tta, args.backend,
                            scale=args.scale)
    print(f"wrote {len(written)} depth maps or videos (and colour pictures) to {args.out}")


def _live(args: argparse.Namespace) -> None:
    import tempfile

    from selfdepth.export import load_fastest
    from selfdepth.live import onnx_threads, run_live

    with tempfile.TemporaryDirectory() as work:
        model, backend = load_fastest(args.checkpoint, args.backend, Path(work), onnx_threads(args.workers))
        result = run_live(model, args.live, args.out, args.batch_size, args.stall_seconds, backend=backend,
                          flip_tta=args.flip_tta, workers=args.workers, encoder_preset=args.encoder_preset)
    print(f"wrote {result.frames} frames to {result.out}: {result.fps:.1f} frames/s end to end ({backend})")


def _pointcloud(args: argparse.Namespace) -> None:
    from selfdepth.io import load_image, load_intrinsics
    from selfdepth.pointcloud import intrinsics_for_image
    from selfdepth.inference import load

    image = load_image(args.image)
    h, w = image.shape[:2]
    intrinsics = intrinsics_for_image(load_intrinsics(args.intrinsics, w, h), w, h, str(args.intrinsics))
    from selfdepth.pointcloud import scale_from_camera_height

    prediction = load(args.checkpoint, args.backend).predict(image, intrinsics, args.flip_tta)
    unit = "metres" if prediction.metric else "relative units (mono model: scale unknown)"
    if args.camera_height:
        factor = scale_from_camera_height(prediction.depth, intrinsics, args.camera_height)
        prediction.depth = prediction.depth * factor
        unit = f"metres, scaled x{factor:.3f} to a camera height of {args.camera_height} m"
    elif args.scale:
        prediction.depth = prediction.depth * args.scale
        unit = f"depth scaled x{args.scale}"
    cloud = prediction.points(max_depth=args.max_depth, remove_sky=args.remove_sky)
    cloud.save_ply(args.output)
    print(f"wrote {len(cloud)} points to {args.output} ({unit})")


def _export(args: argparse.Namespace) -> None:
    from selfdepth.export import export_onnx

    out = export_onnx(args.checkpoint, args.onnx, int8=args.int8, calibration=args.calibration)
    print(f"wrote {out}" + (" (int8, calibrated on " + str(args.calibration) + ")" if args.int8 else ""))


def _import_monodepth2(args: argparse.Namespace) -> None:
    from selfdepth.monodepth2 import import_monodepth2

    print(f"wrote {import_monodepth2(args.encoder, args.depth, args.output, args.mode, args.baseline)}")


def _kitti_gt(args: argparse.Namespace) -> None:
    from selfdepth.evaluate import export_ground_truth

    written = export_ground_truth(args.root, args.split, args.out, args.skip_missing)
    print(f"wrote {len(written)} ground-truth depth maps (16-bit PNG, mm) and files.txt to {args.out}")


def _evaluate_pose(args: argparse.Namespace) -> None:
    from selfdepth.evaluate_pose import evaluate_pose

    evaluate_pose(args.checkpoint, args.root, args.sequence, args.snippet, args.out, args.refine_steps)


def _app(args: argparse.Namespace) -> None:
    try:
        from selfdepth.app import AppLimits, serve
    except ImportError as err:
        raise ValueError(f"the app needs its extra: pip install 'selfdepth[app]' ({err})") from None
    limits = AppLimits(args.max_upload_mb, args.max_pixels, args.max_video_seconds)
    serve(args.checkpoint, args.host, args.port, args.backend, limits)


def _study(args: argparse.Namespace) -> None:
    from selfdepth.study import load_plan, plan_from_losses, run_study

    if args.preset:
        plan = load_plan(args.preset, args.set)
        if args.seeds is not None:
            plan.seeds = args.seeds
    else:
        losses = [name.strip() for name in args.losses.split(",") if name.strip()]
        plan = plan_from_losses(args.config, losses, args.seeds or 3, args.set, args.synthetic)
    arms = [] if args.report else args.arms.split(",") if args.arms else None
    run_study(plan, args.out, arms)


def _demo(args: argparse.Namespace) -> None:
    from selfdepth.demo import run_demo

    run_demo(args.config, args.out, args.set)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfdepth", description="Self-supervised monocular depth.")
    parser.add_argument("--version", action="version", version=f"selfdepth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="render synthetic street scenes with exact depth and poses")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--scenes", type=int, default=10, help="number of scenes")
    p.add_argument("--frames-per-scene", type=int, default=20, help="frames per scene (>= 3)")
    p.add_argument("--size", type=_size, default=(416, 128), help="WxH, multiples of 32 (default 416x128)")
    p.add_argument("--seed", type=int, default=0, help="use different seeds for train and test sets")
    p.add_argument("--workers", type=int, default=2, help="rendering processes")
    p.add_argument("--contact-sheet", action=argparse.BooleanOptionalAction, default=True,
                   help="write contact_sheet.png (image | depth) to look at")
    p.add_argument("--streets", choices=("city", "varied"), default="city",
                   help="city: buildings close on both sides; varied: KITTI-like open sides, trees, widths, setbacks")
    p.add_argument("--moving-cars", type=int, default=0, help="outliers: cars driving in the lanes, per scene")
    p.add_argument("--glass", type=float, default=0.0, help="outliers: fraction of mirror facades (and car windows)")
    p.add_argument("--exposure", type=float, default=0.0, help="outliers: per-image gain in [1-E, 1+E]")
    p.set_defaults(func=_synth)

    p = sub.add_parser("train", help="train a depth model (stereo, mono or mono+stereo)")
    p.add_argument("--config", help="YAML preset, e.g. configs/stereo.yaml")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=2e-4 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/checkpoints/last.ckpt")
    p.add_argument("--init", metavar="CKPT", help="start from this checkpoint's network weights (model.init_from), "
                   "e.g. synthetic pre-training")
    p.add_argument("--skip-missing", action="store_true",
                   help="train on the split's drives that are present (data.skip_missing)")
    p.add_argument("--devices", help="devices per node (Lightning), e.g. 2")
    p.add_argument("--num-nodes", type=int, help="machines taking part (DDP)")
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp")
    p.add_argument("--accelerator", help="cpu, gpu or auto")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a checkpoint on held-out data with ground-truth depth")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="folder of scenes with depth/")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument("--scaling", choices=("auto", "median", "none"), default="auto",
                   help="auto: metric for stereo-trained models, median scaling for mono")
    p.add_argument("--max-depth", type=float, default=80.0, help="depth cap in metres")
    p.add_argument("--flip-tta", action="store_true", help="average with the mirrored image's prediction")
    p.add_argument("--kitti-split", help="--data is a KITTI raw root: score this split (e.g. eigen) against lidar, "
                                         "Garg crop")
    p.add_argument("--skip-missing", action="store_true", help="KITTI: skip split frames missing on disk")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="depth for images, folders of images and videos")
    p.add_argument("inputs", nargs="*", help="image files, folders or video files")
    p.add_argument("--checkpoint", help="a .ckpt, or a .onnx from selfdepth export")
    p.add_argument("--out", default="predictions",
                   help="output folder; with --live, an .mp4 file, or a folder for numbered PNGs")
    p.add_argument("--live", metavar="SOURCE", help="stream depth for a video file, image folder, stream URL or "
                   "webcam (webcam:0, /dev/video0): decode, network and encode run in a pipeline")
    p.add_argument("--stall-seconds", type=float, default=10.0, help="with --live: stop when no frame comes this long")
    p.add_argument("--workers", type=int, default=0, help="with --live: network passes at once "
                   "(default: 2 with onnxruntime, each on half the cores; 1 with torch)")
    p.add_argument("--encoder-preset", default="ultrafast", help="with --live to a video: x264's speed/size "
                   "trade-off, ultrafast (least CPU, largest file) ... medium ... veryslow")
    p.add_argument("--batch-size", type=int, default=4, help="images per network pass")
    p.add_argument("--flip-tta", action="store_true", help="average with the mirrored image's prediction")
    p.add_argument("--backend", choices=("auto", "torch", "torch-bf16", "onnxruntime"), default="auto",
                   help="auto: onnxruntime for .onnx; for a checkpoint torch-bf16 where the CPU has native bf16, "
                   "else torch (with --live: onnxruntime there, a checkpoint exported at start-up)")
    p.add_argument("--scale", type=float, help="multiply depth by this (a mono model's known scale)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("pointcloud", help="a coloured 3-D point cloud (binary PLY) from one image")
    p.add_argument("image")
    p.add_argument("--checkpoint", help="a .ckpt, or a .onnx from selfdepth export")
    p.add_argument("--intrinsics", required=True, help="YAML/JSON with fx, fy, cx, cy or K (pixels)")
    p.add_argument("-o", "--output", default="points.ply")
    p.add_argument("--max-depth", type=float, help="drop points farther than this")
    p.add_argument("--remove-sky", action="store_true", help="drop the far region touching the top of the image")
    p.add_argument("--scale", type=float, help="multiply depth by this (a mono model's known scale)")
    p.add_argument("--camera-height", type=float,
                   help="metres from camera to road: scale a mono model's depth so the fitted road plane sits there")
    p.add_argument("--flip-tta", action="store_true")
    p.add_argument("--backend", choices=("auto", "torch", "torch-bf16", "onnxruntime"), default="torch")
    p.set_defaults(func=_pointcloud)

    p = sub.add_parser("export", help="export the depth network to one self-contained ONNX file")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--int8", action="store_true", help="quantise to int8 (onnxruntime static QDQ, per-channel)")
    p.add_argument("--calibration", help="with --int8: a folder of training images to calibrate activation ranges on")
    p.set_defaults(func=_export)

    p = sub.add_parser("import-monodepth2", help="convert Monodepth2's encoder.pth + depth.pth into a checkpoint")
    p.add_argument("--encoder", required=True, help="Monodepth2 encoder.pth")
    p.add_argument("--depth", required=True, help="Monodepth2 depth.pth")
    p.add_argument("-o", "--output", required=True, help="selfdepth checkpoint to write")
    p.add_argument("--mode", choices=("mono", "stereo", "mono+stereo"), default="mono",
                   help="how the weights were trained; stereo modes give metric depth")
    p.add_argument("--baseline", type=float, default=0.54, help="training stereo baseline in metres (KITTI: 0.54)")
    p.set_defaults(func=_import_monodepth2)

    p = sub.add_parser("kitti-gt", help="project KITTI lidar to ground-truth depth maps for a split")
    p.add_argument("--root", required=True, help="KITTI raw root (holding the date folders)")
    p.add_argument("--split", default="eigen", help="split name (eigen, eigen_benchmark, ...) or split file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--skip-missing", action="store_true", help="skip split frames missing on disk")
    p.set_defaults(func=_kitti_gt)

    p = sub.add_parser("evaluate-pose", help="pose network: ATE on 5-frame snippets of a KITTI odometry sequence")
    p.add_argument("--checkpoint", required=True, help="a mono or mono+stereo checkpoint")
    p.add_argument("--root", required=True, help="KITTI odometry root (holding sequences/ and poses/)")
    p.add_argument("--sequence", default="09", help="sequence number, e.g. 09")
    p.add_argument("--snippet", type=int, default=5, help="frames per snippet (Zhou et al.: 5)")
    p.add_argument("--out", help="write the result as JSON")
    p.add_argument("--refine-steps", type=int, default=0,
                   help="also score the motions polished by direct photometric alignment with the model's "
                        "depth (L-BFGS steps per pyramid level, e.g. 20; 0: off)")
    p.set_defaults(func=_evaluate_pose)

    p = sub.add_parser("study", help="does a robust photometric loss give better depth than SSIM + L1, and where?")
    p.add_argument("--preset", help="a study plan: configs/study_quick.yaml (~45 min) or configs/study_full.yaml")
    p.add_argument("--arms", help="comma-separated arms of the plan to run (default: all)")
    p.add_argument("--report", action="store_true", help="run nothing: rewrite results.json/.md/.png from the saved records")
    p.add_argument("--losses", default="l1,charbonnier,cauchy,barron,barron_adaptive",
                   help="without --preset: comma-separated loss names (loss.pixel_loss), the first the baseline")
    p.add_argument("--seeds", type=int, help="seeds per variant (0..N-1); default: the plan's, or 3")
    p.add_argument("--config", help="without --preset: a training config, e.g. configs/study.yaml")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--synthetic", choices=("clean", "outliers"),
                   help="without --preset: use the built-in synthetic streets (rendered under data/ when missing), "
                        "with or without moving cars, mirrors and exposure changes; else data.train / data.test")
    p.add_argument("--out", default="study", help="output folder; a study there resumes")
    p.set_defaults(func=_study)

    p = sub.add_parser("app", help="a local web app: photo -> depth -> 3-D view, measuring, video and webcam")
    p.add_argument("--checkpoint", help="a training checkpoint (.ckpt) or an exported .onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--backend", choices=("auto", "torch", "torch-bf16", "onnxruntime"), default="auto",
                   help="auto: torch-bf16 where the CPU has native bf16, else onnxruntime (a checkpoint is "
                   "exported to ONNX at start-up)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted")
    p.add_argument("--max-pixels", type=int, default=4096 * 4096, help="largest image accepted (width x height)")
    p.add_argument("--max-video-seconds", type=float, default=60.0, help="longest video accepted")
    p.set_defaults(func=_app)

    p = sub.add_parser("demo", help="render data, train, evaluate and draw pictures (what `make demo` runs)")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.set_defaults(func=_demo)
    return parser


def _close_progress_bars() -> None:
    """Close any live tqdm bar, so that an error message starts on a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


# What `predict`, `pointcloud` and `app` say when no model is given: how to get one.
NO_MODEL = ("no model given: pass --checkpoint CKPT (a .ckpt, or a .onnx from selfdepth export). To get one: "
            "`make demo` trains one in about 11 minutes (demo_out/run/checkpoints/last.ckpt), `selfdepth train` "
            "trains your own, or `selfdepth import-monodepth2` converts Monodepth2's released weights")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if "checkpoint" in vars(args) and args.checkpoint is None:
            raise ValueError(NO_MODEL)
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as err:
        _close_progress_bars()
        print(f"selfdepth {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
