"""``storedesk --self-check``: prove an installation works, without a display or a network.

Used to smoke-test a PyInstaller bundle (``installers/build.py`` and
``tests/installers/test_bundle.py`` run ``<bundle>/storedesk --self-check``) and by support
on a user's PC. Steps, each timed, stopping at the first failure:

1. **resources** — the resources folder (``core.resources.resource_path``, which follows
   ``sys._MEIPASS`` in a bundle), the CJK font, the vendored Leaflet, the Chinese
   catalogues (parsed with Babel at run time, so this also proves Babel's locale data is
   present) and the folium/branca Jinja templates.
   Then **modules**: every screen and mutation module the app imports by name.
2. **demo data** — opens the cache given with ``--cache`` or generates the demo region ×1
   into a temporary folder (``core.demo.generate``), exactly as a first start does.
   Then **window**: the real :class:`desktop.app.Shell` signs in to that data as a demo
   store manager and shows the main window (offscreen without a display) until the home
   screen has loaded; on Linux the summary gives the process age at that moment (with a
   pre-made ``--cache`` that is the cold start to a populated main window).
3. **report** — builds the weekly review pack of the first store for the last complete
   ISO week into a temporary PDF with reportlab and the embedded font (a store pack is the
   short one: a cover page plus a few pages; the whole of it is built so the page count
   is real), and checks the file. As in the app, the numbers are gathered here and the
   PDF is drawn in a child process (:class:`core.reports.worker.RenderWorker`), which
   proves a bundle can start one.
4. **map** — creates the QApplication with the app's fonts and theme, registers the
   ``storedesk://`` scheme, builds one rep's field map for a day with GPS and loads it in
   an offscreen :class:`desktop.widgets.map_view.MapView` (QtWebEngine), waits for the
   page's ready message with a timeout, and requires **0** blocked network requests.

Prints versions, timings and paths, and returns 0, or 1 with a message saying which step
failed and why. Temporary files are removed at the end; the user's own data, settings
and tile cache are never touched. Without a display (Linux) Qt runs offscreen; on a
desktop the main window and the map appear for a moment while they are checked.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.i18n import _

#: Seconds to wait for the map page to announce it is ready.
MAP_TIMEOUT_S = 90.0


class CheckFailed(Exception):
    """A self-check step found something wrong (message for the person reading it)."""


@dataclass
class StepResult:
    name: str
    seconds: float
    detail: str


@dataclass
class Report:
    steps: list[StepResult] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    def fact(self, key: str, value: object) -> None:
        self.facts.append((key, str(value)))


def prepare_environment() -> list[str]:
    """Headless Qt/QtWebEngine settings, applied before Qt is imported. Returns notes."""
    notes: list[str] = []
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        notes.append(_("no display: Qt runs offscreen"))
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--disable-gpu" not in flags:
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --disable-gpu").strip()
    # Chromium refuses to start its sandbox as root (containers, CI); say so rather than hang.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
        notes.append(_("running as root: the QtWebEngine sandbox is off"))
    return notes


# ----------------------------------------------------------------------------- steps


def check_resources(report: Report) -> str:
    from core.i18n import load_catalog
    from core.resources import cjk_font_path, resource_path, resources_root

    root = resources_root()
    report.fact(_("resources"), root)
    if not root.is_dir():
        raise CheckFailed(_("the resources folder is missing: {path}").format(path=root))
    needed = [
        cjk_font_path(),
        resource_path("web", "leaflet", "leaflet.js"),
        resource_path("icons", "app.svg"),
        resource_path("styles", "storedesk.qss"),
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise CheckFailed(_("bundled files are missing: {files}").format(files=", ".join(missing)))
    po_files = sorted(resource_path("i18n", "zh_CN").glob("*.po"))
    load_catalog.cache_clear()
    messages = len(load_catalog("zh_CN"))  # Babel parses the .po files with its locale data
    if not po_files or messages == 0:
        raise CheckFailed(_("the Chinese translations could not be loaded"))
    import branca
    import folium

    templates = [
        Path(folium.__file__).parent / "templates",
        Path(branca.__file__).parent / "templates",
    ]
    missing = [str(p) for p in templates if not p.is_dir()]
    if missing:
        raise CheckFailed(_("map templates are missing: {files}").format(files=", ".join(missing)))
    return _("{files} Chinese catalogues ({messages} messages), font and web assets").format(
        files=len(po_files), messages=messages
    )


def check_modules() -> str:
    """Import every module the app loads by name (a bundle that missed one would lose a screen)."""
    import importlib

    from core.mutations import MUTATION_MODULES
    from desktop.screens import SCREEN_MODULES

    names = [*SCREEN_MODULES, *MUTATION_MODULES, "core.demo", "sync.cli", "core.reports.cli"]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # report every missing one at once
            failed.append(f"{name} ({type(e).__name__}: {e})")
    if failed:
        raise CheckFailed(_("modules missing: {names}").format(names="; ".join(failed)))
    return _("{n} screen and feature modules import").format(n=len(names))


def open_data(args: Any, workdir: Path, report: Report):
    """The cache to check: ``--cache FILE`` if given, else a fresh demo region in ``workdir``."""
    from core.cache import open_cache
    from core.directory import has_reference_data

    given = getattr(args, "cache", None)
    if given:
        path = Path(given)
        if not path.is_file():
            raise CheckFailed(_("no data file at {path}").format(path=path))
        cache = open_cache(path)
        with cache.session() as s:
            if not has_reference_data(s):
                cache.close()
                raise CheckFailed(_("{path} holds no stores").format(path=path))
        report.fact(_("data"), path)
        return cache, _("opened {path}").format(path=path)
    from core.demo import generate

    path = workdir / "demo.db"
    cache = open_cache(path)
    try:
        summary = generate(cache.engine, scale=1)
    except BaseException:
        cache.close()
        raise
    report.fact(_("data"), path)
    return cache, _("demo region generated ({rows:,} rows)").format(rows=summary.total_rows)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def check_window(cache_path: Path, workdir: Path, report: Report) -> str:
    """The real shell signs in to the demo as a store manager: main window + home screen.

    Settings go to ``workdir`` (the user's are never touched); the window is shown on the
    offscreen platform when there is no display. A screen that failed to build (the main
    window shows an error panel instead of raising) fails the check.
    """
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QTimer

    from core.cache import open_cache
    from core.directory import demo_actor
    from core.i18n import current_language
    from desktop.app import Shell, create_application
    from desktop.main_window import ScreenError
    from desktop.settings import SettingsStore

    probe = open_cache(cache_path)
    try:
        with probe.session() as s:
            has_demo_users = demo_actor(s, "store_manager", "") is not None
    finally:
        probe.close()
    if not has_demo_users:
        return _("skipped: the data file has no demo accounts to sign in with")
    app = create_application([sys.argv[0] or "storedesk"])
    shell = Shell(
        app,
        settings_store=SettingsStore(workdir / "settings.json"),
        cache_path=workdir / "server.db",
        demo_path=cache_path,
        language=current_language(),
        show_windows=True,
    )
    loop = QEventLoop()
    state: dict[str, Any] = {}

    def home_loaded() -> None:
        state["loaded"] = True
        loop.quit()

    def signed_in(window: Any) -> None:
        state["window"] = window
        home = window.widgets.get("home")
        if home is not None and hasattr(home, "sig_loaded"):
            home.sig_loaded.connect(home_loaded)
            if getattr(home, "data", None) is not None:
                home_loaded()
        else:
            home_loaded()

    shell.sig_signed_in.connect(signed_in)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(MAP_TIMEOUT_S * 1000))
    t0 = time.perf_counter()
    try:
        shell.sign_in_demo("store_manager", "")
        loop.exec()
        seconds = time.perf_counter() - t0
        window = state.get("window")
        errors = list(shell.errors_shown)
        broken = [
            sid
            for sid, w in (window.widgets.items() if window else [])
            if isinstance(w, ScreenError)
        ]
        screens = len(window.specs) if window is not None else 0
        title = window.current_screen_id() if window is not None else ""
    finally:
        timer.stop()
        shell.shutdown()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()
    if window is None:
        raise CheckFailed(
            _("the main window did not open within {s:.0f} s").format(s=MAP_TIMEOUT_S)
            + (f" ({errors[-1][1]})" if errors else "")
        )
    if broken:
        raise CheckFailed(_("screens failed to build: {names}").format(names=", ".join(broken)))
    if not state.get("loaded"):
        raise CheckFailed(_("the home screen did not load its figures"))
    age = process_age_s()
    if age is not None:
        report.fact(_("process start to main window"), f"{age:.1f} s")
    return _("{screens} screens, {screen} loaded in {seconds:.1f} s after sign-in").format(
        screens=screens, screen=title, seconds=seconds
    )


def last_complete_week(last_day: dt.date) -> str:
    """The ISO week ending on or before ``last_day`` (a week whose Sunday has data)."""
    sunday = last_day - dt.timedelta(days=(last_day.isoweekday() % 7))
    year, week, _d = sunday.isocalendar()
    return f"{year}-W{week:02d}"


def check_report(cache, workdir: Path, report: Report) -> str:
    from sqlalchemy import select

    from core.directory import data_last_day
    from core.models import Store
    from core.reports.gather import gather_pack
    from core.reports.worker import RenderWorker

    out = workdir / "self-check-pack.pdf"
    with cache.session() as s:
        code = s.scalar(select(Store.code).order_by(Store.code).limit(1))
        last = data_last_day(s)
        if code is None or last is None:
            raise CheckFailed(_("the data has no store with traffic to report on"))
        week = last_complete_week(last)
        data = gather_pack(s, store=code, week=week, lang="zh_CN")
    worker = RenderWorker()
    try:
        pages = worker.render(data, out, lang="zh_CN")
    finally:
        worker.stop()
    head = out.read_bytes()[:5] if out.is_file() else b""
    if head != b"%PDF-" or pages < 1:
        raise CheckFailed(_("the report file is not a PDF: {path}").format(path=out))
    report.fact(_("report"), out)
    return _("store {store}, {week}: {pages} pages, {kb} KB").format(
        store=code, week=week, pages=pages, kb=out.stat().st_size // 1024
    )


def _pick_field_day(cache):
    """One rep's last day with GPS fixes (region, rep and day all read from the data)."""
    from sqlalchemy import func, select

    from core.models import GpsPoint, Region, Rep
    from core.timeutil import to_local
    from core.trajectory.field_day import load_field_day

    with cache.session() as s:
        rep_id = s.scalar(select(GpsPoint.rep_id).order_by(GpsPoint.rep_id).limit(1))
        if rep_id is None:
            raise CheckFailed(_("the data has no GPS tracks to draw"))
        rep = s.get(Rep, rep_id)
        region = s.get(Region, rep.region_id)
        last = s.scalar(select(func.max(GpsPoint.ts)).where(GpsPoint.rep_id == rep_id))
        if isinstance(last, str):  # aggregate over a TypeDecorator column comes back raw
            last = dt.datetime.fromisoformat(last)
        if last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        day = to_local(last, region.timezone).date()
        raw = load_field_day(s, rep.region_id, [rep_id], day)
    if not any(raw.fixes.values()):
        raise CheckFailed(_("no GPS fixes found for the day to draw"))
    return raw, day


def check_map(cache, report: Report) -> str:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWebEngineCore import qWebEngineChromiumVersion, qWebEngineVersion

    from core.maps.field_map import build_field_map_html
    from core.trajectory.field_day import prepare_field_map
    from desktop.app import create_application
    from desktop.widgets.map_view import MapView, register_url_schemes

    app = create_application([sys.argv[0] or "storedesk"])
    register_url_schemes()
    report.fact(_("QtWebEngine"), f"{qWebEngineVersion()} (Chromium {qWebEngineChromiumVersion()})")
    raw, day = _pick_field_day(cache)
    fm = prepare_field_map(raw)
    html = build_field_map_html(fm, None)
    view = MapView()
    view.resize(1000, 700)
    outcome: dict[str, Any] = {}
    loop = QEventLoop()

    def finish(kind: str, value: Any = None) -> None:
        outcome.setdefault(kind, value)
        loop.quit()

    view.sig_ready.connect(lambda summary: finish("ready", summary))
    view.sig_load_failed.connect(lambda: finish("failed"))
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: finish("timeout"))
    timer.start(int(MAP_TIMEOUT_S * 1000))
    try:
        view.show()
        view.show_html(html)
        loop.exec()
        timer.stop()
        # a late request would still be counted: give the page a moment after "ready"
        settle = QEventLoop()
        QTimer.singleShot(300, settle.quit)
        settle.exec()
        blocked = view.blocked
        console = list(view.page.console)
        urls = list(view.interceptor.blocked_urls)
    finally:
        _dispose_web(app, view)
    report.fact(_("map console messages"), len(console))
    if "ready" not in outcome:
        why = (
            _("the page failed to load")
            if "failed" in outcome
            else _("the page did not report ready within {s:.0f} s").format(s=MAP_TIMEOUT_S)
        )
        tail = "; ".join(console[-3:])
        raise CheckFailed(why + (f" ({tail})" if tail else ""))
    if blocked:
        raise CheckFailed(
            _("the map page tried to reach the network {n} times: {urls}").format(
                n=blocked, urls=", ".join(urls[:3])
            )
        )
    return _("{day}: {visits} visits drawn, {blocked} network requests blocked").format(
        day=day.isoformat(), visits=len(fm.visits), blocked=blocked
    )


def _dispose_web(app, view) -> None:
    """Delete the page before its profile and the profile before the QApplication.

    QtWebEngine crashes at process exit when a profile outlives its pages' deletion order
    ("Release of profile requested but WebEnginePage still not deleted").
    """
    from PySide6.QtCore import QCoreApplication, QEvent

    from desktop.widgets import map_view as mv

    view.close()
    view.page.deleteLater()
    view.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    if mv._handler is not None:
        mv._handler.shutdown()
    if mv._profile is not None:
        mv._profile.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        mv._profile = None
        mv._handler = None
    app.processEvents()


# ----------------------------------------------------------------------------- driver


def _versions(report: Report) -> None:
    from desktop.cli import app_version

    frozen = bool(getattr(sys, "frozen", False))
    report.fact(_("StoreDesk"), app_version())
    report.fact(_("bundle"), sys.executable if frozen else _("no (running from source)"))
    report.fact(
        _("Python"),
        f"{platform.python_version()} ({platform.system()} {platform.machine()})",
    )
    try:
        import PySide6
        from PySide6.QtCore import qVersion

        report.fact(_("Qt / PySide6"), f"{qVersion()} / {PySide6.__version__}")
    except ImportError as e:
        raise CheckFailed(_("Qt is missing: {error}").format(error=e)) from e
    import babel
    import folium
    import reportlab
    import sqlalchemy

    report.fact(
        _("libraries"),
        f"SQLAlchemy {sqlalchemy.__version__}, reportlab {reportlab.Version}, "
        f"folium {folium.__version__}, Babel {babel.__version__}",
    )


def _run_step(report: Report, name: str, fn: Callable[[], str], out: Callable[[str], None]) -> None:
    t0 = time.perf_counter()
    failed = _("FAILED")
    try:
        detail = fn()
    except CheckFailed as e:
        out(f"[{failed}] {name}: {e}")
        raise
    except Exception as e:
        out(f"[{failed}] {name}: {type(e).__name__}: {e}")
        out(traceback.format_exc().rstrip())
        raise CheckFailed(f"{name}: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - t0
    report.steps.append(StepResult(name, seconds, detail))
    out(f"[ok] {name:<12} {seconds:6.1f} s  {detail}")


def run_self_check(args: Any, out: Callable[[str], None] | None = None) -> int:
    """Run every step; print the summary; 0 when all passed, 1 otherwise."""

    def say(line: str) -> None:
        print(line, flush=True)

    out = out or say
    started = time.perf_counter()
    report = Report()
    notes = prepare_environment()
    out(_("StoreDesk self-check"))
    for note in notes:
        out(f"  ({note})")
    cache = None
    with tempfile.TemporaryDirectory(prefix="storedesk-selfcheck-") as tmp:
        workdir = Path(tmp)
        try:
            _run_step(report, _("versions"), lambda: _versions(report) or "", out)
            _run_step(report, _("resources"), lambda: check_resources(report), out)
            _run_step(report, _("modules"), check_modules, out)

            def data() -> str:
                nonlocal cache
                cache, detail = open_data(args, workdir, report)
                return detail

            _run_step(report, _("demo data"), data, out)
            _run_step(
                report,
                _("window"),
                lambda: check_window(Path(report_fact(report, _("data"))), workdir, report),
                out,
            )
            _run_step(report, _("report"), lambda: check_report(cache, workdir, report), out)
            _run_step(report, _("map"), lambda: check_map(cache, report), out)
        except CheckFailed as e:
            out(_("self-check FAILED: {error}").format(error=e))
            out(
                _(
                    "The installation is incomplete or damaged: reinstall StoreDesk, or send "
                    "this output to your IT contact."
                )
            )
            _print_facts(report, out)
            return 1
        finally:
            if cache is not None:
                cache.close()
        _print_facts(report, out)
        out(_("self-check passed in {seconds:.1f} s").format(seconds=time.perf_counter() - started))
    return 0


def report_fact(report: Report, key: str) -> str:
    return next(v for k, v in report.facts if k == key)


def _print_facts(report: Report, out: Callable[[str], None]) -> None:
    width = max((len(k) for k, _v in report.facts), default=10)
    for key, value in report.facts:
        out(f"  {key:<{width}}  {value}")
