"""Drive a running app in a real headless browser: the browser test and the app benchmark share this.

Chromium comes from the system (Debian's ``chromium``); Playwright's own browser
download does not work offline, so ``executable_path`` points at it.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "BrowserRun", "find_chromium", "drive"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def find_chromium() -> str | None:
    """The system Chromium, or None."""
    return CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")


@dataclass
class BrowserRun:
    """What one walk through the app saw."""

    upload_to_depth_s: float  # from clicking "Depth" to the depth image on the page
    bad_upload_message: str  # the error the page showed for a file that is not an image
    canvas_drawn: float  # fraction of the 3-D viewer's canvas that differs from its background
    measurement: str  # the text after clicking two points of the depth map
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    screenshots: dict[str, Path] = field(default_factory=dict)  # tab -> PNG


def _drawn_fraction(png: bytes, background: tuple[int, int, int]) -> float:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float((np.abs(pixels - np.array(background)).sum(-1) > 12).mean())


def drive(url: str, image: Path, bad_file: Path, shots: Path, background: tuple[int, int, int] = (26, 26, 31),
          timeout_s: float = 120.0) -> BrowserRun:
    """Upload a bad file then ``image``, wait for depth, measure, make the 3-D view; screenshot each tab.

    Args:
        url: the app's address.
        background: the 3-D viewer's clear colour as 0-255 RGB (the app's ``clear_color``).
    """
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    shots.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    ms = timeout_s * 1000
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(profile, executable_path=chromium, args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1200, "height": 1300})
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            page.wait_for_selector("#run-depth", timeout=ms)

            # A file that is not an image: the page says so and the app keeps serving.
            page.set_input_files("#upload input[type=file]", str(bad_file))
            page.wait_for_timeout(1000)
            page.click("#run-depth")
            toast = page.locator(".toast-body").first
            toast.wait_for(timeout=ms)
            bad_message = toast.inner_text()
            page.locator(".toast-close").first.click()  # dismiss it, so the screenshots show the app
            toast.wait_for(state="detached", timeout=ms)
            page.locator("#upload button[aria-label='Clear']").first.click()

            page.set_input_files("#upload input[type=file]", str(image))
            page.wait_for_timeout(1000)
            start = time.perf_counter()
            page.click("#run-depth")
            page.wait_for_selector("#slider img", timeout=ms)
            page.wait_for_selector("#depth-view img", timeout=ms)
            seconds = time.perf_counter() - start

            view = page.locator("#depth-view img")
            box = view.bounding_box()
            for fx in (0.3, 0.7):  # two points on the depth map's middle row
                view.click(position={"x": box["width"] * fx, "y": box["height"] * 0.6})
                page.wait_for_timeout(1500)
            measurement = page.locator("#readout textarea").input_value()
            page.screenshot(path=str(shots / "app_image.png"), full_page=True)

            page.get_by_role("tab", name="3-D").click()
            page.click("#make-3d")
            canvas = page.locator("#viewer canvas")
            canvas.wait_for(timeout=ms)
            drawn, deadline = 0.0, time.perf_counter() + timeout_s
            while drawn < 0.01 and time.perf_counter() < deadline:  # the viewer loads the mesh, then draws
                page.wait_for_timeout(1000)
                drawn = _drawn_fraction(canvas.screenshot(), background)
            page.wait_for_timeout(1000)  # let the first frames settle before the screenshot
            page.screenshot(path=str(shots / "app_3d.png"), full_page=True)

            for tab in ("Video", "Live"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(500)
                page.screenshot(path=str(shots / f"app_{tab.lower()}.png"))
        finally:
            browser.close()
    return BrowserRun(seconds, bad_message, drawn, measurement, requests,
                      {name: shots / f"app_{name}.png" for name in ("image", "3d", "video", "live")})
