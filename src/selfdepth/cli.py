"""The ``selfdepth`` command line: argument parsing only; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 416x128, got {text!r}") from None
    return w, h


def _synth(args: argparse.Namespace) -> None:
    from selfdepth.data.synthetic import synthesize

    w, h = args.size
    s = synthesize(args.out, args.scenes, args.frames_per_scene, w, h, args.seed, args.workers, args.contact_sheet)
    print(f"wrote {s.frames} frames in {s.scenes} scenes to {s.out} ({s.frames / s.seconds:.1f} frames/s)")


def _train(args: argparse.Namespace) -> None:
    from selfdepth.config import load_config
    from selfdepth.train import fit

    config = load_config(args.config, args.set + _shortcuts(args))
    print(f"last checkpoint: {fit(config, resume=args.resume)}")


def _shortcuts(args: argparse.Namespace) -> list[str]:
    """The DDP flags as config overrides."""
    pairs = {"train.devices": args.devices, "train.num_nodes": args.num_nodes, "train.strategy": args.strategy,
             "train.accelerator": args.accelerator}
    return [f"{k}={v}" for k, v in pairs.items() if v is not None]


def _evaluate(args: argparse.Namespace) -> None:
    from selfdepth.evaluate import evaluate_to_files

    scaling = {"auto": None, "median": True, "none": False}[args.scaling]
    evaluate_to_files(args.checkpoint, args.data, args.out, median_scaling=scaling, max_depth=args.max_depth,
                      flip_tta=args.flip_tta)


def _predict(args: argparse.Namespace) -> None:
    from selfdepth.predict import predict_paths

    written = predict_paths(args.inputs, args.checkpoint, args.out)
    print(f"wrote {len(written)} depth maps (and colour pictures) to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from selfdepth.demo import run_demo

    run_demo(args.config, args.out, args.set)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfdepth", description="Self-supervised monocular depth.")
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
    p.set_defaults(func=_synth)

    p = sub.add_parser("train", help="train a depth model (stereo, mono or mono+stereo)")
    p.add_argument("--config", help="YAML preset, e.g. configs/stereo.yaml")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=2e-4 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/checkpoints/last.ckpt")
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
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="depth for images or folders of images")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default="predictions", help="output folder")
    p.set_defaults(func=_predict)

    p = sub.add_parser("demo", help="render data, train, evaluate and draw pictures (what `make demo` runs)")
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as err:
        print(f"selfdepth {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
