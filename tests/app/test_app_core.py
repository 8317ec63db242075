"""The functions behind the app's tabs, without a browser: uploads, colour bar, 3-D mesh, measuring, video, live."""

from __future__ import annotations

import math
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
pytest.importorskip("trimesh", reason="the app extra is not installed: pip install -e '.[app]'")

from selfdepth.app.core import (  # noqa: E402
    AppLimits, LiveMeter, WorkDir, check_video, colour_bar, depth_for_upload, depth_mesh, depth_ticks, depth_video,
    host_warning, intrinsics_from, measure, model_info, save_glb,
)
from selfdepth.config import Config  # noqa: E402
from selfdepth.inference import DepthModel, Prediction  # noqa: E402
from selfdepth.io import Intrinsics  # noqa: E402
from selfdepth.models.depth import DepthNet  # noqa: E402


@pytest.fixture(scope="module")
def model() -> DepthModel:
    """An untrained stereo model: the tests check plumbing and units, not accuracy."""
    config = Config()
    config.data.height, config.data.width, config.train.mode = 64, 128, "stereo"
    return DepthModel(DepthNet(None, 4), config, baseline_m=0.54)


def _png(path, array) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def test_an_upload_gives_depth_and_its_three_downloads(model, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8)
    result = depth_for_upload(model, _png(tmp_path / "in.png", rgb), tmp_path / "out", AppLimits())
    depth = result.prediction.depth
    assert depth.shape == (50, 90) and result.colour.shape == (50, 90, 3) and model.metric
    names = [f.name for f in result.files]
    assert names == ["depth_mm.png", "depth.npy", "points.ply"]
    millimetres = np.asarray(Image.open(result.files[0]))
    assert millimetres.dtype == np.uint16
    np.testing.assert_array_equal(millimetres, np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16))
    np.testing.assert_array_equal(np.load(result.files[1]), depth)
    from plyfile import PlyData

    assert len(PlyData.read(str(result.files[2]))["vertex"]) == 50 * 90  # every pixel has a finite depth


@pytest.mark.parametrize("kind, message", [
    ("text", "cannot decode image"),
    ("grey", "grey-level"),
    ("tiny", "at least 16 pixels"),
    ("many_pixels", "40x40, more than the 1000 pixels allowed"),
    ("big_file", "more than 0.001 MB"),
])
def test_bad_uploads_get_a_message_without_server_paths(model, tmp_path, kind, message):
    path = tmp_path / "upload.png"
    limits = AppLimits()
    if kind == "text":
        path.write_text("#!/bin/sh\nrm -rf /\n")
    elif kind == "grey":
        _png(path, np.zeros((40, 40), np.uint8))
    elif kind == "tiny":
        _png(path, np.zeros((8, 40, 3), np.uint8))
    elif kind == "many_pixels":
        _png(path, np.zeros((40, 40, 3), np.uint8))
        limits = AppLimits(max_pixels=1000)
    else:
        _png(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        limits = AppLimits(max_upload_mb=0.001)
    with pytest.raises(ValueError, match=message) as err:
        depth_for_upload(model, path, tmp_path / "out", limits)
    assert str(tmp_path) not in str(err.value)


def test_a_decompression_bomb_is_refused_before_decoding(model, tmp_path):
    # 30000 x 30000 pixels that compress to a few kB: only the header may be read.
    path = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(path)
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match="too large to decode safely"):
        depth_for_upload(model, path, tmp_path / "out", AppLimits())


def test_depth_ticks_sit_where_the_colour_map_puts_those_depths():
    scale, vmax = 0.54 * 0.58 * 10, 0.4  # any metric scale and colour-map top
    positions, metres = depth_ticks(scale, vmax)
    assert metres and positions == sorted(positions) and all(0 < t <= 1 for t in positions)
    for t, d in zip(positions, metres):
        disparity = t * vmax  # colorize maps disparity / vmax to the bar
        assert scale / disparity == pytest.approx(d)
    assert all(b - a >= 0.06 for a, b in zip(positions, positions[1:]))


def test_colour_bar_is_an_image(model):
    bar = colour_bar(model, 0.5, width=400)
    assert bar.shape == (60, 400, 3) and bar.dtype == np.uint8 and bar.std() > 10


def test_intrinsics_from_a_field_of_view_pixels_or_a_file(tmp_path):
    k = intrinsics_from(200, 100, "fov", fov_deg=90.0)
    assert k.fx == pytest.approx(100.0) and k.fy == pytest.approx(100.0)  # tan(45 deg) = 1: f = width / 2
    assert (k.cx, k.cy) == (99.5, 49.5)
    assert intrinsics_from(200, 100, "pixels", fxfycxcy=(150, 151, 90, 40)) == Intrinsics(150, 151, 90, 40, 200, 100)
    (tmp_path / "k.yaml").write_text("fx: 720\nfy: 720\ncx: 620\ncy: 187\nwidth: 1242\nheight: 375\n")
    k = intrinsics_from(621, 187, "file", file=tmp_path / "k.yaml")
    assert k.fx == pytest.approx(360.0, rel=1e-3) and k.width == 621
    with pytest.raises(ValueError, match="between 1 and 170"):
        intrinsics_from(200, 100, "fov", fov_deg=180)
    with pytest.raises(ValueError, match="positive"):
        intrinsics_from(200, 100, "pixels", fxfycxcy=(0, 1, 1, 1))
    (tmp_path / "bad.yaml").write_text("fx: [1, 2\n")
    with pytest.raises(ValueError, match="intrinsics file: not valid YAML") as err:
        intrinsics_from(200, 100, "file", file=tmp_path / "bad.yaml")
    assert str(tmp_path) not in str(err.value)
    with pytest.raises(ValueError, match="valid: fov, pixels, file"):
        intrinsics_from(200, 100, "guess")


def _plane(depth: np.ndarray) -> Prediction:
    h, w = depth.shape
    return Prediction(1 / depth, depth, True, np.full((h, w, 3), 128, np.uint8))


def test_mesh_of_a_plane_keeps_every_cell_and_cuts_at_a_depth_step(tmp_path):
    k = Intrinsics(50.0, 50.0, 19.5, 9.5, 40, 20)
    flat = _plane(np.full((20, 40), 5.0))
    vertices, faces, colours = depth_mesh(flat, k, stride=2)
    assert len(vertices) == 10 * 20 and len(faces) == 2 * 9 * 19  # every grid cell, two triangles
    np.testing.assert_allclose(vertices[:, 2], -5.0)  # glTF looks down -z
    x0 = (0 - 19.5) / 50 * 5  # the top-left pixel, back-projected; glTF y is up
    np.testing.assert_allclose(vertices[0], [x0, -(0 - 9.5) / 50 * 5, -5.0], rtol=1e-6)

    step = np.full((20, 40), 5.0)
    step[:, 20:] = 20.0  # a wall 15 m behind the left half: the cells across the step are an occlusion edge
    vertices, faces, _ = depth_mesh(_plane(step), k, stride=2)
    assert len(faces) == 2 * 9 * 18
    _, near_faces, _ = depth_mesh(_plane(step), k, stride=2, max_depth=10.0)
    assert len(near_faces) == 2 * 9 * 9  # only the near half's cells (grid columns 0..9)

    glb = save_glb(tmp_path / "scene.glb", vertices, faces, colours=np.full((len(vertices), 3), 9, np.uint8))
    import trimesh

    mesh = trimesh.load(glb, force="mesh")
    assert len(mesh.faces) == len(faces) and glb.read_bytes()[:4] == b"glTF"
    with pytest.raises(ValueError, match="every point was removed"):
        save_glb(tmp_path / "empty.glb", vertices[:0], faces[:0], colours[:0])


def test_measure_reads_depth_and_the_distance_between_two_clicks():
    k = Intrinsics(100.0, 100.0, 50.0, 25.0, 100, 50)
    plane = _plane(np.full((50, 100), 10.0))
    assert "Click" in measure(plane, k, [], True)
    text = measure(plane, k, [(20, 10), (70, 10)], True)
    assert "Depth at (70, 10): 10.00 m" in text
    assert f"{50 / 100 * 10:.2f} m" in text.splitlines()[1]  # 50 px apart at 10 m with f = 100 px: 5 m
    assert "relative units" in measure(plane, k, [(1, 1)], False)
    with pytest.raises(ValueError, match="outside the 100x50 image"):
        measure(plane, k, [(100, 10)], True)


def test_video_length_is_checked_from_the_container(model, tmp_path):
    import imageio.v2 as imageio

    path = tmp_path / "clip.mp4"
    with imageio.get_writer(path, fps=10, macro_block_size=1) as writer:
        for i in range(20):
            writer.append_data(np.full((32, 48, 3), i * 10, np.uint8))
    assert check_video(path, AppLimits()) == pytest.approx(2.0, abs=0.15)
    out = depth_video(model, path, tmp_path / "out", AppLimits())
    with imageio.get_reader(out) as reader:
        frames = [frame for frame in reader]
    assert len(frames) == 20 and frames[0].shape == (32, 96, 3)  # every frame, input beside depth
    with pytest.raises(ValueError, match="more than the 1 s allowed"):
        check_video(path, AppLimits(max_video_seconds=1))
    (tmp_path / "junk.mp4").write_bytes(os.urandom(4000))
    with pytest.raises(ValueError, match="cannot decode"):
        check_video(tmp_path / "junk.mp4", AppLimits())


def test_live_meter_colours_frames_and_counts_their_rate(model):
    meter = LiveMeter(model)
    frame = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    start = time.perf_counter()
    for _ in range(4):
        colour, rate = meter(frame)
    elapsed = time.perf_counter() - start
    assert colour.shape == (48, 64, 3)
    fps = float(re.fullmatch(r"([\d.]+) frames/s", rate).group(1))
    assert 0 < fps <= 3 / (meter.times[-1] - meter.times[0]) + 0.05 and fps >= 3 / elapsed - 0.05
    with pytest.raises(ValueError, match="colour frame"):
        meter(np.zeros((48, 64), np.uint8))


def test_work_dir_prunes_old_requests_and_is_removed_on_close():
    work = WorkDir(keep_s=60)
    old = work.new()
    os.utime(old, (time.time() - 120, time.time() - 120))
    fresh = work.new()
    assert not old.exists() and fresh.is_dir()
    work.close()
    assert not work.root.exists()


def test_only_local_hosts_serve_without_a_warning():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "other machines" in host_warning("0.0.0.0")


def test_model_info_says_units_and_backend(model):
    line = model_info(model, "/some/where/model.ckpt", "onnxruntime")
    assert "`model.ckpt`" in line and "128x64" in line and "metres" in line and "onnxruntime" in line
    assert "/some/where" not in line
    assert math.isfinite(model.scale)
