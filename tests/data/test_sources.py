"""Training on several drives and sources at once; the held-out drives refused (issue 28)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_kitti import _make_drive

from selfdepth.config import load_config
from selfdepth.data.kitti import KittiDataset
from selfdepth.data.kitti_held_out import held_out_reason
from selfdepth.data.kitti_odometry import KittiOdometryDataset
from selfdepth.data.sources import collate_sources, describe, open_sources
from selfdepth.train import make_dataset

DRIVE_A = "2011_09_26/2011_09_26_drive_0005_sync"  # Eigen-Zhou training drives
DRIVE_B = "2011_09_28/2011_09_28_drive_0001_sync"


def _two_dates(tmp_path: Path) -> Path:
    """One root, two dates, a PNG drive of 4 frames and a JPEG drive of 5 at twice the size (its own calibration)."""
    root = _make_drive(tmp_path / "raw", ".png", frames=4, drive=DRIVE_A)
    _make_drive(root, ".jpg", frames=5, drive=DRIVE_B)
    calib = root / "2011_09_28" / "calib_cam_to_cam.txt"
    calib.write_text(calib.read_text().replace("S_rect_02: 6.400000e+01 3.200000e+01", "S_rect_02: 128 64")
                     .replace("50 0 32", "100 0 64.5").replace("0 50 16", "0 100 32.5"))  # same camera, pixel centres
    for camera in ("image_02", "image_03"):
        for path in (root / DRIVE_B / camera / "data").iterdir():
            Image.open(path).resize((128, 64)).save(path, quality=95)
    return root


def _odometry(root: Path, sequences=("01", "04"), frames: int = 4) -> Path:
    """A tiny KITTI odometry tree: 64x32 JPEG stereo frames and calib.txt (P0-P3, Tr) per sequence."""
    p = "50 0 32 {} 0 50 16 0 0 0 1 0"
    calib = "".join(f"P{i}: {p.format(t)}\n" for i, t in enumerate((0, -27, 2.5, -24.5))) + "Tr: 0 -1 0 0 0 0 -1 0 1 0 0 0\n"
    for seq in sequences:
        folder = root / "sequences" / seq
        for camera in ("image_2", "image_3"):
            (folder / camera).mkdir(parents=True)
            for i in range(frames):
                Image.fromarray(np.full((32, 64, 3), 40 * i, np.uint8)).save(folder / camera / f"{i:06d}.jpg")
        (folder / "calib.txt").write_text(calib)
    return root


def test_a_split_spanning_dates_drives_and_formats(tmp_path, capsys):
    root = _two_dates(tmp_path)
    split = tmp_path / "split.txt"
    split.write_text("".join(f"{d} {f} l\n" for d, n in ((DRIVE_A, 4), (DRIVE_B, 5)) for f in range(n)))
    data = KittiDataset(root, split, 32, 64, temporal_offsets=(-1, 1), stereo=True, refuse_held_out=True)
    # Each drive's ends lack a neighbour: 2 + 3 targets remain, and the skip is said once.
    assert len(data) == 5 and len(data.scenes) == 2
    assert "4 split frames lack a neighbour at (-1, 1)" in capsys.readouterr().out
    a, b = data[0], data[len(data) - 1]
    assert a["temporal"].shape == b["temporal"].shape == (2, 3, 32, 64)
    # Drive B's camera at 128x64 resized to 64x32: the same K at the network size as drive A's.
    assert np.allclose(a["K"][0].numpy(), b["K"][0].numpy())
    assert {s.intrinsics.width for s in data.scenes} == {64, 128}


def test_every_source_kind_joins_one_data_set(tmp_path, capsys):
    raw = _two_dates(tmp_path)
    odometry = _odometry(tmp_path / "odometry")
    config = load_config(None, [f"data.train={raw},{odometry}", "data.height=32", "data.width=64",
                                "train.mode=mono+stereo", "data.augment=false"])
    data = make_dataset(config)
    out = capsys.readouterr().out
    assert "leaving out sequences 04 (held out for testing)" in out
    # Raw: every frame of both drives with both neighbours, both cameras (2 + 3) x 2; odometry 01: 2 x 2.
    assert len(data) == 14
    assert describe(data).startswith("14 samples of 3 drives or scenes")
    assert {tuple(data[i]["K"].shape) for i in range(len(data))} == {(4, 3, 3)}
    # A data-scaling run keeps the first half of each drive's targets.
    half = load_config(None, [f"data.train={raw},{odometry}", "data.height=32", "data.width=64",
                              "train.mode=mono+stereo", "data.fraction=0.5"])
    assert len(make_dataset(half)) == 2 * (1 + 2) + 2 * 1  # round(0.5 * 2) = 1, round(0.5 * 3) = 2 per camera


def test_rendered_scenes_train_beside_real_drives_and_only_they_carry_truth(tmp_path, tiny_root):
    raw = _two_dates(tmp_path)
    config = load_config(None, [f"data.train={raw},{tiny_root}", "data.height=32", "data.width=64",
                                "train.mode=mono+stereo", "data.augment=false"])
    data = make_dataset(config)
    rendered = [i for i in range(len(data)) if "depth_gt" in data[i]]
    real = [i for i in range(len(data)) if i not in rendered]
    assert len(real) == 2 * (2 + 3) and len(rendered) == 3 * 2  # raw as above; 3 scenes of 4 frames, 2 targets each
    batch = collate_sources([data[i] for i in (real[0], rendered[0], real[-1])])
    # The real drives' samples get "unknown" depth (zeros) and no pose; the rendered one keeps its own.
    assert batch["depth_gt"].shape == (3, 1, 64, 128)  # the rendered scenes' own resolution
    assert (batch["depth_gt"][[0, 2]] == 0).all() and (batch["depth_gt"][1] > 0).any()
    assert batch["pose_known"].tolist() == [False, True, False]
    assert torch.equal(batch["pose_gt"][1], data[rendered[0]]["pose_gt"])
    assert torch.equal(batch["pose_gt"][0], torch.eye(4).expand(2, 4, 4))
    assert torch.equal(batch["image"][1], data[rendered[0]]["image"])
    # Samples that all agree collate exactly as torch's default does, without a pose_known key.
    same = [data[i] for i in rendered[:2]]
    assert batch.keys() - {"pose_known"} == collate_sources(same).keys()
    torch.testing.assert_close(collate_sources(same), torch.utils.data.default_collate(same))


def test_batches_that_cannot_be_mixed_are_refused_with_the_key():
    image = torch.zeros(3, 4, 4)
    with pytest.raises(ValueError, match="samples disagree on 'stereo': 1 of 2"):
        collate_sources([{"image": image, "stereo": image}, {"image": image}])
    with pytest.raises(ValueError, match="'depth_gt' differs in shape"):
        collate_sources([{"depth_gt": torch.ones(1, 4, 4)}, {"depth_gt": torch.ones(1, 8, 8)}, {}])


def test_odometry_baseline_intrinsics_and_lidar(tmp_path):
    root = _odometry(tmp_path / "odometry", ("01",))
    velo = root / "sequences" / "01" / "velodyne"
    velo.mkdir()
    y, z = np.meshgrid(np.linspace(-2, 2, 40), np.linspace(-1, 1, 20))
    np.stack([np.full(y.size, 10.0), y.ravel(), z.ravel(), np.ones(y.size)], 1).astype(np.float32).tofile(velo / "000001.bin")
    data = KittiOdometryDataset(root, ("01",), 32, 64, stereo=True, ground_truth=True)
    assert len(data) == 1 and data.frames_without_lidar == 3
    scene = data.scenes[0]
    assert scene.intrinsics.baseline == pytest.approx((2.5 + 24.5) / 50)  # (P2 - P3) x-translation / fx
    depth = data[0]["depth_gt"][0].numpy()
    assert (depth > 0).sum() > 100 and np.allclose(depth[depth > 0], 10.0, atol=1e-4)
    (root / "sequences" / "01" / "calib.txt").write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(ValueError, match=r"01/calib.txt: missing calibration keys \['P1', 'P2', 'P3'\]"):
        KittiOdometryDataset(root, ("01",), 32, 64)


def test_bad_split_lines_are_named(tmp_path):
    root = _two_dates(tmp_path)
    split = tmp_path / "split.txt"
    split.write_text(f"{DRIVE_A} 1 l\n\n2011_09_26/2011_09_26_drive_0099_sync 3 l\n")
    with pytest.raises(FileNotFoundError, match=r"split.txt, line 3: drive 2011_09_26/2011_09_26_drive_0099_sync is "
                                                r"not under .*raw \(download it, or pass --skip-missing"):
        KittiDataset(root, split, 32, 64)
    split.write_text(f"{DRIVE_A} 1 l\n2011_10_03/2011_10_03_drive_0034_sync 3 l\n")
    with pytest.raises(FileNotFoundError, match=r"line 2: date folder of drive 2011_10_03/"):
        KittiDataset(root, split, 32, 64)
    assert len(KittiDataset(root, split, 32, 64, skip_missing=True)) == 1
    (root / "2011_09_28" / "calib_cam_to_cam.txt").unlink()
    split.write_text(f"{DRIVE_B} 1 l\n")
    with pytest.raises(FileNotFoundError, match=r"line 1: drive 2011_09_28/.*calibration file not found: .*2011_09_28"):
        KittiDataset(root, split, 32, 64)


def test_test_drives_are_refused_for_training_with_the_reason(tmp_path):
    assert "Eigen test drive" in held_out_reason("2011_09_26/2011_09_26_drive_0013_sync")
    assert "odometry sequence 04" in held_out_reason("2011_09_30/2011_09_30_drive_0016_sync")
    assert "pose benchmark" in held_out_reason("2011_09_30/2011_09_30_drive_0033_sync")  # odometry 09
    assert held_out_reason(DRIVE_A) is None
    test_drive = "2011_09_26/2011_09_26_drive_0002_sync"
    root = _make_drive(tmp_path / "raw", ".jpg", drive=test_drive)
    config = load_config(None, [f"data.train={root}", "data.height=32", "data.width=64"])
    with pytest.raises(ValueError, match=r"refusing to train on 2011_09_26/2011_09_26_drive_0002_sync, an Eigen "
                                         r"test drive: .* data.refuse_held_out=false"):
        make_dataset(config)
    assert len(make_dataset(load_config(None, [f"data.train={root}", "data.height=32", "data.width=64",
                                               "data.refuse_held_out=false"]))) == 8
    odometry = _odometry(tmp_path / "odometry", ("04", "09"))
    for seq, why in (("04", "Eigen test drive"), ("09", "pose benchmark")):
        with pytest.raises(ValueError, match=rf"odometry sequence {seq}: refusing to train on .*{why}"):
            open_sources(str(odometry), 32, 64, odometry_sequences=(seq,))
    with pytest.raises(ValueError, match="no usable frames"):  # every sequence held out
        open_sources(str(odometry), 32, 64)
    # Evaluation may of course read them.
    assert len(KittiOdometryDataset(odometry, ("09",), 32, 64)) == 4


def test_config_takes_sources_as_a_list_and_sequences_as_numbers():
    config = load_config(None, [])
    from selfdepth.config import with_overrides

    config = with_overrides(config, {"data.train": ["a", "b"], "data.odometry_sequences": [1, 8]})
    assert config.data.train == "a,b" and config.data.odometry_sequences == ("01", "08")
    assert load_config(None, ["data.odometry_sequences=03,06"]).data.odometry_sequences == ("03", "06")
