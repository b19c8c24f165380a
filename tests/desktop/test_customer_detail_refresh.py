"""The open customer detail follows data that arrives (a sync, an edit elsewhere): it
reloads in place (same customer, same tab), ignores unrelated changes, and a hidden
detail reloads when shown again."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest
from sqlalchemy import func, select

from core.cache import open_cache
from core.models import Customer, Opportunity, User, Visit
from core.mutations import Changes, actor_for_user, apply_local
from core.timeutil import to_local
from tests.conftest import DEMO_TODAY

pytestmark = [pytest.mark.gui]


@pytest.fixture
def ctx(demo_db_template, tmp_path, qapp):
    from desktop.context import AppContext, Selection

    path = tmp_path / "demo.db"
    shutil.copyfile(demo_db_template, path)
    cache = open_cache(path)
    with cache.session() as s:
        user = s.scalars(select(User).where(User.username == "sup_sh")).one()
        actor = actor_for_user(s, user)
    c = AppContext(cache, actor, DEMO_TODAY, Selection(None, next(iter(actor.region_ids)), None))
    yield c
    c.shutdown()
    cache.close()


def a_visit_in_scope(ctx) -> tuple[str, int]:
    with ctx.cache.session() as s:
        visit = s.execute(
            select(Visit.id, Visit.customer_id)
            .join(Customer, Customer.id == Visit.customer_id)
            .where(Customer.store_id.in_(ctx.actor.store_ids))
            .order_by(Visit.id)
            .limit(1)
        ).one()
    return visit.id, visit.customer_id


def add_note(qtbot, ctx, visit_id: str, text: str) -> Changes:
    """A note written on this desktop (as another screen or a sync's pull would)."""
    args = {"id": uuid.uuid4().hex, "visit_id": visit_id, "text": text}
    box: list = []
    ctx.db.submit(
        lambda s: apply_local(s, ctx.actor, "visit_note.add/1", args), on_result=box.append
    )
    qtbot.waitUntil(lambda: bool(box), timeout=10_000)
    return box[0]


@pytest.fixture
def detail(ctx, qtbot):
    from desktop.views.customer_detail import CustomerDetailView

    view = CustomerDetailView(ctx)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    visit_id, customer_id = a_visit_in_scope(ctx)
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        view.show_customer(customer_id)
    view.tabs.setCurrentWidget(view.notes)  # the user reads the notes
    return view, visit_id, customer_id


def note_texts(view) -> list[str]:
    m = view.notes.model
    return [m.row(i).text for i in range(m.rowCount())]


def test_a_new_note_shows_in_the_open_detail(qtbot, ctx, detail):
    view, visit_id, customer_id = detail
    title, before = view.title.text(), len(note_texts(view))
    changes = add_note(qtbot, ctx, visit_id, "客户要求下周补货")
    assert changes.touches("visit_notes")
    loads: list = []
    view.sig_loaded.connect(loads.append)
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        ctx.sig_data_changed.emit(changes)
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("visits"))
    qtbot.wait(600)  # (a second reload would have come by now)
    assert len(loads) == 1 and loads[0].id == customer_id
    assert "客户要求下周补货" in note_texts(view) and len(note_texts(view)) == before + 1
    assert view.title.text() == title and view.tabs.currentWidget() is view.notes


def test_unrelated_changes_do_not_reload(qtbot, ctx, detail):
    view, _visit_id, _customer_id = detail
    with qtbot.assertNotEmitted(view.sig_loaded, wait=800):
        ctx.sig_data_changed.emit(Changes().add("shifts", 1).add("hourly_traffic"))


def test_a_hidden_detail_reloads_when_shown(qtbot, ctx, detail):
    view, visit_id, _customer_id = detail
    view.hide()
    with qtbot.assertNotEmitted(view.sig_loaded, wait=800):
        ctx.sig_data_changed.emit(add_note(qtbot, ctx, visit_id, "hidden meanwhile"))
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        view.show()
    assert "hidden meanwhile" in note_texts(view)


def a_busy_customer(ctx) -> int:
    """The customer in scope with the most visits among those with an opportunity."""
    with ctx.cache.session() as s:
        return s.execute(
            select(Visit.customer_id)
            .join(Customer, Customer.id == Visit.customer_id)
            .where(
                Customer.store_id.in_(ctx.actor.store_ids),
                Visit.customer_id.in_(select(Opportunity.customer_id)),
            )
            .group_by(Visit.customer_id)
            .order_by(func.count().desc(), Visit.customer_id)
            .limit(1)
        ).scalar_one()


def test_gps_points_of_past_days_do_not_reload(qtbot, ctx, detail):
    """Reps send points all day: a sync pulling them leaves a detail of older visits alone."""
    view, _visit_id, _customer_id = detail
    assert all(to_local(v.check_in_at).date() != DEMO_TODAY for v in view.detail.visits)
    with qtbot.assertNotEmitted(view.sig_loaded, wait=800):
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("gps_points"))


def test_gps_points_reload_a_detail_with_a_visit_of_today(qtbot, ctx, detail):
    """Today's visit is still being judged against a trace that keeps arriving."""
    view, visit_id, customer_id = detail
    with ctx.cache.session() as s:
        past = s.get(Visit, visit_id)
        s.add(
            Visit(
                rep_id=past.rep_id,
                customer_id=customer_id,
                check_in_at=dt.datetime.combine(DEMO_TODAY, dt.time(2, 0), tzinfo=dt.UTC),
                check_in_lat=past.check_in_lat,
                check_in_lon=past.check_in_lon,
            )
        )
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("visits"))
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        ctx.sig_data_changed.emit(Changes().add("sync").add("pulled").add("gps_points"))


def test_a_reload_keeps_selection_scroll_and_closed_branches(qtbot, ctx, detail):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    view, _visit_id, _customer_id = detail
    view.resize(1000, 380)  # short enough for the visits to scroll
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        view.show_customer(a_busy_customer(ctx))
    # Visits: the user scrolls down and clicks a row.
    view.tabs.setCurrentWidget(view.visits)
    table = view.visits.view
    bar = table.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())
    row = table.rowAt(table.viewport().height() // 2)
    QTest.mouseClick(
        table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=table.visualRect(table.model().index(row, 1)).center(),
    )
    chosen = view.visits.model.row(table.currentIndex().row()).id
    scrolled = bar.value()
    assert scrolled > 0
    # Stage history: the user closes the first opportunity with the keyboard.
    view.tabs.setCurrentWidget(view.history)
    tree = view.history
    tree.setFocus()
    tree.setCurrentItem(tree.topLevelItem(0))
    QTest.keyClick(tree, Qt.Key.Key_Left)
    assert not tree.topLevelItem(0).isExpanded()
    # A sync pulls a note on one of the customer's visits.
    with qtbot.waitSignal(view.sig_loaded, timeout=20_000):
        ctx.sig_data_changed.emit(add_note(qtbot, ctx, chosen, "pulled meanwhile"))
    assert "pulled meanwhile" in note_texts(view)
    assert not tree.topLevelItem(0).isExpanded()
    assert tree.currentItem() is tree.topLevelItem(0)
    assert all(tree.topLevelItem(i).isExpanded() for i in range(1, tree.topLevelItemCount()))
    view.tabs.setCurrentWidget(view.visits)
    assert [view.visits.model.row(i.row()).id for i in table.selectionModel().selectedRows()] == [
        chosen
    ]
    assert bar.value() == scrolled
