"""The offline map view: QWebEngineView on the app's own ``storedesk://`` scheme.

Why a scheme and not ``setHtml``: pages above ~2 MB fail silently with setHtml, and a
scheme lets one handler serve the page, the vendored assets (``resources/web``), the CJK
fallback font and the map tiles from the local cache (Anki's ``aqt/webview.py`` makes the
same choice). Hosts of ``storedesk://``:

* ``assets/<path>`` — files under ``resources/web`` (see its README for sources/licences);
* ``fonts/<file>`` — files under ``resources/fonts``;
* ``map/<id>.html`` — pages given to :meth:`MapView.show_html`;
* ``tiles/<provider>/<z>/<x>/<y>.png`` — the SQLite tile cache; a missing tile is fetched
  (httpx, identifying User-Agent, off the UI thread) only when the view is *online* and
  the provider is configured, and stored for offline use.

The page never reaches the network by itself: a per-page request interceptor blocks and
counts every ``http``/``https``/``ws``/``wss``/``ftp`` request (:attr:`MapView.blocked`).
Clicks come back through QWebChannel as :attr:`MapView.sig_visit_clicked`.

:func:`register_url_schemes` must run right after ``QApplication`` is created and before
any QtWebEngine profile or view exists (Qt ignores schemes registered later).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
    QWebEngineUrlRequestJob,
    QWebEngineUrlScheme,
    QWebEngineUrlSchemeHandler,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from core.maps.assets import SCHEME, asset_file, inline_assets, mime_type, ttc_first_font
from core.maps.providers import TileProvider
from core.maps.tilecache import TileCache, fetch_tile, make_client
from core.resources import resource_path
from desktop.webengine import apply_chromium_flags

log = logging.getLogger(__name__)

SCHEME_BYTES = SCHEME.encode()
BLOCKED_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_TILE_PATH = re.compile(r"^/([A-Za-z0-9_.-]+)/(\d{1,2})/(\d+)/(\d+)\.png$")
_registered = False


def register_url_schemes() -> None:
    """Register ``storedesk://`` with QtWebEngine. Call once, right after QApplication().

    Host syntax gives every host its own origin; Secure (a secure context for the page),
    CorsEnabled (fonts across hosts), FetchApiAllowed (``fetch()``) and
    LocalAccessAllowed (``qrc:///qtwebchannel/qwebchannel.js``).
    """
    global _registered
    if _registered:
        return
    scheme = QWebEngineUrlScheme(SCHEME_BYTES)
    scheme.setSyntax(QWebEngineUrlScheme.Syntax.Host)
    scheme.setDefaultPort(QWebEngineUrlScheme.SpecialPort.PortUnspecified.value)
    scheme.setFlags(
        QWebEngineUrlScheme.Flag.SecureScheme
        | QWebEngineUrlScheme.Flag.CorsEnabled
        | QWebEngineUrlScheme.Flag.FetchApiAllowed
        | QWebEngineUrlScheme.Flag.LocalAccessAllowed
    )
    QWebEngineUrlScheme.registerScheme(scheme)
    _registered = True


class OfflineInterceptor(QWebEngineUrlRequestInterceptor):
    """Blocks and counts network requests of one page (runs on Qt's IO thread)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self.blocked_urls: list[str] = []

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
        url = info.requestUrl()
        if url.scheme().lower() in BLOCKED_SCHEMES:
            info.block(True)
            with self._lock:
                self.blocked_urls.append(url.toString())

    @property
    def blocked(self) -> int:
        with self._lock:
            return len(self.blocked_urls)


class _TileRelay(QObject):
    sig_fetched = Signal(int, object)  # job key, (bytes, content type) | None


class SchemeHandler(QWebEngineUrlSchemeHandler):
    """Serves assets, fonts, pages and tiles for every view of the app's profile."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pages: dict[str, bytes] = {}
        self.tile_cache: TileCache | None = None
        self.providers: dict[str, TileProvider] = {}
        self.online = False
        self.tiles_served = 0
        self.tiles_fetched = 0
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sd-tiles")
        self._client: Any = None
        self._jobs: dict[int, QWebEngineUrlRequestJob] = {}
        self._keys = itertools.count(1)
        self._relay = _TileRelay()
        self._relay.sig_fetched.connect(self._on_tile_fetched)

    def configure_tiles(
        self, cache: TileCache | None, providers: list[TileProvider], *, online: bool
    ) -> None:
        self.tile_cache = cache
        self.providers = {p.key: p for p in providers}
        self.online = online

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:
        url = job.requestUrl()
        host, path = url.host(), url.path()
        if host == "assets":
            f = asset_file(path)
            if f is not None:
                self._reply(job, f.read_bytes(), mime_type(f))
                return
        elif host == "fonts":
            name = Path(path).name
            f = resource_path("fonts", name)
            if name and f.is_file() and f.suffix.lower() in (".ttf", ".otf", ".ttc"):
                self._reply(job, _web_font(str(f)), "font/ttf")
                return
        elif host == "map":
            data = self.pages.get(Path(path).stem)
            if data is not None:
                self._reply(job, data, "text/html")
                return
        elif host == "tiles":
            self._serve_tile(job, path)
            return
        job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)

    def _reply(self, job: QWebEngineUrlRequestJob, data: bytes, mime: str) -> None:
        buf = QBuffer(job)  # parented to the job: an unparented buffer crashes once collected
        buf.setData(QByteArray(data))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        job.reply(QByteArray(mime.encode()), buf)

    def _serve_tile(self, job: QWebEngineUrlRequestJob, path: str) -> None:
        m = _TILE_PATH.match(path)
        if m is None or self.tile_cache is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        key_, z, x, y = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        got = self.tile_cache.get(key_, z, x, y)
        if got is not None:
            self.tiles_served += 1
            self._reply(job, got[0], got[1])
            return
        provider = self.providers.get(key_)
        if not self.online or provider is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        key = next(self._keys)
        self._jobs[key] = job
        job.destroyed.connect(lambda *_a, k=key: self._jobs.pop(k, None))
        cache = self.tile_cache
        self._pool.submit(self._fetch, key, provider, cache, z, x, y)

    def _fetch(
        self, key: int, provider: TileProvider, cache: TileCache, z: int, x: int, y: int
    ) -> None:
        try:
            if self._client is None:
                self._client = make_client()
            data, ctype = fetch_tile(provider, z, x, y, self._client)
            cache.put(provider.key, z, x, y, data, ctype)
            result: Any = (data, ctype)
        except Exception as e:  # a tile that cannot be fetched just stays blank
            log.info("tile %s/%s/%s/%s not fetched: %s", provider.key, z, x, y, e)
            result = None
        self._relay.sig_fetched.emit(key, result)

    def _on_tile_fetched(self, key: int, result: Any) -> None:
        job = self._jobs.pop(key, None)
        if job is None:
            return  # the page went away meanwhile
        if result is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
        else:
            self.tiles_fetched += 1
            self._reply(job, result[0], result[1])

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()


@functools.cache
def _web_font(path: str) -> bytes:
    """A font file as the page can use it (a .ttc collection becomes its first .ttf)."""
    return ttc_first_font(Path(path).read_bytes())


_profile: QWebEngineProfile | None = None
_handler: SchemeHandler | None = None


def map_profile() -> tuple[QWebEngineProfile, SchemeHandler]:
    """The one off-the-record profile all map views share, with the scheme handler installed."""
    global _profile, _handler
    if _profile is None:
        from PySide6.QtWidgets import QApplication

        register_url_schemes()  # no-op if the shell did it (it must, before any profile)
        apply_chromium_flags()  # read by Chromium when this first profile starts it
        app = QApplication.instance()
        _profile = QWebEngineProfile(app)  # off the record: no disk cache, no cookies kept
        _handler = SchemeHandler(app)
        _profile.installUrlSchemeHandler(SCHEME_BYTES, _handler)
        if app is not None:
            app.aboutToQuit.connect(_handler.shutdown)
    assert _handler is not None
    return _profile, _handler


class _QuietPage(QWebEnginePage):
    """A page that never opens JS dialogs (a map has no reason to) and records attempts."""

    def __init__(self, profile: QWebEngineProfile, parent: QObject | None = None) -> None:
        super().__init__(profile, parent)
        self.dialogs: list[str] = []
        self.console: list[str] = []

    def javaScriptAlert(self, origin: QUrl, msg: str) -> None:
        self.dialogs.append(f"alert:{msg}")

    def javaScriptConfirm(self, origin: QUrl, msg: str) -> bool:
        self.dialogs.append(f"confirm:{msg}")
        return False

    def javaScriptPrompt(self, origin: QUrl, msg: str, default: str) -> tuple[bool, str]:
        self.dialogs.append(f"prompt:{msg}")
        return False, ""

    def javaScriptConsoleMessage(self, level: Any, message: str, line: int, source: str) -> None:
        self.console.append(f"{source}:{line}: {message}")
        log.debug("map page: %s:%s: %s", source, line, message)


class MapBridge(QObject):
    """The object the page sees as ``bridge`` over QWebChannel."""

    sig_visit_clicked = Signal(str)
    """The page reports a click on a visit marker (visit id)."""
    sig_ready = Signal(str)
    """The page finished drawing (JSON summary from the page)."""

    @Slot(str)
    def visitClicked(self, visit_id: str) -> None:
        self.sig_visit_clicked.emit(str(visit_id))

    @Slot(str)
    def pageReady(self, summary: str) -> None:
        self.sig_ready.emit(str(summary))


class MapView(QWidget):
    """A map page from the local scheme; see the module docstring."""

    sig_visit_clicked = Signal(str)
    """A visit marker was clicked in the map (visit id)."""
    sig_ready = Signal(str)
    """The current page has drawn everything and wired its bridge (JSON summary)."""
    sig_load_failed = Signal()
    """The page itself failed to load (unknown page id, renderer crash)."""
    sig_shell_loaded = Signal(str)
    """A page given to :meth:`show_shell` finished loading (its key); days can be drawn."""
    sig_png_saved = Signal(str)
    """A PNG asked for by :meth:`export_png` was written (its path)."""
    sig_png_failed = Signal(str, str)
    """:meth:`export_png` wrote nothing (path, :attr:`PNG_NOT_DRAWN` or :attr:`PNG_NOT_WRITTEN`)."""

    #: export_png's failures: the page did not draw and paint in time / the file was not written
    PNG_NOT_DRAWN = "not drawn"
    PNG_NOT_WRITTEN = "not written"
    #: how long export_png waits for the page to finish drawing and paint it
    PNG_TIMEOUT_MS = 30_000
    #: the page's mark for export_png: three 2×2 px squares at the top left, set once the
    #: page has drawn and its tiles have loaded and faded in; the two patterns alternate
    #: between marks (a frame can show the last one). A frame showing it shows all before it.
    _MARK_PATTERNS = (
        ((255, 0, 255), (0, 255, 0), (0, 0, 255)),
        ((0, 255, 255), (255, 0, 0), (255, 255, 0)),
    )
    _MARK_JS = """(function (colours) {
  if (!document.body) return null;
  function mark() {
    var d = document.getElementById("sd-paint-mark");
    if (!d) {
      d = document.createElement("div");
      d.id = "sd-paint-mark";
      d.style.cssText = "position:fixed;left:0;top:0;width:6px;height:2px;display:flex;"
        + "z-index:2147483647;pointer-events:none";
      for (var i = 0; i < 3; i++) {
        var q = document.createElement("div");
        q.style.cssText = "width:2px;height:2px";
        d.appendChild(q);
      }
      document.body.appendChild(d);
    }
    for (var j = 0; j < 3; j++) d.children[j].style.background = colours[j];
    d.style.display = "flex";
  }
  // the page has drawn (sdReady: not a replaced page's late ready), the map has stopped
  // moving and every tile layer has loaded its tiles and faded them in (Leaflet fires
  // "load" before the fade-in ends); checked once a frame
  function settled() {
    var m = window.sdMap, done = true;
    if (window.sdReady !== true) return false;
    if (!m) return true;
    if (m._animatingZoom || (m._panAnim && m._panAnim._inProgress)) return false;
    m.eachLayer(function (l) {
      if (!done || !l._tiles) return;
      if (l.isLoading && l.isLoading()) { done = false; return; }
      for (var k in l._tiles) {
        var t = l._tiles[k];
        if (t.current && !t.active) { done = false; return; }
      }
    });
    return done;
  }
  (function wait() { if (settled()) mark(); else requestAnimationFrame(wait); })();
  return true;
})(%s)"""
    _UNMARK_JS = (
        "(function () { var d = document.getElementById('sd-paint-mark');"
        " if (d) d.style.display = 'none'; })()"
    )

    _ids = itertools.count(1)
    #: a drawing script starting with this begins a new drawing (field map ``sdBegin``),
    #: so the scripts before it need not be run again when a discarded page comes back
    RESTART_PREFIX = "window.sdBegin("

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        profile, self.handler = map_profile()
        self.view = QWebEngineView(self)
        self.page = _QuietPage(profile, self.view)
        self.interceptor = OfflineInterceptor(self)
        self.page.setUrlRequestInterceptor(self.interceptor)
        self.bridge = MapBridge(self)
        self.channel = QWebChannel(self.page)
        self.channel.registerObject("bridge", self.bridge)
        self.page.setWebChannel(self.channel)
        self.view.setPage(self.page)
        self.bridge.sig_visit_clicked.connect(self.sig_visit_clicked)
        self.bridge.sig_ready.connect(self._on_ready)
        self.page.loadFinished.connect(self._on_load_finished)
        self.page.renderProcessTerminated.connect(self._on_renderer_gone)
        self.current_id: str | None = None
        self.ready = False
        #: key of the persistent page shown (see show_shell), None for any other page
        self.shell_key: str | None = None
        self.shell_loaded = False
        self.last_summary = ""
        #: drawing scripts run on the current page (replayed after a discard, see hideEvent)
        self._drawn: list[str] = []
        self._restoring = False  # discarded, until the reloaded page has finished loading
        self._quiet_ready = False  # the next ready is a replay's: the owner knows it already
        self._revived = False  # the page was reloaded after a renderer crash, not drawn since
        self._png_requests = itertools.count(1)
        self._png: tuple[int, Path] | None = None  # the export waiting for a painted frame
        self._png_asked = False  # the page shows the export's mark
        self._drawings = 0  # pages and drawings started: a painted frame older than one is stale
        self._png_asked_at = 0  # self._drawings when the mark was set
        self._png_timer = QTimer(self)
        self._png_timer.setSingleShot(True)
        self._png_timer.timeout.connect(self._on_png_timeout)
        #: looks at the view's frame while an export waits for its mark (the render
        #: widget's paint events are no help: each grab paints it again)
        self._png_poll = QTimer(self)
        self._png_poll.setInterval(50)
        self._png_poll.timeout.connect(self._check_png_frame)
        self._png_marks = 0  # marks set: each has the other colour than the one before
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        app = QApplication.instance()
        if app is not None:
            # pages must go before the app-owned profile, or Qt warns and may crash at exit
            app.aboutToQuit.connect(self.release_page)

    def release_page(self) -> None:
        """Delete the page now (before the shared profile is destroyed at quit)."""
        page = getattr(self, "page", None)
        if page is None:
            return
        self.page = None  # type: ignore[assignment]
        self.shell_key, self.shell_loaded = None, False
        self.view.setPage(None)  # type: ignore[arg-type]
        page.deleteLater()

    @property
    def blocked(self) -> int:
        """Network requests the page tried and the interceptor blocked."""
        return self.interceptor.blocked

    def show_html(self, html: str) -> str:
        """Load a page through ``storedesk://map/<id>.html`` (never setHtml); returns the id."""
        old = self.current_id
        map_id = f"m{next(self._ids)}"
        self.handler.pages[map_id] = html.encode("utf-8")
        self.current_id = map_id
        self.ready = False
        self._drawings += 1
        self.shell_key, self.shell_loaded = None, False
        self._drawn, self._restoring, self._quiet_ready = [], False, False
        self._revived = False
        if self.page is not None and self.discarded:
            self.page.setLifecycleState(QWebEnginePage.LifecycleState.Active)
        self.view.load(QUrl(f"{SCHEME}://map/{map_id}.html"))
        if old is not None:
            self.handler.pages.pop(old, None)
        return map_id

    def show_shell(self, html: str, key: str) -> str:
        """Load a persistent page that draws data sent by :meth:`draw` (field map shell).

        ``key`` names what the page was built for (e.g. its tile source);
        :attr:`shell_key` keeps it until another page replaces this one or the page is
        released, so a caller knows whether the shell is still there to draw on.
        """
        map_id = self.show_html(html)
        self.shell_key = key
        return map_id

    def draw(self, script: str) -> None:
        """Run a drawing script on the loaded shell; it reports through ``sig_ready``."""
        if self.page is None:  # released meanwhile
            return
        self.ready = False
        self._drawings += 1
        if script.startswith(self.RESTART_PREFIX):
            self._drawn.clear()
        self._drawn.append(script)
        self._quiet_ready = False  # the owner waits for this drawing's ready
        if self.discarded or self._restoring:  # run when the page is back (hideEvent)
            return
        self.run_js(script)

    def current_html(self) -> str:
        if self.current_id is None:
            return ""
        return self.handler.pages.get(self.current_id, b"").decode("utf-8")

    def run_js(self, script: str, callback: Any = None) -> None:
        if callback is None:
            self.page.runJavaScript(script)
        else:
            self.page.runJavaScript(script, 0, callback)

    def select_visit(self, visit_id: str) -> None:
        """Pan to a visit and open its popup (from the side panel)."""
        self.run_js(f"window.sdSelectVisit && window.sdSelectVisit({json.dumps(visit_id)})")

    def export_html(self, path: Path, html: str | None = None) -> Path:
        """A standalone file: every asset inlined (opens in any browser, offline)."""
        page = inline_assets(html if html is not None else self.current_html())
        path.write_text(page, encoding="utf-8")
        return path

    def export_png(self, path: Path) -> None:
        """Save the map as shown, once the page has drawn everything and painted it.

        ``grab()`` copies the last frame the page's compositor handed to Qt: right after
        ``sig_ready`` (or later on a busy machine) that is still a frame from before the
        drawing, e.g. a blank page; two ``requestAnimationFrame`` were not enough either.
        So the export waits for the page's ready, then (once its tiles have loaded and faded
        in) sets a small mark on the page and saves the first frame that shows it, the mark
        given the colours of the row under it. It reports through :attr:`sig_png_saved`, or
        :attr:`sig_png_failed` when the page has not painted within :attr:`PNG_TIMEOUT_MS`
        (rather than writing a blank file). A new export replaces one still waiting.
        """
        self._png = (next(self._png_requests), path)
        self._png_asked = False
        self._png_timer.start(self.PNG_TIMEOUT_MS)
        if self.ready:
            self._ask_after_paint()

    def _ask_after_paint(self) -> None:
        if self._png is None or self._png_asked or self.page is None:
            return
        self._png_asked = True
        self._png_asked_at = self._drawings
        request = self._png[0]
        self._png_marks += 1
        colours = [f"rgb({r},{g},{b})" for r, g, b in self._MARK_PATTERNS[self._png_marks % 2]]

        def asked(ok: Any) -> None:
            if self._png is None or self._png[0] != request:
                return
            if ok is not True:  # a page still loading (a replaced page's late ready): the
                return  # next ready marks again; PNG_TIMEOUT_MS bounds the wait
            self._png_poll.start()
            self._check_png_frame()

        self.run_js(self._MARK_JS % json.dumps(colours), asked)

    def _check_png_frame(self) -> None:
        if self._png is None or not self._png_asked:
            self._png_poll.stop()
            return
        if not self.ready or self._png_asked_at != self._drawings:
            self._png_asked = False  # a drawing began since: mark again once it is drawn
            self._png_poll.stop()
            if self.ready:
                self._ask_after_paint()
            return
        path = self._png[1]
        img = self.view.grab().toImage()
        if img.width() < 2 or img.height() < 2:
            return
        dpr = img.devicePixelRatio()
        for i, (r, g, b) in enumerate(self._MARK_PATTERNS[self._png_marks % 2]):
            c = img.pixelColor(int((2 * i + 1) * dpr), int(dpr))
            if abs(c.red() - r) + abs(c.green() - g) + abs(c.blue() - b) > 30:
                return  # a frame from before the mark (and maybe before the drawing)
        w, h = math.ceil(6 * dpr), math.ceil(2 * dpr)  # the mark in image pixels
        for x in range(w):  # given the colours of the row under it
            fill = img.pixelColor(x, h)
            for y in range(h):
                img.setPixelColor(x, y, fill)
        self.run_js(self._UNMARK_JS)
        self._png_done(None if img.save(str(path)) else self.PNG_NOT_WRITTEN)

    def _on_png_timeout(self) -> None:
        if self._png is not None:
            self._png_done(self.PNG_NOT_DRAWN)

    def _png_done(self, failure: str | None) -> None:
        assert self._png is not None
        path = str(self._png[1])
        self._png, self._png_asked = None, False
        self._png_timer.stop()
        self._png_poll.stop()
        if failure is None:
            self.sig_png_saved.emit(path)
        else:
            self.sig_png_failed.emit(path, failure)

    @property
    def discarded(self) -> bool:
        """The page is discarded (renderer freed) while hidden; Qt reloads it when shown."""
        page = self.page
        return page is not None and (
            page.lifecycleState() == QWebEnginePage.LifecycleState.Discarded
        )

    def hideEvent(self, event: Any) -> None:
        """Leaving the screen discards the page: its renderer process (≈ 200 MiB) goes.

        Qt reloads a discarded page when it is shown again (from the scheme handler, which
        still holds it); :meth:`_on_load_finished` then runs the drawing scripts again, so
        the map comes back as it was, without asking its owner. A minimised window
        (a spontaneous hide) keeps its page.
        """
        super().hideEvent(event)
        if not event.spontaneous():  # after the web view inside has been hidden too
            QTimer.singleShot(0, self, self.discard_if_hidden)

    def discard_if_hidden(self) -> None:
        """Discard the page if the map is not shown (Qt only discards pages not shown)."""
        page = self.page
        if page is None or self.current_id is None or self.discarded:
            return
        if self.isVisible() or page.isVisible():
            return
        page.setLifecycleState(QWebEnginePage.LifecycleState.Discarded)
        self._restoring = True
        self._quiet_ready = False

    def _on_renderer_gone(self, status: Any, exit_code: int) -> None:
        """The renderer crashed or was killed (out of memory): the page is blank and runs
        no script, and a kept page is never loaded again by itself.

        Reload it once and replay its drawing, as after a discard; if the renderer goes
        again before that drawing is ready, report it (``sig_load_failed``) and forget
        the shell, so the owner's next request loads a new page.
        """
        normal = QWebEnginePage.RenderProcessTerminationStatus.NormalTerminationStatus
        if status == normal or self.page is None or self.current_id is None or self.discarded:
            return
        log.warning("map renderer process ended (%s, exit code %s)", status, exit_code)
        if not self._revived:
            self._revived = True
            self._restoring = True  # _on_load_finished replays the drawing
            self.view.load(QUrl(f"{SCHEME}://map/{self.current_id}.html"))
            return
        self._restoring = self._revived = False
        self.ready = False
        self.shell_key, self.shell_loaded = None, False
        self.sig_load_failed.emit()

    def _on_ready(self, summary: str) -> None:
        self.ready = True
        self._revived = False
        self.last_summary = summary
        if self._png is not None:  # an export waits: mark after this drawing (a ready can
            self._png_asked = False  # also be a replaced page's, late, whose mark was lost)
            self._ask_after_paint()
        if self._quiet_ready:  # the same drawing again after a discard
            self._quiet_ready = False
            return
        self.sig_ready.emit(summary)

    def _on_load_finished(self, ok: bool) -> None:
        restored, self._restoring = self._restoring, False
        if ok and restored:  # a discarded page is back: draw what it showed
            self._quiet_ready = self.ready  # unless a drawing was asked for meanwhile
            for script in self._drawn:
                self.run_js(script)
            return
        if not ok:
            if restored:  # the kept page could not come back: the next request loads anew
                self.shell_key, self.shell_loaded = None, False
            self.sig_load_failed.emit()
        elif self.shell_key is not None and not self.shell_loaded:
            self.shell_loaded = True
            self.sig_shell_loaded.emit(self.shell_key)

    def closeEvent(self, event: Any) -> None:
        if self.current_id is not None:
            self.handler.pages.pop(self.current_id, None)
        super().closeEvent(event)
