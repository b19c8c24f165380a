"""The storedesk command line: help, version, one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("StoreDesk 0.")


def test_help_explains_each_command() -> None:
    r = run("--help")
    assert r.returncode == 0
    for command in ("demo", "report", "sync", "--self-check"):
        assert command in r.stdout


def test_help_in_chinese() -> None:
    r = run("--lang", "zh", "--help")
    assert r.returncode == 0
    assert "生成演示数据文件" in r.stdout and "周经营复盘" in r.stdout


def test_bad_arguments_give_one_line_and_exit_2() -> None:
    for args in (["frobnicate"], ["report", "--week", "2026-W47"], ["demo"], ["--bogus"]):
        r = run(*args)
        assert r.returncode == 2, args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "error" in r.stderr


def test_headless_help_does_not_import_qt() -> None:
    code = (
        "import sys, desktop.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt imported'\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
