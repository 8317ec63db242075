"""The live pipeline: every frame written in order, sources that fail or stall, the CLI."""

from __future__ import annotations

import os
import time

import imageio.v2 as imageio
import numpy as np
import pytest

from selfdepth.cli import main
from selfdepth.inference import load
from selfdepth.io import load_image
from selfdepth.live import open_source, run_live


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, make_checkpoint):
    return make_checkpoint(tmp_path_factory.mktemp("live") / "model.ckpt", 64, 128, "stereo")


@pytest.fixture(scope="module")
def model(model_path):
    model = load(model_path)
    model.predict(np.zeros((64, 128, 3), np.uint8))  # builds the TorchScript copy: seconds, which would hide a stall
    return model


@pytest.fixture(scope="module")
def rendered(tiny_root):
    """The 12 rendered frames of the tiny data set (3 scenes x 4), each stamped with its index (top-left block)."""
    frames = [load_image(p) for p in sorted(tiny_root.glob("scene_*/left/*.png"))]
    for i, frame in enumerate(frames):
        frame[:16, :32] = i * 20
    return frames


def _video(path, frames, fps=10):
    with imageio.get_writer(path, fps=fps, macro_block_size=1, quality=9) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def _index(picture):
    """The index stamped on the frame an output picture shows (its top-left block, after lossy video coding)."""
    return int(round(picture[4:12, 4:28].mean() / 20))


def test_every_frame_is_written_in_order(model, rendered, tmp_path):
    video = _video(tmp_path / "drive.mp4", rendered)
    frames, fps, total = open_source(video)
    assert fps == pytest.approx(10) and total == 12  # the progress bar's total comes from the container
    result = run_live(model, video, tmp_path / "frames", batch_size=3, progress=False)
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert result.frames == len(written) == 12 and result.fps > 0
    assert [_index(load_image(p)) for p in written] == list(range(12))
    picture = load_image(written[0])
    assert picture.shape == (64, 256, 3)  # the frame beside its depth

    mp4 = run_live(model, video, tmp_path / "depth.mp4", progress=False).out
    with imageio.get_reader(mp4) as reader:
        decoded = [np.asarray(f) for f in reader]
    assert len(decoded) == 12 and [_index(f) for f in decoded] == list(range(12))


class _Uneven:
    """A model whose passes take uneven time (the first of each pair is slow): with several network workers
    they finish out of order."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def network_disparity(self, frames, flip_tta=False):
        self.calls += 1
        time.sleep(0.15 if self.calls % 2 else 0.0)
        return self.model.network_disparity(frames, flip_tta=flip_tta)


@pytest.mark.parametrize("workers", [2, 3])
def test_concurrent_network_passes_write_every_frame_in_order(model, rendered, tmp_path, workers):
    result = run_live(_Uneven(model), iter(rendered), tmp_path / "frames", progress=False, workers=workers)
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert result.frames == len(written) == 12
    assert [_index(load_image(p)) for p in written] == list(range(12))
    one = run_live(model, iter(rendered), tmp_path / "one", progress=False, workers=1)
    assert one.frames == 12
    for a, b in zip(written, sorted((tmp_path / "one").glob("*.png"))):  # the same pictures as one at a time
        np.testing.assert_array_equal(load_image(a), load_image(b))


def test_onnx_workers_share_the_cores(model_path, rendered, tmp_path):
    from selfdepth.export import export_onnx
    from selfdepth.live import network_workers, onnx_threads

    assert network_workers(0, "onnxruntime") == 2 and network_workers(0, "torch") == 1 and network_workers(3, "torch") == 3
    with pytest.raises(ValueError, match="workers must be 0"):
        network_workers(-1, "torch")
    with pytest.raises(ValueError, match="encoder preset must be one of ultrafast"):
        run_live(load(model_path), iter(rendered), tmp_path / "x.mp4", progress=False, encoder_preset="warp9")
    threads = onnx_threads(0)
    assert threads == max(1, (os.cpu_count() or 1) // 2)
    onnx = load(export_onnx(model_path, tmp_path / "m.onnx"), threads=threads)
    assert onnx._fast.session.get_session_options().intra_op_num_threads == threads
    result = run_live(onnx, iter(rendered), tmp_path / "frames", progress=False, backend="onnxruntime")
    assert [_index(load_image(p)) for p in sorted((tmp_path / "frames").glob("*.png"))] == list(range(12))
    assert result.frames == 12 and result.backend == "onnxruntime"


def test_odd_sized_frames_make_a_video(model, tmp_path):
    # KITTI's frames are 1242x375; H.264 needs even sizes, so the writer pads one row.
    frames = [np.full((75, 121, 3), 40 * i, np.uint8) for i in range(3)]
    run_live(model, frames, tmp_path / "odd.mp4", progress=False)
    with imageio.get_reader(tmp_path / "odd.mp4") as reader:
        decoded = [np.asarray(f) for f in reader]
    assert len(decoded) == 3 and decoded[0].shape == (76, 242, 3)


def test_a_stalled_source_stops_with_a_message_and_keeps_what_was_written(model, rendered, tmp_path):
    def stalling():
        yield from rendered[:3]
        time.sleep(4)  # a camera that stops sending
        yield rendered[3]

    with pytest.raises(ValueError, match=r"no frame for 0.5 s: the source stalled; kept the 3 frames"):
        run_live(model, stalling(), tmp_path / "out.mp4", stall_s=0.5, progress=False, name="cam")
    with imageio.get_reader(tmp_path / "out.mp4") as reader:  # the video was closed properly
        assert len([f for f in reader]) == 3


def test_a_source_that_breaks_keeps_the_frames_before(model, rendered, tmp_path):
    def breaking():
        yield from rendered[:2]
        raise RuntimeError("ffmpeg: connection reset")

    with pytest.raises(ValueError, match=r"decoding stopped: ffmpeg: connection reset; kept the 2 frames"):
        run_live(model, breaking(), tmp_path / "frames", progress=False)
    assert len(list((tmp_path / "frames").glob("*.png"))) == 2


def test_sources_that_cannot_be_opened(tmp_path):
    with pytest.raises(FileNotFoundError, match="live source not found"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="junk.mp4: cannot decode video"):
        open_source(tmp_path / "junk.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in this folder"):
        open_source(tmp_path / "empty")
    with pytest.raises(ValueError, match="webcam:9: cannot open live source"):
        open_source("webcam:9")


def test_live_from_the_command_line(model_path, rendered, tmp_path, capsys):
    video = _video(tmp_path / "drive.mp4", rendered[:5])
    assert main(["predict", "--live", str(video), "--checkpoint", str(model_path), "--out", str(tmp_path / "o.mp4"),
                 "--backend", "torch"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 frames" in printed and "frames/s end to end (torch)" in printed
    with imageio.get_reader(tmp_path / "o.mp4") as reader:
        assert len([f for f in reader]) == 5
    assert main(["predict", "--checkpoint", str(model_path)]) == 2
    assert "give image files, folders or videos" in capsys.readouterr().err


def test_side_by_side_pads_odd_sizes_and_reuses_its_buffer():
    from selfdepth.live import even_size, side_by_side

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (75, 121, 3), dtype=np.uint8)
    colour = rng.integers(0, 256, (75, 121, 3), dtype=np.uint8)
    picture = side_by_side(frame, colour)
    np.testing.assert_array_equal(picture, even_size(np.concatenate([frame, colour], axis=1)))
    assert side_by_side(frame, colour, picture) is picture  # the writer fills one buffer per frame size
    flat = side_by_side(frame, np.full((24, 40, 3), 77, np.uint8))  # a network-size picture is scaled up
    assert picture.shape == flat.shape == (76, 242, 3) and (flat[:75, 121:242] == 77).all()


def test_live_colours_match_colour_mapping_the_full_resolution_depth(model, rendered):
    """Live video colour-maps at the network's size and scales the colours up; the picture matches
    colour-mapping the disparity scaled up to the frame (how ``predict`` draws it) up to edge blending."""
    from selfdepth.inference import colorize
    from selfdepth.live import side_by_side

    frame = np.repeat(np.repeat(rendered[0], 2, axis=0), 2, axis=1)  # 128x256: twice the network's size
    full = model.predict(frame).disparity
    vmax = float(np.percentile(full, 95))
    small = model.network_disparity([frame])[0, 0].numpy()
    live = side_by_side(frame, colorize(small, vmax))[:, 256:].astype(int)
    reference = colorize(full, vmax).astype(int)
    difference = np.abs(live - reference)
    assert difference.mean() < 2.0 and np.percentile(difference, 99) < 24, (difference.mean(), difference.max())
