"""``storedesk --self-check`` as support and the bundle test run it: a real subprocess.

The subprocess gets its own user folders and no display; it generates the demo region in
a temporary folder, builds a store pack and loads the map page in QtWebEngine offscreen.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)  # the self-check must choose offscreen by itself
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        env[var] = str(home / sub)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return env


def _run(args: list[str], home: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *args],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


@pytest.mark.webengine
def test_self_check_passes_headless_and_prints_a_summary(tmp_path: Path) -> None:
    done = _run(["--lang", "en", "--self-check"], tmp_path)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    lines = out.splitlines()
    assert lines[0] == "StoreDesk self-check"
    assert "(no display: Qt runs offscreen)" in out
    for step in ("versions", "resources", "modules", "demo data", "window", "report", "map"):
        assert any(line.startswith(f"[ok] {step} ") for line in lines), (step, out)
    map_line = next(line for line in lines if line.startswith("[ok] map "))
    assert "0 network requests blocked" in map_line
    assert "visits drawn" in map_line
    report_line = next(line for line in lines if line.startswith("[ok] report "))
    assert " pages, " in report_line
    assert "demo region generated" in out
    window_line = next(line for line in lines if line.startswith("[ok] window "))
    assert "home loaded" in window_line and "8 screens" in window_line
    assert "process start to main window" in out
    # facts: versions and paths a support person needs
    assert "QtWebEngine" in out and "Chromium" in out
    assert any(line.split() == ["resources", str(ROOT / "resources")] for line in lines), (
        "resources path not reported"
    )
    assert "no (running from source)" in out
    assert lines[-1].startswith("self-check passed in ")
    # nothing left behind in the user's folders: the demo went to a temporary folder
    assert not (tmp_path / "data" / "StoreDesk" / "demo.db").exists()


@pytest.mark.webengine
def test_self_check_fails_with_a_clear_message_and_status_1(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    done = _run(["--lang", "en", "--cache", str(missing), "--self-check"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert f"[FAILED] demo data: no data file at {missing}" in out
    assert "self-check FAILED" in out
    assert "reinstall StoreDesk" in out
    assert "[ok] map" not in out


@pytest.mark.webengine
def test_self_check_speaks_chinese(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    done = _run(["--lang", "zh", "--cache", str(missing), "--self-check"], tmp_path)
    assert done.returncode == 1
    assert "StoreDesk 自检" in done.stdout
    assert "自检失败" in done.stdout


def test_last_complete_week() -> None:
    from desktop.self_check import last_complete_week

    assert last_complete_week(dt.date(2026, 11, 27)) == "2026-W47"  # Friday: previous week
    assert last_complete_week(dt.date(2026, 11, 29)) == "2026-W48"  # Sunday: its own week
    assert last_complete_week(dt.date(2027, 1, 2)) == "2026-W52"  # across the year end
