"""The app in a real browser: upload, depth, measure, 3-D view; bad uploads; nothing leaves the machine."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
pytest.importorskip("playwright", reason="playwright is not installed: pip install -e '.[dev]'")

from selfdepth.app import AppLimits, serve  # noqa: E402
from selfdepth.app.browser import drive, find_chromium  # noqa: E402
from selfdepth.io import save_image  # noqa: E402

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium at /usr/bin/chromium (.ci/run installs it)")


def _upload(url: str, payload: bytes) -> int:
    """POST ``payload`` as a multipart file upload; the HTTP status."""
    import urllib.error
    import urllib.request

    boundary = "selfdepthtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_app_in_chromium(tmp_path, make_checkpoint):
    street = np.zeros((120, 360, 3), np.uint8)
    street[60:] = np.linspace(40, 200, 360, dtype=np.uint8)[None, :, None]  # a textured lower half
    street[:60] = (120, 160, 220)
    image = save_image(tmp_path / "street.png", street)
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"GIF89a" + bytes(range(256)) * 4)  # claims to be an image, is not one

    port = _free_port()
    limits = AppLimits(max_upload_mb=1.0)
    app = serve(make_checkpoint(tmp_path / "model.ckpt", 64, 192), port=port, backend="auto", limits=limits,
                block=False)  # exports to ONNX
    try:
        assert app.server_name == "127.0.0.1"
        seen = drive(f"http://127.0.0.1:{port}/", image, bad, tmp_path / "shots", timeout_s=90)
        too_big = _upload(f"http://127.0.0.1:{port}/gradio_api/upload", b"\0" * 1_500_000)
    finally:
        app.close()
    assert too_big == 413, f"a 1.5 MB upload to a 1 MB app answered HTTP {too_big}"

    assert "cannot decode image" in seen.bad_upload_message and str(tmp_path) not in seen.bad_upload_message
    assert "/tmp/gradio" not in seen.bad_upload_message
    assert seen.upload_to_depth_s > 0
    assert "Depth at" in seen.measurement and "Distance from" in seen.measurement and " m" in seen.measurement
    assert seen.canvas_drawn > 0.01, f"the 3-D viewer drew (almost) nothing over its background: {seen.canvas_drawn:.4f}"
    own = f"127.0.0.1:{port}"
    foreign = [u for u in seen.requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).netloc != own]
    assert not foreign, f"the page contacted other hosts: {foreign[:5]}"
    for name, shot in seen.screenshots.items():
        assert shot.stat().st_size > 10_000, f"{name} screenshot is empty"
