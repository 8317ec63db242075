"""Typed config: presets, overrides and helpful errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfdepth.config import Config, load_config

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.mark.parametrize("preset", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_presets_load(preset):
    if preset.name.startswith("study_"):  # study plans: a base config plus variants and arms, all checked
        from selfdepth.study import load_plan

        assert isinstance(load_plan(preset).config, Config)
    else:
        assert isinstance(load_config(preset), Config)


def test_overrides_are_typed():
    c = load_config(None, ["train.lr=2e-4", "train.mode=mono+stereo", "data.augment=false", "train.temporal_offsets=[-2,1]"])
    assert c.train.lr == 2e-4 and c.uses_temporal and c.uses_stereo and c.data.augment is False
    assert c.train.temporal_offsets == (-2, 1)
    assert Config.from_dict(c.to_dict()) == c


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(ValueError, match=r"unknown key train\.learning_rat.*did you mean 'train\.lr'|did you mean"):
        load_config(None, ["train.learning_rat=1"])
    with pytest.raises(ValueError, match=r"unknown key loss\.smoothnes_weight; did you mean 'loss\.smoothness_weight'"):
        load_config(None, ["loss.smoothnes_weight=1"])
    with pytest.raises(ValueError, match=r"unknown section 'trian'; did you mean 'train'"):
        Config.from_dict({"trian": {}})


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.mode=video", "train.mode must be one of"),
        ("data.width=100", "not a multiple of 32"),
        ("train.lr=fast", "cannot use 'fast'"),
        ("lr=1", "must look like section.key=value"),
        ("data.augment=maybe", "not a boolean"),
        ("loss.pixel_loss=huber", "unknown pixel loss 'huber'; valid: l1, l2, charbonnier, cauchy"),
        ("loss.scale=0", r"scale c\) must be > 0"),
        ("loss.ssim_weight=1.5", "ssim_weight must be in"),
    ],
)
def test_bad_values(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_bad_adaptive_loss_ranges():
    with pytest.raises(ValueError, match="alpha_range must satisfy 0 <= lo"):
        load_config(None, ["loss.pixel_loss=barron_adaptive", "loss.adaptive_alpha_lo=-1"])
    with pytest.raises(ValueError, match="alpha_init 2.5 must lie inside"):
        load_config(None, ["loss.pixel_loss=barron_adaptive", "loss.adaptive_alpha_init=2.5"])


def test_missing_preset_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
