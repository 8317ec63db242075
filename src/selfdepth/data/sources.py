"""Training data from one or several sources: selfdepth scene folders, KITTI raw roots, KITTI odometry roots.

``data.train`` names them, comma-separated; each is recognised by its layout:

    <root>/sequences/<nn>/image_2/...          a KITTI odometry root (sequences: ``data.odometry_sequences``)
    <root>/<date>/<date>_drive_<nnnn>_sync/    a KITTI raw root (frames: ``data.kitti_split``, else every frame)
    anything else                              a folder of scenes in the selfdepth layout (folder.py)

All of them become one ``FolderDataset``: every drive keeps its own calibration and image size.
Sources may differ in what they know: rendered scenes carry true depth and motion, real drives do
not. ``collate_sources`` batches such a mix (e.g. real drives trained beside the renderer's streets,
whose supervised terms then apply to the rendered samples only).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import default_collate

from selfdepth.data.folder import FolderDataset
from selfdepth.data.kitti import KittiDataset, drive_frames, is_kitti_raw_root
from selfdepth.data.kitti_odometry import KittiOdometryDataset

__all__ = ["split_sources", "open_sources", "describe", "collate_sources"]


def split_sources(spec: str) -> list[Path]:
    """``"a,b"`` -> [Path("a"), Path("b")] (blank entries ignored)."""
    return [Path(p.strip()) for p in spec.split(",") if p.strip()]


def open_sources(
    spec: str,
    height: int,
    width: int,
    kitti_split: str | None = None,
    odometry_sequences: tuple[str, ...] = (),
    refuse_held_out: bool = True,
    skip_missing: bool = False,
    **kwargs,
) -> FolderDataset:
    """The training data set of every source in ``spec``.

    Args:
        spec: comma-separated source folders (see the module docstring).
        height, width: network input size.
        kitti_split: split (name or file) over the KITTI raw roots' drives; None = all their frames.
        odometry_sequences: sequences of the odometry roots; empty = all but the held-out ones.
        refuse_held_out: raise for Eigen test drives and the pose benchmark (kitti_held_out.py).
        skip_missing: leave out split lines whose drive or files are absent.
        **kwargs: temporal_offsets, stereo, augment, cache, zoom (as for ``FolderDataset``).
    """
    paths = split_sources(spec)
    if not paths:
        raise ValueError("data.train names no source")
    for path in paths:
        if not path.is_dir():
            raise FileNotFoundError(f"training data not found: {path}")
    raw = [p for p in paths if not (p / "sequences").is_dir() and is_kitti_raw_root(p)]
    odometry = [p for p in paths if (p / "sequences").is_dir()]
    folders = [p for p in paths if p not in raw and p not in odometry]
    if kitti_split and not raw:
        raise ValueError(f"data.kitti_split is set but no source in data.train is a KITTI raw root: {spec}")
    parts: list[FolderDataset] = []
    if raw:
        rows = kitti_split or [row for root in raw for row in drive_frames(root)]
        parts.append(KittiDataset(raw, rows, height, width, skip_missing=skip_missing, refuse_held_out=refuse_held_out,
                                  **kwargs))
    for root in odometry:
        parts.append(KittiOdometryDataset(root, odometry_sequences, height, width, sides="lr",
                                          refuse_held_out=refuse_held_out, **kwargs))
    parts += [FolderDataset(root, height, width, **kwargs) for root in folders]
    return parts[0] if len(parts) == 1 else FolderDataset.concat(parts)


def describe(dataset: FolderDataset) -> str:
    """``"684 samples of 10 drives (2011_09_26_drive_0005_sync, ...)"``: what a run trains on."""
    drives = list(dict.fromkeys(scene.root for scene in dataset.scenes))  # a drive seen from both cameras counts once
    names = [f"{p.parent.parent.name}/{p.name}" if p.parent.name == "sequences" else p.name for p in drives]
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"{len(dataset)} samples of {len(drives)} drives or scenes ({shown})"


# Keys a sample may lack when sources are mixed, and what stands in for them. Zero depth and zero
# region bits already mean "unknown" to every consumer; a zero pose would not, so the batch gains a
# ``pose_known`` flag per sample instead.
_OPTIONAL = ("depth_gt", "regions", "pose_gt")


def collate_sources(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch, as ``default_collate``, also when only some carry ground truth.

    A sample without ``depth_gt`` / ``regions`` gets zeros (unknown) shaped like the others'; where only
    some samples have ``pose_gt``, the others get identity transforms and the batch a ``pose_known`` (B,)
    bool that the supervised pose term reads. Raises ValueError when the present ones differ in shape.
    """
    keys = set().union(*samples)
    for key in keys:
        present = [s[key] for s in samples if key in s]
        if len(present) == len(samples):
            continue
        if key not in _OPTIONAL:
            raise ValueError(f"samples disagree on '{key}': {len(present)} of {len(samples)} have it")
        like = present[0]
        if any(p.shape != like.shape for p in present):
            raise ValueError(f"'{key}' differs in shape between samples: {sorted({tuple(p.shape) for p in present})}")
        if key == "pose_gt":
            samples = [{**s, "pose_known": torch.tensor("pose_gt" in s)} for s in samples]
            filler = torch.eye(4).expand_as(like).clone()
        else:
            filler = torch.zeros_like(like)
        samples = [s if key in s else {**s, key: filler} for s in samples]
    return default_collate(samples)
