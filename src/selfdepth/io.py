"""Reading and writing the files that data sets and jobs share, with errors that name the file and the problem.

Readers: colour images, depth maps, intrinsics, JSON. Writers: PNG images, 16-bit
depth PNGs, ``.npy`` arrays and JSON, each written to a temporary name first and
renamed, so an interrupted job never leaves a half-written file behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import json
import os
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "REGION_BITS",
    "load_region_mask",
    "regions",
    "Intrinsics",
    "load_depth",
    "load_image",
    "is_colour_image",
    "load_intrinsics",
    "load_json",
    "load_yaml",
    "save_depth_png",
    "save_image",
    "save_json",
    "save_npy",
    "yaml_problem",
    "load_tensors",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Bits of a region mask (``masks/<frame>.png``, uint8): where the photometric assumption breaks.
REGION_BITS = {"moving": 1, "glass": 2, "occluded_stereo": 4, "occluded_prev": 8, "occluded_next": 16}


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read a colour image.

    Args:
        path: image file; RGB, or RGBA whose alpha is dropped.
        max_pixels: refuse larger images before decoding them (uploads: a small
            file can declare an enormous image); None: PIL's own bomb limit.

    Returns:
        (H, W, 3) uint8 array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a decodable image, not a colour image, or too large.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:  # reads the header only
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise ValueError(f"{path}: image is {im.width}x{im.height}, more than the {max_pixels} pixels allowed")
            im.load()
            mode = im.mode
            if mode not in ("RGB", "RGBA", "P"):
                raise ValueError(f"{path}: expected an RGB colour image, got mode {mode!r} (grey-level or other)")
            image = np.array(im.convert("RGB"))  # a writable copy
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: image too large to decode safely: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: cannot decode image (corrupt or not an image): {err}") from None
    return image


def is_colour_image(path: str | Path) -> bool:
    """Whether ``path`` is an image that ``load_image`` reads as colour (from its header only)."""
    try:
        with Image.open(path) as im:
            return im.mode in ("RGB", "RGBA", "P")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        return False


def load_depth(path: str | Path) -> np.ndarray:
    """Read a ground-truth depth map: float ``.npy`` in metres, or 16-bit ``.png`` in millimetres.

    Returns:
        (H, W) float32 depth in metres; 0 marks invalid pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"depth map not found: {path}")
    try:
        if path.suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                depth = np.asarray(im, dtype=np.float32) / 1000.0
    except (ValueError, OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read depth map: {err}") from None
    if depth.ndim != 2:
        raise ValueError(f"{path}: depth map must be 2-D (H, W), got shape {depth.shape}")
    return np.nan_to_num(depth.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels at a stated resolution, plus an optional stereo baseline.

    Pixel centres are at integer coordinates: the top-left pixel's centre is (0, 0).

    Attributes:
        fx: focal length along x, pixels.
        fy: focal length along y, pixels.
        cx: principal point x, pixels.
        cy: principal point y, pixels.
        width: image width these values refer to.
        height: image height these values refer to.
        baseline: distance to the right camera in metres, if there is one.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    baseline: float | None = None

    def matrix(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    def resized(self, width: int, height: int) -> Intrinsics:
        """Intrinsics of the same camera after resizing the image to ``width x height``.

        With pixel centres at integers, ``u' + 0.5 = (u + 0.5) * s``.
        """
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5, width, height,
            self.baseline,
        )


def load_intrinsics(path: str | Path, width: int | None = None, height: int | None = None) -> Intrinsics:
    """Read intrinsics from YAML or JSON: ``fx, fy, cx, cy`` or a 3x3 ``K``, in pixels.

    ``width``/``height`` keys in the file state the resolution the values refer
    to; otherwise the caller's ``width``/``height`` (the images' own size) are
    used. An optional ``baseline`` (metres) enables stereo.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unparsable, missing keys, or values that cannot fit the image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"intrinsics file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML/JSON: {yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with fx, fy, cx, cy or K, got {type(data).__name__}")
    try:
        if "K" in data:
            K = np.asarray(data["K"], dtype=np.float64)
            if K.shape != (3, 3):
                raise ValueError(f"{path}: K must be 3x3, got shape {K.shape}")
            fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        else:
            missing = [k for k in ("fx", "fy", "cx", "cy") if k not in data]
            if missing:
                raise ValueError(f"{path}: missing keys {missing}; give fx, fy, cx, cy or a 3x3 K (pixels)")
            fx, fy, cx, cy = (float(data[k]) for k in ("fx", "fy", "cx", "cy"))
        w = int(data.get("width", width or 0))
        h = int(data.get("height", height or 0))
        baseline = data.get("baseline")
        baseline = None if baseline is None else float(baseline)
    except (TypeError, ValueError) as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: malformed intrinsics: {err}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{path}: image size unknown; add width and height keys")
    if not (fx > 0 and fy > 0):
        raise ValueError(f"{path}: focal lengths must be positive, got fx={fx}, fy={fy}")
    if not (0 <= cx < w and 0 <= cy < h):
        raise ValueError(f"{path}: principal point ({cx}, {cy}) lies outside the {w}x{h} image")
    if baseline is not None and not baseline > 0:
        raise ValueError(f"{path}: baseline must be positive metres, got {baseline}")
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), w, h, baseline)


# ----------------------------------------------------------------------------- writers


def _atomic(path: str | Path) -> tuple[Path, Path]:
    """``(path, tmp)``: write ``tmp`` (same folder and suffix, so format detection works), then ``tmp.replace(path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def save_image(path: str | Path, image: np.ndarray, compress_level: int = 6) -> Path:
    """Write an (H, W, 3) or (H, W) image as PNG (or any format PIL knows by the suffix).

    Args:
        path: where to write.
        image: uint8 array, or float array in [0, 1] (rounded to uint8).
        compress_level: PNG zlib level; 1 is fast and barely larger.
    """
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    path, tmp = _atomic(path)
    options = {"compress_level": compress_level} if path.suffix.lower() == ".png" else {}
    Image.fromarray(image).save(tmp, **options)
    tmp.replace(path)
    return path


def save_depth_png(path: str | Path, depth: np.ndarray) -> Path:
    """16-bit PNG of (H, W) depth in millimetres (KITTI's convention; 0 = invalid, capped at 65.535 m)."""
    path, tmp = _atomic(path)
    Image.fromarray(np.clip(np.round(np.nan_to_num(depth) * 1000), 0, 65535).astype(np.uint16)).save(tmp)
    tmp.replace(path)
    return path


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write one array as ``.npy`` (no pickles)."""
    path, tmp = _atomic(path)
    with tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)
    tmp.replace(path)
    return path


def save_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON with a trailing newline."""
    path, tmp = _atomic(path)
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a clear error names the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JSON file not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None


def load_region_mask(path: str | Path) -> np.ndarray:
    """Read a region mask: (H, W) uint8 of ``REGION_BITS`` flags, from an 8-bit grey PNG."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"region mask not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode != "L":
                raise ValueError(f"{path}: a region mask must be an 8-bit grey PNG, got mode {im.mode!r}")
            return np.array(im)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: cannot read region mask: {err}") from None


def regions(mask: np.ndarray) -> dict[str, np.ndarray]:
    """(H, W) region bits -> named (H, W) bool regions for evaluation.

    ``moving``, ``glass``, ``occluded`` (in any source view), ``occluded_stereo``,
    ``occluded_temporal`` (in frame t-1 or t+1), and ``rest`` (none of these).
    """
    bit = lambda *names: (mask & sum(REGION_BITS[n] for n in names)) > 0  # noqa: E731
    return {
        "moving": bit("moving"),
        "glass": bit("glass"),
        "occluded": bit("occluded_stereo", "occluded_prev", "occluded_next"),
        "occluded_stereo": bit("occluded_stereo"),
        "occluded_temporal": bit("occluded_prev", "occluded_next"),
        "rest": mask == 0,
    }


def load_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """Read a YAML file (``{}`` when empty); a clear error names the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {yaml_problem(err)}") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML parser error in one line: what it expected and where, e.g. "line 2, column 3: expected ',' or ']'"."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{' '.join(problem.split())}"


def load_tensors(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with a one-line error for a bad file.

    torch's own text runs to eight lines and, for a file holding more than tensors and plain data,
    suggests ``weights_only=False``: unsafe advice for a file from a stranger, so it is not passed on.
    """
    import torch  # here, so that reading images and YAML does not need torch imported

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        text = str(err)
        if "Weights only load failed" in text:
            reason = "not a PyTorch file of tensors and plain data (selfdepth never runs code from a file)"
        else:
            reason = (text.strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path}: cannot read {what} (truncated or corrupt file?): {reason}") from None
