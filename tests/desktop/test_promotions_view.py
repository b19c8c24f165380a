"""Promotion approvals on the demo region: approve, adjust, reject, bulk approve offline,
the "not yet synced" marker, a lost decision shown as a conflict, history and rule editor."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from sqlalchemy import func, select

from core.cache import Cache
from core.conflicts import open_conflicts
from core.models import Outbox, PromotionDecision, Region, Store, SyncConflict, User, UserScope
from core.mutations import Changes, actor_for_user
from tests.conftest import DEMO_TODAY

pytestmark = pytest.mark.gui


@contextmanager
def promo_context(cache: Cache, username: str, qapp) -> Iterator[object]:
    """A real AppContext: a manager on their store, a supervisor on their region."""
    from desktop.context import AppContext, Selection
    from desktop.theme import install_fonts, install_theme

    install_theme(qapp)
    install_fonts(qapp)
    with cache.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        actor = actor_for_user(s, user)
        store_id = s.scalar(
            select(UserScope.store_id).where(
                UserScope.user_id == user.id, UserScope.store_id.is_not(None)
            )
        )
        region_id = (
            s.scalar(select(Store.region_id).where(Store.id == store_id))
            if store_id
            else min(actor.region_ids)
            if actor.region_ids
            else s.scalar(select(Region.id))
        )
    ctx = AppContext(cache, actor, DEMO_TODAY, Selection(store_id, region_id, DEMO_TODAY))
    try:
        yield ctx
    finally:
        ctx.shutdown()
        # Collect the context's QObjects now, while Qt is alive: left to interpreter
        # shutdown, PySide's finalizer sometimes crashes (bool_dealloc) after a passing run.
        ctx.selection.deleteLater()
        ctx.deleteLater()
        qapp.processEvents()
        gc.collect()


def _outbox(cache: Cache) -> int:
    with cache.session() as s:
        return s.scalar(select(func.count()).select_from(Outbox)) or 0


def _open_view(qtbot, ctx):
    from desktop.views.promotions import PromotionsView

    view = PromotionsView(ctx)
    qtbot.addWidget(view)
    view.resize(1500, 860)
    view.show()
    qtbot.waitUntil(lambda: view.queue.table.model.matching_rows > 0, timeout=30000)
    return view


def _row_index(view, proposal_id: str) -> int:
    m = view.queue.table.model
    return next(i for i in range(m.matching_rows) if m.row(i).id == proposal_id)


def _click_row(qtbot, view, i: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    table = view.queue.table
    rect = table.view.visualRect(table.model.index(i, 0))
    qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def _status(view, proposal_id: str) -> str:
    m = view.queue.table.model
    col = [c.key for c in m.columns].index("status")
    return m.data(m.index(_row_index(view, proposal_id), col))


def _select_and_wait(qtbot, view, i: int):
    row = view.queue.table.model.row(i)
    with qtbot.waitSignal(view.queue.sig_detail_shown, timeout=20000):
        _click_row(qtbot, view, i)
    return row


def test_approve_with_adjusted_discount_then_reject_with_reason(qtbot, qapp, demo_cache):
    with promo_context(demo_cache, "mgr_sh001", qapp) as ctx:
        view = _open_view(qtbot, ctx)
        q = view.queue
        rows = q.table.model.visible_rows()
        assert rows and all(r.store_id == ctx.selection.store_id for r in rows)
        assert all(r.status == "pending" for r in rows)
        assert [r.urgency for r in rows] == sorted((r.urgency for r in rows), reverse=True)

        row = _select_and_wait(qtbot, view, 0)
        # the explanation and the maths of this proposal are shown
        assert row.sku_name in q.title_label.text()
        explanation = q.explanation.toPlainText()
        assert "With " in explanation and "% off" in explanation
        assert q.maths_labels["on_hand"].text() == f"{row.on_hand:,}"
        assert q.maths_labels["waste_avoided_fen"].text().startswith("¥")
        assert len(q.chart.items["sku"].xData) == 28
        # the spin box is clamped to the rule's bounds
        assert (q.discount_spin.minimum(), q.discount_spin.maximum()) == (row.min_pct, row.max_pct)
        q.discount_spin.setValue(row.max_pct + 25)
        assert q.discount_spin.value() == row.max_pct
        q.discount_spin.setValue(row.min_pct - 5)
        assert q.discount_spin.value() == row.min_pct
        before_with = q.maths_labels["sell_through_with"].text()
        chosen = min(row.max_pct, row.min_pct + 10)
        q.discount_spin.setValue(chosen)
        if chosen != row.min_pct:
            assert q.maths_labels["sell_through_with"].text() != before_with or row.on_hand == 0
        outbox_before = _outbox(demo_cache)
        with qtbot.waitSignal(q.sig_loaded, timeout=20000):
            qtbot.mouseClick(q.approve_button, Qt.MouseButton.LeftButton)
        assert _status(view, row.id) == f"Approved at {chosen}% · not yet synced"
        assert _outbox(demo_cache) == outbox_before + 1
        with demo_cache.session() as s:
            dec = s.scalar(select(PromotionDecision).where(PromotionDecision.proposal_id == row.id))
            assert (dec.decision, dec.discount_pct, dec.decided_by) == (
                "approve",
                chosen,
                ctx.actor.user_id,
            )
        assert not q.approve_button.isEnabled()  # decided: no second decision from here

        # reject another one: a reason is required
        pending_i = next(
            i for i in range(q.table.model.matching_rows) if q.table.model.row(i).decision is None
        )
        other = _select_and_wait(qtbot, view, pending_i)
        qtbot.mouseClick(q.reject_button, Qt.MouseButton.LeftButton)
        assert q.decision_status.text() == "Choose a reason for rejecting."
        assert _outbox(demo_cache) == outbox_before + 1
        q.reason_combo.setCurrentIndex(q.reason_combo.findData("transfer_instead"))
        qtbot.keyClicks(q.comment_edit, "SH002 needs it")
        with qtbot.waitSignal(q.sig_loaded, timeout=20000):
            qtbot.mouseClick(q.reject_button, Qt.MouseButton.LeftButton)
        assert _status(view, other.id) == "Rejected · not yet synced"
        with demo_cache.session() as s:
            dec = s.scalar(
                select(PromotionDecision).where(PromotionDecision.proposal_id == other.id)
            )
            assert (dec.decision, dec.reason_code, dec.comment) == (
                "reject",
                "transfer_instead",
                "SH002 needs it",
            )
        assert _outbox(demo_cache) == outbox_before + 2

        # once the sync acknowledges the decisions they leave the queue
        with demo_cache.session() as s:
            for ob in s.scalars(select(Outbox)):
                ob.status = "sent"
        with qtbot.waitSignal(q.sig_loaded, timeout=20000):
            ctx.sig_data_changed.emit(Changes().add("sync"))
        ids = {r.id for r in q.table.model.visible_rows()}
        assert row.id not in ids and other.id not in ids


def test_bulk_approve_offline_grows_the_outbox(qtbot, qapp, demo_cache):
    with promo_context(demo_cache, "mgr_sh001", qapp) as ctx:
        view = _open_view(qtbot, ctx)
        q = view.queue
        n = min(3, q.table.model.matching_rows)
        assert n >= 2
        sel = q.table.view.selectionModel()
        for i in range(n):
            sel.select(
                q.table.model.index(i, 0),
                QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
            )
        chosen = q.selected_rows()
        assert len(chosen) == n
        before = _outbox(demo_cache)
        qtbot.mouseClick(q.bulk_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _outbox(demo_cache) == before + n, timeout=20000)
        qtbot.waitUntil(
            lambda: all(
                _status(view, r.id) == f"Approved at {r.discount_pct}% · not yet synced"
                for r in chosen
            ),
            timeout=20000,
        )
        assert f"{n} not yet synced" in q.count_label.text()


def test_lost_decision_shows_who_decided_and_when(qtbot, qapp, demo_cache):
    with promo_context(demo_cache, "mgr_sh001", qapp) as ctx:
        view = _open_view(qtbot, ctx)
        q = view.queue
        row = _select_and_wait(qtbot, view, 0)
        with qtbot.waitSignal(q.sig_loaded, timeout=20000):
            qtbot.mouseClick(q.approve_button, Qt.MouseButton.LeftButton)
        # the server refused it: the sync engine records the conflict (what it stores)
        decided_at = dt.datetime(2026, 11, 27, 2, 5, tzinfo=dt.UTC)  # 10:05 in Shanghai
        with demo_cache.session() as s:
            mid = s.scalar(select(func.max(Outbox.mutation_id)))
            s.get(Outbox, mid).status = "rejected"
            s.add(
                SyncConflict(
                    mutation_id=mid,
                    entity="promotion_decision",
                    entity_id=row.id,
                    mine={"proposal_id": row.id, "decision": "approve"},
                    theirs={
                        "decided_by_name": "张督导",
                        "decided_at": decided_at.isoformat(),
                        "decision": "reject",
                        "discount_pct": None,
                    },
                    message="张督导 already rejected this proposal at 2026-11-27 02:05 UTC.",
                    created_at=decided_at + dt.timedelta(minutes=30),
                )
            )
        with qtbot.waitSignal(q.sig_loaded, timeout=20000):
            ctx.sig_data_changed.emit(Changes().add("sync"))
        expected = "Conflict: 张督导 already rejected it at 11-27 10:05"
        assert _status(view, row.id) == expected
        qtbot.waitUntil(lambda: q.decision_status.text() == expected, timeout=20000)
        assert "1 conflicts" in q.count_label.text()
        # the shell's conflict screen lists the same conflict
        with demo_cache.session() as s:
            [c] = [c for c in open_conflicts(s) if c.entity == "promotion_decision"]
        assert c.entity_id == row.id and c.theirs["decided_by_name"] == "张督导"


def test_history_shows_forecast_against_actual(qtbot, qapp, demo_cache):
    with promo_context(demo_cache, "sup_sh", qapp) as ctx:
        from desktop.views.promotions import PromotionsView

        view = PromotionsView(ctx)
        qtbot.addWidget(view)
        qtbot.waitUntil(lambda: view.history.table.model.matching_rows > 0, timeout=30000)
        rows = view.history.table.model.visible_rows()
        assert {r.decision for r in rows} <= {"approve", "reject"}
        assert any(r.status == "finished" and r.days_run > 0 for r in rows)
        assert all(0 <= r.actual_sell_through <= 1 for r in rows)
        assert "decisions in the last 5 weeks" in view.history.summary.text()


def test_rule_editor_points_at_errors_and_previews(qtbot, qapp, demo_cache):
    with promo_context(demo_cache, "sup_sh", qapp) as ctx:
        from desktop.views.promotions import PromotionsView

        view = PromotionsView(ctx)
        qtbot.addWidget(view)
        view.show()
        r = view.rules
        qtbot.waitUntil(lambda: r.rule_list.count() >= 2, timeout=30000)
        view.tabs.setCurrentWidget(r)
        r.rule_list.setCurrentRow(0)  # the near-expiry rule
        with qtbot.waitSignal(r.sig_preview_shown, timeout=20000) as blocker:
            r.run_preview()
        assert blocker.args[0] > 0
        r.editor.setPlainText("当 已到临期预警日 且 到期前预计销量 < 批次数 时 触发 临期降价")
        text = r.error_label.text()
        assert "Unknown measure “批次数”" in text and "批次数量" in text
        assert "^^^^^^" in text.split("\n")[1]
        r.editor.setPlainText("WHEN days_to_expiry <= 1 THEN markdown")
        assert "valid" in r.error_label.text()
        with qtbot.waitSignal(r.sig_preview_shown, timeout=20000) as blocker:
            pass
        assert blocker.args[0] >= 0
        assert all(
            row.days_to_expiry is not None and row.days_to_expiry <= 1
            for row in r.preview.model.visible_rows()
        )
        qtbot.mouseClick(r.zh_button, Qt.MouseButton.LeftButton)
        assert r.editor.toPlainText() == "当 距过期天数 <= 1 时 触发 临期降价"


def test_queue_screenshot_on_the_demo_region(qtbot, qapp, demo_cache, artifacts):
    with promo_context(demo_cache, "sup_sh", qapp) as ctx:
        view = _open_view(qtbot, ctx)
        rows = view.queue.table.model.visible_rows()
        assert len({r.store_id for r in rows}) > 1  # the supervisor sees the region
        gift = next((i for i, r in enumerate(rows) if r.gift_name), 0)
        _select_and_wait(qtbot, view, gift)
        view.grab().save(str(artifacts / "promotions.png"))
        view.tabs.setCurrentIndex(1)
        qtbot.waitUntil(lambda: view.history.table.model.matching_rows > 0, timeout=30000)
        view.grab().save(str(artifacts / "promotions_history.png"))
        view.tabs.setCurrentIndex(2)
        with qtbot.waitSignal(view.rules.sig_preview_shown, timeout=30000):
            view.rules.run_preview()
        view.grab().save(str(artifacts / "promotions_rules.png"))


def test_queue_in_chinese(qtbot, qapp, demo_cache, artifacts):
    from core import i18n

    i18n.set_language("zh_CN")
    try:
        with promo_context(demo_cache, "mgr_sh001", qapp) as ctx:
            view = _open_view(qtbot, ctx)
            assert view.tabs.tabText(0) == "待审批"
            row = _select_and_wait(qtbot, view, 0)
            assert "批次" in view.queue.explanation.toPlainText()
            assert _status(view, row.id) == "待审批"
            view.grab().save(str(artifacts / "promotions_zh.png"))
    finally:
        i18n.set_language("en")


def test_supervisor_saves_a_rule_manager_cannot(qtbot, qapp, demo_cache):
    from desktop import screens
    from desktop.views import promotions  # registers the screen

    spec = screens._REGISTRY["promotions"]
    assert spec.factory is promotions.PromotionsView
    assert (spec.title, spec.order) == ("Promotions", 40)
    assert spec.roles == {"store_manager", "supervisor", "admin"}
    with promo_context(demo_cache, "mgr_sh001", qapp) as ctx:
        from desktop.views.promotions import PromotionsView

        view = PromotionsView(ctx)
        qtbot.addWidget(view)
        assert not view.rules.save_button.isEnabled()
    with promo_context(demo_cache, "sup_sh", qapp) as ctx:
        view = PromotionsView(ctx)
        qtbot.addWidget(view)
        r = view.rules
        qtbot.waitUntil(lambda: r.rule_list.count() >= 2, timeout=30000)
        r.rule_list.setCurrentRow(1)  # the clearance + gift rule
        text = "WHEN stock < safety_stock AND sales_7d_wow > 60% THEN clearance_gift"
        r.editor.setPlainText(text)
        r.max_spin.setValue(15)
        before = _outbox(demo_cache)
        with qtbot.waitSignal(ctx.sig_data_changed, timeout=20000):
            qtbot.mouseClick(r.save_button, Qt.MouseButton.LeftButton)
        assert _outbox(demo_cache) == before + 1
        assert r.save_status.text() == "Saved (not yet synced)."
        from core.models import PromotionRule

        with demo_cache.session() as s:
            rule = s.scalars(
                select(PromotionRule).where(PromotionRule.code == "HOT_LOW_GIFT")
            ).one()
            assert (rule.text, rule.max_discount_pct, rule.version) == (text, 15, 2)
