"""``storedesk`` as a user starts it: a fresh machine opens the main window on the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_storedesk_opens_the_demo_main_window(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("storedesk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "desktop"]
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    proc = subprocess.Popen(
        [*cmd, "--lang", "en"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    log_file = tmp_path / "state" / "StoreDesk" / "log" / "storedesk.log"
    deadline = time.monotonic() + 240
    text = ""
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            text = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
            if "main window shown" in text:
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
    assert "main window shown" in text, f"log:\n{text}\noutput:\n{out}"
    line = next(x for x in text.splitlines() if "main window shown" in x)
    assert "(store_manager)" in line and "home" in line and "sync_settings" in line
    assert (tmp_path / "data" / "StoreDesk" / "demo.db").exists()  # created on first start
    assert "Traceback" not in text
