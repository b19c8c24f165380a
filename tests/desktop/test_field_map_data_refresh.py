"""The open field map follows data that arrives (a sync, another screen's import) without
moving under the user: the view and the selected visit stay; unrelated changes do nothing;
a hidden map redraws when shown; a period the user asks for is still fitted."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from core.mutations import Changes
from core.trajectory.gpx import parse_gpx, queue_gpx
from tests.conftest import DEMO_TODAY
from tests.desktop.field_map_helpers import supervisor_map_context

pytestmark = [pytest.mark.gui, pytest.mark.webengine]

DAY = DEMO_TODAY - dt.timedelta(days=1)  # inside the demo's 7 days of GPS


@pytest.fixture(scope="module")
def ctx(demo_db_template, tmp_path_factory, qapp):
    with supervisor_map_context(demo_db_template, tmp_path_factory.mktemp("fmrefresh"), DAY) as c:
        yield c


@pytest.fixture(scope="module")
def screen(ctx, qapp):
    from desktop.views.field_map import FieldMapView

    v = FieldMapView(ctx)
    v.resize(1300, 850)
    v.show()
    yield v
    v.close()
    v.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def js(qtbot, view, script: str):
    box: list = []
    view.map_view.run_js(script, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    return box[0]


def map_view_state(qtbot, view) -> tuple[float, float, int]:
    text = js(
        qtbot,
        view,
        "(function(){var c = window.sdMap.getCenter();"
        "return [c.lat, c.lng, window.sdMap.getZoom()].join(',');})()",
    )
    lat, lon, zoom = (float(x) for x in str(text).split(","))
    return round(lat, 6), round(lon, 6), int(zoom)


def pan_and_zoom(qtbot, view, lat: float, lon: float, zoom: int) -> tuple[float, float, int]:
    """Move the map as a user would (drag + wheel), through the page."""
    js(qtbot, view, f"window.sdMap.setView([{lat}, {lon}], {zoom}, {{animate: false}}); 1")
    return map_view_state(qtbot, view)


def raw_points(view, rep_id: int) -> int:
    return len(view.fm.raw.gps.get(rep_id, ()))


def add_points(qtbot, ctx, view, rep_id: int, n: int, minutes_after: int) -> Changes:
    """Write ``n`` new fixes after the rep's last one on the shown day (real GPX import on
    the DB worker, as another desktop's import arrives here); returns its Changes."""
    fa = view.fm.raw.gps[rep_id]
    last = dt.datetime.fromtimestamp(int(fa.t_us[-1]) / 1e6, dt.UTC)
    lat, lon = float(fa.lat[-1]), float(fa.lon[-1])
    pts = "".join(
        f'<trkpt lat="{lat + 0.0004 * i:.6f}" lon="{lon + 0.0004 * i:.6f}">'
        f"<time>{(last + dt.timedelta(minutes=minutes_after + i)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        "</time></trkpt>"
        for i in range(n)
    )
    parsed = parse_gpx(
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><trkseg>{pts}</trkseg></trk></gpx>"
    )
    box: list = []
    ctx.db.submit(queue_gpx, rep_id, parsed, ctx.actor, ctx.now(), on_result=box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    assert box[0].inserted == n
    return box[0].changes


def selected_visit(view) -> str | None:
    rows = view.table.view.selectionModel().selectedRows()
    if not rows:
        return None
    return view.table.model.row(rows[0].row())["id"]


def test_new_points_redraw_the_open_map_where_the_user_left_it(qtbot, screen, ctx):
    view = screen
    qtbot.waitUntil(lambda: view.map_view.ready and view.fm is not None, timeout=90_000)
    assert view.table.model.rowCount() > 0
    rep_id = next(r for r in view.selected_rep_ids() if raw_points(view, r) > 10)
    before = raw_points(view, rep_id)

    # the user picks a visit in the list (the map pans to it), then moves the map
    view.table.view.selectRow(0)
    visit_id = selected_visit(view)
    assert visit_id is not None and view.selected_visit_id == visit_id
    details = view.details.text()
    lat, lon, zoom = map_view_state(qtbot, view)
    where = pan_and_zoom(qtbot, view, lat + 0.013, lon - 0.021, zoom + 1)

    # a sync brings the points of another desktop's import: several changes, one redraw
    changes = add_points(qtbot, ctx, view, rep_id, 5, 3)
    assert changes.touches("gps_points")
    token = view._token
    ready: list[float] = []
    view.sig_map_ready.connect(ready.append)
    try:
        with qtbot.waitSignal(view.sig_map_ready, timeout=60_000):
            ctx.sig_data_changed.emit(changes)
            ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("visits"))
            ctx.sig_data_changed.emit(changes)
        qtbot.wait(800)  # (a second redraw would have started by now)
    finally:
        view.sig_map_ready.disconnect(ready.append)
    assert view._token == token + 1 and len(ready) == 1

    assert raw_points(view, rep_id) == before + 5  # the drawn day has the new points
    assert map_view_state(qtbot, view) == where  # and the map did not move
    qtbot.waitUntil(lambda: selected_visit(view) == visit_id, timeout=5_000)
    assert view.selected_visit_id == visit_id and view.details.text() == details


def test_a_change_to_an_unrelated_table_does_not_redraw(qtbot, screen, ctx):
    view = screen
    qtbot.waitUntil(lambda: view.map_view.ready, timeout=60_000)
    token = view._token
    with qtbot.assertNotEmitted(view.sig_map_ready, wait=1_000):
        ctx.sig_data_changed.emit(Changes().add("shifts", 1).add("hourly_traffic"))
        ctx.sig_data_changed.emit(Changes().add("sync"))
    assert view._token == token


def test_a_hidden_map_redraws_when_shown_again(qtbot, screen, ctx):
    view = screen
    qtbot.waitUntil(lambda: view.map_view.ready, timeout=60_000)
    rep_id = next(r for r in view.selected_rep_ids() if raw_points(view, r) > 10)
    before = raw_points(view, rep_id)
    view.hide()
    token = view._token
    ctx.sig_data_changed.emit(add_points(qtbot, ctx, view, rep_id, 3, 30))
    qtbot.wait(700)
    assert view._token == token  # nothing is queried or drawn for a hidden screen
    with qtbot.waitSignal(view.sig_map_ready, timeout=60_000):
        view.show()
    assert view._token == token + 1
    assert raw_points(view, rep_id) == before + 3


def test_a_period_the_user_asks_for_is_fitted_even_if_data_arrives_meanwhile(qtbot, screen):
    view = screen
    qtbot.waitUntil(lambda: view.map_view.ready, timeout=60_000)
    fitted = map_view_state(qtbot, view)
    elsewhere = pan_and_zoom(qtbot, view, 45.0, 90.0, 5)
    assert elsewhere != fitted
    with qtbot.waitSignal(view.sig_map_ready, timeout=60_000):
        view.refresh()  # the user asks (as the benchmark does): fit the period
        view.refresh(keep_view=True)  # data arrives before it is drawn
    assert map_view_state(qtbot, view) == fitted


def test_reps_arriving_by_sync_join_the_rep_list_and_the_users_ticks_stay(qtbot, screen, ctx):
    """A rep added on the server reaches the open map's rep list with the sync, ticked when
    every rep was shown; a rep the user had unticked stays unticked; a removed rep goes."""
    from core.models import Rep

    view = screen
    qtbot.waitUntil(lambda: view.fm is not None and view.rep_list.count() > 1, timeout=60_000)
    region_id = view.region_id()
    codes = [view.rep_list.item(i).text() for i in range(view.rep_list.count())]

    def write(fn) -> None:
        box: list = []
        ctx.db.submit(fn, on_result=box.append)
        qtbot.waitUntil(lambda: bool(box), timeout=10_000)

    def add_rep(code: str):
        def fn(session) -> None:
            session.add(
                Rep(
                    region_id=region_id,
                    code=code,
                    name=f"新代表 {code}",
                    home_lat=31.2,
                    home_lon=121.4,
                )
            )
            session.commit()

        write(fn)
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("reps"))

    def ticks() -> dict[str, bool]:
        items = (view.rep_list.item(i) for i in range(view.rep_list.count()))
        return {it.text().split()[0]: it.checkState().value == 2 for it in items}

    try:
        assert view.all_reps.isChecked()
        add_rep("ZZ901")
        qtbot.waitUntil(lambda: "ZZ901" in ticks(), timeout=10_000)
        assert all(ticks().values()) and view.all_reps.isChecked()

        first = codes[0].split()[0]
        view.rep_list.item(0).setCheckState(view.rep_list.item(0).checkState().Unchecked)
        assert not view.all_reps.isChecked()
        add_rep("ZZ902")
        qtbot.waitUntil(lambda: "ZZ902" in ticks(), timeout=10_000)
        t = ticks()
        assert t[first] is False and t["ZZ902"] is False and t["ZZ901"] is True
        assert sum(t.values()) == len(t) - 2
    finally:

        def drop(session) -> None:
            session.query(Rep).filter(Rep.code.in_(["ZZ901", "ZZ902"])).delete()
            session.commit()

        write(drop)
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("reps"))
    qtbot.waitUntil(lambda: "ZZ901" not in ticks() and "ZZ902" not in ticks(), timeout=10_000)
    assert ticks()[first] is False  # (the user's choice outlives the change)


def test_a_rep_renamed_by_sync_is_renamed_in_the_rep_list(qtbot, screen, ctx):
    """The same reps in the same order, one with a new name (changed on the server): the
    list shows the new name (it compared only the reps' ids, so kept the old one)."""
    from core.models import Rep

    view = screen
    qtbot.waitUntil(lambda: view.fm is not None and view.rep_list.count() > 1, timeout=60_000)
    rep_id = view.rep_list.item(0).data(256)  # Qt.ItemDataRole.UserRole
    old = view.rep_list.item(0).text()

    def rename(name: str) -> None:
        box: list = []

        def fn(session) -> None:
            session.get(Rep, rep_id).name = name

        ctx.db.submit(fn, on_result=box.append)
        qtbot.waitUntil(lambda: bool(box), timeout=10_000)
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("reps"))

    old_name = old.split(maxsplit=1)[1]
    try:
        rename("改名代表")
        qtbot.waitUntil(lambda: view.rep_list.item(0).text().endswith("改名代表"), timeout=10_000)
    finally:
        rename(old_name)
    qtbot.waitUntil(lambda: view.rep_list.item(0).text() == old, timeout=10_000)


def test_column_widths_are_fitted_once_the_map_is_ready(qtbot, screen):
    """Measuring every name for the table's column widths takes milliseconds on the UI
    thread: it waits for the page's ready instead of holding the ready message up."""
    view = screen
    order: list[str] = []
    fit = view.table.view.resizeColumnsToContents
    view.table.view.resizeColumnsToContents = lambda: (order.append("widths"), fit())[1]

    def ready(_seconds: float) -> None:
        order.append("ready")

    view.sig_map_ready.connect(ready)
    try:
        for day in (DAY - dt.timedelta(days=1), DAY):
            order.clear()
            with qtbot.waitSignal(view.sig_map_ready, timeout=60_000):
                view.set_period(day)
            qtbot.waitUntil(lambda: "widths" in order, timeout=10_000)
            assert order == ["ready", "widths"]
            assert view.table.model.rowCount() > 0
    finally:
        view.sig_map_ready.disconnect(ready)
        del view.table.view.resizeColumnsToContents
