"""PySide6 must not leak references to None/True (6.12.0 does on CPython 3.11 and aborts).

A long session emits tens of thousands of signals from Python (every DB-worker result,
every mouse move over a chart). This runs them in a child process, so a regression shows
as a failed test instead of a crashed test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox
    app = QApplication([])
    class O(QObject):
        s = Signal(object)
    o = O(); o.s.connect(lambda x: None)
    c = QComboBox(); c.addItem("a", None); c.addItem("b", 1)
    box = QCheckBox()
    t0, n0 = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(20000):
        o.s.emit(i)
        c.setCurrentIndex(i % 2); c.currentData(); box.setChecked(bool(i % 2))
    print(sys.getrefcount(True) - t0, sys.getrefcount(None) - n0)
    """
)


def test_twenty_thousand_emits_do_not_drain_singletons() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    true_delta, none_delta = map(int, r.stdout.split())
    assert true_delta > -100 and none_delta > -100, (true_delta, none_delta)
