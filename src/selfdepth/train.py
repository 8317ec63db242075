"""Self-supervised training with Lightning: stereo, monocular video, or both.

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

import csv
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader

from selfdepth import __version__
from selfdepth.config import Config, TrainConfig
from selfdepth.data.folder import FolderDataset
from selfdepth.geometry import (
    BackprojectDepth,
    depth_to_sigmoid,
    disp_to_depth,
    pixels_to_grid,
    project,
    stereo_transform,
)
from selfdepth.losses import AdaptiveRobustLoss, edge_aware_smoothness, min_reprojection, photometric_error
from selfdepth.models import DepthNet, PoseNet

__all__ = ["SelfDepth", "fit", "make_dataset", "lr_factor", "NonFiniteLossError"]


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
        self.depth = DepthNet(m.pretrained_encoder, m.scales, depth_to_sigmoid(m.init_depth, m.min_depth, m.max_depth))
        self.pose = PoseNet(m.pretrained_encoder) if self.cfg.uses_temporal else None
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
        loss_cfg, model_cfg = self.cfg.loss, self.cfg.model
        target, K = batch["image"], batch["K"][:, 0]
        inv_K = torch.linalg.inv(K)  # once per batch, shared by every scale
        h, w = target.shape[-2:]
        disps = self.depth(batch["image_aug"])  # [(B, 1, H/2^s, W/2^s)] * scales
        sources, transforms = self.source_views(batch)  # (B, S, 3, H, W), (B, S, 4, 4)

        identity = None
        if loss_cfg.automask:
            # The unwarped sources' error, once per batch; the noise breaks ties on flat regions.
            b, s = sources.shape[:2]
            identity = self.photometric(sources.flatten(0, 1), target.repeat_interleave(s, 0)).reshape(b, s, h, w)
            identity = identity + 1e-5 * torch.randn_like(identity)

        total = target.new_zeros(())
        parts: dict[str, Tensor] = {}
        for scale, disp in enumerate(disps):
            disp_full = F.interpolate(disp, (h, w), mode="bilinear", align_corners=False)
            _, depth = disp_to_depth(disp_full, model_cfg.min_depth, model_cfg.max_depth)
            errors = self.reprojection_errors(depth, sources, transforms, target, K, inv_K)
            reprojection, mask = min_reprojection(errors, identity, loss_cfg.min_reprojection)
            small = F.interpolate(target, disp.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
            smooth = edge_aware_smoothness(disp, small).mean()
            total = total + reprojection.mean() + loss_cfg.smoothness_weight / 2**scale * smooth
            if scale == 0:
                parts = {"reprojection": reprojection.mean(), "smoothness": smooth, "automask": mask.float().mean()}
        parts["disparity"] = disps[0].detach()  # for the image panels
        return total / len(disps), parts

    # ------------------------------------------------------------------ Lightning hooks

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, parts = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"non-finite loss ({loss.item()}) at step {self.global_step}")
        disparity = parts.pop("disparity")
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=batch["image"].shape[0])
        if isinstance(self.pixel_loss, AdaptiveRobustLoss) and self.global_step % self.cfg.train.log_every == 0:
            self._log_robust_parameters(self.pixel_loss)
        every = self.cfg.train.image_every
        if every and self.global_step % every == 0 and self.global_rank == 0:
            self._log_images(batch, disparity)
        return loss

    def _log_robust_parameters(self, loss: AdaptiveRobustLoss) -> None:
        """The adaptive loss's alpha and c per channel (averaged over pixels when per pixel)."""
        names = ("y", "u", "v") if loss.yuv else ("r", "g", "b") if loss.channels == 3 else range(loss.channels)
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

    def configure_optimizers(self):
        t = self.cfg.train
        robust = [p for p in self.pixel_loss.parameters()] if isinstance(self.pixel_loss, nn.Module) else []
        ids = {id(p) for p in robust}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids], "lr": t.lr}]
        if robust:  # the adaptive loss's alpha and c: a few scalars with their own rate
            groups.append({"params": robust, "lr": self.cfg.loss.adaptive_lr or t.lr})
        optimizer = torch.optim.Adam(groups, lr=t.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, t))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def lr_factor(step: int, t: TrainConfig) -> float:
    """Multiplier of the learning rate at ``step``: a linear warm-up, then one step drop."""
    warmup = min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps > 0 else 1.0
    drop_at = max(1, int(t.lr_decay_at * t.max_steps))
    return warmup * (t.lr_decay if step >= drop_at else 1.0)


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


class LossHistory(Callback):
    """Appends (step, loss) to ``loss.csv`` in the run folder, for the loss-curve picture."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank != 0 or outputs is None:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "loss"])
            writer.writerow([trainer.global_step, f"{float(outputs['loss']):.6f}"])


class BroadcastBuffers(Callback):
    """At the end of DDP training, copy rank 0's buffers (batch-norm statistics) to every rank.

    DDP keeps parameters in step but each rank's last forward pass updates its own
    batch-norm running statistics; SyncBatchNorm would fix that, but works on GPUs only.
    """

    def on_train_end(self, trainer, pl_module) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for buffer in pl_module.buffers():
                torch.distributed.broadcast(buffer, src=0)


def make_dataset(config: Config, root: str | None = None, train: bool = True) -> FolderDataset:
    """The data set a config asks for (training samples, or evaluation samples when ``train`` is False)."""
    d = config.data
    kwargs = {
        "temporal_offsets": config.train.temporal_offsets if (train and config.uses_temporal) else (),
        "stereo": train and config.uses_stereo,
        "augment": train and d.augment,
        "cache": d.cache_images,
    }
    if d.kitti_split and root is None:
        from selfdepth.data.kitti import KittiDataset

        return KittiDataset(d.train, d.kitti_split, d.height, d.width, **kwargs)
    return FolderDataset(root or d.train, d.height, d.width, **kwargs)


def _baseline(dataset: FolderDataset) -> float | None:
    """The data's stereo baseline in metres: scenes must agree to 2% (KITTI's days differ by ~1%)."""
    baselines = [s.intrinsics.baseline for s in dataset.scenes if s.intrinsics.baseline]
    if not baselines:
        return None
    if max(baselines) > 1.02 * min(baselines):
        raise ValueError(f"scenes disagree on the stereo baseline: {min(baselines)} to {max(baselines)} m")
    return float(np.mean(baselines))


def fit(config: Config, resume: bool = False, callbacks: list[Callback] | None = None) -> Path:
    """Train; returns the path of the last checkpoint.

    ``callbacks`` are extra Lightning callbacks to run alongside ours.

    With ``resume``, training continues from ``<out_dir>/checkpoints/last.ckpt``
    (step, weights, optimizer and schedule). Checkpoints are written atomically,
    so a run killed at any moment resumes from its last complete checkpoint.
    """
    t = config.train
    L.seed_everything(t.seed, workers=True, verbose=False)
    out = Path(t.out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    if not resume and last.is_file():
        raise FileExistsError(f"{last} exists: pass --resume to continue it, or choose another train.out_dir")

    dataset = make_dataset(config)
    baseline = _baseline(dataset) if config.uses_stereo else None
    loader = DataLoader(
        dataset,
        batch_size=t.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= t.batch_size,
        num_workers=config.data.num_workers,
        persistent_workers=config.data.num_workers > 0,
    )
    model = SelfDepth(config.to_dict(), baseline)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=t.checkpoint_every)
    callbacks = [checkpoint, LossHistory(out / "loss.csv"), BroadcastBuffers(), *(callbacks or [])]
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    devices: int | str = int(t.devices) if t.devices.isdigit() else t.devices
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        sync_batchnorm=t.sync_batchnorm and t.accelerator != "cpu" and torch.cuda.is_available(),  # GPU-only in torch
        precision=t.precision,
        max_steps=t.max_steps,
        max_epochs=-1,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes else None,
        logger=TensorBoardLogger(out, name="tb", version=""),
        callbacks=callbacks,
        log_every_n_steps=t.log_every,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        default_root_dir=out,
        use_distributed_sampler=True,
    )
    try:
        with warnings.catch_warnings():
            # Lightning 2.6's own pytree code trips a torch deprecation warning; nothing for users to act on.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
            trainer.fit(model, loader, ckpt_path=last if resume else None, weights_only=True)
    except NonFiniteLossError as err:
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"
        raise NonFiniteLossError(f"{err}; training stopped, {kept}") from None
    trainer.save_checkpoint(last, weights_only=False)  # the final state, also when max_time cut the run short (rank 0 writes)
    return last

