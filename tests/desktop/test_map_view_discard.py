"""A hidden map gives its renderer process back and comes back as it was when shown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from desktop.widgets.map_view import MapView, register_url_schemes

pytestmark = [pytest.mark.gui, pytest.mark.webengine]

# A tiny stand-in for the field map shell: sdBegin starts a drawing, sdDraw completes it
# and reports ready over the bridge (the same protocol MapView.draw serves).
SHELL = """<!doctype html><html><head>
<script src="qrc:///qtwebchannel/qwebchannel.js"></script></head><body><div id="out"></div>
<script>
var ch = new Promise(function (ok) {
  new QWebChannel(qt.webChannelTransport, function (c) { ok(c.objects.bridge); });
});
var out = document.getElementById("out");
window.sdBegin = function (s) { ch.then(function () { out.textContent = s; }); };
window.sdDraw = function (d) {
  ch.then(function (b) { out.textContent += "|" + d; b.pageReady(JSON.stringify({d: d})); });
};
</script></body></html>"""


@pytest.fixture
def view(qapp, qtbot):
    register_url_schemes()
    v = MapView()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    with qtbot.waitSignal(v.sig_shell_loaded, timeout=30_000):
        v.show_shell(SHELL, "test")
    yield v
    v.release_page()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def text(qtbot, view: MapView) -> str:
    box: list = []
    view.run_js("document.getElementById('out').textContent", box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    return box[0]


def draw(view: MapView, begin: str, day: str) -> None:
    view.draw(f"window.sdBegin({begin!r})")
    view.draw(f"window.sdDraw({day!r})")


def test_hidden_map_is_discarded_and_redrawn_quietly_when_shown(view, qtbot) -> None:
    with qtbot.waitSignal(view.sig_ready, timeout=30_000):
        draw(view, "a", "x")
    draw(view, "b", "y")  # a new drawing replaces the first (only this one is replayed)
    qtbot.waitUntil(lambda: text(qtbot, view) == "b|y", timeout=10_000)
    assert view.page.renderProcessPid() > 0

    view.hide()
    qtbot.waitUntil(lambda: view.discarded, timeout=5_000)
    qtbot.waitUntil(lambda: view.page.renderProcessPid() == 0, timeout=10_000)

    with qtbot.assertNotEmitted(view.sig_ready, wait=1_500):
        view.show()
        qtbot.waitUntil(lambda: not view.discarded and view.ready, timeout=30_000)
        qtbot.waitUntil(lambda: text(qtbot, view) == "b|y", timeout=30_000)
    assert view.page.renderProcessPid() > 0


def test_drawing_asked_while_discarded_is_drawn_and_reported_when_shown(view, qtbot) -> None:
    with qtbot.waitSignal(view.sig_ready, timeout=30_000):
        draw(view, "a", "x")
    view.hide()
    qtbot.waitUntil(lambda: view.discarded, timeout=5_000)
    draw(view, "c", "z")
    assert not view.ready
    with qtbot.waitSignal(view.sig_ready, timeout=30_000) as ready:
        view.show()
    assert ready.args[0] == '{"d":"z"}'
    assert text(qtbot, view) == "c|z"


def test_a_killed_renderer_is_replaced_and_the_drawing_comes_back(view, qtbot) -> None:
    """An out-of-memory kill or crash of the renderer must not leave the kept page dead
    (every later drawing would wait for a ready that never comes)."""
    import os
    import signal

    with qtbot.waitSignal(view.sig_ready, timeout=30_000):
        draw(view, "a", "x")
    pid = view.page.renderProcessPid()
    assert pid > 0
    with qtbot.assertNotEmitted(view.sig_ready, wait=1_500):  # the same drawing: quiet
        os.kill(pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: view.page.renderProcessPid() not in (0, pid), timeout=30_000)
        qtbot.waitUntil(lambda: text(qtbot, view) == "a|x", timeout=30_000)
    with qtbot.waitSignal(view.sig_ready, timeout=30_000):  # and the page draws again
        draw(view, "b", "y")
    assert text(qtbot, view) == "b|y"
