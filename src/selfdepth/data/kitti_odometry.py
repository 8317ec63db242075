"""KITTI odometry sequences: frames and ground-truth camera poses, for pose evaluation.

The layout is what KITTI's odometry archives unpack to:

    <root>/sequences/<nn>/image_2/000000.png (or .jpg)   left colour camera
    <root>/sequences/<nn>/calib.txt                      P0-P3, Tr
    <root>/poses/<nn>.txt                                a line per frame: row-major 3x4 camera-to-world

The poses are those of the left grey camera (camera 0); the colour camera is a
pure translation away, so relative rotations are the same and Monodepth2 (and
Zhou et al.'s protocol) use these poses as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["OdometrySequence", "read_poses"]


def read_poses(path: str | Path) -> np.ndarray:
    """A KITTI odometry pose file as (N, 4, 4) camera-to-world transforms; a clear error for bad lines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI poses not found: {path}")
    try:
        rows = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: cannot parse poses: {err}") from None
    if rows.shape[1] != 12:
        raise ValueError(f"{path}: expected 12 numbers per line (a row-major 3x4 pose), got {rows.shape[1]}")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses


@dataclass(frozen=True)
class OdometrySequence:
    """The colour frames of one odometry sequence and the ground-truth poses of those frames.

    Attributes:
        frames: image files in time order (frame i is ``frames[i]``).
        poses: (N, 4, 4) camera-to-world of each frame (N = len(frames)).
    """

    frames: tuple[Path, ...]
    poses: np.ndarray

    @classmethod
    def open(cls, root: str | Path, sequence: str) -> OdometrySequence:
        root = Path(root)
        folder = root / "sequences" / sequence / "image_2"
        if not folder.is_dir():
            raise FileNotFoundError(f"KITTI odometry sequence not found: {folder}")
        frames = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")))
        if len(frames) < 2:
            raise ValueError(f"{folder}: need at least 2 frames, found {len(frames)}")
        poses = read_poses(root / "poses" / f"{sequence}.txt")
        if len(poses) < len(frames):
            raise ValueError(f"{root / 'poses' / f'{sequence}.txt'}: {len(poses)} poses for {len(frames)} frames")
        if [int(p.stem) for p in frames] != list(range(len(frames))):
            raise ValueError(f"{folder}: frames must be numbered 0, 1, 2, ... without gaps")
        return cls(frames, poses[: len(frames)])
