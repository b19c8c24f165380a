"""Alerts screen on the demo region: colours, digest, snooze with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from tests.desktop.funnel_helpers import supervisor_context

pytestmark = pytest.mark.gui

DEMO_TODAY = dt.date(2026, 11, 27)


def _select_row(qtbot, table, row: int) -> None:
    rect = table.view.visualRect(table.model.index(row, 0))
    qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_alerts_list_digest_and_snooze(qtbot, qapp, demo_cache, artifacts):
    from desktop.views.alerts import COLOURS, AlertsView, SnoozeDialog

    with supervisor_context(demo_cache, "sup_sh", DEMO_TODAY, qapp) as ctx:
        # the demo's clock is its last day at the real time of day: held still, so a run
        # across midnight UTC does not see the snooze end a day late
        noon = dt.datetime.combine(DEMO_TODAY, dt.time(12, 0), tzinfo=dt.UTC)
        ctx.now = lambda: noon
        view = AlertsView(ctx)
        qtbot.addWidget(view)
        view.resize(1500, 800)
        view.show()
        qtbot.waitUntil(lambda: view.table.model.matching_rows > 0, timeout=20000)
        rows = view.table.model.visible_rows()
        assert all(r.region_id in ctx.actor.region_ids for r in rows)
        # most severe first, painted red
        assert rows[0].severity == "critical"
        opt = QStyleOptionViewItem()
        view.table.view.itemDelegate().initStyleOption(opt, view.table.model.index(0, 0))
        assert opt.backgroundBrush.color().name() == COLOURS["critical"][0]
        assert view.table.model.data(view.table.model.index(0, 0)) == "Escalated"
        # the digest adds up to the open alerts
        active = sum(1 for r in rows if r.state == "active")
        totals = [
            int(view.by_rep.topLevelItem(i).text(1)) for i in range(view.by_rep.topLevelItemCount())
        ]
        assert sum(totals) == active
        assert f"{active} open alerts" in view.summary.text()
        view.grab().save(str(artifacts / "alerts.png"))
        view.tabs.setCurrentIndex(1)
        view.grab().save(str(artifacts / "alerts_digest.png"))
        view.tabs.setCurrentIndex(0)

        # snooze the top alert with a reason
        target = rows[0]
        assert not view.snooze_button.isEnabled()
        _select_row(qtbot, view.table, 0)
        assert view.snooze_button.isEnabled()
        qtbot.mouseClick(view.snooze_button, Qt.MouseButton.LeftButton)
        dlg = view.findChild(SnoozeDialog)
        assert dlg is not None and dlg.isVisible()
        assert not dlg.ok_button.isEnabled()  # no reason yet
        dlg.preset.setCurrentIndex(1)  # 3 days
        qtbot.keyClicks(dlg.reason, "PO ")  # QTest types ASCII only;
        dlg.reason.insertPlainText("客户月底付款")  # an input method commits Chinese at once
        assert dlg.ok_button.isEnabled()
        with qtbot.waitSignal(view.sig_loaded, timeout=20000):
            qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)
        assert not dlg.isVisible()
        after = {r.id: r for r in view.table.model.visible_rows()}
        assert after[target.id].state == "snoozed"
        assert after[target.id].snooze_reason == "PO 客户月底付款"
        delta = after[target.id].snoozed_until - ctx.now()
        assert dt.timedelta(days=2, hours=23) < delta <= dt.timedelta(days=3)
        col = [c.key for c in view.table.model.columns].index("snooze")
        shown = {
            view.table.model.row(i).id: view.table.model.data(view.table.model.index(i, col))
            for i in range(view.table.model.rowCount())
        }
        assert "客户月底付款" in shown[target.id]
        # hidden when snoozed alerts are not shown; the outbox holds the mutation
        with qtbot.waitSignal(view.sig_loaded, timeout=20000):
            view.snoozed_check.setChecked(False)
        assert target.id not in {r.id for r in view.table.model.visible_rows()}
        # double-clicking an alert about an opportunity opens its customer
        first = view.table.model.row(0)
        assert first.customer_id is not None
        rect = view.table.view.visualRect(view.table.model.index(0, 1))
        with qtbot.waitSignal(view.detail.sig_loaded, timeout=20000) as blocker:
            qtbot.mouseClick(
                view.table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
            )
            qtbot.mouseDClick(
                view.table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
            )
        assert blocker.args[0].id == first.customer_id
        assert view.stack.currentWidget() is view.detail
        view.detail.back_button.click()
        assert view.stack.currentWidget() is view.tabs
        from core.models import Outbox

        with demo_cache.session() as s:
            names = [o.name for o in s.query(Outbox).all()]
        assert names == ["alert.snooze/1"]


def test_thresholds_dialog_rechecks_and_is_remembered(qtbot, qapp, tmp_path):
    from core.cache import open_cache
    from desktop.settings import Settings
    from desktop.views.alerts import AlertsView, ThresholdsDialog
    from tests.core.funnel_fixtures import add_opp, seed_org

    today = dt.date(2026, 11, 27)
    cache = open_cache(tmp_path / "t.db")
    opened = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(days=3)
    with cache.session() as s:
        seed_org(s)
        add_opp(s, "q1", [("lead", opened, 0), ("opportunity", opened, 500)], customer_id=2)
    try:
        with supervisor_context(cache, "sup_sh", today, qapp) as ctx:
            ctx.settings = Settings()
            view = AlertsView(ctx)
            qtbot.addWidget(view)
            # customer 1 (A-tier, never visited) and q1 (no quote)
            qtbot.waitUntil(lambda: view.table.model.matching_rows == 2, timeout=10000)
            q1 = next(r for r in view.table.model.visible_rows() if r.subject_id == "q1")
            # opened 3 days (+ today's hours) ago: due after 48 h, escalation 48 h later
            assert q1.severity == "warning"
            assert not view.thresholds_button.isHidden()  # a supervisor may change them
            qtbot.mouseClick(view.thresholds_button, Qt.MouseButton.LeftButton)
            dlg = view.findChild(ThresholdsDialog)
            assert dlg is not None
            dlg.spins["escalate_after_hours"].setValue(10)
            with qtbot.waitSignal(view.sig_loaded, timeout=10000):
                dlg.accept()
            q1 = next(r for r in view.table.model.visible_rows() if r.subject_id == "q1")
            assert q1.severity == "critical"
            assert ctx.settings.filters["alerts"]["thresholds"]["escalate_after_hours"] == 10
            # filters and thresholds come back in a new screen
            with qtbot.waitSignal(view.sig_loaded, timeout=10000):
                view.resolved_check.setChecked(True)
            again = AlertsView(ctx)
            qtbot.addWidget(again)
            assert again.thresholds.escalate_after_hours == 10
            assert again.resolved_check.isChecked()
            qtbot.waitUntil(lambda: again.table.model.matching_rows == 2, timeout=10000)
    finally:
        cache.close()


def test_a_sync_re_reads_alerts_and_a_local_edit_re_evaluates(qtbot, qapp, demo_cache):
    """After a pull the server's alerts are shown as they came (the server evaluates; rows
    written here would have no outbox entry); a local edit, as in the offline demo, still
    raises and resolves alerts on this desktop."""
    from core.models import Alert, Opportunity
    from core.mutations import Changes
    from desktop.views.alerts import AlertsView

    with supervisor_context(demo_cache, "sup_sh", DEMO_TODAY, qapp) as ctx:
        view = AlertsView(ctx)
        qtbot.addWidget(view)
        view.resize(1500, 800)
        view.show()
        qtbot.waitUntil(lambda: view.table.model.matching_rows > 0, timeout=20000)
        target = next(r for r in view.table.model.visible_rows() if r.subject_type == "opportunity")
        # The opportunity was lost elsewhere; its alert is still open in the cache.
        with demo_cache.session() as s:
            s.get(Opportunity, target.subject_id).status = "lost"
        pulled = Changes().add("sync").add("pulled").add("opportunities")
        with qtbot.waitSignal(view.sig_loaded, timeout=20000):
            ctx.sig_data_changed.emit(pulled)
        with demo_cache.session() as s:
            assert s.get(Alert, target.id).resolved_at is None
        assert target.id in {r.id for r in view.table.model.visible_rows()}
        # The same change made on this desktop resolves it here.
        with qtbot.waitSignal(view.sig_loaded, timeout=20000):
            ctx.sig_data_changed.emit(Changes().add("opportunities", target.subject_id))
        with demo_cache.session() as s:
            assert s.get(Alert, target.id).resolved_at is not None
        assert target.id not in {r.id for r in view.table.model.visible_rows()}
