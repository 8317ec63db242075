"""Importing Monodepth2's weights: selfdepth's output equals Monodepth2's own (PyPI monodepth2==1.0.0)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from selfdepth.cli import main
from selfdepth.inference import load

# Runs in a subprocess: the wheel installs top-level modules (networks, layers, utils) that must not
# leak into the test process. It saves random-init state dicts as Monodepth2's trainer does, and its output.
_MONODEPTH2 = textwrap.dedent("""
    import sys, types
    import numpy as np, torch, torchvision.models as models
    sys.path.insert(0, sys.argv[1])
    import networks
    fix = lambda fn: (lambda pretrained=False, **kw: fn(weights=None, **kw))  # torchvision >= 0.13 keywords
    networks.resnet_encoder.models = types.SimpleNamespace(
        resnet=models.resnet, ResNet=models.ResNet, **{n: fix(getattr(models, n)) for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")})
    torch.manual_seed(0)
    encoder = networks.ResnetEncoder(18, False).eval()
    decoder = networks.DepthDecoder(encoder.num_ch_enc, range(4)).eval()
    for p in decoder.parameters():  # random init leaves biases at 0; make the test see them
        p.data.add_(0.01 * torch.randn_like(p))
    with torch.no_grad():  # and batch-norm statistics away from the identity
        for m in encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5)
    state = encoder.state_dict(); state.update(height=64, width=128, use_stereo=True)
    torch.save(state, sys.argv[2] + "/encoder.pth")
    torch.save(decoder.state_dict(), sys.argv[2] + "/depth.pth")
    x = torch.from_numpy(np.load(sys.argv[2] + "/input.npy"))
    with torch.no_grad():
        out = decoder(encoder(x))
    np.save(sys.argv[2] + "/disp.npy", out[("disp", 0)].numpy())
""")


@pytest.fixture(scope="module")
def monodepth2_files(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("monodepth2")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(scratch / "pkg"),
           "monodepth2==1.0.0"]
    if subprocess.run(pip, capture_output=True, timeout=300).returncode != 0:
        pytest.skip("pip cannot fetch monodepth2==1.0.0")
    np.save(scratch / "input.npy", np.random.default_rng(0).random((2, 3, 64, 128), dtype=np.float32))
    script = scratch / "make.py"
    script.write_text(_MONODEPTH2)
    subprocess.run([sys.executable, str(script), str(scratch / "pkg"), str(scratch)], check=True, timeout=300)
    return scratch


def test_imported_weights_give_monodepth2s_output(monodepth2_files, tmp_path):
    d = monodepth2_files
    ckpt = tmp_path / "md2.ckpt"
    assert main(["import-monodepth2", "--encoder", str(d / "encoder.pth"), "--depth", str(d / "depth.pth"),
                 "-o", str(ckpt), "--mode", "stereo"]) == 0
    model = load(ckpt)
    assert (model.height, model.width) == (64, 128) and model.metric and model.scale == pytest.approx(5.4)
    assert model.net is not None
    x = torch.from_numpy(np.load(d / "input.npy"))
    with torch.no_grad():
        ours = model.net(x)[0].numpy()
    theirs = np.load(d / "disp.npy")
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    assert np.abs(theirs - theirs.mean()).max() > 1e-3, "a constant output would make the comparison empty"


def test_wrong_files_are_explained(monodepth2_files, tmp_path, capsys):
    d = monodepth2_files
    assert main(["import-monodepth2", "--encoder", str(d / "depth.pth"), "--depth", str(d / "depth.pth"),
                 "-o", str(tmp_path / "x.ckpt")]) == 2
    assert "not Monodepth2 ResNet18 depth weights (missing ['encoder.net" in capsys.readouterr().err
    truncated = tmp_path / "encoder.pth"
    truncated.write_bytes((d / "encoder.pth").read_bytes()[:4000])
    assert main(["import-monodepth2", "--encoder", str(truncated), "--depth", str(d / "depth.pth"),
                 "-o", str(tmp_path / "x.ckpt")]) == 2
    assert "encoder.pth: cannot read Monodepth2 encoder weights" in capsys.readouterr().err
