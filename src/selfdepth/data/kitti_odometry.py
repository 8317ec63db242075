"""KITTI odometry sequences: training and evaluation samples, and ground-truth poses for pose evaluation.

The layout is what KITTI's odometry archives unpack to:

    <root>/sequences/<nn>/image_2/000000.png (or .jpg)   left colour camera
    <root>/sequences/<nn>/image_3/000000.png (or .jpg)   right colour camera
    <root>/sequences/<nn>/velodyne/000000.bin            lidar (optional; needs Tr in calib.txt)
    <root>/sequences/<nn>/calib.txt                      P0-P3, Tr
    <root>/poses/<nn>.txt                                a line per frame: row-major 3x4 camera-to-world

Intrinsics and the stereo baseline come from P2 and P3 (0.54 m); lidar depth is the scan moved by
``Tr`` into camera 0 and projected with P2 (or P3), as for raw drives (kitti_calib.py).

The poses are those of the left grey camera (camera 0); the colour camera is a
pure translation away, so relative rotations are the same and Monodepth2 (and
Zhou et al.'s protocol) use these poses as they are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from selfdepth.data.folder import FolderDataset, FolderScene
from selfdepth.data.kitti_calib import lidar_depth, read_odometry_calibration
from selfdepth.data.kitti_held_out import ODOMETRY_DRIVES, check_training_sequence, held_out_reason

__all__ = ["OdometrySequence", "KittiOdometryDataset", "read_poses", "list_sequences"]

_CAMERA_FOLDER = {2: "image_2", 3: "image_3"}


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


def list_sequences(root: str | Path) -> list[str]:
    """The sequence folders under ``<root>/sequences`` that hold left colour frames, sorted."""
    folder = Path(root) / "sequences"
    if not folder.is_dir():
        raise FileNotFoundError(f"KITTI odometry root {root}: no sequences/ folder")
    return sorted(p.name for p in folder.iterdir() if (p / "image_2").is_dir())


def _frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")) if folder.is_dir() else []


def _sequence_scene(root: Path, sequence: str, target: int, ground_truth: bool) -> FolderScene:
    """One sequence seen from colour camera ``target`` (2 or 3) as a scene."""
    folder = root / "sequences" / sequence
    other = 5 - target
    frames = _frames(folder / _CAMERA_FOLDER[target])
    if not frames:
        raise FileNotFoundError(f"KITTI odometry sequence {folder}: no images in {_CAMERA_FOLDER[target]}/")
    right = _frames(folder / _CAMERA_FOLDER[other])
    if right and [p.stem for p in right] != [p.stem for p in frames]:
        raise ValueError(f"{folder}: {_CAMERA_FOLDER[other]}/ does not hold the same frames as {_CAMERA_FOLDER[target]}/")
    with Image.open(frames[0]) as image:
        calib = read_odometry_calibration(folder / "calib.txt", image.size)
    depth = None
    if ground_truth:
        if calib.velo_to_cam is None:
            raise ValueError(f"{folder / 'calib.txt'}: no Tr (velodyne to camera), so no lidar ground truth")
        depth = tuple(folder / "velodyne" / f"{p.stem}.bin" for p in frames)
    return FolderScene(
        root=folder,
        frames=tuple(frames),
        intrinsics=calib.intrinsics(target),
        right=tuple(right) if right else None,
        depth=depth,
        poses=None,
        other_side=1.0 if target == 2 else -1.0,  # camera 3 is to the right of camera 2
        depth_loader=functools.partial(lidar_depth, calib=calib, camera=target) if ground_truth else None,
    )


class KittiOdometryDataset(FolderDataset):
    """KITTI odometry sequences as samples with the keys of ``FolderDataset`` (see folder.py).

    Args:
        root: the odometry root (holding ``sequences/``).
        sequences: sequence names, e.g. ("00", "05"); empty = every sequence under ``root`` that
            training may use (held-out ones are then left out and said so).
        height, width: network input size (multiples of 32).
        temporal_offsets: neighbouring frames; frames without all of them (sequence ends) are not
            used as targets, and how many is printed once.
        stereo: return the other colour camera's frame.
        augment, cache, zoom: as for ``FolderDataset``.
        ground_truth: lidar depth for every target (only frames with a scan are used).
        sides: "l", "r" or "lr": which colour cameras serve as targets.
        refuse_held_out: raise for sequences the benchmarks test on (04, 09, 10; kitti_held_out.py).
    """

    def __init__(
        self,
        root: str | Path,
        sequences: tuple[str, ...],
        height: int,
        width: int,
        temporal_offsets: tuple[int, ...] = (),
        stereo: bool = False,
        augment: bool = False,
        cache: bool = False,
        ground_truth: bool = False,
        zoom: float = 1.0,
        sides: str = "l",
        refuse_held_out: bool = False,
    ) -> None:
        root = Path(root)
        present = list_sequences(root)
        if not sequences:
            held_out = [n for n in present if refuse_held_out and held_out_reason(ODOMETRY_DRIVES.get(n, ""))]
            if held_out:
                print(f"KITTI odometry {root}: leaving out sequences {', '.join(held_out)} (held out for testing)")
            sequences = tuple(n for n in present if n not in held_out)
        scenes, index, without_neighbours, without_lidar = [], [], 0, 0
        lo, hi = min(temporal_offsets, default=0), max(temporal_offsets, default=0)
        for name in sequences:
            if name not in present:
                raise FileNotFoundError(f"KITTI odometry sequence {name} not under {root / 'sequences'} "
                                        f"(found: {', '.join(present) or 'none'})")
            if refuse_held_out:
                check_training_sequence(name, str(root))
            for side in sides:
                scene = _sequence_scene(root, name, 2 if side == "l" else 3, ground_truth)
                if stereo and scene.right is None:
                    raise FileNotFoundError(f"{scene.root}: stereo needs {_CAMERA_FOLDER[5 - (2 if side == 'l' else 3)]}/")
                count = len(scene.frames)
                for i in range(count):
                    if i + lo < 0 or i + hi >= count:
                        without_neighbours += 1
                    elif scene.depth is not None and not scene.depth[i].is_file():
                        without_lidar += 1
                    else:
                        index.append((len(scenes), i))
                scenes.append(scene)
        if without_neighbours:
            print(f"KITTI odometry {root}: {without_neighbours} target frames lack a neighbour at "
                  f"{tuple(temporal_offsets)} (sequence ends): not used as targets")
        self.frames_without_lidar = without_lidar
        if not index:
            raise ValueError(f"KITTI odometry {root}: no usable frames in sequences {', '.join(sequences) or 'none'}")
        self._setup(scenes, index, height, width, temporal_offsets, stereo, augment, cache, zoom)
