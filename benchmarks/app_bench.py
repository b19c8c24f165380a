"""Figures 3–6, measured inside the real app (a child process per measurement set).

The child builds the real :class:`desktop.app.Shell` (windows shown on the offscreen
platform), signs in and drives the screens through their own code paths while a 10 ms
heartbeat ``QTimer`` on the UI thread records the longest gap between beats:

* ``sync``: sign in to a real ``storedesk-central`` as ``sup_sh``; the shell's first sync
  (snapshot of the 上海区 scope) runs in the background; heartbeat until it is done.
* ``map``: demo supervisor of 上海区 opens the field map (first open: QtWebEngine starts
  and the map page loads), then asks N times for one day, all reps, alternating between the
  day shown and the day before, so each request draws another day than the one on the map
  (``FieldMapView.set_period`` → query on the DB worker, clean/stops/evidence/simplify and
  the day's drawing data on the CPU pool, drawn by the page the view keeps, the page's
  ready message; ``sig_map_ready`` carries request→ready seconds). Baseline, measured
  after those requests: an empty folium Leaflet map (local assets) loaded into the same
  ``MapView`` (to ``loadFinished``). Loading it replaces the view's map page, so it is
  measured after the requests, not between them: interleaved, every request would be the
  first on a newly loaded page, whose code has not run yet, which in use happens once per
  opening of the map (or change of tile source). That case is measured too, N times
  (page loaded untimed, then one request), and reported in the note. Nothing is cached
  between requests: each one queries and prepares its day from scratch.
* ``pack``: the reports screen builds the region's weekly pack N times (gather on the DB
  worker, reportlab on the CPU pool, PDF preview loaded); seconds ÷ pages. Baseline: a
  reportlab PDF with the same number of pages holding one line of text each.
* ``memory``: every screen of the role is opened; the child reports its own peak RSS
  (VmHWM); the parent samples the whole process tree (QtWebEngine helpers) from /proc.

Idle baseline for the stalls: the same heartbeat for 2 s with nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DEMO_PASSWORD,
    DEMO_TODAY,
    ROOT,
    Figure,
    TreeSampler,
    central_db,
    central_server,
    child_env,
    copy_db,
    demo_client_db,
    median,
    say,
)

# --------------------------------------------------------------------------- parent


def _run_child(
    args: list[str], home: Path, timeout: float = 900, *, strict: bool = True
) -> tuple[dict[str, Any], TreeSampler]:
    out = home / "result.json"
    cmd = [
        sys.executable,
        "-X",
        "utf8",
        "-m",
        "benchmarks.app_bench",
        "child",
        "--out",
        str(out),
        *args,
    ]
    home.mkdir(parents=True, exist_ok=True)
    log = home / "child.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=child_env(home), cwd=ROOT
        )
        with TreeSampler(proc.pid) as sampler:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    res = json.loads(out.read_text()) if out.exists() else {"error": "no result"}
    if "error" in res:
        res["error"] += f" (rc={proc.returncode}; log {log})"
        if not strict:
            return res, sampler
        raise RuntimeError(f"app child failed: {res['error']}:\n{log.read_text()[-3000:]}")
    return res, sampler


def run(
    runs: int,
    cache_dir: Path,
    parts: tuple[str, ...] = ("sync", "map", "pack", "memory"),
    demo_db: Path | None = None,
) -> tuple[list[Figure], dict]:
    figures: list[Figure] = []
    detail: dict[str, Any] = {}
    gui_parts = [p for p in parts if p in ("map", "pack", "memory")]
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        folder = Path(tmp)
        stall_rows: list[tuple[str, list[float], list[float], list[str]]] = []
        if "sync" in parts:
            src = central_db(cache_dir, 1)
            server_db = copy_db(src, folder / "central.db")
            gaps: list[float] = []
            idle: list[float] = []
            with central_server(server_db, folder / "server") as url:
                for i in range(runs):
                    try:
                        res, _s = _run_child(
                            ["--parts", "sync", "--server", url], folder / f"sync{i}", timeout=360
                        )
                    except RuntimeError as e:  # the other parts still run
                        say(f"  UI stall during sync run {i + 1}/{runs}: FAILED {e}")
                        detail.setdefault("errors", []).append(f"sync stall: {e}")
                        break
                    gaps.append(res["sync"]["max_gap_ms"])
                    idle.append(res["idle_max_gap_ms"])
                    say(
                        f"  UI stall during sync run {i + 1}/{runs}: {gaps[-1]:.0f} ms over "
                        f"{res['sync']['seconds']:.1f} s ({res['sync']['beats']} beats; top {res['sync']['top']})"
                    )
                    detail.setdefault("sync", []).append(res["sync"])
            if gaps:
                late = detail["sync"][-1].get("late_stacks", [])
                stall_rows.append(("sync (sup_sh first sync, 上海区)", gaps, idle, late))
        if gui_parts:
            demo = demo_db or demo_client_db(cache_dir)
            home = folder / "gui"
            home.mkdir()
            copy_db(demo, home / "demo.db")
            res, sampler = _run_child(
                [
                    "--parts",
                    ",".join(gui_parts),
                    "--runs",
                    str(runs),
                    "--demo-db",
                    str(home / "demo.db"),
                ],
                home,
                strict=False,
            )
            if "error" in res:
                say(f"  in-app map/pack/memory: FAILED {res['error']}")
                detail.setdefault("errors", []).append(f"gui: {res['error']}")
            detail["gui"] = res
            idle = [res["idle_max_gap_ms"]]
            if "map" in res:
                m = res["map"]
                stall_rows.append(
                    (
                        "map load (field map, all reps, 1 day)",
                        m["max_gap_ms"],
                        idle,
                        m.get("late_stacks", []),
                    )
                )
                figures.append(
                    Figure(
                        "map",
                        f"4. Trajectory map, 1 day, all reps of 上海区 ({m['tracks']} tracks)",
                        median(m["ready_s"]),
                        "s",
                        median(m["empty_s"]),
                        "empty Leaflet map, same view",
                        "ratio<=",
                        2.0,
                        samples=m["ready_s"],
                        note=f"requests on the kept map page, alternating two days; "
                        f"the first request on a freshly loaded page: "
                        f"{median(m['fresh_ready_s']):.3f} s = "
                        f"{median(m['fresh_ready_s']) / median(m['empty_s']):.2f}× "
                        f"(samples {[round(x, 3) for x in m['fresh_ready_s']]}); "
                        f"first open incl. QtWebEngine start: {m['first_open_s']:.2f} s; "
                        f"phases of the last kept-page request: {m['kept_timing']}; "
                        f"longest UI-thread steps (ms): {m.get('ui_thread_ms')}",
                    )
                )
                say(
                    f"  map: ready {m['ready_s']} s (fresh page {m['fresh_ready_s']} s), "
                    f"empty {m['empty_s']} s, first open {m['first_open_s']:.2f} s"
                )
            if "pack" in res:
                p = res["pack"]
                stall_rows.append(
                    (
                        "report build (region weekly pack)",
                        p["max_gap_ms"],
                        idle,
                        p.get("late_stacks", []),
                    )
                )
                per_page = [s / p["pages"] for s in p["seconds"]]
                figures.append(
                    Figure(
                        "pack",
                        f"5. Weekly region pack ({p['pages']} pages, {p['week']})",
                        median(per_page),
                        "s/page",
                        p["baseline_s"] / p["pages"],
                        "reportlab, same pages, 1 line each",
                        "<=",
                        0.2,
                        samples=per_page,
                        note=f"whole pack {median(p['seconds']):.2f} s",
                    )
                )
                say(f"  pack: {p['seconds']} s for {p['pages']} pages")
            if "memory" in res:
                mm = res["memory"]
                main_mib = max(mm["main_hwm_kib"], sampler.main_hwm_kib) / 1024
                tree_mib = sampler.peak_kib / 1024
                bare = res.get("bare_rss_kib", 0) / 1024
                figures.append(
                    Figure(
                        "memory_main",
                        f"6. Peak memory, main process ({len(mm['screens'])} screens visited)",
                        main_mib,
                        "MiB",
                        bare or None,
                        "RSS after QApplication + mandated imports",
                        "<=",
                        400,
                    )
                )
                figures.append(
                    Figure(
                        "memory_tree",
                        f"6. Peak memory, process tree (up to {sampler.peak_procs} processes)",
                        tree_mib,
                        "MiB",
                        bare or None,
                        "RSS after QApplication + mandated imports",
                        "<=",
                        700,
                    )
                )
                steps = {
                    k: res[k]
                    for k in ("rss_mib_signed_in", "rss_mib_after_map", "rss_mib_after_pack")
                    if k in res
                }
                figures[-2].note = (
                    f"RSS (MiB) along the way: {steps}; "
                    f"after each screen: {mm['rss_mib_after_each_screen']}"
                )
                say(
                    f"  memory: main {main_mib:.0f} MiB, tree {tree_mib:.0f} MiB ({sampler.peak_procs} procs)"
                )
        for label, gaps, idle, late in stall_rows:
            figures.append(
                Figure(
                    "stall_" + label.split()[0],
                    f"3. Longest UI stall during {label}",
                    median(gaps),
                    "ms",
                    median(idle),
                    "idle heartbeat, same process",
                    "<=",
                    50,
                    samples=gaps,
                    note=(
                        "stack samples while the UI was >30 ms late (last run): "
                        + "; ".join(late[:5])
                    )
                    if late
                    else "",
                )
            )
    order = {"stall_sync": 0, "stall_map": 1, "stall_report": 2}
    figures.sort(key=lambda f: (not f.name.startswith("stall"), order.get(f.name, 9)))
    return figures, detail


# --------------------------------------------------------------------------- child


class Heartbeat:
    """A 10 ms QTimer on the UI thread; the longest gap between beats is the stall.

    A watchdog thread also looks every 5 ms: while a beat is more than 30 ms late it
    samples every thread's stack (innermost frame of our own code, else the innermost
    frame), so the report can say what ran while the UI thread stood still. It needs the
    GIL to look, so a C call that holds the GIL shows as the frame right after it.
    """

    LATE_S = 0.030

    def __init__(self) -> None:
        import threading

        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._beat)
        self.gaps: list[int] = []
        self._last = 0
        self._last_mono = time.monotonic()
        self._running = False
        self.late_samples: dict[str, int] = {}
        self._main = threading.main_thread().ident
        self._watch = threading.Thread(target=self._watchdog, name="stall-watchdog", daemon=True)
        self._watch.start()

    def _beat(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(now - self._last)
        self._last = now
        self._last_mono = time.monotonic()

    @staticmethod
    def _where(frame: Any) -> str:
        inner = frame
        f = frame
        while f is not None:
            path = f.f_code.co_filename
            if f"{os.sep}work{os.sep}" in path and "benchmarks" not in path:
                rel = path.split(f"{os.sep}main{os.sep}", 1)[-1]
                return f"{rel}:{f.f_lineno} {f.f_code.co_name}"
            f = f.f_back
        return f"{Path(inner.f_code.co_filename).name}:{inner.f_lineno} {inner.f_code.co_name}"

    def _watchdog(self) -> None:
        while True:
            time.sleep(0.005)
            if not self._running or time.monotonic() - self._last_mono < self.LATE_S:
                continue
            import threading

            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                who = "UI" if ident == self._main else names.get(ident, "?")
                key = f"[{who}] {self._where(frame)}"
                self.late_samples[key] = self.late_samples.get(key, 0) + 1

    def start(self) -> None:
        self.gaps = []
        self.late_samples = {}
        self.clock.start()
        self._last = 0
        self._last_mono = time.monotonic()
        self._running = True
        self.timer.start()

    def stop(self) -> dict[str, Any]:
        self._running = False
        self.timer.stop()
        now = self.clock.elapsed()
        self.gaps.append(now - self._last)  # a stall right before stop counts too
        late = sorted(self.late_samples.items(), key=lambda kv: -kv[1])[:8]
        return {
            "max_gap_ms": max(self.gaps) if self.gaps else 0,
            "beats": len(self.gaps),
            "top": sorted(self.gaps)[-5:],
            "late_stacks": [f"{n}× {k}" for k, n in late],
        }


async def _signal(sig: Any, timeout: float) -> Any:
    fut = asyncio.get_event_loop().create_future()

    def slot(*args: Any) -> None:
        if not fut.done():
            fut.set_result(args)

    sig.connect(slot)
    try:
        return await asyncio.wait_for(fut, timeout)
    finally:
        with contextlib.suppress(RuntimeError, TypeError):
            sig.disconnect(slot)


async def _until(cond: Any, timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


async def _idle(hb: Heartbeat) -> float:
    hb.start()
    await asyncio.sleep(2.0)
    return hb.stop()["max_gap_ms"]


async def _child_sync(shell: Any, url: str, hb: Heartbeat, out: dict[str, Any]) -> None:
    await asyncio.sleep(0.3)
    out["idle_max_gap_ms"] = await _idle(hb)
    fut = _signal(shell.sig_signed_in, 60)
    shell.sign_in_server(url, "sup_sh", DEMO_PASSWORD)
    await fut
    await asyncio.sleep(0.5)  # the window's first paint is not the sync
    hb.start()
    t0 = time.perf_counter()
    await _until(lambda: shell.sync.status.last_sync_at is not None and not shell.sync.running, 300)
    r = hb.stop()
    r["seconds"] = time.perf_counter() - t0
    r["error"] = shell.sync.status.last_error
    out["sync"] = r


async def _child_gui(
    shell: Any, parts: list[str], runs: int, hb: Heartbeat, out: dict[str, Any]
) -> None:
    from benchmarks.common import peak_rss_kib, rss_kib

    out["bare_rss_kib"] = out.pop("_rss_at_start", 0)
    fut = _signal(shell.sig_signed_in, 120)
    shell.sign_in_demo("supervisor", "SH")
    (window,) = await fut
    home = window.widgets.get("home")
    if home is not None and home.data is None and hasattr(home, "sig_loaded"):
        await _signal(home.sig_loaded, 60)
    await asyncio.sleep(0.5)
    out["idle_max_gap_ms"] = await _idle(hb)
    out["rss_mib_signed_in"] = round(rss_kib(os.getpid()) / 1024)

    if "map" in parts:
        m: dict[str, Any] = {"max_gap_ms": [], "ready_s": [], "empty_s": []}
        hb.start()
        t0 = time.perf_counter()
        window.show_screen("field_map")
        view = window.widgets["field_map"]
        await _until(lambda: view.map_view.ready and view.fm is not None, 180)
        m["first_open_s"] = time.perf_counter() - t0
        m["first_open_gap_ms"] = hb.stop()["max_gap_ms"]
        m["tracks"] = len(view.fm.tracks)
        # UI-thread steps of a rebuild, timed where they run (diagnostics for the stall)
        ui_ms: dict[str, list[float]] = {}

        def on_ui(name: str, fn: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    ui_ms.setdefault(name, []).append(round((time.perf_counter() - t) * 1000, 1))

            return wrapper

        view._on_built = on_ui("FieldMapView._on_built (sends the day)", view._on_built)
        view.map_view.draw = on_ui("MapView.draw", view.map_view.draw)
        view._fill_table = on_ui("FieldMapView._fill_table", view._fill_table)
        view.map_view.show_html = on_ui("MapView.show_html", view.map_view.show_html)
        import folium

        from core.maps.assets import use_local_assets

        use_local_assets()
        empty_html = folium.Map(tiles=None).get_root().render()
        # Requests alternate between the day shown and the day before: each one draws a
        # day other than the one on the map (new tracks, visits and bounds), as when the
        # user steps through days; nothing is cached between requests.
        shown_day = view.ctx.selection.day
        days = [shown_day - dt.timedelta(days=1), shown_day]

        async def ask(day: dt.date) -> float:
            hb.start()
            fut = _signal(view.sig_map_ready, 120)
            view.set_period(day)
            (secs,) = await fut
            r = hb.stop()
            m["max_gap_ms"].append(r["max_gap_ms"])
            m["late_stacks"] = r["late_stacks"]
            m["timing"] = {k: round(v, 3) for k, v in view.last_timing.items()}
            m["ui_thread_ms"] = {k: max(v) for k, v in ui_ms.items()}
            return secs

        async def reload_page() -> None:
            """Replace the view's page by the empty map, then load the map page (untimed)."""
            await asyncio.sleep(0.3)
            fut = _signal(view.map_view.page.loadFinished, 60)
            view.map_view.show_html(empty_html)
            await fut
            await asyncio.sleep(0.3)
            fut = _signal(view.map_view.sig_shell_loaded, 60)
            view.ensure_shell(view.provider())
            await fut

        # 1. the figure: requests on the page the view keeps (as in use, after first open)
        for i in range(runs):
            await asyncio.sleep(0.3)
            m["ready_s"].append(await ask(days[i % 2]))
        m["kept_timing"] = m["timing"]
        # 2. the baseline: the empty Leaflet map loaded into the same view (replaces the page)
        for _ in range(runs):
            await asyncio.sleep(0.3)
            fut = _signal(view.map_view.page.loadFinished, 60)
            t0 = time.perf_counter()
            view.map_view.show_html(empty_html)
            await fut
            m["empty_s"].append(time.perf_counter() - t0)
        # 3. for the note: the first request on a freshly loaded map page (after the first
        # open or a change of tile source; the page's code has not run yet)
        m["fresh_ready_s"] = []
        for i in range(runs):
            await reload_page()
            await asyncio.sleep(0.3)
            m["fresh_ready_s"].append(await ask(days[i % 2]))
        # (the screen is left showing the real map: the memory figure)
        out["map"] = m
        out["rss_mib_after_map"] = round(rss_kib(os.getpid()) / 1024)

    if "pack" in parts:
        p: dict[str, Any] = {"max_gap_ms": [], "seconds": []}
        window.show_screen("reports")
        view = window.widgets["reports"]
        await asyncio.sleep(1.0)
        view.scope_region.setChecked(True)
        p["week"] = view.week_box.currentData()
        path = ""
        for _ in range(runs):
            await asyncio.sleep(0.3)
            hb.start()
            fut = _signal(view.sig_pack_ready, 300)
            failed = _signal(view.sig_build_failed, 300)
            t0 = time.perf_counter()
            view.build()
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(fut), asyncio.ensure_future(failed)],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for t in pending:
                t.cancel()
            res = next(iter(done)).result()
            p["seconds"].append(time.perf_counter() - t0)
            r = hb.stop()
            p["max_gap_ms"].append(r["max_gap_ms"])
            p["late_stacks"] = r["late_stacks"]
            if not str(res[0]).endswith(".pdf"):
                raise RuntimeError(f"pack build failed: {res[0]}")
            path = res[0]
        # Page count and the reportlab baseline in a child process: the app itself never
        # loads pypdf or reportlab, so neither may count in its memory figure.
        p["pages"], p["baseline_s"] = _pages_and_floor(Path(path))
        out["pack"] = p
        out["rss_mib_after_pack"] = round(rss_kib(os.getpid()) / 1024)

    if "memory" in parts:
        screens = []
        rss_mib: dict[str, float] = {"before": round(rss_kib(os.getpid()) / 1024)}
        for sid in window.screen_ids():
            window.show_screen(sid)
            screens.append(sid)
            await asyncio.sleep(1.5)
            rss_mib[sid] = round(rss_kib(os.getpid()) / 1024)
        out["memory"] = {
            "screens": screens,
            "rss_mib_after_each_screen": rss_mib,
            "main_hwm_kib": peak_rss_kib(os.getpid()),
            "main_rss_kib": rss_kib(os.getpid()),
        }


def _pages_and_floor(pdf: Path) -> tuple[int, float]:
    """(pages of ``pdf``, seconds reportlab takes to write as many one-line pages)."""
    code = (
        "import json, sys; from pathlib import Path; from pypdf import PdfReader; "
        "from benchmarks.app_bench import _reportlab_floor; "
        "n = len(PdfReader(sys.argv[1]).pages); "
        "print(json.dumps([n, _reportlab_floor(n, Path(sys.argv[1]).with_name('floor.pdf'))]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(pdf)],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parent.parent),
        timeout=120,
    )
    pages, seconds = json.loads(res.stdout.strip().splitlines()[-1])
    return int(pages), float(seconds)


def _reportlab_floor(pages: int, path: Path) -> float:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    t0 = time.perf_counter()
    c = Canvas(str(path), pagesize=A4)
    for i in range(pages):
        c.drawString(72, 760, f"page {i + 1}")
        c.showPage()
    c.save()
    return time.perf_counter() - t0


def child_main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", default="map,pack,memory")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--server", default="")
    ap.add_argument("--demo-db", default="")
    a = ap.parse_args(argv)

    import httpx  # noqa: F401  (the mandated imports, as at start)
    import pyqtgraph  # noqa: F401
    import qasync
    import sqlalchemy  # noqa: F401
    from PySide6.QtWidgets import QApplication

    from benchmarks.common import rss_kib

    QApplication(sys.argv[:1])
    out: dict[str, Any] = {"_rss_at_start": rss_kib(os.getpid())}  # memory baseline

    from desktop.app import Shell, create_application
    from desktop.settings import SettingsStore

    app = create_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    app.setQuitOnLastWindowClosed(False)
    home = Path(a.out).parent
    demo = Path(a.demo_db) if a.demo_db else home / "demo.db"
    shell = Shell(
        app,
        settings_store=SettingsStore(home / "settings.json"),
        cache_path=home / "server-cache.db",
        demo_path=demo,
        demo_today=DEMO_TODAY,
        language="en",
    )
    hb = Heartbeat()
    parts = a.parts.split(",")

    async def main() -> None:
        if parts == ["sync"]:
            await _child_sync(shell, a.server, hb, out)
        else:
            await _child_gui(shell, parts, a.runs, hb, out)

    status = 0
    try:
        with loop:
            loop.run_until_complete(main())
    except BaseException as e:  # report, then leave without Qt teardown trouble
        import traceback

        traceback.print_exc()
        out["error"] = f"{type(e).__name__}: {e}"
        status = 1
    out.pop("_rss_at_start", None)
    Path(a.out).write_text(json.dumps(out, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        raise SystemExit(child_main(sys.argv[2:]))
    raise SystemExit("usage: python -m benchmarks (this module is run by the harness)")
