"""Traffic screen as a store manager uses it: hover, drill into a day, import good and bad CSVs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog
from sqlalchemy import func, select

from core.demo import demo_truth
from core.models import HourlyTraffic, Outbox, Store, User
from core.mutations import Changes, actor_for_user
from core.timeutil import local_day_bounds
from tests.conftest import DEMO_TODAY

pytestmark = pytest.mark.gui


@pytest.fixture
def ctx(demo_cache, qapp):
    """The manager of the demo store with the latest planted counter outage, as the shell builds it."""
    from desktop.context import AppContext, Selection
    from desktop.theme import install_fonts, install_theme

    install_theme(qapp)
    install_fonts(qapp)
    latest = max(demo_truth(demo_cache.engine)["outages"], key=lambda o: o[1])
    with demo_cache.session() as s:
        store = s.get(Store, latest[0])
        user = s.scalars(select(User).where(User.username == f"mgr_{store.code.lower()}")).one()
        actor = actor_for_user(s, user)
        store_id, region_id = store.id, store.region_id
    assert actor.can_store(store_id) and actor.role == "store_manager"
    c = AppContext(demo_cache, actor, DEMO_TODAY, Selection(store_id, region_id, DEMO_TODAY))
    yield c
    c.shutdown()


def _code(ctx) -> str:
    with ctx.cache.session() as s:
        return s.get(Store, ctx.selection.store_id).code


def _other_code(ctx) -> str:
    with ctx.cache.session() as s:
        return s.scalars(
            select(Store.code).where(Store.id != ctx.selection.store_id).order_by(Store.code)
        ).first()


@pytest.fixture
def view(ctx, qtbot):
    from desktop.views.traffic import TrafficView

    v = TrafficView(ctx)
    qtbot.addWidget(v)
    v.resize(1400, 1900)
    v.show()
    qtbot.waitUntil(lambda: v.overview is not None, timeout=30_000)
    return v


def _mouse_to(qtbot, widget, pos: QPoint) -> None:
    QTest.mouseMove(widget, pos)
    qtbot.wait(20)


def test_cards_grid_and_hover_show_values(view, qtbot) -> None:
    ov = view.overview
    assert view.title_label.text().startswith(ov.store.code)
    assert view.cards["visitors"].value_label.text() == f"{ov.week.current.visitors:,}"
    assert "%" in view.cards["conversion"].value_label.text()
    assert view.cards["atv"].value_label.text().startswith("¥")
    assert "vs last week" in view.cards["visitors"].change_label.text()
    assert "4 weeks earlier" in view.reference_label.text()  # 13 weeks: no year-ago data
    assert view.power_table.model.rowCount() == 5
    assert view.power_table.model.row(0) == ov.power[0]
    view.power_by.setCurrentIndex(1)  # by sales
    assert view.power_table.model.row(0) == ov.power_by_sales[0]
    assert view.peers.model.rowCount() >= 1

    grid = view.heat
    assert len(grid.days) == 28 and grid.days[-1] == DEMO_TODAY
    j = grid.hours.index(18)
    _mouse_to(qtbot, grid.plot.viewport(), grid.cell_center_in_view(27, j))
    text = grid.hover_label.text()
    v = ov.grid.visitors[27][j]
    assert DEMO_TODAY.isoformat() in text and "18:00" in text
    assert f"{v} visitors" in text and "transactions" in text

    # The drilled day's hours chart shows values on hover too.
    hc = view.hours_chart
    assert hc.points and hc.day == DEMO_TODAY
    p = hc.points[len(hc.points) // 2]
    vb = hc.plot.getPlotItem().vb
    pos = hc.plot.mapFromScene(vb.mapViewToScene(_pt(p.hour, max(p.visitors, 1) / 2)))
    _mouse_to(qtbot, hc.plot.viewport(), pos)
    assert f"{p.hour:02d}:00 — {p.visitors} visitors" in hc.hover_label.text()


def test_trend_hover_and_click(view, qtbot) -> None:
    pts = view.overview.trend.points
    i = len(pts) - 8  # a week before the selected day
    p = pts[i]
    chart = view.trend
    vb = chart.plot.getPlotItem().vb
    pos = chart.plot.mapFromScene(vb.mapViewToScene(_pt(i, p.kpis.visitors)))
    _mouse_to(qtbot, chart.plot.viewport(), pos)
    text = chart.hover_label.text()
    assert p.day.isoformat() in text
    assert f"Visitors: {p.kpis.visitors:,}" in text
    assert f"Same day last week: {p.wow_visitors:,}" in text
    with qtbot.waitSignal(view.sig_drilled, timeout=10_000) as blocker:
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args[0] == p.day
    assert p.day.isoformat() in view.hours_chart.title.text()


def _pt(x: float, y: float):
    import pyqtgraph as pg

    return pg.Point(x, y)


def test_click_a_day_drills_into_its_hours(view, qtbot) -> None:
    grid = view.heat
    target = grid.days[20]
    with qtbot.waitSignal(view.sig_drilled, timeout=10_000) as blocker:
        qtbot.mouseClick(
            grid.plot.viewport(), Qt.MouseButton.LeftButton, pos=grid.cell_center_in_view(20, 3)
        )
    assert blocker.args[0] == target
    assert target.isoformat() in view.hours_chart.title.text()
    shown = {p.hour: p.visitors for p in view.hours_chart.points}
    expected = {
        h: v
        for h, v in zip(grid.hours, view.overview.grid.visitors[20], strict=True)
        if v is not None
    }
    assert shown == expected
    assert grid.selection.isVisible() and grid.selection.rect().x() == 20


def test_outages_are_marked_with_their_reason(view) -> None:
    ov = view.overview
    assert ov.outages, "the data has counter outages in the last 4 weeks"
    o = ov.outages[-1]
    m = view.outage_table.model
    texts = [m.data(m.index(0, c)) for c in range(3)]
    assert o.day.isoformat() in texts[0] and texts[1] == f"{o.hour:02d}:00"
    assert texts[2] == o.describe()
    assert len(view.heat.marks.data) == len(ov.grid.outages)
    assert len(view.outage_markers.data) == len(
        {x.day for x in ov.outages if x.day >= ov.trend.points[0].day}
    )


def _counts(cache, store_id: int) -> tuple[int, int]:
    with cache.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Outbox)),
            s.scalar(
                select(func.count())
                .select_from(HourlyTraffic)
                .where(HourlyTraffic.store_id == store_id)
            ),
        )


def _import(view, qtbot, monkeypatch, path: Path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(view.sig_import_done, timeout=20_000) as blocker:
        qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_import_good_csv_rows_appear_and_outbox_grows(
    view, ctx, qtbot, monkeypatch, tmp_path
) -> None:
    store_id = ctx.selection.store_id
    day = DEMO_TODAY - dt.timedelta(days=1)
    code = _code(ctx)
    path = tmp_path / "counter.csv"
    path.write_bytes(
        (
            "门店编码,日期,小时,客流,交易笔数,销售额(元),件数\r\n"
            f"{code},{day.isoformat()},8,17,3,456.70,5\r\n"
            f"{code},{day.isoformat()},23,9,2,88.00,2\r\n"
        ).encode("gbk")
    )
    outbox_before, rows_before = _counts(ctx.cache, store_id)
    with qtbot.waitSignal(view.sig_loaded, timeout=30_000):
        result = _import(view, qtbot, monkeypatch, path)
    assert result.ok and result.rows_in_file == 2 and result.mutations == 1
    dlg = view.import_dialog
    assert dlg is not None and dlg.isVisible()
    assert (
        "2 rows read" in dlg.summary.text() and "1 change(s) queued for sync" in dlg.summary.text()
    )
    outbox_after, rows_after = _counts(ctx.cache, store_id)
    assert outbox_after == outbox_before + 1
    assert rows_after >= rows_before + 1  # 08:00 / 23:00 may already exist in the data
    # The new hours show in the grid after the automatic reload.
    grid = view.overview.grid
    i = grid.days.index(day)
    assert grid.visitors[i][grid.hours.index(8)] == 17
    assert grid.visitors[i][grid.hours.index(23)] == 9
    dlg.close()

    # Importing the same file again changes nothing and queues nothing.
    again = _import(view, qtbot, monkeypatch, path)
    assert again.ok and again.mutations == 0 and again.unchanged == 2
    assert _counts(ctx.cache, store_id) == (outbox_after, rows_after)
    assert "0 change(s) queued" in view.import_dialog.summary.text()


def test_import_bad_csv_shows_row_errors_and_changes_nothing(
    view, ctx, qtbot, monkeypatch, tmp_path
) -> None:
    store_id = ctx.selection.store_id
    day = DEMO_TODAY - dt.timedelta(days=1)
    code, other = _code(ctx), _other_code(ctx)
    path = tmp_path / "bad.csv"
    path.write_text(
        "store_code,date,hour,visitors,transactions,sales_yuan\n"
        f"{code},{day.isoformat()},10,40,8,100\n"
        f"{code},{day.isoformat()},25,40,8,100\n"
        f"{other},{day.isoformat()},10,40,8,100\n"
        f"{code},2026-02-30,10,x,8,100\n",
        encoding="utf-8-sig",
    )
    before = _counts(ctx.cache, store_id)
    result = _import(view, qtbot, monkeypatch, path)
    assert not result.ok
    dlg = view.import_dialog
    assert "Nothing was imported" in dlg.summary.text()
    rows = dlg.error_rows()
    assert rows == [
        ("3", "hour", "“25” is not an hour from 0 to 23."),
        ("4", "store_code", f"Store “{other}” is not one of your stores."),
        ("5", "date", "“2026-02-30” is not a date (use YYYY-MM-DD)."),
        ("5", "visitors", "“x” is not a whole number of 0 or more."),
    ]
    assert _counts(ctx.cache, store_id) == before


def test_screenshot_on_the_demo_region(view, qtbot, artifacts) -> None:
    qtbot.wait(50)
    view.grab().save(str(artifacts / "traffic.png"))
    assert (artifacts / "traffic.png").stat().st_size > 10_000


def test_region_mode_lists_stores_and_drills_into_one(ctx, qtbot) -> None:
    from desktop.views.traffic import TrafficView

    ctx.selection.store_id = None  # a supervisor's "All stores"
    v = TrafficView(ctx)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.pages.currentIndex() == 1 and bool(v.region_rows), timeout=30_000)
    assert v.region_table.model.rowCount() == len(v.region_rows)
    with qtbot.waitSignal(v.sig_loaded, timeout=30_000):
        v._on_region_store_activated(v.region_rows[0])
    assert v.pages.currentIndex() == 0


def test_chinese_screen(ctx, qtbot, artifacts) -> None:
    from core import i18n
    from desktop.views.traffic import TrafficView

    try:
        i18n.set_language("zh_CN")
        v = TrafficView(ctx)
        qtbot.addWidget(v)
        v.resize(1400, 1900)
        v.show()
        qtbot.waitUntil(lambda: v.overview is not None, timeout=30_000)
        assert v.cards["visitors"].title_label.text() == "客流"
        assert v.import_button.text() == "导入 CSV…"
        assert "4 周前" in v.reference_label.text()
        m = v.outage_table.model
        assert "计数器" in m.data(m.index(0, 2))
        assert m.headerData(2, Qt.Orientation.Horizontal) == "剔除原因"
        v.grab().save(str(artifacts / "traffic-zh.png"))
    finally:
        i18n.set_language("en")


def test_holidays_are_marked_on_the_trend(ctx, qtbot) -> None:
    from desktop.views.traffic import TrafficView

    ctx.selection.day = dt.date(2026, 10, 20)  # six weeks back reach National Day
    v = TrafficView(ctx)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.overview is not None, timeout=30_000)
    holidays = [p for p in v.overview.trend.points if p.holiday]
    assert holidays, "the demo has National Day in early October"
    runs = [
        p
        for i, p in enumerate(v.overview.trend.points)
        if p.holiday and (i == 0 or v.overview.trend.points[i - 1].holiday != p.holiday)
    ]
    assert len(v.holiday_lines) == len(runs) < len(holidays)  # one line per run
    assert v.holiday_lines[0].label.toPlainText() == holidays[0].holiday
    # The reference overlay is drawn wherever the history reaches back 4 weeks.
    assert v.overview.trend.basis.value == "last_period"
    assert v.overview.trend.points[0].ref_visitors is None
    assert v.overview.trend.points[-1].ref_visitors is not None


def test_a_sync_keeps_the_day_the_user_drilled_into(view, qtbot, demo_cache) -> None:
    """A pull of hourly_traffic reloads the screen; the hours chart stays on the clicked day
    and shows its fresh figures, and the heat grid keeps that day selected."""
    grid = view.heat
    target = grid.days[20]
    assert target != view.overview.day
    with qtbot.waitSignal(view.sig_drilled, timeout=10_000):
        qtbot.mouseClick(
            grid.plot.viewport(), Qt.MouseButton.LeftButton, pos=grid.cell_center_in_view(20, 3)
        )
    before = {p.hour: p.visitors for p in view.hours_chart.points}
    # The counter's figures for that day were corrected on the server and pulled.
    store_id = view.ctx.selection.store_id
    with demo_cache.session() as s:
        lo, hi = local_day_bounds(target, s.get(Store, store_id).timezone)
        for row in s.scalars(
            select(HourlyTraffic).where(
                HourlyTraffic.store_id == store_id,
                HourlyTraffic.hour_start >= lo,
                HourlyTraffic.hour_start < hi,
            )
        ):
            row.visitors += 7
    pulled = Changes().add("sync").add("pulled").add("hourly_traffic")
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        view.ctx.sig_data_changed.emit(pulled)
    qtbot.waitUntil(lambda: view.hours_chart.points and view.hours_chart.day == target)
    assert target.isoformat() in view.hours_chart.title.text()
    assert {p.hour: p.visitors for p in view.hours_chart.points} == {
        h: v + 7 for h, v in before.items()
    }
    assert grid.selection.isVisible() and grid.selection.rect().x() == 20
    # Choosing another day in the app's selection goes back to that day's own drill.
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        view.ctx.selection.set(day=DEMO_TODAY - dt.timedelta(days=1))
    assert view.hours_chart.day == view.overview.day == DEMO_TODAY - dt.timedelta(days=1)
