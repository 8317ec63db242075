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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"selfdepth {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
