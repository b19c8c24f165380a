"""The offline map view in QtWebEngine (headless): one shared view for the whole module.

Checks the four promises of DESIGN §4 on a small seeded field day: the page loads from
``storedesk://`` with no network (interceptor count 0) and the tracks are painted, a
marker click reaches Python over QWebChannel, a customer named like a script stays text,
and tiles downloaded from a loopback tile server are served from the cache offline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from maptile_server import TileServer
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, Qt
from PySide6.QtTest import QTest
from trajectory_synth import XSS_NAME, seed_field_day

from core.cache import open_cache
from core.maps.field_map import build_field_map_html
from core.maps.providers import custom_provider
from core.maps.tilecache import BBox, TileCache, prefetch_area
from core.resources import CJK_FONT_FILE
from core.tasks import TaskState
from core.trajectory.field_day import load_field_day, prepare_field_map
from desktop.widgets.map_view import MapView, register_url_schemes

pytestmark = [pytest.mark.gui, pytest.mark.webengine]

TRACK_RGB = (0x7B, 0x1F, 0xA2)  # first rep colour in core.trajectory.field_day.REP_COLOURS


def qimage_rgb(img) -> np.ndarray:
    img = img.convertToFormat(img.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return arr[:, : w * 3].reshape(h, w, 3).astype(int)


def count_pixels(widget, rgb, tol: int = 30) -> int:
    arr = qimage_rgb(widget.grab().toImage())
    return int((np.abs(arr - np.array(rgb)).max(axis=2) <= tol).sum())


def magenta_pixels(widget) -> int:
    arr = qimage_rgb(widget.grab().toImage())
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    return int(((r > 200) & (b > 200) & (g < 130)).sum())


@pytest.fixture(scope="module")
def field_map(tmp_path_factory):
    cache = open_cache(tmp_path_factory.mktemp("fmv") / "fm.db")
    with cache.session() as s:
        ids = seed_field_day(s)
    with cache.session() as s:
        raw = load_field_day(s, 1, None, ids["day"])
    cache.close()
    return prepare_field_map(raw)


@pytest.fixture(scope="module")
def view(qapp):
    register_url_schemes()
    v = MapView()
    v.resize(1000, 700)
    v.show()
    yield v
    v.close()
    v.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def load(qtbot, view: MapView, html: str) -> dict:
    with qtbot.waitSignal(view.sig_ready, timeout=30_000) as blocker:
        view.show_html(html)
    return json.loads(blocker.args[0])


def js(qtbot, view: MapView, script: str):
    box: list = []
    view.run_js(script, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    return box[0]


def selected_popup_text(qtbot, view, visit_id: str) -> str:
    """Select a visit on the page (``sdSelectVisit``) and read its open popup's text."""
    assert js(qtbot, view, f"window.sdSelectVisit('{visit_id}')") is True
    qtbot.waitUntil(
        lambda: js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content').length") == 1,
        timeout=5_000,
    )
    return js(qtbot, view, "document.querySelector('.leaflet-popup-content').textContent")


HEAT_LAYERS = (
    "(function(){var n = 0; window.sdMap.eachLayer(function(l){ if (l._heat) n++; }); return n;})()"
)


def turn_on_heat_layer(qtbot, view) -> None:
    """Tick "Visit heat" in the page's layer control (off by default) and wait for it."""
    assert js(qtbot, view, HEAT_LAYERS) == 0
    view.run_js(
        "Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
        ".filter(function(l){ return l.textContent.indexOf('Visit heat') >= 0; })"
        ".forEach(function(l){ l.querySelector('input').click(); });"
    )
    qtbot.waitUntil(lambda: js(qtbot, view, HEAT_LAYERS) == 1, timeout=5_000)


def test_page_loads_offline_and_paints_the_tracks(qtbot, view, field_map):
    summary = load(qtbot, view, build_field_map_html(field_map, None))
    assert summary == {"tracks": 3, "visits": 3, "flagged": 1}
    qtbot.waitUntil(lambda: count_pixels(view, TRACK_RGB) > 150, timeout=10_000)
    assert view.blocked == 0, view.interceptor.blocked_urls
    assert js(qtbot, view, "typeof L !== 'undefined' && typeof jQuery !== 'undefined'") is True
    # the heat layer (off by default) draws too: its plugin is vendored
    turn_on_heat_layer(qtbot, view)
    assert not [m for m in view.page.console if "Error" in m], view.page.console
    # the interceptor really is what keeps the page offline: it counts a page's attempts
    view.run_js("fetch('https://example.invalid/x').catch(function(){});"
                "new Image().src = 'http://example.invalid/y.png';")  # fmt: skip
    qtbot.waitUntil(lambda: view.blocked == 2, timeout=10_000)
    view.interceptor.blocked_urls.clear()


def test_scheme_serves_only_known_paths(qtbot, view):
    probe = (
        "(function(){window.sdProbe = null; var urls = ['storedesk://assets/leaflet/leaflet.css',"
        " 'storedesk://assets/nope.js', 'storedesk://assets/../fonts/README.md',"
        " 'storedesk://fonts/' + " + json.dumps(CJK_FONT_FILE) + ", 'storedesk://map/unknown.html',"
        " 'storedesk://tiles/osm/1/0/0.png'];"
        " Promise.all(urls.map(function(u){ return fetch(u).then(function(r){ return r.ok; },"
        " function(){ return false; }); })).then(function(r){ window.sdProbe = r.join(','); });"
        " return 1;})()"
    )
    js(qtbot, view, probe)
    qtbot.waitUntil(lambda: js(qtbot, view, "window.sdProbe") not in (None, ""), timeout=10_000)
    assert js(qtbot, view, "window.sdProbe") == "true,false,false,true,false,false"
    # the bundled CJK font (a .ttc, served as its first .ttf) is usable as a web font
    js(
        qtbot,
        view,
        "document.fonts.load('16px \"SD CJK Fallback\"', '拜访轨迹').then("
        "function(f){ window.sdFont = f.length ? f[0].status : 'none'; },"
        " function(e){ window.sdFont = 'error ' + e; }); 1",
    )
    qtbot.waitUntil(lambda: js(qtbot, view, "window.sdFont || ''") != "", timeout=10_000)
    assert js(qtbot, view, "window.sdFont") == "loaded", view.page.console
    assert view.blocked == 0


def test_marker_click_reaches_python(qtbot, view, field_map):
    load(qtbot, view, build_field_map_html(field_map, None))
    pos = js(
        qtbot,
        view,
        "(function(){var l = window.sdVisitLayers['v-good-1'];"
        "var p = window.sdMap.latLngToContainerPoint(l.getLatLng()); return p.x + ',' + p.y;})()",
    )
    pos = [float(c) for c in pos.split(",")]
    target = view.view.focusProxy() or view.view
    with qtbot.waitSignal(view.sig_visit_clicked, timeout=10_000) as blocker:
        QTest.mouseClick(
            target, Qt.MouseButton.LeftButton, pos=QPoint(round(pos[0]), round(pos[1]))
        )
    assert blocker.args == ["v-good-1"]
    assert view.blocked == 0


def test_script_named_customer_is_shown_as_text(qtbot, view, field_map):
    load(qtbot, view, build_field_map_html(field_map, None))
    text = selected_popup_text(qtbot, view, "v-xss")
    assert XSS_NAME in text  # shown literally
    assert js(qtbot, view, "document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content img').length") == 0
    qtbot.wait(300)  # an onerror handler would have fired by now
    assert js(qtbot, view, "typeof window.sdPwned") == "undefined"
    assert view.page.dialogs == []


def test_tiles_come_from_the_cache_after_a_download(qtbot, view, field_map, tmp_path):
    tiles = TileCache(tmp_path / "tiles.sqlite")
    area = BBox(31.16, 121.41, 31.24, 121.50)
    with TileServer() as srv:
        provider = custom_provider(srv.url, attribution="loopback test tiles", key="loop")
        result = prefetch_area(tiles, provider, area, 10, 15, TaskState())
        assert result.fetched > 0 and result.failed == 0
        downloaded = len(srv.requests)
    # the server is gone: the map is offline and must still show the tiles
    view.handler.configure_tiles(tiles, [provider], online=False)
    try:
        load(qtbot, view, build_field_map_html(field_map, provider))
        # magenta tiles, seen through the translucent boundary fill drawn above them
        qtbot.waitUntil(lambda: magenta_pixels(view) > 100_000, timeout=15_000)
        assert view.handler.tiles_served > 0
        assert view.handler.tiles_fetched == 0
        assert view.blocked == 0
        assert len(srv.requests) == downloaded
    finally:
        view.handler.configure_tiles(None, [], online=False)
        tiles.close()


def test_online_view_fills_the_cache_through_python_not_the_page(qtbot, view, field_map, tmp_path):
    tiles = TileCache(tmp_path / "online.sqlite")
    with TileServer() as srv:
        provider = custom_provider(srv.url, attribution="loopback test tiles", key="live")
        view.handler.configure_tiles(tiles, [provider], online=True)
        try:
            fetched_before = view.handler.tiles_fetched  # the handler is shared by all views
            load(qtbot, view, build_field_map_html(field_map, provider))
            # The shared view may still show the previous test's magenta tiles for a moment:
            # wait for tiles fetched for *this* page, then for them to be painted.
            qtbot.waitUntil(lambda: view.handler.tiles_fetched > fetched_before, timeout=15_000)
            qtbot.waitUntil(lambda: magenta_pixels(view) > 100_000, timeout=15_000)
            # every tile the server answered is stored by Python; the last ones may still be
            # on their way back from the server when the first ones are painted
            assert srv.requests
            qtbot.waitUntil(lambda: tiles.count("live") == len(srv.requests), timeout=10_000)
            assert view.blocked == 0  # the page itself still made no network request
        finally:
            view.handler.configure_tiles(None, [], online=False)
            tiles.close()


def test_kept_page_draws_days_sent_to_it(qtbot, view, field_map):
    """The persistent page: loaded once, each day drawn by ``sdDraw`` (no new page)."""
    from core.maps.field_map import (
        build_field_shell_html,
        field_day_script,
        field_static_script,
    )

    with qtbot.waitSignal(view.sig_shell_loaded, timeout=30_000):
        view.show_shell(build_field_shell_html(None), "none")
    assert view.shell_key == "none" and view.shell_loaded
    page_id = view.current_id
    per_layer = (
        "(function(){var n = 0; window.sdMap.eachLayer(function(l){"
        " if (l instanceof L.CircleMarker || l instanceof L.Marker || l instanceof L.Polyline)"
        " n++; }); return n;})()"
    )
    counts = []
    # a second day replaces the first's layers, not adds to them; the second is sent in two
    # steps as the view does (sdBegin from the query, then sdDraw from the prepared day)
    for two_steps in (False, True):
        with qtbot.waitSignal(view.sig_ready, timeout=30_000) as blocker:
            if two_steps:
                view.draw(field_static_script(field_map.raw, None))
                view.draw(field_day_script(field_map, None, static=False))
            else:
                view.draw(field_day_script(field_map, None))
        assert json.loads(blocker.args[0]) == {"tracks": 3, "visits": 3, "flagged": 1}
        assert view.ready and view.current_id == page_id
        assert js(qtbot, view, "Object.keys(window.sdVisitLayers).length") == 3
        n = "(function(){var n = 0; window.sdMap.eachLayer(function(l){ if (l.sdKind === 'visit') n += l.count(); }); return n;})()"
        assert js(qtbot, view, n) == 3
        counts.append(js(qtbot, view, per_layer))
    assert counts[0] == counts[1] > 3
    qtbot.waitUntil(lambda: count_pixels(view, TRACK_RGB) > 150, timeout=10_000)
    # names stay text here too
    text = selected_popup_text(qtbot, view, "v-xss")
    assert XSS_NAME in text
    assert js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content img').length") == 0
    qtbot.wait(300)
    assert js(qtbot, view, "typeof window.sdPwned") == "undefined"
    assert view.page.dialogs == []
    # the heat layer (off until ticked) draws from the day's data
    turn_on_heat_layer(qtbot, view)
    # a new day keeps the user's choice of layers
    with qtbot.waitSignal(view.sig_ready, timeout=30_000):
        view.draw(field_day_script(field_map, None))
    assert js(qtbot, view, HEAT_LAYERS) == 1
    assert not [m for m in view.page.console if "Error" in m], view.page.console
    assert view.blocked == 0, view.interceptor.blocked_urls
    # any other page replaces the shell: the caller must load it again
    view.show_html(build_field_map_html(field_map, None))
    assert view.shell_key is None and not view.shell_loaded


def test_png_export_waits_for_the_drawing_and_says_when_it_never_comes(
    qtbot, view, field_map, tmp_path
):
    """export_png saves a frame showing the drawing (asked before the page is even loaded),
    without its paint mark; a page that never reports drawn gives a clear failure after the
    timeout, and no file."""
    from PySide6.QtGui import QImage

    png = tmp_path / "drawn.png"
    view.show_html(build_field_map_html(field_map, None))
    with qtbot.waitSignal(view.sig_png_saved, timeout=30_000) as blocker:
        view.export_png(png)
    assert blocker.args == [str(png)]
    arr = qimage_rgb(QImage(str(png)))
    assert int((np.abs(arr - np.array(TRACK_RGB)).max(axis=2) <= 30).sum()) > 150
    corner = {tuple(int(v) for v in arr[1, x]) for x in (1, 3, 5)}
    assert not corner & {c for pattern in MapView._MARK_PATTERNS for c in pattern}

    never = tmp_path / "never.png"
    view.show_html("<html><body>no bridge, never ready</body></html>")
    view.PNG_TIMEOUT_MS = 300
    try:
        with qtbot.waitSignal(view.sig_png_failed, timeout=10_000) as blocker:
            view.export_png(never)
    finally:
        del view.PNG_TIMEOUT_MS
    assert blocker.args == [str(never), MapView.PNG_NOT_DRAWN]
    assert not never.exists()


def test_png_export_waits_for_the_tiles(qtbot, view, field_map, tmp_path):
    """Tiles still on their way when the page reports drawn: the PNG waits for them."""
    import threading

    from PySide6.QtGui import QImage

    tiles = TileCache(tmp_path / "tiles.sqlite")
    release = threading.Event()
    with TileServer() as srv:
        provider = custom_provider(srv.url, attribution="loopback test tiles", key="slow")
        view.handler.configure_tiles(tiles, [provider], online=True)
        original_fetch = view.handler._fetch

        def slow_fetch(*args, **kwargs):  # the tiles arrive only once released
            release.wait(20)
            return original_fetch(*args, **kwargs)

        view.handler._fetch = slow_fetch
        try:
            load(qtbot, view, build_field_map_html(field_map, provider))
            png = tmp_path / "tiles.png"
            saved: list[str] = []
            view.sig_png_saved.connect(saved.append)
            view.export_png(png)
            with qtbot.assertNotEmitted(view.sig_png_saved, wait=1_000):
                pass
            assert not saved
            release.set()
            qtbot.waitUntil(lambda: bool(saved), timeout=30_000)
            view.sig_png_saved.disconnect(saved.append)
            arr = qimage_rgb(QImage(str(png)))
            r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
            assert int(((r > 200) & (b > 200) & (g < 130)).sum()) > 100_000  # the tiles
        finally:
            release.set()
            view.handler._fetch = original_fetch
            view.handler.configure_tiles(None, [], online=False)
            tiles.close()


# The kept page makes the tooltips and popups of customers, stops and visits itself, when
# first shown, from the compact rows of field_day_payload: each must be the HTML the
# exported page carries (built in Python, _day_layers / visit_popup_html). A point set is
# one layer drawing every point (``count()``, no marker per point): each point is hovered as the canvas renderer
# does it (the layer finds the point under the mouse, then gets the mouse event); a point
# drawn under another there gets its tooltip from ``sdShowTip``, what that hover calls.
PAGE_TEXTS = """(function () {
  var out = {customer: [], stop: [], unrecorded: [], visit: [], popup: [], built: [],
             hits: 0, tips: 0};
  var map = window.sdMap;
  function tooltips() {  // shown (a closed one fades out: opacity 0, then goes)
    return Array.from(document.querySelectorAll(".leaflet-tooltip")).filter(function (e) {
      return e.style.opacity !== "0";
    }).length;
  }
  map.eachLayer(function (l) {  // (in the order the layers were made)
    if (!l.sdKind) return;
    if (l._tip || l.sdPopup()) out.built.push(l.sdKind);
    for (var i = 0; i < l.count(); i++) {
      var ll = l.latLngAt(i), at = map.latLngToLayerPoint(ll);
      var ev = {latlng: ll, layerPoint: at, containerPoint: map.layerPointToContainerPoint(at)};
      if (!l._containsPoint(at)) return JSON.stringify({error: l.sdKind + " " + i + " not hit"});
      var hit = l._hit;  // (i, or a point drawn over it)
      if (hit === i) out.hits++;
      l.fire(i === 0 ? "mouseover" : "mousemove", ev, true);  // as the renderer fires them
      var t = hit === i ? l._tip : l.sdShowTip(i);
      if (t && t.isOpen() && tooltips() === 1) out.tips++;
      out[l.sdKind].push(t ? t.getContent() : null);
      if (l.sdKind === "visit") {
        l._containsPoint(at);
        l.sdShowTip(-1);
        if (l._hit === i) l.fire("click", ev, true);  // as a click
        else l.sdOpenPopup(i);  // (what the click calls)
        var q = l.sdPopup(), vid = l.rowAt(i)[1];
        out.popup.push([vid, q ? q.getContent() : null, q ? q.isOpen() : false,
                        window.sdPopupHtml(vid)]);
        map.closePopup();
      }
    }
    l.fire("mouseout", {}, true);
    if (tooltips() !== 0) out.built.push("tooltip left open");
  });
  return JSON.stringify(out);
})()"""


def draw_kept_day(qtbot, view: MapView, fm) -> None:
    """Draw ``fm`` on the kept page in the app's three steps (begin, tracks, day)."""
    from core.maps.field_map import (
        build_field_shell_html,
        field_day_script,
        field_static_script,
        field_tracks_script,
    )
    from core.trajectory.field_day import prepare_tracks

    if not view.shell_loaded or view.shell_key != "none":
        with qtbot.waitSignal(view.sig_shell_loaded, timeout=30_000):
            view.show_shell(build_field_shell_html(None), "none")
    with qtbot.waitSignal(view.sig_ready, timeout=30_000):
        view.draw(field_static_script(fm.raw, None))
        view.draw(field_tracks_script(fm.raw, prepare_tracks(fm.raw), None))
        view.draw(field_day_script(fm, None, static=False, tracks=False, request=5))


@pytest.mark.parametrize(
    ("language", "zone"),
    [("en", None), ("zh_CN", None), ("en", "Europe/Berlin")],
)
def test_kept_page_makes_the_exported_pages_tooltips_and_popups(
    qtbot, view, field_map, language, zone
):
    """Tooltips and popups made on demand are exactly the exported page's HTML, in the UI
    language and the period's time zone; a customer named like a script stays text."""
    import dataclasses
    import html

    from core.i18n import set_language
    from core.maps.field_map import _day_layers, esc
    from core.trajectory.coords import WGS84

    set_language(language)
    try:
        raw = field_map.raw
        if zone is not None:  # the same day seen from another zone (and its offset),
            # and a visit with no check-out yet (its time range ends with a dash)
            open_visit = [
                dataclasses.replace(v, visit=dataclasses.replace(v.visit, check_out_at=None))
                if v.visit.id == "v-good-2"
                else v
                for v in raw.visits
            ]
            raw = dataclasses.replace(raw, timezone=zone, visits=open_visit)
        fm = prepare_field_map(raw)  # (the explanations are in the UI language too)
        lay = _day_layers(fm, WGS84)
        draw_kept_day(qtbot, view, fm)
        got = json.loads(js(qtbot, view, PAGE_TEXTS))
    finally:
        set_language("en")
    assert "error" not in got, got
    assert got["built"] == []  # nothing was made before it was needed
    points = len(lay.customers) + len(lay.stops) + len(lay.visits)
    assert got["tips"] == points  # each tooltip was shown, one at a time
    assert got["hits"] >= points - 3  # (a few may lie under another point of their set)
    assert got["customer"] == [tip for _la, _lo, _st, tip, _p in lay.customers]
    assert got["stop"] + got["unrecorded"] == [tip for _la, _lo, _st, tip, _p in lay.stops]
    assert len(got["unrecorded"]) == 1 and "${" not in got["unrecorded"][0]
    assert got["visit"] == [tip for _la, _lo, _st, tip, _p in lay.visits]
    # every visit's popup, opened by a click, is visit_popup_html's (in _day_layers)
    want = [[st["visitId"], popup] for _la, _lo, st, _t, popup in lay.visits]
    assert [[vid, content] for vid, content, _o, _h in got["popup"]] == want
    assert all(is_open for _v, _c, is_open, _h in got["popup"])
    assert all(h == content for _v, content, _o, h in got["popup"])  # sdPopupHtml too
    popups = dict((vid, content) for vid, content, _o, _h in got["popup"])
    if language == "zh_CN":
        assert "<th>客户</th>" in popups["v-good-1"] and "分钟" in popups["v-good-1"]
    else:
        assert "<th>Customer</th>" in popups["v-good-1"]
    hhmm = "09:13–09:31" if zone is None else "02:13–02:31"  # 01:13 UTC, Berlin in winter
    assert hhmm in popups["v-good-1"]
    assert ("09:49–10:25" if zone is None else "<td>02:49––</td>") in popups["v-good-2"]
    # the script-like name is in the popup as escaped text, and the page shows it as text
    assert esc(XSS_NAME) in popups["v-xss"] and XSS_NAME not in popups["v-xss"]
    text = selected_popup_text(qtbot, view, "v-xss")
    assert XSS_NAME in text
    assert html.unescape(esc(fm.visit("v-xss").row.rep_name)) in text
    assert js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content img').length") == 0
    assert js(qtbot, view, "document.querySelectorAll('.leaflet-tooltip img').length") == 0
    qtbot.wait(300)  # an onerror handler would have fired by now
    assert js(qtbot, view, "typeof window.sdPwned") == "undefined"
    assert view.page.dialogs == []
    assert not [m for m in view.page.console if "Error" in m], view.page.console


def test_kept_page_click_opens_the_popup_and_reaches_python(qtbot, view, field_map):
    """A real mouse click on a visit of the kept page: the popup (made then) shows the
    visit, and Python is told which visit it was."""
    draw_kept_day(qtbot, view, field_map)
    js(qtbot, view, "window.sdMap.closePopup(); 1")
    pos = js(
        qtbot,
        view,
        "(function(){var l = window.sdVisitLayers['v-good-2'];"
        "var p = window.sdMap.latLngToContainerPoint(l.getLatLng()); return p.x + ',' + p.y;})()",
    )
    x, y = (round(float(c)) for c in pos.split(","))
    target = view.view.focusProxy() or view.view
    with qtbot.waitSignal(view.sig_visit_clicked, timeout=10_000) as blocker:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, pos=QPoint(x, y))
    assert blocker.args == ["v-good-2"]
    qtbot.waitUntil(
        lambda: js(qtbot, view, "document.querySelectorAll('.leaflet-popup-content').length") == 1,
        timeout=5_000,
    )
    text = js(qtbot, view, "document.querySelector('.leaflet-popup-content').textContent")
    assert "联华超市 (B)" in text and "张伟" in text and "09:49–10:25" in text
    assert view.blocked == 0


def test_kept_page_escapes_text_as_python_does(qtbot, view, field_map):
    """The page's esc (tooltips and popups made on the page) is core.maps.field_map.esc."""
    from core.maps.field_map import esc

    draw_kept_day(qtbot, view, field_map)
    probes = [XSS_NAME, "${window.sdPwned=1}", "a`b\\c$d", "\"quoted\" & 'single'",
              "</script><script>alert(1)</script>", "&amp; already", "上海 · 便利店", ""]  # fmt: skip
    got = json.loads(js(qtbot, view, f"JSON.stringify({json.dumps(probes)}.map(window.sdEsc))"))
    assert got == [esc(p) for p in probes]


POINT_AT = """(function (kind) {  // centres a point of a set lying alone (nothing drawn over it)
  var found = null, map = window.sdMap;
  map.eachLayer(function (l) {
    if (found || l.sdKind !== kind || !l.count) return;
    for (var i = 0; i < l.count() && !found; i++) {
      map.setView(l.latLngAt(i), 17, {animate: false});
      var at = map.latLngToLayerPoint(l.latLngAt(i)), top = null;
      // what the canvas renderer finds there: the last layer drawn that has a point there
      for (var o = l._renderer._drawFirst; o; o = o.next) {
        if (o.layer.options.interactive && o.layer._containsPoint(at)) top = o.layer;
      }
      l._containsPoint(at);
      var p = map.layerPointToContainerPoint(at);
      if (top === l && l._hit === i) found = [Math.round(p.x), Math.round(p.y), i];
    }
  });
  return JSON.stringify(found);
})"""


def hover(qtbot, view: MapView, x: int, y: int, attempts: int = 5) -> str:
    """Moves the real mouse to (x, y) on the page; the tooltip shown there (HTML).

    Leaflet's canvas renderer drops a mouse move that comes within 32 ms of the last one
    it handled (the throttle is lifted by a setTimeout, so a stalled renderer on a busy
    machine can drop a move made later than that): the mouse goes away and back again,
    a few times if need be, until the tooltip shows.
    """
    target = view.view.focusProxy() or view.view
    shown = (
        "(function(){var e = Array.from(document.querySelectorAll('.leaflet-tooltip'))"
        ".filter(function(e){ return e.style.opacity !== '0'; });"
        " return e.length === 1 ? e[0].innerHTML : '';})()"
    )
    for attempt in range(attempts):
        # away (each time elsewhere: Qt sends no move to where the mouse already is)
        QTest.mouseMove(target, QPoint(x - 30 - 3 * attempt, y - 30))
        try:
            qtbot.waitUntil(lambda: js(qtbot, view, shown) == "", timeout=2_000)
        except qtbot.TimeoutError:
            continue  # the move away was dropped: a tooltip is still open
        qtbot.wait(60)  # (the renderer looks at the mouse at most every 32 ms)
        QTest.mouseMove(target, QPoint(x, y))
        try:
            qtbot.waitUntil(lambda: js(qtbot, view, shown) != "", timeout=2_000)
        except qtbot.TimeoutError:
            continue  # the move back was dropped
        return js(qtbot, view, shown)
    pytest.fail(f"no tooltip shown at ({x}, {y}) after {attempts} mouse moves away and back")


def toggle_layer(qtbot, view: MapView, label: str) -> None:
    """Clicks ``label``'s box in the page's layer control (as the user ticks it)."""
    js(qtbot, view,
       "Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
       f".filter(function(l){{ return l.textContent.trim() === {json.dumps(label)}; }})"
       ".forEach(function(l){ l.querySelector('input').click(); }); 1")  # fmt: skip


def test_kept_page_hover_shows_the_points_tooltip(qtbot, view, field_map):
    """A real mouse over a point shows its tooltip (the point found under the mouse); the
    layer control hides and shows a point set: the customer lies under a stop and a track,
    so those are hidden to reach it."""
    import html

    from core.maps.field_map import _day_layers
    from core.trajectory.coords import WGS84

    draw_kept_day(qtbot, view, field_map)
    js(qtbot, view, "window.sdMap.closePopup(); 1")
    lay = _day_layers(field_map, WGS84)
    stops = [tip for _la, _lo, _st, tip, _p in lay.stops]
    n_stops = sum(len(t.stops) for t in field_map.tracks)
    cases = [  # kind, its tooltips, the layers over it (a layer ticked again is drawn last)
        ("visit", [tip for _la, _lo, _st, tip, _p in lay.visits], []),
        ("unrecorded", stops[n_stops:], []),
        ("stop", stops[:n_stops], []),
        ("customer", [tip for _la, _lo, _st, tip, _p in lay.customers], ["Tracks", "Stops"]),
    ]
    for kind, want, over in cases:
        if over:
            assert js(qtbot, view, f"{POINT_AT}({json.dumps(kind)})") == "null", kind
        for label in over:
            toggle_layer(qtbot, view, label)
        found = json.loads(js(qtbot, view, f"{POINT_AT}({json.dumps(kind)})"))
        assert found is not None, kind
        x, y, i = found
        got = hover(qtbot, view, x, y)
        # (the page's HTML as the browser gives it back: entities may be written otherwise)
        assert html.unescape(got) == html.unescape(want[i]), kind
        for label in over[::-1]:
            toggle_layer(qtbot, view, label)
        if over:
            assert js(qtbot, view, f"{POINT_AT}({json.dumps(kind)})") == "null", kind
    assert view.blocked == 0
