"""Training samples from folders of frames: the synthetic renderer's output or your own camera.

Layout (one folder per scene, any names; see README "Your own data"):

    <root>/<scene>/intrinsics.json   fx, fy, cx, cy (or K), pixels; optional width, height, baseline (m)
    <root>/<scene>/left/*.png        frames in time order (file names sort in time order)
    <root>/<scene>/right/*.png       optional: the right camera, same names as left/
    <root>/<scene>/depth/*.npy       optional: ground truth, float32 metres (or 16-bit .png in mm), 0 = invalid
    <root>/<scene>/poses.txt         optional: a line per frame, 12 numbers, row-major 3x4 camera-to-world
    <root>/<scene>/masks/*.png       optional: 8-bit region bits per frame (io.REGION_BITS), for evaluation

A sample is a dict (default collation stacks it into a batch):

    image          (3, H, W)     target frame t in [0, 1]; what the loss compares against
    image_aug      (3, H, W)     the same frame colour-jittered; what the depth network sees
    temporal       (T, 3, H, W)  frames t+o for o in ``temporal_offsets`` (absent when empty)
    temporal_aug   (T, 3, H, W)  the same, jittered with the same parameters; the pose network's input
    stereo         (3, H, W)     the other camera's frame t (when ``stereo``)
    stereo_sign    ()            +1 if the other camera is to the right of the target, -1 if left (flips)
    K              (4, 3, 3)     intrinsics at scales 0-3, i.e. sizes (H / 2^s, W / 2^s)
    depth_gt       (1, H0, W0)   ground truth at the data's own resolution (when depth/ exists)
    regions        (1, H0, W0)   uint8 region bits at the data's own resolution (when masks/ exists)
    pose_gt        (T, 4, 4)     target-camera to source-camera transforms in metres (when poses.txt exists)

Horizontal flipping mirrors every image, swaps which side the other stereo
camera is on, mirrors the principal point (``cx -> W - 1 - cx``) and mirrors
the true relative poses (``M T M`` with ``M = diag(-1, 1, 1, 1)``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from selfdepth.data.augment import Window, colour_jitter, crop_resize, random_window, zoom_intrinsics
from selfdepth.io import IMAGE_SUFFIXES, Intrinsics, load_depth, load_image, load_intrinsics, load_region_mask

__all__ = ["FolderScene", "FolderDataset", "find_scenes", "NUM_SCALES"]

NUM_SCALES = 4
_FLIP = np.diag([-1.0, 1.0, 1.0, 1.0])


@dataclass(frozen=True)
class FolderScene:
    """One scene folder, checked and indexed.

    Attributes:
        root: the scene folder.
        frames: left-camera frame files in time order.
        intrinsics: the camera, at the frames' own resolution.
        right: right-camera files matching ``frames``, or None.
        depth: ground-truth files matching ``frames``, or None.
        poses: (N, 4, 4) camera-to-world transforms, or None.
        other_side: +1 when the ``right`` camera is to the right of ``frames``' camera, -1 when left.
        depth_loader: reads a ``depth`` file into (H, W) metres; None = ``load_depth`` (.npy / .png).
        masks: region-bit masks matching ``frames`` (``io.REGION_BITS``), or None.
    """

    root: Path
    frames: tuple[Path, ...]
    intrinsics: Intrinsics
    right: tuple[Path, ...] | None
    depth: tuple[Path, ...] | None
    poses: np.ndarray | None
    other_side: float = 1.0
    depth_loader: Callable[[Path], np.ndarray] | None = None
    masks: tuple[Path, ...] | None = None

    @classmethod
    def open(cls, root: str | Path) -> FolderScene:
        """Index a scene folder; raise with the file name if anything is missing or malformed."""
        root = Path(root)
        left = root / "left"
        if not left.is_dir():
            raise FileNotFoundError(f"scene {root}: no left/ folder of frames")
        frames = tuple(sorted(p for p in left.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        if not frames:
            raise FileNotFoundError(f"scene {root}: left/ holds no images ({', '.join(IMAGE_SUFFIXES)})")
        calib = next((root / n for n in ("intrinsics.json", "intrinsics.yaml", "intrinsics.yml") if (root / n).exists()), None)
        if calib is None:
            raise FileNotFoundError(f"scene {root}: no intrinsics.json or intrinsics.yaml")
        with Image.open(frames[0]) as im:
            width, height = im.size
        intrinsics = load_intrinsics(calib, width, height)

        def matching(sub: str, suffixes: tuple[str, ...]) -> tuple[Path, ...] | None:
            folder = root / sub
            if not folder.is_dir():
                return None
            found = []
            for frame in frames:
                path = next((folder / (frame.stem + s) for s in suffixes if (folder / (frame.stem + s)).exists()), None)
                if path is None:
                    raise FileNotFoundError(f"scene {root}: {sub}/ has no file for frame {frame.name}")
                found.append(path)
            return tuple(found)

        right = matching("right", (frames[0].suffix,) + IMAGE_SUFFIXES)
        depth = matching("depth", (".npy", ".png"))
        poses = None
        if (root / "poses.txt").exists():
            try:
                rows = np.loadtxt(root / "poses.txt", ndmin=2)
            except ValueError as err:
                raise ValueError(f"{root / 'poses.txt'}: cannot parse: {err}") from None
            if rows.shape != (len(frames), 12):
                raise ValueError(f"{root / 'poses.txt'}: expected {len(frames)} lines of 12 numbers, got shape {rows.shape}")
            poses = np.tile(np.eye(4), (len(frames), 1, 1))
            poses[:, :3, :] = rows.reshape(-1, 3, 4)
        return cls(root, frames, intrinsics, right, depth, poses, masks=matching("masks", (".png",)))


def find_scenes(root: str | Path) -> list[Path]:
    """Scene folders under ``root`` (folders holding ``left/``), or ``root`` itself if it is one."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if (root / "left").is_dir():
        return [root]
    scenes = sorted(p for p in root.iterdir() if (p / "left").is_dir())
    if not scenes:
        raise FileNotFoundError(f"{root}: no scene folders (folders with a left/ subfolder) found")
    return scenes


class FolderDataset(Dataset):
    """Samples for self-supervised training and evaluation (see the module docstring for keys).

    Args:
        root: a folder of scenes, or one scene folder.
        height: network input height (multiple of 32).
        width: network input width (multiple of 32).
        temporal_offsets: neighbouring frames to return, e.g. (-1, 1); () for none.
        stereo: return the other camera's frame; every scene must have right/ and a baseline.
        augment: random colour jitter and horizontal flip.
        cache: keep decoded images in memory (small data sets, single-process loading).
        zoom: with ``augment``, crop a random window of 1/z of each side, z uniform in [1, zoom],
            the same for every view of a sample, with the intrinsics to match (augment.py).
    """

    def __init__(
        self,
        root: str | Path,
        height: int,
        width: int,
        temporal_offsets: tuple[int, ...] = (),
        stereo: bool = False,
        augment: bool = False,
        cache: bool = False,
        zoom: float = 1.0,
    ) -> None:
        scenes = [FolderScene.open(p) for p in find_scenes(root)]
        lo, hi = min(temporal_offsets, default=0), max(temporal_offsets, default=0)
        index = [(s, i) for s, scene in enumerate(scenes) for i in range(max(0, -lo), len(scene.frames) - max(0, hi))]
        if not index:
            raise ValueError(f"{root}: no frame has all of the neighbours {tuple(temporal_offsets)}")
        self._setup(scenes, index, height, width, temporal_offsets, stereo, augment, cache, zoom)

    @classmethod
    def concat(cls, parts: list[FolderDataset]) -> FolderDataset:
        """One data set of several (e.g. KITTI raw drives and odometry sequences) with the same settings."""
        first = parts[0]
        for part in parts[1:]:
            if (part.height, part.width, part.temporal_offsets, part.stereo, part.augment, part.zoom) != (
                    first.height, first.width, first.temporal_offsets, first.stereo, first.augment, first.zoom):
                raise ValueError("cannot join data sets with different sizes, offsets, stereo, augmentation or zoom")
        joined = cls.__new__(cls)
        joined.__dict__.update(first.__dict__)
        joined.scenes, joined.index = [], []
        for part in parts:
            joined.index += [(s + len(joined.scenes), i) for s, i in part.index]
            joined.scenes += part.scenes
        joined._cache = {} if first._cache is not None else None
        return joined

    def keep_fraction(self, fraction: float) -> None:
        """Keep the first ``fraction`` of each scene's samples, in time order (at least one): data-scaling runs."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        by_scene: dict[int, list[int]] = {}
        for s, i in self.index:
            by_scene.setdefault(s, []).append(i)
        self.index = [(s, i) for s, frames in by_scene.items()
                      for i in sorted(frames)[: max(1, round(fraction * len(frames)))]]

    def _setup(
        self,
        scenes: list[FolderScene],
        index: list[tuple[int, int]],
        height: int,
        width: int,
        temporal_offsets: tuple[int, ...],
        stereo: bool,
        augment: bool,
        cache: bool,
        zoom: float = 1.0,
    ) -> None:
        """Shared by every data set kind: ``index`` lists (scene, frame) pairs to sample."""
        from selfdepth.data.synthetic import check_size

        check_size(width, height)
        self.height, self.width = height, width
        self.temporal_offsets = tuple(int(o) for o in temporal_offsets)
        if 0 in self.temporal_offsets:
            raise ValueError(f"temporal_offsets {self.temporal_offsets} must not contain 0 (the target itself)")
        self.stereo, self.augment = stereo, augment
        if zoom < 1.0:
            raise ValueError(f"zoom {zoom} must be >= 1 (1 = no zoom)")
        self.zoom = zoom if augment else 1.0
        # Frames are decoded at the network size, or larger by the zoom so a crop is downsampled, never blown up.
        self._source_size = (round(height * self.zoom), round(width * self.zoom))
        self.scenes, self.index = scenes, index
        for scene in self.scenes:
            if stereo and (scene.right is None or scene.intrinsics.baseline is None):
                raise ValueError(f"scene {scene.root}: stereo needs a right/ folder and a baseline in the intrinsics")
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.index)

    def _image(self, path: Path) -> torch.Tensor:
        """(3, h, w) float in [0, 1], resized to the source size (the network size times the zoom)."""
        if self._cache is not None and path in self._cache:
            array = self._cache[path]
        else:
            array = load_image(path)
            h, w = self._source_size
            if array.shape[:2] != (h, w):
                array = np.array(Image.fromarray(array).resize((w, h), Image.BILINEAR))
            if self._cache is not None:
                self._cache[path] = array
        return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)

    def intrinsics_pyramid(self, intrinsics: Intrinsics, flip: bool) -> torch.Tensor:
        """(4, 3, 3) camera matrices at scales 0-3 of the network size."""
        mats = []
        for s in range(NUM_SCALES):
            k = intrinsics.resized(self.width >> s, self.height >> s)
            cx = (self.width >> s) - 1 - k.cx if flip else k.cx
            mats.append([[k.fx, 0.0, cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])
        return torch.tensor(mats, dtype=torch.float32)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        s, i = self.index[item]
        scene = self.scenes[s]
        flip = self.augment and random.random() < 0.5
        window = random_window(self.zoom, self._source_size[1], self._source_size[0]) if self.zoom > 1 else None
        size = (self.height, self.width)

        def view(path: Path) -> torch.Tensor:  # (3, H, W): one frame, zoomed like every other view
            image = self._image(path)
            return crop_resize(image, window, size) if window else image

        sample: dict[str, torch.Tensor] = {"image": view(scene.frames[i])}
        if self.temporal_offsets:
            sample["temporal"] = torch.stack([view(scene.frames[i + o]) for o in self.temporal_offsets])
        if self.stereo:
            assert scene.right is not None
            sample["stereo"] = view(scene.right[i])
            sample["stereo_sign"] = torch.tensor(-scene.other_side if flip else scene.other_side)
        if flip:
            for key in ("image", "temporal", "stereo"):
                if key in sample:
                    sample[key] = sample[key].flip(-1)

        # Colour jitter with one set of parameters for every frame of the sample.
        jitter = colour_jitter() if self.augment else None
        sample["image_aug"] = jitter(sample["image"]) if jitter else sample["image"]
        if "temporal" in sample:
            sample["temporal_aug"] = torch.stack([jitter(f) for f in sample["temporal"]]) if jitter else sample["temporal"]

        camera = scene.intrinsics.resized(self.width, self.height)
        sample["K"] = self.intrinsics_pyramid(zoom_intrinsics(camera, window) if window else camera, flip)
        if scene.depth is not None:
            depth = torch.from_numpy((scene.depth_loader or load_depth)(scene.depth[i]))[None]
            sample["depth_gt"] = self._geometric(depth, window, flip)
        if scene.masks is not None:
            mask = torch.from_numpy(load_region_mask(scene.masks[i]))[None]
            sample["regions"] = self._geometric(mask, window, flip)
        if scene.poses is not None and self.temporal_offsets:
            rel = [np.linalg.inv(scene.poses[i + o]) @ scene.poses[i] for o in self.temporal_offsets]
            if flip:
                rel = [_FLIP @ r @ _FLIP for r in rel]
            sample["pose_gt"] = torch.tensor(np.stack(rel), dtype=torch.float32)
        return sample

    @staticmethod
    def _geometric(label: torch.Tensor, window: Window | None, flip: bool) -> torch.Tensor:
        """(1, H0, W0) depth or mask at its own resolution, zoomed (nearest) and flipped like the images."""
        if window:
            label = crop_resize(label, window, tuple(label.shape[-2:]), nearest=True)
        return label.flip(-1) if flip else label
