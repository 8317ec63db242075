"""ONNX export in fp32 and int8: parity with PyTorch, every entry point loads the file, clear errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from selfdepth.cli import main
from selfdepth.export import KEEP_FP32, calibration_images, export_onnx
from selfdepth.inference import ONNX_META_KEY, load
from selfdepth.int8_graph import copies_on_uint8
from selfdepth.io import load_image
from selfdepth.predict import predict_paths


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, make_checkpoint):
    return make_checkpoint(tmp_path_factory.mktemp("export") / "model.ckpt", 64, 128, "stereo")


def test_calibration_images_are_colour_and_spread_over_the_folder(tiny_root):
    picks = calibration_images(tiny_root, count=5)
    assert len(picks) == 5 and all(p.parent.name in ("left", "right") for p in picks)  # no depth maps or masks
    assert len({p.parent.parent for p in picks}) == 3  # spread over the three scenes
    with pytest.raises(FileNotFoundError, match="calibration folder not found"):
        calibration_images(tiny_root / "nowhere")
    with pytest.raises(ValueError, match="no colour images"):
        calibration_images(tiny_root / "scene_0000" / "masks")


def test_int8_export_is_close_to_fp32_and_loads_everywhere(checkpoint, tiny_root, tmp_path):
    fp32 = export_onnx(checkpoint, tmp_path / "fp32.onnx")
    int8 = export_onnx(checkpoint, tmp_path / "int8.onnx", int8=True, calibration=tiny_root)
    proto = onnx.load(str(int8))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[ONNX_META_KEY])
    graph = proto.graph
    assert meta["precision"] == "int8" and meta["metric"]
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 20 and ops.count("DequantizeLinear") >= 20
    # The disparity head stays fp32: its weights are a plain float initialiser; every other convolution's
    # weights come through a DequantizeLinear (int8 in the file), the first convolution's included.
    weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    kept = [n for n in convs if any(k in n.name for k in KEEP_FP32)]
    assert kept and all(n.input[1] in weights for n in kept)
    made_by = {out: n for n in graph.node for out in n.output}
    quantised = [n for n in convs if n not in kept]
    assert any("/encoder/conv1/" in n.name for n in quantised)
    assert all(made_by[n.input[1]].op_type == "DequantizeLinear" for n in quantised)
    # The decoder's concatenations take dequantised uint8 and are requantised after (onnxruntime fuses
    # that into a uint8 concatenation), as QUANTISED_OPS asks; its pads read and write the uint8 tensor
    # itself (int8_graph.pads_on_uint8); the fp32 head's own pad stays float.
    read_by = {}
    for n in graph.node:
        for name in n.input:
            read_by.setdefault(name, []).append(n)
    decoder = [n for n in graph.node if "decoder" in n.name and not any(k in n.name for k in KEEP_FP32)]
    concats, pads = [n for n in decoder if n.op_type == "Concat"], [n for n in decoder if n.op_type == "Pad"]
    assert concats and pads
    for n in concats:
        assert made_by[n.input[0]].op_type == "DequantizeLinear", n.name
        assert [r.op_type for r in read_by[n.output[0]]] == ["QuantizeLinear"], n.name
    for n in pads:
        assert made_by[n.input[0]].op_type != "DequantizeLinear", n.name
        assert [r.op_type for r in read_by[n.output[0]]] == ["DequantizeLinear"], n.name
    assert int8.stat().st_size < 0.4 * fp32.stat().st_size  # int8 weights: about a quarter of the bytes

    # Parity on real rendered frames: depth within 5% (median relative error) of the fp32 file's.
    frames = sorted((tiny_root / "scene_0001" / "left").glob("*.png"))
    x = torch.stack([torch.from_numpy(load_image(f)).permute(2, 0, 1).float() / 255 for f in frames])
    d32, d8 = load(fp32).depth(x), load(int8).depth(x)
    assert torch.median((d8 - d32).abs() / d32) < 0.05

    # Every entry point takes it like any .onnx: the Python API, predict, the point-cloud CLI.
    written = predict_paths([frames[0]], int8, tmp_path / "out", progress=False)
    (npy,) = [f for f in written if f.suffix == ".npy"]
    assert np.load(npy).shape == (64, 128)
    assert main(["pointcloud", str(frames[0]), "--checkpoint", str(int8), "--output", str(tmp_path / "p.ply"),
                 "--intrinsics", str(tiny_root / "scene_0001" / "intrinsics.json")]) == 0


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet_lite0"])
def test_uint8_pads_and_upsampling_give_the_same_numbers(make_checkpoint, tiny_root, tmp_path, monkeypatch, encoder):
    import onnxruntime as ort

    import selfdepth.export as export

    ckpt = make_checkpoint(tmp_path / "m.ckpt", 64, 128, "stereo", encoder=encoder)
    counts = {}

    def counted(graph):
        counts.update(copies_on_uint8(graph))
        return counts

    monkeypatch.setattr(export, "copies_on_uint8", counted)
    moved = export_onnx(ckpt, tmp_path / "moved.onnx", int8=True, calibration=tiny_root)
    assert counts["pads"] >= 5 and counts["upsamplings"] >= 4  # the decoder's (and Lite0's SAME pads)
    monkeypatch.setattr(export, "copies_on_uint8", lambda graph: {})
    plain = export_onnx(ckpt, tmp_path / "plain.onnx", int8=True, calibration=tiny_root)
    ops = [n.op_type for n in onnx.load(str(moved)).graph.node]
    assert ops.count("QuantizeLinear") < [n.op_type for n in onnx.load(str(plain)).graph.node].count("QuantizeLinear")
    frames = sorted((tiny_root / "scene_0001" / "left").glob("*.png"))[:2]
    x = np.stack([load_image(f).transpose(2, 0, 1) for f in frames]).astype(np.float32) / 255
    runs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})
            for p in (moved, plain)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # copies move bytes: bit for bit the same sigmoid


def test_int8_without_calibration_says_what_to_pass(checkpoint, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "m.onnx"), "--int8"]) == 2
    assert "--int8 needs --calibration DIR" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_lite0_exports_to_onnx_in_fp32_and_int8(make_checkpoint, tiny_root, tmp_path):
    # timm's TF 'same' pads are computed from the input size at run time; exported as such they gave maps of
    # the wrong size in onnxruntime. With the static pads (models/efficientnet.py) both files match PyTorch.
    checkpoint = make_checkpoint(tmp_path / "lite0.ckpt", 64, 128, "stereo", encoder="efficientnet_lite0")
    fp32 = export_onnx(checkpoint, tmp_path / "fp32.onnx")
    int8 = export_onnx(checkpoint, tmp_path / "int8.onnx", int8=True, calibration=tiny_root)
    meta = json.loads({p.key: p.value for p in onnx.load(str(int8)).metadata_props}[ONNX_META_KEY])
    assert meta["config"]["model"]["encoder"] == "efficientnet_lite0"
    frames = sorted((tiny_root / "scene_0002" / "left").glob("*.png"))
    x = torch.stack([torch.from_numpy(load_image(f)).permute(2, 0, 1).float() / 255 for f in frames])
    d_torch, d32, d8 = load(checkpoint).depth(x), load(fp32).depth(x), load(int8).depth(x)
    torch.testing.assert_close(d32, d_torch, rtol=1e-4, atol=1e-4)
    assert torch.median((d8 - d32).abs() / d32) < 0.05
    assert int8.stat().st_size < 0.4 * fp32.stat().st_size
