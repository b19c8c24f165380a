"""Schedule screen on the demo region, driven as a store manager would: mouse and keys."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from sqlalchemy import select

from core import i18n
from core.models import Outbox, Shift, Staff, Store, User
from core.mutations import Changes, actor_for_user
from core.scheduling.rules import StaffInfo
from tests.conftest import DEMO_TODAY

pytestmark = pytest.mark.gui

THIS_WEEK = DEMO_TODAY - dt.timedelta(days=DEMO_TODAY.weekday())  # 2026-11-23, published
NEXT_WEEK = THIS_WEEK + dt.timedelta(days=7)  # the demo's draft week
EMPTY_WEEK = THIS_WEEK + dt.timedelta(days=14)  # nothing planned yet


@pytest.fixture
def make_view(demo_cache, qtbot, qapp):
    """Factory: the schedule screen for SH001's manager, on a given week, fully loaded."""
    from desktop.context import AppContext, Selection
    from desktop.theme import install_fonts, install_theme
    from desktop.views.schedule import ScheduleView

    install_theme(qapp)
    install_fonts(qapp)
    contexts = []

    def factory(week: dt.date = THIS_WEEK, *, size=(1500, 860)):
        with demo_cache.session() as s:
            user = s.scalars(select(User).where(User.username == "mgr_sh001")).one()
            actor = actor_for_user(s, user)
            store = s.get(Store, min(actor.store_ids))
            region_id = store.region_id
        ctx = AppContext(demo_cache, actor, DEMO_TODAY, Selection(store.id, region_id, week))
        contexts.append(ctx)
        view = ScheduleView(ctx)
        qtbot.addWidget(view)
        view.resize(*size)
        view.show()
        qtbot.waitUntil(
            lambda: view.week is not None and view.week.week_start == week, timeout=20_000
        )
        return view

    yield factory
    for ctx in contexts:
        ctx.shutdown()


def _pt(p: QPointF) -> QPoint:
    return QPoint(round(p.x()), round(p.y()))


def drag(qtbot, grid, a: QPointF, b: QPointF) -> None:
    QTest.mousePress(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _pt(a))
    mid = QPointF((a.x() + b.x()) / 2, (a.y() + b.y()) / 2)
    QTest.mouseMove(grid, _pt(mid))
    QTest.mouseMove(grid, _pt(b))
    QTest.mouseRelease(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _pt(b))


def reloaded(qtbot, view, action) -> None:
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        action()


def rows(cache, model, *where):
    with cache.session() as s:
        return s.scalars(select(model).where(*where)).all()


def free_window(view, min_hours: int = 4) -> tuple[StaffInfo, dt.date, int]:
    """A person and a day/hour inside their availability and the store's hours (not on
    Monday, where last Sunday's late shift may leave too little rest)."""
    store = view.week.store
    for person in view.week.staff:
        for w in person.availability:
            if w.weekday == 0:
                continue
            start = max(w.start.hour + (1 if w.start.minute else 0), store.opens_at.hour)
            end = min(w.end_minutes() // 60, store.closes_at.hour)
            if end - start >= min_hours:
                return person, view.week_start + dt.timedelta(days=w.weekday), start
    raise AssertionError("no one in the demo store has a long enough availability window")


def test_create_move_resize_and_delete_by_mouse_and_keys(make_view, qtbot, demo_cache) -> None:
    view = make_view(EMPTY_WEEK)
    grid = view.grid
    assert view.week.shifts == ()
    person, day, hour = free_window(view)
    # Drag out 2 hours in the person's row.
    reloaded(
        qtbot,
        view,
        lambda: drag(
            qtbot,
            grid,
            grid.cell_point(person.id, day, hour),
            grid.cell_point(person.id, day, hour + 2),
        ),
    )
    assert len(grid.shifts) == 1
    block = grid.shifts[0]
    assert (block.staff_id, block.start, block.end, block.status) == (
        person.id,
        dt.datetime.combine(day, dt.time(hour)),
        dt.datetime.combine(day, dt.time(hour + 2)),
        "draft",
    )
    [outbox] = rows(demo_cache, Outbox)
    assert outbox.name == "shift.create/1" and outbox.args["staff_id"] == person.id
    # Move it 30 minutes later by dragging its body.
    reloaded(
        qtbot,
        view,
        lambda: drag(
            qtbot,
            grid,
            grid.cell_point(person.id, day, hour + 1),
            grid.cell_point(person.id, day, hour + 1, 30),
        ),
    )
    block = grid.shifts[0]
    assert block.start == dt.datetime.combine(day, dt.time(hour, 30)) and block.version == 2
    # Resize: drag the right edge one hour further.
    rect = grid.block_rects(block.id)[0]
    edge = QPointF(rect.right() - 1, rect.center().y())
    reloaded(
        qtbot,
        view,
        lambda: drag(
            qtbot, grid, edge, QPointF(grid.cell_point(person.id, day, hour + 3, 30).x(), edge.y())
        ),
    )
    block = grid.shifts[0]
    assert block.end == dt.datetime.combine(day, dt.time(hour + 3, 30))
    assert (block.end - block.start) == dt.timedelta(hours=3)
    # Keyboard: ← moves 30 minutes earlier, then Delete removes it.
    grid.setFocus()
    grid.select(block.id)
    reloaded(qtbot, view, lambda: QTest.keyClick(grid, Qt.Key.Key_Left))
    block = grid.shifts[0]
    assert block.start == dt.datetime.combine(day, dt.time(hour)) and block.version == 4
    reloaded(qtbot, view, lambda: QTest.keyClick(grid, Qt.Key.Key_Delete))
    assert grid.shifts == [] and rows(demo_cache, Shift, Shift.id == block.id) == []
    assert [o.name for o in rows(demo_cache, Outbox)] == [
        "shift.create/1",
        "shift.update/1",
        "shift.update/1",
        "shift.update/1",
        "shift.delete/1",
    ]
    assert [o.base_version for o in rows(demo_cache, Outbox)] == [None, 1, 2, 3, 4]


def test_breaking_a_rule_shows_the_explanation_and_changes_nothing(
    make_view, qtbot, demo_cache
) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    before = [(s.id, s.start, s.end, s.staff_id) for s in grid.shifts]
    # Move a shift one day later (Shift+→) onto a day the same person already works:
    # an overlap, or too little rest between two shifts on one day.
    victim = next(
        s
        for s in grid.shifts
        if any(
            o.staff_id == s.staff_id and o.start.date() == s.start.date() + dt.timedelta(days=1)
            for o in grid.shifts
        )
    )
    name = next(p.name for p in view.week.staff if p.id == victim.staff_id)
    grid.setFocus()
    grid.select(victim.id)
    shown: list[str] = []
    view.sig_message.connect(shown.append)
    with qtbot.waitSignals([view.sig_message, view.sig_loaded], timeout=20_000):
        QTest.keyClick(grid, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    [text] = shown
    assert view.message.isVisible() and text == view.message.text()
    assert text.startswith("Not saved:") and name in text
    assert any(word in text for word in ("overlap", "rest", "available", "above the contract"))
    assert [(s.id, s.start, s.end, s.staff_id) for s in grid.shifts] == before
    assert all(o.name != "shift.update/1" for o in rows(demo_cache, Outbox))


def test_publish_draft_week(make_view, qtbot, demo_cache) -> None:
    view = make_view(NEXT_WEEK)
    assert view.week.draft_count > 0 and view.publish_button.isEnabled()
    drafts = view.week.draft_count
    assert "draft" in view.state_label.text()
    reloaded(qtbot, view, lambda: qtbot.mouseClick(view.publish_button, Qt.MouseButton.LeftButton))
    assert view.week.draft_count == 0 and view.week.published_count == drafts
    assert f"0 draft · {drafts} published" in view.state_label.text()
    assert {s.status for s in view.grid.shifts} == {"published"}
    assert not view.publish_button.isEnabled()
    assert "published" in view.message.text()
    assert [o.name for o in rows(demo_cache, Outbox)] == ["shift.publish/1"]


def test_copy_last_week_and_propose_rota(make_view, qtbot) -> None:
    view = make_view(EMPTY_WEEK)
    previous = len(make_view(NEXT_WEEK).week.shifts)
    with qtbot.waitSignal(view.sig_message, timeout=20_000):
        qtbot.mouseClick(view.copy_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(view.grid.shifts) > 0, timeout=20_000)
    assert "Copied" in view.message.text()
    copied = len(view.grid.shifts)
    assert 0 < copied <= previous
    assert not [v for v in view.week.violations if v.hard]
    assert {s.status for s in view.grid.shifts} == {"draft"}
    # Propose: fills what is still open, the manager saves the drafts.
    qtbot.mouseClick(view.propose_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.proposal_dialog is not None, timeout=30_000)
    dialog = view.proposal_dialog
    proposed = dialog.list.count()
    if proposed:
        with qtbot.waitSignal(view.sig_message, timeout=30_000):
            qtbot.mouseClick(dialog.save, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(view.grid.shifts) == copied + proposed, timeout=20_000)
        assert "Saved" in view.message.text()
        assert not [v for v in view.week.violations if v.hard]


def test_stale_edit_is_a_conflict_and_reloads(make_view, qtbot, demo_cache) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    target = grid.shifts[0]
    with demo_cache.session() as s:  # changed elsewhere, pulled by sync
        s.get(Shift, target.id).version = target.version + 5
    grid.setFocus()
    grid.select(target.id)
    with qtbot.waitSignal(view.sig_message, timeout=20_000) as msg:
        QTest.keyClick(grid, Qt.Key.Key_Right)
    assert "changed elsewhere" in msg.args[0]
    qtbot.waitUntil(lambda: grid.shift(target.id).version == target.version + 5, timeout=20_000)


def test_screenshot_in_chinese(make_view, qtbot, artifacts) -> None:
    i18n.set_language("zh_CN")
    try:
        view = make_view(NEXT_WEEK, size=(1600, 900))
        assert view.publish_button.text() == "发布"
        assert "草稿" in view.state_label.text()
        # Publish, then edit one shift: the picture shows published and draft blocks.
        reloaded(
            qtbot, view, lambda: qtbot.mouseClick(view.publish_button, Qt.MouseButton.LeftButton)
        )
        assert "已发布" in view.message.text()
        grid = view.grid
        first = grid.shifts[0]
        grid.setFocus()
        grid.select(first.id)
        reloaded(qtbot, view, lambda: QTest.keyClick(grid, Qt.Key.Key_Right))
        assert grid.shift(first.id).status == "draft"
        assert view.rules.count() > 0 and "⚠" in view.rules.item(0).text()
        qtbot.wait(50)
        view.grab().save(str(artifacts / "schedule.png"))
    finally:
        i18n.set_language("en")


def test_enter_opens_the_editor_and_saves_the_change(make_view, qtbot, demo_cache) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    block = next(s for s in grid.shifts if s.start.hour < 12)
    grid.setFocus()
    grid.select(block.id)
    QTest.keyClick(grid, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.edit_dialog is not None and view.edit_dialog.isVisible())
    dialog = view.edit_dialog
    assert dialog.staff.currentData() == block.staff_id
    dialog.end.setTime(dialog.end.time().addSecs(-3600))
    dialog.note.setText("早班缩短一小时")
    reloaded(qtbot, view, dialog.accept)
    after = grid.shift(block.id)
    assert after.end == block.end - dt.timedelta(hours=1) and after.version == block.version + 1
    with demo_cache.session() as s:
        assert s.get(Shift, block.id).note == "早班缩短一小时"


def test_hover_shows_demand_and_shift_values(make_view) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    day = NEXT_WEEK + dt.timedelta(days=2)
    hour = view.week.store.opens_at.hour + 4
    point = QPointF(grid.x_of(2, hour * 60 + 30), 28 + 20)  # inside the demand strip
    text = grid.tooltip_at(point)
    h = view.week.demand.hour(day, hour)
    assert text.startswith(f"{hour:02d}:00") and f"needed {h.required}" in text
    block = grid.shifts[0]
    assert grid.tooltip_at(grid.block_rects(block.id)[0].center()).endswith("Draft")


def test_supervisor_without_a_store_sees_a_prompt(make_view, qtbot) -> None:
    view = make_view(NEXT_WEEK)
    view.ctx.selection.set(store_id=None)
    assert view.placeholder.isVisible() and not view.split.isVisible()
    assert not view.publish_button.isEnabled()


def test_a_shift_past_midnight_is_drawn_in_both_days(make_view) -> None:
    from dataclasses import replace

    from desktop.views.schedule import visible_hours

    view = make_view(NEXT_WEEK)
    grid = view.grid
    s = grid.shifts[0]
    day = s.start.date()
    night = replace(
        s,
        start=dt.datetime.combine(day, dt.time(20)),
        end=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(4)),
    )
    assert visible_hours(view.week, [s]) == (
        min(view.week.store.opens_at.hour - 1, s.start.hour),
        view.week.store.closes_at.hour + 1,
    )
    assert visible_hours(view.week, [night]) == (0, 24)
    grid.set_week(grid.week_start, grid.rows, [night], [], h0=0, h1=24)
    evening, early = grid.block_rects(night.id)
    assert evening.width() > 10 and early.width() > 10
    assert early.left() > evening.right()  # the next day's column


def test_tab_walks_through_the_blocks(make_view, qtbot) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    grid.setFocus()
    qtbot.waitUntil(grid.hasFocus)
    grid.select(None)
    QTest.keyClick(grid, Qt.Key.Key_Tab)
    assert grid.selected_id == grid.shifts[0].id
    QTest.keyClick(grid, Qt.Key.Key_Tab)
    assert grid.selected_id == grid.shifts[1].id
    QTest.keyClick(grid, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected_id == grid.shifts[0].id
    QTest.keyClick(grid, Qt.Key.Key_Escape)
    assert grid.selected_id is None


def test_quick_repeated_keys_chain_their_versions(make_view, qtbot, demo_cache) -> None:
    view = make_view(EMPTY_WEEK)
    grid = view.grid
    person, day, hour = free_window(view, min_hours=5)
    reloaded(
        qtbot,
        view,
        lambda: drag(
            qtbot,
            grid,
            grid.cell_point(person.id, day, hour),
            grid.cell_point(person.id, day, hour + 2),
        ),
    )
    block = grid.shifts[0]
    grid.setFocus()
    grid.select(block.id)
    for _ in range(3):  # no waiting between the keys
        QTest.keyClick(grid, Qt.Key.Key_Right)
    assert grid.shift(block.id).start == block.start + dt.timedelta(minutes=90)  # at once
    qtbot.waitUntil(lambda: not view._inflight, timeout=20_000)
    qtbot.waitUntil(lambda: grid.shift(block.id).version == 4, timeout=20_000)
    assert grid.shift(block.id).start == block.start + dt.timedelta(minutes=90)
    assert not view.message.isVisible()
    assert [o.base_version for o in rows(demo_cache, Outbox)] == [None, 1, 2, 3]


def _pull(view, demo_cache, staff_id: int, name: str) -> None:
    """A sync lands: a person's name changed on the server, the cache already holds it, and
    the Changes name the pulled table as ``desktop.sync_controller`` does."""
    with demo_cache.session() as s:
        s.get(Staff, staff_id).name = name
    view.ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("staff", staff_id))


def _reads_done(qtbot, view) -> None:
    """Wait until the reload the pull asked for has been read and its answer delivered (the
    DB worker and its callbacks run in order, so a later job's callback comes after it)."""
    qtbot.waitUntil(lambda: not view._reload_timer.isActive(), timeout=5_000)
    fence: list[bool] = []
    view.ctx.db.submit(lambda _s: True, on_result=fence.append)
    qtbot.waitUntil(lambda: fence == [True], timeout=20_000)


@pytest.mark.parametrize("mode", ["move", "draw"])
def test_a_sync_landing_mid_drag_keeps_the_drag(make_view, qtbot, demo_cache, mode) -> None:
    view = make_view(EMPTY_WEEK)
    grid = view.grid
    person, day, hour = free_window(view)
    other = next(p for p in view.week.staff if p.id != person.id)
    if mode == "move":
        reloaded(
            qtbot,
            view,
            lambda: drag(
                qtbot,
                grid,
                grid.cell_point(person.id, day, hour),
                grid.cell_point(person.id, day, hour + 2),
            ),
        )
        a = grid.cell_point(person.id, day, hour + 1)
        b = grid.cell_point(person.id, day, hour + 1, 30)
    else:
        a = grid.cell_point(person.id, day, hour)
        b = grid.cell_point(person.id, day, hour + 2)
    QTest.mousePress(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _pt(a))
    QTest.mouseMove(grid, _pt((a + b) / 2))
    _pull(view, demo_cache, other.id, "Pulled Name")
    _reads_done(qtbot, view)
    assert grid.dragging  # the pulled week was not put under the user's hand
    QTest.mouseMove(grid, _pt(b))
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        QTest.mouseRelease(grid, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _pt(b))
    # The drag's edit was sent ...
    names = [o.name for o in rows(demo_cache, Outbox)]
    if mode == "move":
        assert names == ["shift.create/1", "shift.update/1"]
        expected = dt.datetime.combine(day, dt.time(hour, 30))
    else:
        assert names == ["shift.create/1"]
        expected = dt.datetime.combine(day, dt.time(hour))
    qtbot.waitUntil(lambda: len(grid.shifts) == 1 and grid.shifts[0].start == expected)
    # ... and the pulled data is shown once it has settled.
    qtbot.waitUntil(
        lambda: any(r.name == "Pulled Name" for r in grid.rows) and not grid.dragging,
        timeout=20_000,
    )


def test_a_sync_leaves_an_open_editor_and_keyboard_selection_alone(
    make_view, qtbot, demo_cache
) -> None:
    view = make_view(NEXT_WEEK)
    grid = view.grid
    block = next(s for s in grid.shifts if s.start.hour < 12)
    other = next(p for p in view.week.staff if p.id != block.staff_id)
    grid.setFocus()
    grid.select(block.id)
    QTest.keyClick(grid, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.edit_dialog is not None and view.edit_dialog.isVisible())
    dialog = view.edit_dialog
    dialog.note.setText("edited while a sync landed")
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        _pull(view, demo_cache, other.id, "Pulled Name")
    assert dialog.isVisible() and dialog.note.text() == "edited while a sync landed"
    assert grid.selected_id == block.id
    reloaded(qtbot, view, dialog.accept)
    with demo_cache.session() as s:
        assert s.get(Shift, block.id).note == "edited while a sync landed"
    # Keyboard editing after the pull continues from the selected block.
    grid.setFocus()
    assert grid.selected_id == block.id
    reloaded(qtbot, view, lambda: QTest.keyClick(grid, Qt.Key.Key_Right))
    assert grid.shift(block.id).start == block.start + dt.timedelta(minutes=30)
