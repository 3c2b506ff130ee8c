"""examples/desktop_app.py drives itself on a virtual X display (Xvfb): the bundle loads on a
worker thread, Generate shows live previews, a second Generate cancels the first run, Cancel
returns the best image so far, nothing raises on any thread, and the process exits 0."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "desktop_app.py"
BUNDLE = REPO / "bundles" / "shapes"


def _tkinter_missing() -> str | None:
    probe = subprocess.run([sys.executable, "-c", "import tkinter"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"tkinter not importable: {probe.stderr.strip()[-200:]}"


@pytest.fixture
def display():
    """A private Xvfb server; its display number is chosen by Xvfb (-displayfd)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb): no display for the tkinter app")
    if why := _tkinter_missing():
        pytest.skip(why)
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "800x700x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()  # written once the server accepts connections
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_desktop_app_selftest(display, tmp_path):
    pytest.importorskip("torch")
    shot = tmp_path / "desktop_app.png"
    env = dict(os.environ, DISPLAY=display, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(APP), "--selftest", "--bundle", str(BUNDLE),
                           "--screenshot", str(shot), "--timeout", "500"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=560)  # ~25 s on an idle machine
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["errors"] == [], report
    assert report["previews"] >= 1, "no progress report with an image reached the preview"
    first, second = report["finished"][:2]
    # the second Generate superseded the first run, which returned its best image so far
    assert first["run"] == 1 and first["outcome"] == "cancelled" and first["image"], report
    # Cancel was pressed mid-run (or the run had already finished)
    assert second["run"] == 2 and second["outcome"] in ("cancelled", "done"), report
    assert second["image"], "the cancelled run had made images: it must return one"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]

    from PIL import Image
    with Image.open(shot) as img:  # a real window grab, not a blank screen
        assert img.width >= 320 and img.height >= 320
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20
