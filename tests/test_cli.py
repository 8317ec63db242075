"""Command-line smoke runs: synth, train, evaluate, predict, and their error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfdepth.cli import main


def test_synth_train_evaluate_predict(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--scenes", "2", "--frames-per-scene", "3", "--size", "64x64", "--seed", "3"]) == 0
    assert (data / "contact_sheet.png").exists()
    run = tmp_path / "run"
    args = ["train", "--set", f"data.train={data}", "--set", "data.height=64", "--set", "data.width=64",
            "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", f"train.out_dir={run}",
            "--set", "train.progress_bar=false"]
    assert main(args) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(metrics)]) == 0
    result = json.loads(metrics.read_text())
    assert result["images"] == 6 and not result["median_scaling"] and 0 < result["model"]["abs_rel"]
    assert "abs_rel" in capsys.readouterr().out
    assert main(["predict", str(data / "scene_0000" / "left" / "000001.png"), "--checkpoint", str(ckpt),
                 "--out", str(tmp_path / "pred")]) == 0
    assert np.load(tmp_path / "pred" / "000001_depth.npy").shape == (64, 64)
    capsys.readouterr()

    # An error in the middle of a progress bar starts on its own line.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.png").write_bytes((data / "scene_0000" / "left" / "000001.png").read_bytes())
    (mixed / "b.png").write_bytes(b"not a png")
    assert main(["predict", str(mixed), "--checkpoint", str(ckpt), "--out", str(tmp_path / "pred2"),
                 "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "1/2" in err  # the bar was drawn
    assert any(line.startswith("selfdepth predict: error: ") and "b.png" in line for line in err.split("\n")), err


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--size", "100x64"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["train", "--set", "train.lr_rate=1"]) == 2
    assert "did you mean 'train.lr" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "none.ckpt")]) == 2
    assert "none.ckpt" in capsys.readouterr().err
    assert main(["study", "--losses", "l1,huber", "--out", str(tmp_path / "study")]) == 2
    assert "unknown loss 'huber'; valid: l1, l2" in capsys.readouterr().err
    assert main(["train", "--set", "loss.pixel_loss=barron", "--set", "loss.scale=-1"]) == 2
    assert "must be > 0" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "s"), "--glass", "1.5"]) == 2
    assert "glass in [0, 1]" in capsys.readouterr().err


def test_synth_outlier_flags(tmp_path):
    out = tmp_path / "dirty"
    assert main(["synth", "--out", str(out), "--scenes", "1", "--frames-per-scene", "3", "--size", "64x64",
                 "--moving-cars", "2", "--glass", "0.3", "--exposure", "0.2", "--no-contact-sheet"]) == 0
    meta = json.loads((out / "synth.json").read_text())
    assert meta["outliers"] == {"moving_cars": 2, "glass": 0.3, "exposure": 0.2}


def test_bad_size_argument():
    with pytest.raises(SystemExit):
        main(["synth", "--out", "x", "--size", "big"])


def test_hostile_files_get_exactly_one_line(tmp_path, capsys, make_checkpoint):
    """A checkpoint of random bytes and a broken YAML file: one stderr line naming the file, no unsafe advice."""
    rng = np.random.default_rng(0)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    zipped = tmp_path / "zip.ckpt"
    zipped.write_bytes(b"PK\x03\x04" + rng.integers(0, 256, 512, dtype=np.uint8).tobytes())
    image = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(image)
    bad_yaml = tmp_path / "K.yaml"
    bad_yaml.write_text("fx: [1, 2\ncy: 3\n")
    ckpt = make_checkpoint(tmp_path / "ok.ckpt")
    runs = [
        (["predict", str(image), "--checkpoint", str(junk)], "junk.ckpt: cannot read checkpoint"),
        (["predict", str(image), "--checkpoint", str(zipped)], "zip.ckpt: cannot read checkpoint"),
        (["import-monodepth2", "--encoder", str(junk), "--depth", str(junk), "-o", str(tmp_path / "o.ckpt")],
         "junk.ckpt: cannot read Monodepth2 encoder weights"),
        (["pointcloud", str(image), "--checkpoint", str(ckpt), "--intrinsics", str(bad_yaml), "-o",
          str(tmp_path / "p.ply")], "K.yaml: not valid YAML/JSON: line 2, column 3: expected ',' or ']'"),
        (["train", "--config", str(bad_yaml)], "K.yaml: not valid YAML: line 2, column 3"),
    ]
    for argv, message in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert "weights_only" not in err


def test_first_contact_without_a_model_says_how_to_get_one(capsys):
    for argv in (["predict", "photo.jpg"], ["pointcloud", "photo.jpg", "--intrinsics", "K.yaml"], ["app"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no model given: pass --checkpoint" in err
        assert "make demo" in err and "import-monodepth2" in err
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("selfdepth 0.")
