"""The explorer's real window, on a virtual display (Xvfb): it opens, a slider dragged with
the mouse moves the decoded image, and the screenshots show it. Skipped where Xvfb, xdotool,
Tk or Pillow's X11 grab is missing (Debian: apt-get install xvfb xdotool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

if not (shutil.which("Xvfb") and shutil.which("xdotool")):
    pytest.skip("Xvfb and xdotool are not installed", allow_module_level=True)
pytest.importorskip("tkinter")
ImageGrab = pytest.importorskip("PIL.ImageGrab")
features = pytest.importorskip("PIL.features")
if not features.check("xcb"):
    pytest.skip("this Pillow cannot grab an X11 screen", allow_module_level=True)


@pytest.fixture
def display():
    """A virtual X display of its own (-displayfd picks a free number), ended afterwards."""
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield f":{xvfb.stdout.readline().strip()}"
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=30)


def xdotool(*args, env):
    done = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout


def grab(display: str) -> np.ndarray:
    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB")).astype(int)  # (H, W, 3)


def test_the_window_opens_and_a_dragged_slider_moves_the_decoded_image(tiny_run, data_env,
                                                                       display, tmp_path):
    out, _ = tiny_run
    env = {**data_env, "DISPLAY": display, "MPLBACKEND": "TkAgg"}
    explore = subprocess.Popen([sys.executable, "-m", "tinyvae", "explore",
                                str(out / "checkpoint.npz")],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = xdotool("search", "--sync", "--onlyvisible", "--name", "Figure", env=env)
        window = found.split()[0]
        time.sleep(2)  # the first draw
        geometry = xdotool("getwindowgeometry", "--shell", window, env=env)
        width = int(geometry.split("WIDTH=")[1].split()[0])
        height = width * 6 // 10  # the figure is 10 × 6 inches, at the top of the window
        before = grab(display)
        # The first slider's track spans x 0.55-0.87 of the figure, centred 0.152 of it from the
        # top (explorer.py's layout): press near its left end and drag further left, as a hand
        # would.
        y = int(0.152 * height)
        xdotool("mousemove", str(int(0.62 * width)), str(y), "mousedown", "1", "sleep", "0.3",
                "mousemove", str(int(0.60 * width)), str(y), "sleep", "0.3",
                "mousemove", str(int(0.57 * width)), str(y), "sleep", "0.3", "mouseup", "1",
                env=env)
        time.sleep(2)
        after = grab(display)
    finally:
        explore.terminate()
        stdout, stderr = explore.communicate(timeout=30)
    ImageGrab.Image.fromarray(before.astype(np.uint8)).save(tmp_path / "before.png")
    ImageGrab.Image.fromarray(after.astype(np.uint8)).save(tmp_path / "after.png")
    assert "sliders (latent dims" in stdout and "Traceback" not in stderr

    def region(shot, left, top, right, bottom):  # fractions of the figure, from its top left
        return shot[int(top * height):int(bottom * height), int(left * width):int(right * width)]

    image = (0.03, 0.10, 0.39, 0.70)  # the decoded image: axes [0.03, 0.30, 0.36, 0.60]
    thumbnails = (0.03, 0.75, 0.39, 0.95)  # test images a and b
    assert region(before, *image).std() > 10  # a window was drawn, not a blank screen
    assert np.abs(region(after, *image) - region(before, *image)).max() > 30  # the image moved
    # a and b did not
    assert np.array_equal(region(after, *thumbnails), region(before, *thumbnails))
