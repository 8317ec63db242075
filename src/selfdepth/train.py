"""Training with Lightning: data, callbacks, checkpoints, resuming, and ``fit``.

The model and its objective (one training step, read top to bottom) are in
``module.py``; this file runs it: it builds the data set, the Trainer and its
callbacks, resumes killed runs, and keeps the logs consistent across resumes.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from selfdepth.config import Config, TrainConfig
from selfdepth.data.folder import FolderDataset
from selfdepth.data.sources import collate_sources, describe, open_sources
from selfdepth.hardware import resolve_precision
from selfdepth.inference import check_encoder, read_checkpoint
from selfdepth.module import NonFiniteLossError, SelfDepth, lr_factor

__all__ = ["SelfDepth", "fit", "make_dataset", "init_weights", "lr_factor", "NonFiniteLossError", "is_global_zero", "spent_budget"]


class LossHistory(Callback):
    """Appends (step, loss) to ``loss.csv`` in the run folder, for the loss-curve picture.

    On resume, rows logged after the checkpoint (steps that are about to be
    re-run) are dropped first, so every step appears once.
    """

    def __init__(self, path: Path, resumed_at: int | None = None) -> None:
        self.path = path
        if resumed_at is not None and path.is_file() and rank_zero_only.rank == 0:
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= resumed_at]
            tmp = path.with_suffix(".tmp")
            with tmp.open("w", newline="") as f:
                csv.writer(f).writerows(kept)
            tmp.replace(path)

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
        "zoom": d.zoom,
    }
    if root is not None:
        return FolderDataset(root, d.height, d.width, **kwargs)
    dataset = open_sources(d.train, d.height, d.width, d.kitti_split, d.odometry_sequences, d.refuse_held_out,
                           d.skip_missing, **kwargs)
    if train and d.fraction < 1:
        dataset.keep_fraction(d.fraction)
    return dataset


def init_weights(model: SelfDepth, path: str | Path) -> str:
    """Copy the depth (and, where both have one, pose) network weights of checkpoint ``path`` into ``model``.

    Returns a line saying what was loaded. Raises ValueError naming the file and the first parameter
    that does not fit (another architecture or network size), so no run starts half-initialised.
    """
    ckpt = read_checkpoint(path)
    check_encoder(path, ckpt, model.cfg)
    state, own = ckpt["state_dict"], model.state_dict()
    nets = ["depth"] + (["pose"] if model.pose is not None and any(k.startswith("pose.") for k in state) else [])
    wanted = {k: v for k, v in own.items() if k.split(".")[0] in nets}
    for key, tensor in wanted.items():
        if key not in state:
            raise ValueError(f"{path}: --init checkpoint has no {key}: another architecture than this run's")
        if state[key].shape != tensor.shape:
            raise ValueError(f"{path}: --init checkpoint's {key} is {tuple(state[key].shape)}, this run's network "
                             f"needs {tuple(tensor.shape)}: another architecture or size")
    extra = [k for k in state if k.split(".")[0] in nets and k not in own]
    if extra:
        raise ValueError(f"{path}: --init checkpoint has {extra[0]}, which this run's network lacks: another architecture")
    model.load_state_dict({**own, **{k: state[k] for k in wanted}})
    fresh = " (its checkpoint has no pose network: pose starts fresh)" if model.pose is not None and "pose" not in nets else ""
    return f"initialised the {' and '.join(nets)} network{'s' if len(nets) > 1 else ''} from {path}{fresh}"


def _baseline(dataset: FolderDataset) -> float | None:
    """The data's stereo baseline in metres: scenes must agree to 2% (KITTI's days differ by ~1%)."""
    baselines = [s.intrinsics.baseline for s in dataset.scenes if s.intrinsics.baseline]
    if not baselines:
        return None
    if max(baselines) > 1.02 * min(baselines):
        raise ValueError(f"scenes disagree on the stereo baseline: {min(baselines)} to {max(baselines)} m")
    return float(np.mean(baselines))


def is_global_zero() -> bool:
    """True in the process that reports (rank 0 of a DDP run, or a single process)."""
    return rank_zero_only.rank == 0


def spent_budget(checkpoint: dict, t: TrainConfig) -> str | None:
    """Why a run restored from ``checkpoint`` would stop at once (its step or time budget is spent), else None."""
    steps = int(checkpoint.get("global_step", 0))
    if t.max_steps > 0 and steps >= t.max_steps:
        return f"already trained {steps} steps (train.max_steps={t.max_steps}): raise train.max_steps to train longer"
    timer = checkpoint.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
    minutes = float(timer.get("train", 0.0)) / 60
    if t.max_minutes and minutes >= t.max_minutes:
        return (f"already trained {minutes:.1f} min of its {t.max_minutes:g}-min budget (train.max_minutes counts "
                f"the earlier runs too): raise train.max_minutes to train longer")
    return None


class _DropLightningTip(logging.Filter):
    """Lightning advertises its cloud logger on every run; we configure our own loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence the Lightning messages that our own set-up triggers and nothing else (see each comment)."""
    tip = _DropLightningTip()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    log.addFilter(tip)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6's own pytree code trips a torch deprecation warning; nothing for users to act on.
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
            # Lightning warns when an epoch has fewer batches than train.log_every, but it counts logging
            # intervals across epochs (by optimizer step), so small data sets still log every log_every steps.
            warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
            yield
    finally:
        log.removeFilter(tip)


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
    resumed_at = None
    if resume:
        state = read_checkpoint(last)
        check_encoder(last, state, config)
        resumed_at = int(state["global_step"])
        reason = spent_budget(state, t)
        del state
        if reason:
            if is_global_zero():
                print(f"nothing to do: {out} {reason}", file=sys.stderr)
            return last

    dataset = make_dataset(config)
    baseline = _baseline(dataset) if config.uses_stereo else None
    loader = DataLoader(
        dataset,
        batch_size=t.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= t.batch_size,
        collate_fn=collate_sources,  # rendered scenes (true depth, motion) may be mixed with real drives
        num_workers=config.data.num_workers,
        persistent_workers=config.data.num_workers > 0,
    )
    if is_global_zero():
        print(f"training data: {describe(dataset)}")
    model = SelfDepth(config.to_dict(), baseline)
    if config.model.init_from and not resume:  # a resumed run has its own weights already
        notice = init_weights(model, config.model.init_from)
        if is_global_zero():
            print(notice)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=t.checkpoint_every)
    callbacks = [checkpoint, LossHistory(out / "loss.csv", resumed_at), BroadcastBuffers(), *(callbacks or [])]
    if t.ema_decay > 0:
        # Lightning's EMA: a checkpoint's state_dict is the average, current_model_state the raw weights that
        # --resume continues from. When training ends the average becomes the model, so the final
        # checkpoint's two states are equal (a later --resume with a larger budget continues from the average).
        callbacks.append(EMAWeightAveraging(decay=t.ema_decay, update_starting_at_step=t.warmup_steps))
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    devices: int | str = int(t.devices) if t.devices.isdigit() else t.devices
    on_gpu = t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available())
    precision, notice = resolve_precision(t.precision, "gpu" if on_gpu else "cpu",
                                          cuda_bf16=on_gpu and torch.cuda.is_bf16_supported())
    if notice and is_global_zero():
        print(notice)
    trainer_args = dict(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        sync_batchnorm=t.sync_batchnorm and t.accelerator != "cpu" and torch.cuda.is_available(),  # GPU-only in torch
        precision=precision,
        max_steps=t.max_steps,
        max_epochs=-1,
        max_time=timedelta(minutes=t.max_minutes) if t.max_minutes else None,
        # purge_step: TensorBoard drops events the killed run logged after its checkpoint, as those steps re-run.
        logger=TensorBoardLogger(out, name="tb", version="", purge_step=resumed_at),
        callbacks=callbacks,
        log_every_n_steps=t.log_every,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        default_root_dir=out,
        use_distributed_sampler=True,
    )
    try:
        with _quiet_lightning():
            trainer = L.Trainer(**trainer_args)
            trainer.fit(model, loader, ckpt_path=last if resume else None, weights_only=True)
    except NonFiniteLossError as err:
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"
        raise NonFiniteLossError(f"{err}; training stopped, {kept}") from None
    trainer.save_checkpoint(last, weights_only=False)  # the final state, also when max_time cut the run short (rank 0 writes)
    return last

