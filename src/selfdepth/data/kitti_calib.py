"""KITTI raw calibration (one file pair per recording day) and lidar ground truth.

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_<nnnn>_sync/velodyne_points/data/0000000000.bin

Ground truth follows the standard recipe (Eigen et al., Monodepth2's
``generate_depth_map``): velodyne -> camera 0 -> rectified -> ``P_rect_0x``,
rounding to the nearest pixel (minus 1, as KITTI's MATLAB code), and the
nearest point where several land on one pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfdepth.io import Intrinsics

__all__ = ["KittiCalibration", "read_calibration", "read_odometry_calibration", "lidar_depth"]


def _read_key_values(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A KITTI calibration file as ``{key: float array}``; error naming the file for missing keys."""
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calibration file not found: {path}")
    values: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError:
            continue  # calib_time and other text fields
    missing = [k for k in required if k not in values]
    if missing:
        raise ValueError(f"{path}: missing calibration keys {missing}")
    for key in required:
        want = 12 if key.startswith("P_rect") or key in ("P0", "P1", "P2", "P3", "Tr") else 9 if key.startswith("R") else 3 if key == "T" else 2
        if values[key].size != want:
            raise ValueError(f"{path}: {key} has {values[key].size} numbers, expected {want}")
    return values


@dataclass(frozen=True)
class KittiCalibration:
    """One recording day's calibration.

    Attributes:
        P_rect: camera index (0-3) -> (3, 4) rectified projection matrix.
        R_rect_00: (3, 3) rectifying rotation of camera 0.
        velo_to_cam: (4, 4) velodyne -> camera 0 (unrectified) transform; None without lidar calibration.
        image_size: (width, height) of the rectified images (``S_rect_02``).
        folder: the date folder the files came from.
    """

    P_rect: dict[int, np.ndarray]
    R_rect_00: np.ndarray
    velo_to_cam: np.ndarray | None
    image_size: tuple[int, int]
    folder: Path

    def intrinsics(self, camera: int = 2) -> Intrinsics:
        """Pinhole intrinsics of colour camera 2 or 3, with the 2-3 baseline in metres."""
        P = self.P_rect[camera]
        return Intrinsics(P[0, 0], P[1, 1], P[0, 2], P[1, 2], *self.image_size, baseline=self.baseline())

    def baseline(self) -> float:
        """Distance between colour cameras 2 and 3 in metres, from ``P_rect`` (0.532 m on 2011_09_26)."""
        return float((self.P_rect[2][0, 3] - self.P_rect[3][0, 3]) / self.P_rect[2][0, 0])


@functools.lru_cache(maxsize=64)
def read_calibration(date_folder: str | Path) -> KittiCalibration:
    """Parse ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` in a KITTI date folder."""
    folder = Path(date_folder)
    cam = _read_key_values(
        folder / "calib_cam_to_cam.txt", ("P_rect_00", "P_rect_01", "P_rect_02", "P_rect_03", "R_rect_00", "S_rect_02")
    )
    velo = _read_key_values(folder / "calib_velo_to_cam.txt", ("R", "T"))
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = velo["R"].reshape(3, 3)
    velo_to_cam[:3, 3] = velo["T"]
    width, height = (int(round(v)) for v in cam["S_rect_02"])
    return KittiCalibration(
        P_rect={i: cam[f"P_rect_0{i}"].reshape(3, 4) for i in range(4)},
        R_rect_00=cam["R_rect_00"].reshape(3, 3),
        velo_to_cam=velo_to_cam,
        image_size=(width, height),
        folder=folder,
    )


def read_odometry_calibration(calib_file: str | Path, image_size: tuple[int, int]) -> KittiCalibration:
    """A KITTI odometry ``calib.txt`` (P0-P3 of the rectified cameras, ``Tr`` velodyne -> camera 0).

    The odometry download's projections already act on rectified camera-0 coordinates, so the
    rectifying rotation is the identity; ``Tr`` is optional (without it there is no lidar depth).
    ``image_size`` is (width, height) of the sequence's images (they differ between sequences).
    """
    path = Path(calib_file)
    values = _read_key_values(path, ("P0", "P1", "P2", "P3"))
    velo_to_cam = None
    if "Tr" in values:
        if values["Tr"].size != 12:
            raise ValueError(f"{path}: Tr has {values['Tr'].size} numbers, expected 12")
        velo_to_cam = np.eye(4)
        velo_to_cam[:3, :] = values["Tr"].reshape(3, 4)
    return KittiCalibration(
        P_rect={i: values[f"P{i}"].reshape(3, 4) for i in range(4)},
        R_rect_00=np.eye(3),
        velo_to_cam=velo_to_cam,
        image_size=(int(image_size[0]), int(image_size[1])),
        folder=path.parent,
    )


def lidar_depth(velodyne_file: str | Path, calib: KittiCalibration, camera: int = 2) -> np.ndarray:
    """Project a velodyne scan into colour camera 2 or 3: sparse depth in metres.

    Args:
        velodyne_file: ``velodyne_points/data/*.bin``, float32 (x, y, z, reflectance) per point.
        calib: the recording day's calibration.
        camera: 2 (left) or 3 (right).

    Returns:
        (H, W) float32 depth (rectified camera z), 0 where no point landed.
    """
    if calib.velo_to_cam is None:
        raise ValueError(f"{calib.folder}: no velodyne-to-camera calibration (Tr), so no lidar depth")
    path = Path(velodyne_file)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne file not found: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0 or raw.size % 4:
        raise ValueError(f"{path}: {raw.size * 4} bytes is not a whole number of 16-byte points (truncated?)")
    points = raw.reshape(-1, 4).astype(np.float64)
    points = points[points[:, 0] >= 0]  # in front of the car
    points[:, 3] = 1.0
    rect = np.eye(4)
    rect[:3, :3] = calib.R_rect_00
    velo_to_image = calib.P_rect[camera] @ rect @ calib.velo_to_cam  # (3, 4)
    uvz = points @ velo_to_image.T  # (N, 3)
    z = uvz[:, 2]
    u = np.round(uvz[:, 0] / z) - 1  # "- 1" as KITTI's MATLAB devkit
    v = np.round(uvz[:, 1] / z) - 1
    width, height = calib.image_size
    keep = (u >= 0) & (v >= 0) & (u < width) & (v < height) & (z > 0)
    depth = np.full((height, width), np.inf)
    np.minimum.at(depth, (v[keep].astype(int), u[keep].astype(int)), z[keep])  # nearest point per pixel
    depth[~np.isfinite(depth)] = 0.0
    return depth.astype(np.float32)
