"""Figure 1: start to a painted, populated main window, in a fresh process each run.

The app child runs the real entry point (``desktop.cli.main`` → ``run_app``) with a
remembered demo sign-in and a pre-generated demo cache, and says
READY when the home screen has shown its figures (``HomeView.sig_loaded``) AND a paint
event of the main window arrived after that. The bare child is the floor: a Python
process that imports the same mandated libraries (PySide6 widgets, SQLAlchemy,
pyqtgraph, qasync, httpx), shows a QMainWindow on a qasync loop and says READY at its
first paint. The parent times both from ``Popen`` to the READY line (interpreter start
included in both).

Two sign-ins are timed against the same floor, measured in the same run: the supervisor
of 上海区 (figure ``start``: the region home) and the manager of the region's first store,
SH001 (figure ``start_manager``: the store's week — today's traffic, approvals waiting,
rota gaps and KPIs; StoreDesk's primary user). The home says it has loaded only when
every panel is filled.

The app child also lists the modules imported at that moment; QtWebEngine, reportlab
and folium must not be among them (they load when a screen first needs them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    Figure,
    child_env,
    copy_db,
    demo_client_db,
    median,
    say,
)

HEAVY = ("PySide6.QtWebEngine", "reportlab", "folium", "PySide6.QtPdf", "PySide6.QtPrintSupport")
"""Modules that must not be imported at start (prefixes); the first three are mandated."""
MANDATED_HEAVY = ("PySide6.QtWebEngine", "reportlab", "folium")


#: The remembered demo sign-in of each timed start (settings.json fields).
SIGN_INS: dict[str, dict[str, str]] = {
    "app": {"demo_role": "supervisor", "demo_region_code": "SH"},
    "manager": {"demo_role": "store_manager", "demo_store_code": "SH001"},
}


def _run_child(kind: str, home: Path, timeout: float = 120) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-X",
        "utf8",
        "-m",
        "benchmarks.start",
        "bare" if kind == "bare" else "app",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(home),
        cwd=ROOT,
        text=True,
    )
    info: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY "):
                info = json.loads(line[6:])
                info["wall_s"] = time.perf_counter() - t0
                break
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    if not info:
        raise RuntimeError(
            f"start child ({kind}) never got ready (rc={proc.returncode}):\n{err[-3000:]}"
        )
    return info


def _prepare_home(home: Path, demo_db: Path, sign_in: dict[str, str]) -> None:
    data = home / "data" / "StoreDesk"
    conf = home / "config" / "StoreDesk"
    data.mkdir(parents=True, exist_ok=True)
    conf.mkdir(parents=True, exist_ok=True)
    copy_db(demo_db, data / "demo.db")
    settings = {
        "schema_version": 2,
        "language": "en",
        "mode": "demo",
        **sign_in,
        "auto_sign_in": True,
        "last_screen": "home",
    }
    (conf / "settings.json").write_text(json.dumps(settings))


def run(runs: int, cache_dir: Path, demo_db: Path | None = None) -> tuple[list[Figure], dict]:
    demo_db = demo_db or demo_client_db(cache_dir)
    times: dict[str, list[float]] = {"bare": [], "app": [], "manager": []}
    last: dict[str, dict[str, Any]] = {k: {} for k in times}
    kinds = ("bare", "app", "manager")
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        for i in range(runs):
            # alternate the order so neither profits from a warmer page cache
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                home = Path(tmp) / f"{kind}{i}"
                if kind == "bare":
                    home.mkdir(parents=True)
                else:
                    _prepare_home(home, demo_db, SIGN_INS[kind])
                last[kind] = _run_child(kind, home)
                times[kind].append(last[kind]["wall_s"])
                say(f"  start run {i + 1}/{runs}: {kind} {times[kind][-1]:.3f} s")
    bare_s = times["bare"]
    last_bare = last["bare"]
    figures: list[Figure] = []
    detail: dict[str, Any] = {"bare_s": bare_s}
    for kind, name, label in (
        ("app", "start", "1. Start → painted, populated main window"),
        (
            "manager",
            "start_manager",
            "1. Start → painted, populated main window (store manager, SH001)",
        ),
    ):
        last_app = last[kind]
        modules = last_app.get("modules", [])
        heavy = sorted({m for m in modules if m.startswith(HEAVY)})
        mandated_bad = sorted(
            {
                m.split(".")[0] if not m.startswith("PySide6") else m
                for m in heavy
                if m.startswith(MANDATED_HEAVY)
            }
        )
        note = (
            "heavy modules imported at start: " + ", ".join(mandated_bad)
            if mandated_bad
            else "no QtWebEngine/reportlab/folium at start"
        )
        figures.append(
            Figure(
                name,
                label,
                median(times[kind]),
                "s",
                median(bare_s),
                "bare PySide6 window + mandated imports",
                "ratio<=",
                1.1,
                samples=times[kind],
                note=note,
            )
        )
        part = {
            "app_s": times[kind],
            "app_phases": last_app.get("phases"),
            "app_modules_count": len(modules),
            "bare_modules_count": len(last_bare.get("modules", [])),
            "heavy_at_start": heavy,
            "top_level_packages_at_start": sorted({m.split(".")[0] for m in modules}),
            "pyside6_modules_at_start": sorted(m for m in modules if m.startswith("PySide6.")),
            "extra_vs_bare": sorted(
                {m.split(".")[0] for m in modules}
                - {m.split(".")[0] for m in last_bare.get("modules", [])}
            ),
            "app_peak_rss_mib": last_app.get("peak_rss_kib", 0) / 1024,
            "bare_peak_rss_mib": last_bare.get("peak_rss_kib", 0) / 1024,
        }
        if kind == "app":  # the supervisor's start: the keys the report has always had
            detail.update(part)
        else:
            detail["manager"] = part
    return figures, detail


# --------------------------------------------------------------------------- children


def _ready(payload: dict[str, Any]) -> None:
    from benchmarks.common import peak_rss_kib

    payload["modules"] = sorted(sys.modules)
    payload["peak_rss_kib"] = peak_rss_kib(os.getpid())
    print("READY " + json.dumps(payload), flush=True)


def _bare() -> int:
    import asyncio

    import httpx  # noqa: F401
    import pyqtgraph  # noqa: F401
    import qasync
    import sqlalchemy  # noqa: F401
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    win = QMainWindow()
    win.setCentralWidget(QLabel("StoreDesk"))
    win.resize(1280, 800)

    class PaintSpy(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                app.removeEventFilter(self)
                QTimer.singleShot(0, done)
            return False

    def done() -> None:
        _ready({"kind": "bare"})
        app.quit()

    spy = PaintSpy()
    app.installEventFilter(spy)
    QTimer.singleShot(0, win.show)
    with loop:
        loop.run_forever()
    return 0


def _app() -> int:
    t_import = time.perf_counter()
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    import desktop.app as app_mod
    from desktop.cli import main

    phases: dict[str, float] = {"imports_s": time.perf_counter() - t_import}
    t0 = time.perf_counter()
    base = app_mod.Shell

    class PaintSpy(QObject):
        def __init__(self, window: Any) -> None:
            super().__init__()
            self.window = window

        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint and getattr(obj, "window", None) is not None:
                try:
                    w = obj.window()
                except (RuntimeError, TypeError):
                    return False
                if w is self.window:
                    QApplication.instance().removeEventFilter(self)
                    QTimer.singleShot(0, finish)
            return False

    state: dict[str, Any] = {}

    def finish() -> None:
        phases["painted_s"] = time.perf_counter() - t0
        _ready({"kind": "app", "phases": phases})
        QTimer.singleShot(0, QApplication.instance().quit)

    class BenchShell(base):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **kw: Any) -> None:
            phases["shell_init_s"] = time.perf_counter() - t0
            super().__init__(*a, **kw)
            self.sig_signed_in.connect(self._bench_signed_in)

        def _bench_signed_in(self, window: Any) -> None:
            phases["signed_in_s"] = time.perf_counter() - t0
            home = window.widgets.get("home")
            if home is None or not hasattr(home, "sig_loaded"):
                phases["no_home_signal"] = 1.0
                QTimer.singleShot(0, lambda: self._bench_loaded(window))
                return
            home.sig_loaded.connect(lambda: self._bench_loaded(window))
            if home.data is not None:  # already loaded (cannot happen before the signal, but)
                self._bench_loaded(window)

        def _bench_loaded(self, window: Any) -> None:
            if "loaded" in state:
                return
            state["loaded"] = True
            phases["home_loaded_s"] = time.perf_counter() - t0
            spy = PaintSpy(window)
            state["spy"] = spy
            QApplication.instance().installEventFilter(spy)
            window.update()

    app_mod.Shell = BenchShell
    return main(["--lang", "en"])


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "app"
    raise SystemExit(_bare() if kind == "bare" else _app())
