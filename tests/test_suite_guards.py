"""The suite's own guards (tests/conftest.py), each shown to work.

CI once sat 77 minutes and said nothing: the shared disk filled, a table export failed,
its error box waited for a click that never comes headless, and pytest-timeout's signal
cannot interrupt Qt's nested event loop. Now a blocking dialog fails its test, a test stuck
past its timeout ends the run with every thread's stack, and a nearly full disk is refused
before the first test.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tests.conftest as guards

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.gui
def test_an_error_box_fails_the_test_instead_of_waiting_for_a_click(
    qtbot, tmp_path, monkeypatch
) -> None:
    from desktop.widgets import table

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(table, "write_csv", disk_full)
    t = table.DataTable([table.Column("code", "Store code")], title="stores")
    qtbot.addWidget(t)
    # (pytest loads conftest.py under its own name, so the class is matched by its text)
    with pytest.raises(AssertionError, match=r"QMessageBox\.warning would wait.*No space left"):
        t.export(tmp_path / "out.csv", "csv")


@pytest.mark.gui
def test_a_test_stuck_inside_qt_ends_the_run_with_its_stack(tmp_path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import (  # noqa: F401\n"
        "    _WATCHDOG_FD, pytest_configure, pytest_runtest_protocol, pytest_unconfigure,\n"
        ")\n"
    )
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(
            """
            def test_waits_for_a_click(qapp):
                from PySide6.QtCore import QEventLoop

                QEventLoop().exec()  # what a modal dialog runs; nothing ever quits it
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "STOREDESK_TEST_WATCHDOG_GRACE": "2",
    }
    t0 = time.monotonic()
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", os.devnull),
            *("--rootdir", str(tmp_path), "--timeout", "1", "-q", "test_stuck.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - t0
    assert run.returncode != 0
    assert "Timeout (0:00:03)!" in run.stderr  # pytest-timeout's 1 s did not get through
    assert 'test_stuck.py", line 5 in test_waits_for_a_click' in run.stderr
    assert took < 60


def test_a_nearly_full_disk_is_refused_before_the_first_test(monkeypatch) -> None:
    gib = 2**30
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100 * gib, 99 * gib, gib)
    )
    with pytest.raises(pytest.exit.Exception, match=r"only 1\.0 GiB free in .*need about 3"):
        guards.pytest_sessionstart(None)
