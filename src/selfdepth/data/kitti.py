"""KITTI raw: the standard split lists and training / evaluation samples (calibration and lidar: kitti_calib.py).

The layout is what KITTI's raw archives unpack to:

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_<nnnn>_sync/image_02/data/0000000000.png   left colour camera
    <root>/<date>/<date>_drive_<nnnn>_sync/image_03/data/...              right colour camera
    <root>/<date>/<date>_drive_<nnnn>_sync/velodyne_points/data/0000000000.bin

Images may be PNG (as downloaded) or JPEG (``.jpg``, the conversion Monodepth2's
README recommends); each drive is checked once and must hold one kind only.
Velodyne scans may be sparse (a scan every 10th frame, say): evaluation scores
the frames that have one and reports how many did not.

Split lists (shipped in ``selfdepth/data/splits``) hold one frame per line,
``<date>/<drive>_sync <frame index> <l|r>``: ``l`` makes image_02 the target
and image_03 the stereo source, ``r`` the reverse.

Ground truth (``depth_gt``) is the velodyne scan projected into the target camera (kitti_calib.py).
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from selfdepth.data.folder import FolderDataset, FolderScene
from selfdepth.data.kitti_calib import lidar_depth, read_calibration
from selfdepth.data.kitti_held_out import check_training_drive

__all__ = [
    "SPLITS",
    "read_split",
    "KittiDataset",
    "GARG_CROP",
    "image_suffix",
    "drive_split",
    "drive_frames",
    "is_kitti_raw_root",
]

# Split name -> file inside selfdepth/data/splits.
SPLITS = {
    "eigen": "eigen/test_files.txt",
    "eigen_benchmark": "eigen_benchmark/test_files.txt",
    "eigen_zhou": "eigen_zhou/train_files.txt",
    "eigen_zhou_val": "eigen_zhou/val_files.txt",
    "eigen_full": "eigen_full/train_files.txt",
    "eigen_full_val": "eigen_full/val_files.txt",
}
# Garg et al.'s evaluation crop as fractions of (height, height, width, width): rows y0:y1, columns x0:x1.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
_CAMERA_FOLDER = {2: "image_02", 3: "image_03"}


def read_split(split: str | Path) -> list[tuple[str, int, str]]:
    """A split list as ``(drive folder, frame index, side)``; ``split`` is a name in SPLITS or a file."""
    return [row[1:] for row in _numbered_split(split)[1]]


def _numbered_split(split: str | Path | list[tuple[str, int, str]]) -> tuple[str, list[tuple[int, str, int, str]]]:
    """(where the split came from, ``(line number, drive, frame, side)`` per line); ``split`` may be rows."""
    if isinstance(split, list):
        return "the drives' frames", [(n, *row) for n, row in enumerate(split, 1)]
    if str(split) in SPLITS:
        text = resources.files("selfdepth.data").joinpath("splits", SPLITS[str(split)]).read_text()
        source = f"split {split!r}"
    else:
        path = Path(split)
        if not path.is_file():
            raise FileNotFoundError(f"split file not found: {path} (or use one of: {', '.join(SPLITS)})")
        text, source = path.read_text(), f"split file {path}"
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in ("l", "r") or not parts[1].isdigit():
            raise ValueError(f"{source}, line {n}: expected '<date>/<drive>_sync <frame> <l|r>', got {line!r}")
        rows.append((n, parts[0], int(parts[1]), parts[2]))
    return source, rows


class KittiDataset(FolderDataset):
    """KITTI raw samples with the same keys as ``FolderDataset`` (see folder.py), for a split list.

    Ground truth (``depth_gt``) is the lidar projected into the target camera. Each drive uses its
    own day's calibration; images of any size are resized to the network's, intrinsics following.

    Args:
        root: the KITTI raw root (holding the date folders), or several: each split line is read
            from the first root that holds its drive.
        split: a split name from ``SPLITS``, a split file, or its rows (e.g. ``drive_frames(root)``).
        height, width: network input size (multiples of 32).
        temporal_offsets: neighbouring frames, e.g. (-1, 1). Split frames whose neighbours are
            missing (drive ends, gaps) are not used as targets; how many is printed once.
        stereo: return the other colour camera's frame.
        augment: colour jitter and horizontal flips.
        cache: keep decoded images in memory.
        zoom: with ``augment``, random zoom up to this factor (see ``FolderDataset``).
        ground_truth: compute lidar depth (needs velodyne_points). Split frames
            whose images exist but whose scan does not are left out and counted
            in ``frames_without_lidar``; it is an error if no frame has a scan.
        skip_missing: drop split entries whose drive or files are missing instead of raising.
        refuse_held_out: raise for drives the benchmarks test on (kitti_held_out.py): for training.
    """

    def __init__(
        self,
        root: str | Path | list[str | Path] | tuple[str | Path, ...],
        split: str | Path | list[tuple[str, int, str]],
        height: int,
        width: int,
        temporal_offsets: tuple[int, ...] = (),
        stereo: bool = False,
        augment: bool = False,
        cache: bool = False,
        ground_truth: bool = False,
        skip_missing: bool = False,
        zoom: float = 1.0,
        refuse_held_out: bool = False,
    ) -> None:
        roots = [Path(r) for r in ([root] if isinstance(root, (str, Path)) else root)]
        for r in roots:
            if not r.is_dir():
                raise FileNotFoundError(f"KITTI root not found: {r}")
        source, rows = _numbered_split(split)
        named = " or ".join(str(r) for r in roots)
        scenes: dict[tuple[str, str], FolderScene] = {}  # (drive, side) -> scene, in first-seen order
        order: dict[tuple[str, str], int] = {}
        drive_root: dict[str, Path] = {}  # drive -> the root holding it (checked once per drive)
        index, missing, absent_drives, without_neighbours = [], [], 0, 0
        self.frames_without_lidar = 0
        for n, drive, frame, side in rows:
            where = f"{source}, line {n}" if not isinstance(split, list) else f"{named}: {drive}"
            if drive not in drive_root:
                found = next((r for r in roots if (r / drive).is_dir()), None)
                if found is None:
                    if skip_missing:
                        absent_drives += 1
                        continue
                    date = drive.split("/")[0]
                    what = "drive" if any((r / date).is_dir() for r in roots) else "date folder of drive"
                    raise FileNotFoundError(f"{where}: {what} {drive} is not under {named} "
                                            "(download it, or pass --skip-missing to train on the drives present)")
                if refuse_held_out:
                    check_training_drive(drive, where)
                drive_root[drive] = found
            base = drive_root[drive]
            target_cam, other_cam = (2, 3) if side == "l" else (3, 2)
            files = [_frame_file(base, drive, target_cam, frame)]
            if stereo:
                files.append(_frame_file(base, drive, other_cam, frame))
            absent = [f for f in files if not f.is_file()]
            if absent:
                missing.extend(absent)
                continue
            if not all(_frame_file(base, drive, target_cam, frame + o).is_file() for o in temporal_offsets):
                without_neighbours += 1  # a drive's end or a gap: no temporal warp for this target
                continue
            if ground_truth and not (base / drive / "velodyne_points" / "data" / f"{frame:010d}.bin").is_file():
                self.frames_without_lidar += 1  # sparse scans: score the frames that have one
                continue
            key = (drive, side)
            if key not in scenes:
                try:
                    scenes[key] = _drive_scene(base, drive, target_cam, other_cam, ground_truth)
                except FileNotFoundError as err:  # e.g. the date's calibration files: say which line needed them
                    raise FileNotFoundError(f"{where}: drive {drive}: {err}") from None
                order[key] = len(order)
            index.append((order[key], frame))
        if missing and not skip_missing:
            shown = "\n  ".join(str(p) for p in missing[:5])
            raise FileNotFoundError(
                f"{len(missing)} files listed by {source} are missing under {named}, e.g.:\n  {shown}\n"
                "(download the raw archives listed in kitti_archives_to_download.txt, or pass --skip-missing)"
            )
        if missing or absent_drives:
            print(f"KITTI: skipped {len(missing) + absent_drives} of {len(rows)} split entries whose drive or files are missing")
        if without_neighbours:
            print(f"KITTI: {without_neighbours} split frames lack a neighbour at {tuple(temporal_offsets)} "
                  "(drive ends or gaps): not used as targets")
        if not index and ground_truth and self.frames_without_lidar:
            raise FileNotFoundError(f"none of the {self.frames_without_lidar} frames of {source} under {named} "
                                    "has a velodyne scan (velodyne_points/data/<frame>.bin): no ground truth")
        if not index:
            raise ValueError(f"no frames of {source} found under {named}")
        self._setup(list(scenes.values()), index, height, width, temporal_offsets, stereo, augment, cache, zoom)


@functools.lru_cache(maxsize=256)
def image_suffix(drive_folder: Path) -> str:
    """``.png`` or ``.jpg``: the one image format of a drive's colour cameras (image_02 and image_03).

    Raises:
        FileNotFoundError: the drive folder or its image folders hold no .png or .jpg image.
        ValueError: the drive mixes both formats (which frame is which would be ambiguous).
    """
    found = set()
    for camera in _CAMERA_FOLDER.values():
        folder = drive_folder / camera / "data"
        if folder.is_dir():
            with os.scandir(folder) as entries:
                found |= {Path(e.name).suffix.lower() for e in entries} & {".png", ".jpg"}
    if found == {".png", ".jpg"}:
        raise ValueError(f"{drive_folder}: image_02/image_03 mix .png and .jpg files; keep one format per drive")
    if not found:
        raise FileNotFoundError(f"{drive_folder}: no .png or .jpg images in image_02/data or image_03/data")
    return found.pop()


def _frame_file(root: Path, drive: str, camera: int, frame: int) -> Path:
    suffix = image_suffix(root / drive) if (root / drive).is_dir() else ".png"  # a missing drive is reported by caller
    return root / drive / _CAMERA_FOLDER[camera] / "data" / f"{frame:010d}{suffix}"


def _drive_scene(root: Path, drive: str, target: int, other: int, ground_truth: bool) -> FolderScene:
    """One drive seen from camera ``target`` as a scene: frame i is ``<i:010d>.png`` (or ``.jpg``)."""
    calib = read_calibration(root / drive.split("/")[0])
    folder = root / drive
    suffix = image_suffix(folder)
    count = 1 + max(int(p.stem) for p in (folder / _CAMERA_FOLDER[target] / "data").glob(f"*{suffix}"))
    frames = tuple(_frame_file(root, drive, target, i) for i in range(count))
    right = tuple(_frame_file(root, drive, other, i) for i in range(count))
    depth = tuple(folder / "velodyne_points" / "data" / f"{i:010d}.bin" for i in range(count)) if ground_truth else None
    loader = functools.partial(lidar_depth, calib=calib, camera=target)
    return FolderScene(
        root=folder,
        frames=frames,
        intrinsics=calib.intrinsics(target),
        right=right,
        depth=depth,
        poses=None,
        other_side=1.0 if target == 2 else -1.0,  # camera 3 is to the right of camera 2
        depth_loader=loader if ground_truth else None,
    )


def drive_split(root: str | Path, drive: str, path: str | Path, sides: str = "lr", neighbours: int = 1,
                with_lidar: bool = False) -> Path:
    """Write a split file listing every frame of one drive that has ``neighbours`` frames on each side.

    ``sides`` "l", "r" or "lr" (both cameras as targets); ``with_lidar`` keeps only frames with a scan.
    """
    folder = Path(root) / drive
    frames = sorted(int(p.stem) for p in (folder / "image_02" / "data").glob(f"*{image_suffix(folder)}"))
    keep = [f for f in frames if f - neighbours >= frames[0] and f + neighbours <= frames[-1]]
    if with_lidar:
        keep = [f for f in keep if (folder / "velodyne_points" / "data" / f"{f:010d}.bin").is_file()]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{drive} {f} {side}\n" for f in keep for side in sides))
    return path


def is_kitti_raw_root(root: str | Path) -> bool:
    """True if ``root`` holds a KITTI raw date folder (``<date>/<date>_drive_<nnnn>_sync``)."""
    root = Path(root)
    return root.is_dir() and any(root.glob("*/*_drive_*_sync"))


def drive_frames(root: str | Path, sides: str = "lr") -> list[tuple[str, int, str]]:
    """Split rows for every frame of every drive under a KITTI raw root (both cameras by default)."""
    rows = []
    for folder in sorted(Path(root).glob("*/*_drive_*_sync")):
        drive = f"{folder.parent.name}/{folder.name}"
        frames = sorted(int(p.stem) for p in (folder / "image_02" / "data").glob(f"*{image_suffix(folder)}"))
        rows.extend((drive, f, side) for f in frames for side in sides)
    return rows
