"""Which KITTI drives a training set may not use: the Eigen test drives and the odometry pose benchmark.

Training on a drive the depth or pose benchmarks test on makes their figures meaningless, and it is
easy to do by accident (a raw drive and an odometry sequence can be the same recording). The loaders
call ``check_training_drive`` / ``check_training_sequence`` for every drive they are asked to train
on; ``data.refuse_held_out=false`` turns the check off for deliberate fits (e.g. a smoke test that
overfits the 10-frame Eigen test sample).
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["ODOMETRY_DRIVES", "HELD_OUT_SEQUENCES", "held_out_reason", "check_training_drive",
           "check_training_sequence"]

# KITTI odometry sequence -> the raw drive it was cut from (the odometry devkit's readme).
ODOMETRY_DRIVES = {
    "00": "2011_10_03/2011_10_03_drive_0027_sync", "01": "2011_10_03/2011_10_03_drive_0042_sync",
    "02": "2011_10_03/2011_10_03_drive_0034_sync", "03": "2011_09_26/2011_09_26_drive_0067_sync",
    "04": "2011_09_30/2011_09_30_drive_0016_sync", "05": "2011_09_30/2011_09_30_drive_0018_sync",
    "06": "2011_09_30/2011_09_30_drive_0020_sync", "07": "2011_09_30/2011_09_30_drive_0027_sync",
    "08": "2011_09_30/2011_09_30_drive_0028_sync", "09": "2011_09_30/2011_09_30_drive_0033_sync",
    "10": "2011_09_30/2011_09_30_drive_0034_sync",
}
# Sequences 09 and 10 are the pose benchmark (Zhou et al., Monodepth2's evaluate_pose.py).
HELD_OUT_SEQUENCES = ("09", "10")


@functools.lru_cache(maxsize=1)
def _eigen_test_drives() -> frozenset[str]:
    text = resources.files("selfdepth.data").joinpath("splits", "eigen", "test_files.txt").read_text()
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def held_out_reason(drive: str) -> str | None:
    """Why raw drive ``<date>/<date>_drive_<nnnn>_sync`` is held out of training, or None if it is not.

    Note that odometry sequences 00, 04, 05 and 07 are Eigen test drives too (10_03_0027, 09_30_0016,
    09_30_0018, 09_30_0027): of 00-08 only 01, 02, 03, 06 and 08 may train a depth model.
    """
    drive = drive.strip("/")
    sequence = next((s for s, d in ODOMETRY_DRIVES.items() if d == drive), None)
    if drive in _eigen_test_drives():
        also = f" (and odometry sequence {sequence})" if sequence else ""
        return f"an Eigen test drive{also}: the depth benchmark scores on it"
    if sequence in HELD_OUT_SEQUENCES:
        return f"odometry sequence {sequence}, the pose benchmark"
    return None


def check_training_drive(drive: str, where: str) -> None:
    """Raise ValueError (naming ``where``, e.g. the split file and line) if ``drive`` is held out."""
    reason = held_out_reason(drive)
    if reason:
        raise ValueError(f"{where}: refusing to train on {drive.strip('/')}, {reason}; "
                         "set data.refuse_held_out=false to fit it anyway (its test figures then mean nothing)")


def check_training_sequence(sequence: str, where: str) -> None:
    """Raise ValueError if odometry ``sequence`` (e.g. "04") is held out (a test drive or the pose benchmark)."""
    if sequence in ODOMETRY_DRIVES:
        check_training_drive(ODOMETRY_DRIVES[sequence], f"{where}: odometry sequence {sequence}")
