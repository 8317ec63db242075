"""Inference from checkpoints: any input size, metric output, and clear errors for bad checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from selfdepth.config import load_config
from selfdepth.geometry import metric_scale
from selfdepth.inference import DepthModel, colorize, load
from selfdepth.predict import predict_paths
from selfdepth.train import fit


@pytest.fixture(scope="module")
def checkpoint(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    config = load_config(None, [f"data.train={tiny_root}", "data.height=64", "data.width=128", "train.max_steps=2",
                                "train.batch_size=2", f"train.out_dir={out}", "train.progress_bar=false"])
    return fit(config)


@pytest.mark.parametrize("size", [(75, 100), (64, 64), (200, 37)])
def test_any_input_size(checkpoint, size):
    model = load(checkpoint)
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    pred = model.predict(image)
    assert pred.depth.shape == pred.disparity.shape == size
    assert np.isfinite(pred.depth).all() and (pred.depth > 0).all()


def test_stereo_model_is_metric(checkpoint):
    model = load(checkpoint)
    assert model.metric and model.scale == pytest.approx(metric_scale(0.54))
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model.depth(x), model.scale / model.disparity(x))


def test_predict_paths_writes_outputs(checkpoint, tiny_root, tmp_path):
    written = predict_paths([tiny_root / "scene_0000" / "left"], checkpoint, tmp_path, batch_size=3, progress=False)
    assert len(written) == 4
    depth = np.load(written[0])
    assert depth.shape == (64, 128)
    with Image.open(tmp_path / "000000_disp.png") as im:
        assert im.size == (128, 64) and im.mode == "RGB"
    with Image.open(tmp_path / "000000_depth.png") as im:
        mm = np.asarray(im)
    assert mm.dtype == np.uint16 and np.abs(mm / 1000 - np.minimum(depth, 65.535)).max() <= 0.0005 + 1e-6
    # One pass for a batch gives what one image at a time gives.
    model = load(checkpoint)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((tiny_root / "scene_0000" / "left").glob("*.png"))]
    batched = model.predict_batch(images)
    np.testing.assert_allclose(batched[2].depth, model.predict(images[2]).depth, rtol=1e-5)


def test_flip_tta_averages_with_the_mirrored_prediction(checkpoint):
    model = load(checkpoint)
    x = torch.rand(2, 3, 64, 128)
    mirrored = model.disparity(x.flip(-1)).flip(-1)
    torch.testing.assert_close(model.disparity(x, flip_tta=True), 0.5 * (model.disparity(x) + mirrored))


def test_video_gives_a_side_by_side_video(checkpoint, tiny_root, tmp_path):
    import imageio.v2 as imageio

    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((tiny_root / "scene_0001" / "left").glob("*.png"))]
    video = tmp_path / "drive.mp4"
    imageio.mimwrite(video, frames, fps=5, macro_block_size=1)
    (out,) = predict_paths([video], checkpoint, tmp_path / "out", batch_size=3, progress=False)
    result = imageio.mimread(out)
    assert len(result) == len(frames) and result[0].shape == (64, 256, 3)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=r"broken.mp4: cannot decode video"):
        predict_paths([broken], checkpoint, tmp_path / "out2", progress=False)


def test_onnx_export_matches_torch_and_runs_in_predict(checkpoint, tiny_root, tmp_path):
    from selfdepth.export import export_onnx

    path = export_onnx(checkpoint, tmp_path / "model.onnx")
    assert not list(tmp_path.glob("*.data")), "weights are inside the one file"
    torch_model, onnx_model = load(checkpoint), load(path, backend="onnxruntime")
    assert onnx_model.metric and onnx_model.scale == pytest.approx(torch_model.scale)
    x = torch.rand(3, 3, 64, 128)
    torch.testing.assert_close(onnx_model.depth(x), torch_model.depth(x), rtol=1e-4, atol=1e-4)
    written = predict_paths([tiny_root / "scene_0000" / "left"], path, tmp_path / "out", backend="onnxruntime",
                            progress=False)
    np.testing.assert_allclose(np.load(written[1]), torch_model.predict(
        np.asarray(Image.open(tiny_root / "scene_0000" / "left" / "000001.png").convert("RGB"))).depth, rtol=1e-3)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"bad.onnx: cannot load ONNX model"):
        load(bad)


def test_point_cloud_from_the_api_and_the_cli(checkpoint, tiny_root, tmp_path):
    from plyfile import PlyData

    from selfdepth.cli import main
    from selfdepth.geometry import project
    from selfdepth.io import load_intrinsics

    image_path = tiny_root / "scene_0000" / "left" / "000002.png"
    image = np.asarray(Image.open(image_path).convert("RGB"))
    intrinsics = load_intrinsics(tiny_root / "scene_0000" / "intrinsics.json")
    pred = load(checkpoint).predict(image, intrinsics)
    cloud = pred.points()
    assert len(cloud) == 64 * 128 and cloud.rgb.dtype == np.uint8
    np.testing.assert_array_equal(cloud.rgb, image.reshape(-1, 3))
    # Projecting the points gives back their pixels, and z is the predicted depth.
    K = torch.from_numpy(intrinsics.matrix())[None]
    pixels, z = project(torch.from_numpy(cloud.xyz.T.astype(np.float64))[None], K)
    v, u = np.mgrid[0:64, 0:128]
    np.testing.assert_allclose(pixels[0].numpy(), np.stack([u.ravel(), v.ravel()], 1), atol=1e-3)
    np.testing.assert_allclose(cloud.xyz[:, 2], pred.depth.ravel(), rtol=1e-5)
    capped = pred.points(max_depth=float(np.median(pred.depth)))
    assert 0 < len(capped) < len(cloud) and capped.xyz[:, 2].max() <= np.median(pred.depth) * (1 + 1e-6)

    out = tmp_path / "cloud.ply"
    assert main(["pointcloud", str(image_path), "--checkpoint", str(checkpoint), "--intrinsics",
                 str(tiny_root / "scene_0000" / "intrinsics.json"), "-o", str(out), "--remove-sky"]) == 0
    ply = PlyData.read(str(out))
    assert ply.elements[0].name == "vertex" and not ply.text
    assert {p.name for p in ply["vertex"].properties} == {"x", "y", "z", "red", "green", "blue"}
    assert 0 < ply["vertex"].count <= 64 * 128
    with pytest.raises(ValueError, match="needs the camera intrinsics"):
        load(checkpoint).predict(image).points()


def test_intrinsics_that_do_not_fit_the_image(checkpoint, tiny_root, tmp_path, capsys):
    from selfdepth.cli import main

    wrong = tmp_path / "K.yaml"
    wrong.write_text("fx: 100\nfy: 100\ncx: 50\ncy: 50\nwidth: 100\nheight: 100\n")
    image = tiny_root / "scene_0000" / "left" / "000000.png"
    assert main(["pointcloud", str(image), "--checkpoint", str(checkpoint), "--intrinsics", str(wrong)]) == 2
    assert "K.yaml: intrinsics are for a 100x100 image, which does not fit the 128x64 image" in capsys.readouterr().err
    outside = tmp_path / "K2.yaml"
    outside.write_text("fx: 100\nfy: 100\ncx: 500\ncy: 30\n")
    assert main(["pointcloud", str(image), "--checkpoint", str(checkpoint), "--intrinsics", str(outside)]) == 2
    assert "principal point (500.0, 30.0) lies outside the 128x64 image" in capsys.readouterr().err


def test_truncated_checkpoint(checkpoint, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"bad\.ckpt: cannot read checkpoint \(truncated or corrupt"):
        DepthModel.load(bad)


def test_checkpoint_of_another_model(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match=r"resnet\.pth: not a selfdepth checkpoint"):
        DepthModel.load(other)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        DepthModel.load(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("factor", [0.1, 7.0])
def test_scale_from_camera_height_recovers_a_known_scale(tiny_root, factor):
    """Relative depth = true depth / factor: the road plane at 1.65 m gives the factor back."""
    from selfdepth.data.synthetic import CAMERA_HEIGHT
    from selfdepth.io import load_depth, load_intrinsics
    from selfdepth.pointcloud import scale_from_camera_height

    scene = tiny_root / "scene_0001"
    intrinsics = load_intrinsics(scene / "intrinsics.json")
    for frame in ("000000", "000002"):
        depth = load_depth(scene / "depth" / f"{frame}.npy")
        estimate = scale_from_camera_height(depth / factor, intrinsics, CAMERA_HEIGHT)
        assert estimate == pytest.approx(factor, rel=0.05)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_backend_only_where_the_cpu_has_it_and_auto_picks_it(checkpoint, monkeypatch, capsys, tmp_path, native):
    import selfdepth.hardware
    import selfdepth.inference
    from selfdepth.export import load_fastest

    monkeypatch.setattr(selfdepth.inference, "has_native_bf16", lambda: native)
    monkeypatch.setattr(selfdepth.hardware, "has_native_bf16", lambda flags=None: native)
    asked, auto = load(checkpoint, "torch-bf16"), load(checkpoint, "auto")
    assert asked.bf16 == auto.bf16 == native
    assert ("no native bf16" in capsys.readouterr().out) == (not native)  # a notice, never the slow emulated path
    x = torch.rand(2, 3, 64, 128)
    fp32 = load(checkpoint).depth(x)
    # bf16 keeps 8 mantissa bits: depths agree to a few percent (exactly when it fell back to fp32).
    torch.testing.assert_close(auto.depth(x), fp32, rtol=0.05 if native else 1e-5, atol=0)
    model, backend = load_fastest(checkpoint, "auto", tmp_path)
    assert backend == ("torch-bf16" if native else "onnxruntime") and model.bf16 == native
    with pytest.raises(ValueError, match="backend must be one of auto, torch, torch-bf16, onnxruntime"):
        load(checkpoint, "tensorrt")


def test_colorize_is_matplotlibs_magma():
    from matplotlib import colormaps

    rng = np.random.default_rng(0)
    disparity = np.concatenate([rng.uniform(-0.5, 2.5, 5000), [0.0, 1.0, 2.0, 255.5 / 256 * 2, 2 * (1 - 1e-9)]])
    disparity = disparity.reshape(1, -1)
    expected = np.round(colormaps["magma"](np.clip(disparity / 2.0, 0, 1))[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(colorize(disparity, 2.0), expected)
    # NaN (no disparity) gets the lowest colour instead of whatever casting NaN to an integer gives.
    assert (colorize(np.array([[np.nan, 1.0]]), 1.0)[0, 0] == colorize(np.zeros((1, 1)), 1.0)[0, 0]).all()


def test_network_input_resizes_in_uint8_like_the_float_resize():
    import torch.nn.functional as F

    from selfdepth.inference import network_input

    image = np.random.default_rng(0).integers(0, 256, (375, 1242, 3), dtype=np.uint8)
    x = network_input(image, 192, 640)
    reference = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, (192, 640),
                              mode="bilinear", align_corners=False, antialias=True)
    assert x.shape == (1, 3, 192, 640) and x.dtype == torch.float32
    assert float((x - reference).abs().max()) <= 1 / 255 + 1e-6  # uint8 rounding, nothing more
    same = network_input(image[:192, :640], 192, 640)  # already the network's size: only the scaling to [0, 1]
    torch.testing.assert_close(same, torch.from_numpy(image[:192, :640]).permute(2, 0, 1)[None].float() / 255)
