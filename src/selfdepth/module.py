"""The LightningModule: depth (and pose) networks and the self-supervised objective.

One training step (``SelfDepth.training_step``) reads top to bottom:

    1. the depth network predicts disparity at 4 scales from the jittered target;
    2. the pose network predicts target->source motion for temporal sources;
       stereo sources use the fixed stereo transform;
    3. at each scale, disparity is upsampled to the input size (full-resolution
       multi-scale), every source is warped into the target in one batched call,
       and the per-pixel minimum reprojection error is taken, auto-masked by
       the error of the unwarped sources;
    4. an edge-aware smoothness term is added, weighted 1e-3 / 2^scale.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn

from selfdepth._version import __version__
from selfdepth.config import Config, TrainConfig
from selfdepth.data.augment import turn_sources
from selfdepth.geometry import (
    STEREO_BASELINE_UNITS,
    BackprojectDepth,
    depth_to_sigmoid,
    disp_to_depth,
    pixels_to_grid,
    project,
    stereo_transform,
)
from selfdepth.losses import AdaptiveRobustLoss, edge_aware_smoothness, min_reprojection, photometric_error
from selfdepth.losses.supervised import pose_error, scale_invariant_log
from selfdepth.models import DepthNet, PoseNet

__all__ = ["SelfDepth", "NonFiniteLossError", "adaptive_part", "lr_factor"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last checkpoint is left as it was."""


class SelfDepth(L.LightningModule):
    """Depth (and pose) networks with the self-supervised objective.

    Args:
        config: the run's configuration, as ``Config.to_dict()``.
        baseline_m: the training data's stereo baseline in metres, which turns
            network depth units into metres (None for mono-only data).
    """

    def __init__(self, config: dict[str, Any], baseline_m: float | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config, "baseline_m": baseline_m, "selfdepth_version": __version__})
        self.cfg = Config.from_dict(config)
        m, data = self.cfg.model, self.cfg.data
        init_sigmoid = depth_to_sigmoid(m.init_depth, m.min_depth, m.max_depth)
        self.depth = DepthNet(m.pretrained_encoder, m.scales, init_sigmoid, m.encoder)
        self.pose = PoseNet(m.pretrained_encoder, m.encoder) if self.cfg.uses_temporal else None
        if self.cfg.train.channels_last:  # convolutions then return NHWC maps too; the warps take any layout
            self.depth.to(memory_format=torch.channels_last)
            if self.pose is not None:
                self.pose.to(memory_format=torch.channels_last)
        self.backproject = BackprojectDepth(data.height, data.width)
        # A module for barron_adaptive: its alpha and c then train with the networks and live in checkpoints.
        self.pixel_loss = self.cfg.pixel_loss()
        self._photometric = _compiled(photometric_error) if self.cfg.train.compile_loss else photometric_error

    # ------------------------------------------------------------------ the objective

    def photometric(self, pred: Tensor, target: Tensor) -> Tensor:
        """(N, 3, H, W) x2 -> (N, 1, H, W) photometric error."""
        return self._photometric(pred, target, self.cfg.loss.ssim_weight, self.pixel_loss)

    def source_views(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Every source image and its target-to-source transform.

        Returns:
            sources: (B, S, 3, H, W).
            transforms: (B, S, 4, 4).
        """
        sources, transforms = [], []
        if self.cfg.uses_temporal:
            offsets = self.cfg.train.temporal_offsets
            assert self.pose is not None
            sources.append(batch["temporal"])
            transforms.append(self.pose.transforms(batch["image_aug"], batch["temporal_aug"], offsets))
        if self.cfg.uses_stereo:
            sources.append(batch["stereo"][:, None])
            transforms.append(stereo_transform(batch["stereo_sign"])[:, None])
        return torch.cat(sources, 1), torch.cat(transforms, 1)

    def reprojection_errors(
        self, depth: Tensor, sources: Tensor, transforms: Tensor, target: Tensor, K: Tensor, inv_K: Tensor | None = None
    ) -> Tensor:
        """Warp every source into the target with ``depth`` and score it.

        Args:
            depth: (B, 1, H, W) target depth.
            sources: (B, S, 3, H, W).
            transforms: (B, S, 4, 4) target-to-source.
            target: (B, 3, H, W).
            K: (B, 3, 3) full-resolution intrinsics.
            inv_K: (B, 3, 3) their inverse; computed when None.

        Returns:
            (B, S, H, W) photometric error of each warped source.
        """
        b, s, c, h, w = sources.shape
        points = self.backproject(depth, torch.linalg.inv(K) if inv_K is None else inv_K)  # (B, 3, H*W)
        points = points.repeat_interleave(s, 0)  # (B*S, 3, H*W), source-minor
        pixels, _ = project(points, K.repeat_interleave(s, 0), transforms.reshape(b * s, 4, 4))
        grid = pixels_to_grid(pixels, h, w)  # (B*S, H, W, 2)
        warped = F.grid_sample(sources.reshape(b * s, c, h, w), grid, padding_mode="border", align_corners=False)
        errors = self.photometric(warped, target.repeat_interleave(s, 0))  # (B*S, 1, H, W)
        return errors.reshape(b, s, h, w)

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The self-supervised loss of a batch, and its parts for logging (with the finest disparity)."""
        if self.training and self.cfg.data.turn_sources_deg > 0 and "temporal" in batch:
            with torch.autocast(device_type=batch["image"].device.type, enabled=False):  # fp32 homographies
                batch = turn_sources(batch, self.cfg.data.turn_sources_deg)  # random turns of the source cameras
        disps = self.depth(batch["image_aug"])  # [(B, 1, H/2^s, W/2^s)] * scales
        sources, transforms = self.source_views(batch)  # (B, S, 3, H, W), (B, S, 4, 4)
        # Under bf16-mixed precision only the networks run in bf16; the warps and losses run in fp32. Autocast
        # would otherwise run K @ points (a matmul) in bf16, whose 8-bit mantissa puts a pixel coordinate
        # near x = 300 up to 2 px off: as much as a stereo disparity at 20 m (tests/test_train.py).
        with torch.autocast(device_type=sources.device.type, enabled=False):
            return self.objective(batch, [d.float() for d in disps], sources, transforms.float())

    def objective(
        self, batch: dict[str, Tensor], disps: list[Tensor], sources: Tensor, transforms: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss given the networks' outputs: ``disps`` [(B, 1, H/2^s, W/2^s)] * scales, ``sources``
        (B, S, 3, H, W) and their target-to-source ``transforms`` (B, S, 4, 4)."""
        loss_cfg, model_cfg = self.cfg.loss, self.cfg.model
        target, K = batch["image"], batch["K"][:, 0]
        inv_K = torch.linalg.inv(K)  # once per batch, shared by every scale
        h, w = target.shape[-2:]

        identity = None
        if loss_cfg.automask:
            # The unwarped sources' error, once per batch; the noise breaks ties on flat regions.
            b, s = sources.shape[:2]
            identity = self.photometric(sources.flatten(0, 1), target.repeat_interleave(s, 0)).reshape(b, s, h, w)
            identity = identity + 1e-5 * torch.randn_like(identity)

        total = target.new_zeros(())
        parts: dict[str, Tensor] = {}
        scored = len(disps) if loss_cfg.photometric_scales == "all" else 1  # "finest": scale 0 only
        for scale, disp in enumerate(disps):
            small = F.interpolate(target, disp.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
            smooth = edge_aware_smoothness(disp, small).mean()
            total = total + loss_cfg.smoothness_weight / 2**scale * smooth
            if scale >= scored:
                continue
            disp_full = F.interpolate(disp, (h, w), mode="bilinear", align_corners=False)
            _, depth = disp_to_depth(disp_full, model_cfg.min_depth, model_cfg.max_depth)
            errors = self.reprojection_errors(depth, sources, transforms, target, K, inv_K)
            reprojection, mask = min_reprojection(errors, identity, loss_cfg.min_reprojection)
            total = total + reprojection.mean() * len(disps) / scored  # the same weight in total as with "all"
            if scale == 0:
                parts = {"reprojection": reprojection.mean(), "smoothness": smooth, "automask": mask.float().mean()}
        total = total + len(disps) * self.supervised(batch, disps[0], transforms, parts)
        parts["disparity"] = disps[0].detach()  # for the image panels
        return total / len(disps), parts

    def supervised(self, batch: dict[str, Tensor], disp: Tensor, transforms: Tensor, parts: dict[str, Tensor]) -> Tensor:
        """The supervised pre-training terms where the batch has true depth / motion (0 when off)."""
        loss_cfg, model_cfg = self.cfg.loss, self.cfg.model
        total = disp.new_zeros(())
        # Metres -> network units. With a stereo baseline the units are fixed (0.1 units = the baseline) and the
        # truth must be given in them: compared in metres, SILog's scale part (1 - lam) pulled the network
        # 5.4x away from the scale its stereo warps need. Without one (mono) the units are free: metres.
        scale = STEREO_BASELINE_UNITS / self.hparams.baseline_m if self.hparams.baseline_m else None
        if loss_cfg.supervised_depth_weight > 0 and "depth_gt" in batch:
            gt = batch["depth_gt"] * (scale or 1.0)  # (B, 1, H0, W0) at the data's own size, 0 = none
            _, depth = disp_to_depth(F.interpolate(disp, gt.shape[-2:], mode="bilinear", align_corners=False),
                                     model_cfg.min_depth, model_cfg.max_depth)
            count = (gt > 0).sum((1, 2, 3))  # (B,): 0 for a sample without depth (a real drive beside rendered ones)
            per_image = scale_invariant_log(depth, gt).sum((1, 2, 3)) / count.clamp_min(1)
            silog = per_image.sum() / (count > 0).sum().clamp_min(1)  # the mean over samples that have depth
            total = total + loss_cfg.supervised_depth_weight * silog
            parts["silog"] = silog
        if loss_cfg.supervised_pose_weight > 0 and "pose_gt" in batch and self.pose is not None:
            steps = len(self.cfg.train.temporal_offsets)  # the temporal sources come first (source_views)
            errors = pose_error(transforms[:, :steps], batch["pose_gt"].float(), scale)  # (B, T)
            known = batch.get("pose_known", torch.ones_like(errors[:, 0])).to(errors.dtype)  # (B,): collate_sources
            pose = (errors * known[:, None]).sum() / (known.sum() * steps).clamp_min(1)  # weights: no host sync
            total = total + loss_cfg.supervised_pose_weight * pose
            parts["pose_error"] = pose
        return total

    # ------------------------------------------------------------------ Lightning hooks

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, parts = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"non-finite loss ({loss.item()}) at step {self.global_step}")
        disparity = parts.pop("disparity")
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=batch["image"].shape[0])
        adaptive = adaptive_part(self.pixel_loss)
        if adaptive is not None and self.global_step % self.cfg.train.log_every == 0:
            self._log_robust_parameters(adaptive)
        every = self.cfg.train.image_every
        if every and self.global_step % every == 0 and self.global_rank == 0:
            self._log_images(batch, disparity)
        return loss

    def _log_robust_parameters(self, loss: AdaptiveRobustLoss) -> None:
        """The adaptive loss's alpha and c per channel (averaged over pixels or coefficients when it has a map)."""
        yuv = loss.yuv or getattr(self.pixel_loss, "yuv", False)
        names = ("y", "u", "v") if yuv else ("r", "g", "b") if loss.channels == 3 else range(loss.channels)
        alpha, scale = loss.alpha().detach().mean((1, 2)), loss.scale().detach().mean((1, 2))  # (C,)
        for i, name in enumerate(names):
            self.log(f"robust/alpha_{name}", alpha[i])
            self.log(f"robust/scale_{name}", scale[i])

    def _log_images(self, batch: dict[str, Tensor], disparity: Tensor) -> None:
        """Input and colour-mapped disparity panels in TensorBoard."""
        logger = self.logger
        if not isinstance(logger, TensorBoardLogger):
            return
        from matplotlib import colormaps

        disp = disparity[0, 0]
        disp = (disp / disp.max().clamp(min=1e-6)).float().cpu().numpy()
        coloured = torch.from_numpy(colormaps["magma"](disp)[..., :3]).permute(2, 0, 1)
        logger.experiment.add_image("input", batch["image"][0].cpu(), self.global_step)
        logger.experiment.add_image("disparity", coloured, self.global_step)
        adaptive = adaptive_part(self.pixel_loss)
        if adaptive is not None and adaptive.image_size:  # alpha and c maps, per pixel or per coefficient
            alpha = (adaptive.alpha().detach() - adaptive.alpha_lo) / (adaptive.alpha_hi - adaptive.alpha_lo)
            log_c = adaptive.scale().detach().log()
            log_c = (log_c - log_c.min()) / (log_c.max() - log_c.min()).clamp(min=1e-12)
            for i in range(alpha.shape[0]):  # (C, H, W): one grey image per channel, 0..1 spans the range
                logger.experiment.add_image(f"robust/alpha_map_{i}", alpha[i : i + 1].float().cpu(), self.global_step)
                logger.experiment.add_image(f"robust/log_scale_map_{i}", log_c[i : i + 1].float().cpu(), self.global_step)

    def configure_optimizers(self):
        t = self.cfg.train
        robust = [p for p in self.pixel_loss.parameters()] if isinstance(self.pixel_loss, nn.Module) else []
        ids = {id(p) for p in robust}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids], "lr": t.lr, "weight_decay": t.weight_decay}]
        if robust:  # the adaptive loss's alpha and c: a few scalars with their own rate, never decayed
            groups.append({"params": robust, "lr": self.cfg.loss.adaptive_lr or t.lr, "weight_decay": 0.0})
        # AdamW's decay is decoupled from the gradient; with none it is Adam, which is kept then (Monodepth2's).
        optimizer = torch.optim.AdamW(groups, lr=t.lr) if t.weight_decay > 0 else torch.optim.Adam(groups, lr=t.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, t, self._train_minutes()))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _train_minutes(self) -> float:
        """Minutes trained so far, resumed runs' earlier minutes included (Lightning's Timer); 0 without a budget."""
        trainer = self._trainer
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None) if trainer is not None else None
        if timer is None:
            return 0.0
        # Each DDP rank keeps its own clock; all take the latest, so the rate drops on the same step everywhere.
        minutes = torch.tensor(timer.time_elapsed("train") / 60, dtype=torch.float64)
        return float(trainer.strategy.reduce(minutes, reduce_op="max"))


def adaptive_part(loss: object) -> AdaptiveRobustLoss | None:
    """The adaptive loss inside a pixel loss (itself, or inside a DCT / wavelet ``ImageLoss``), else None."""
    inner = getattr(loss, "loss", loss)
    return inner if isinstance(inner, AdaptiveRobustLoss) else None


def lr_factor(step: int, t: TrainConfig, minutes: float = 0.0) -> float:
    """Multiplier of the learning rate at ``step``: a linear warm-up, then one step drop.

    The drop comes at ``lr_decay_at`` of ``max_steps`` or, for a run with a time budget, of
    ``max_minutes`` (``minutes`` trained so far), whichever is reached first: a run that its budget
    ends long before ``max_steps`` still anneals.
    """
    warmup = min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps > 0 else 1.0
    drop_at = max(1, int(t.lr_decay_at * t.max_steps))
    late = step >= drop_at or (t.max_minutes is not None and minutes >= t.lr_decay_at * t.max_minutes)
    return warmup * (t.lr_decay if late else 1.0)


def _compiled(fn):
    """``torch.compile(fn)``, falling back to ``fn`` with a warning if compiling fails (e.g. no C++ compiler)."""
    state = {"fn": torch.compile(fn, dynamic=False)}

    def call(*args):
        try:
            return state["fn"](*args)
        except Exception as err:  # noqa: BLE001 - inductor raises many types when it cannot build
            if state["fn"] is fn:
                raise
            warnings.warn(f"torch.compile of the photometric loss failed ({type(err).__name__}: {err}); running eagerly")
            state["fn"] = fn
            return fn(*args)

    return call

