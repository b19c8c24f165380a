"""Funnel screen: click a stage, then an opportunity, and see the customer's visit."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from core.cache import open_cache
from core.models import Visit
from tests.core.funnel_fixtures import add_opp, h, seed_org
from tests.desktop.funnel_helpers import supervisor_context

pytestmark = pytest.mark.gui

TODAY = dt.date(2026, 11, 27)


@pytest.fixture
def small_cache(tmp_path):
    c = open_cache(tmp_path / "g.db")
    with c.session() as s:
        seed_org(s)
        add_opp(
            s,
            "o1",
            [
                ("lead", h(0), 100),
                ("visit", h(24), 100),
                ("opportunity", h(48), 1000),
                ("quote", h(72), 1000),
                ("contract", h(120), 120000),
                ("payment", h(240), 120000),
            ],
        )
        add_opp(
            s,
            "o2",
            [("lead", h(0), 0), ("opportunity", h(10), 500), ("quote", h(30), 500)],
            customer_id=2,
        )
        add_opp(
            s, "o5", [("lead", h(1), 0), ("visit", h(3), 0)], customer_id=3, rep_id=200, store_id=20
        )
        s.add(
            Visit(
                id="v-gui",
                rep_id=100,
                customer_id=1,
                opportunity_id="o1",
                check_in_at=h(24),
                check_out_at=h(24.5),
                check_in_lat=31.2001,
                check_in_lon=121.4501,
                voice_summary="客户同意试单",
            )
        )
    yield c
    c.close()


def _click_stage(qtbot, view, stage: str) -> None:
    with qtbot.waitSignal(view.sig_stage_loaded, timeout=10000) as blocker:
        qtbot.mouseClick(
            view.chart.plot.viewport(),
            Qt.MouseButton.LeftButton,
            pos=view.chart.plot.viewport().mapFrom(view.chart, view.chart.stage_pos(stage)),
        )
    assert blocker.args[0] == stage


def _activate_row(qtbot, table, row: int) -> None:
    idx = table.model.index(row, 0)
    rect = table.view.visualRect(idx)
    # a real double-click: press/release, then the second press arrives as a double-click
    qtbot.mouseClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_drill_from_stage_to_visit(qtbot, qapp, small_cache, artifacts):
    from desktop.views.funnel import FunnelView

    with supervisor_context(small_cache, "sup_sh", TODAY, qapp) as ctx:
        view = FunnelView(ctx)
        qtbot.addWidget(view)
        view.resize(1400, 800)
        view.show()
        qtbot.waitUntil(lambda: view.result is not None, timeout=10000)
        # region SH only: o1 and o2 (o5 is in Jiangsu)
        assert [s.count for s in view.result.stages] == [2, 1, 1, 1, 1, 1]
        assert view.chart.value_items[0].toPlainText().startswith("2")
        # hovering a band shows its figures
        viewport = view.chart.plot.viewport()
        qtbot.mouseMove(viewport, viewport.mapFrom(view.chart, view.chart.stage_pos("visit")))
        qtbot.waitUntil(lambda: view.chart.hover_label.text().startswith("Visit: 1"), timeout=5000)
        assert "from previous stage 50%" in view.chart.hover_label.text()
        assert "1 skipped this stage" in view.chart.hover_label.text()  # o2 skipped the visit
        _click_stage(qtbot, view, "quote")
        assert view.opp_table.model.matching_rows == 1
        assert "Quote" in view.stage_title.text()
        assert view.opp_table.model.row(0).customer_name == "甲客户"
        view.grab().save(str(artifacts / "funnel_small_stage.png"))
        with qtbot.waitSignal(view.detail.sig_loaded, timeout=20_000):
            _activate_row(qtbot, view.opp_table, 0)
        assert view.right.currentWidget() is view.detail
        assert "甲客户" in view.detail.title.text()
        visits = view.detail.visits.model
        assert visits.matching_rows == 1
        shown = [visits.data(visits.index(0, c)) for c in range(visits.columnCount())]
        assert "2026-11-02 08:00" in shown[0]  # h(24) in Shanghai time
        assert "客户同意试单" in shown
        assert any(s.endswith(" m") for s in shown if s)  # check-in distance
        assert view.detail.history.topLevelItemCount() == 1
        assert view.detail.history.topLevelItem(0).childCount() == 6
        view.grab().save(str(artifacts / "funnel_small_customer.png"))
        view.detail.back_button.click()
        assert view.right.currentWidget() is view.lists


def test_filters_and_empty_period(qtbot, qapp, small_cache):
    from desktop.views.funnel import FunnelView

    with supervisor_context(small_cache, "sup_sh", TODAY, qapp) as ctx:
        view = FunnelView(ctx)
        qtbot.addWidget(view)
        qtbot.waitUntil(lambda: view.result is not None, timeout=10000)
        with qtbot.waitSignal(view.sig_loaded, timeout=10000):
            view.tier_combo.setCurrentIndex(view.tier_combo.findData("B"))
        assert [s.count for s in view.result.stages] == [1, 0, 0, 0, 0, 0]
        with qtbot.waitSignal(view.sig_loaded, timeout=10000):
            view.mode_combo.setCurrentIndex(view.mode_combo.findData("any"))
        assert [s.count for s in view.result.stages] == [1, 0, 1, 1, 0, 0]
        with qtbot.waitSignal(view.sig_loaded, timeout=10000):
            ctx.selection.set(day=dt.date(2026, 10, 15))
        assert view.result.is_empty
        assert "no opportunities" in view.summary.text()
        assert view.chart.empty_item.toPlainText() != ""


DEMO_TODAY = dt.date(2026, 11, 27)


def test_demo_funnel_drill_to_visit_and_screenshot(qtbot, qapp, demo_cache, artifacts):
    from desktop.views.funnel import FunnelView

    with supervisor_context(demo_cache, "sup_sh", DEMO_TODAY, qapp) as ctx:
        view = FunnelView(ctx)
        qtbot.addWidget(view)
        view.resize(1600, 900)
        view.show()
        qtbot.waitUntil(lambda: view.result is not None, timeout=20000)
        counts = [s.count for s in view.result.stages]
        assert counts[0] > 100 and all(c > 0 for c in counts)
        assert view.result.previous is not None
        assert view.stage_table.model.matching_rows == 6
        qtbot.waitUntil(lambda: view.rep_combo.count() > 5, timeout=10000)
        _click_stage(qtbot, view, "contract")
        assert view.opp_table.model.matching_rows == view.result.stage("contract").count
        # high-potential tags are shown beside the customers that carry them
        from core.customers import high_potential_tags

        model = view.opp_table.model
        tag_col = [c.key for c in model.columns].index("tags")
        with demo_cache.session() as s:
            tagged = high_potential_tags(s, DEMO_TODAY)
        shown = {
            model.row(i).customer_id: model.data(model.index(i, tag_col))
            for i in range(model.rowCount())
        }
        assert {c for c, text in shown.items() if text} == set(shown) & set(tagged)
        assert any(shown.values())  # ~16 % of demo customers are tagged; 61 rows hold some
        view.grab().save(str(artifacts / "funnel.png"))
        # the first opportunity's customer, with its visits and their evidence
        with qtbot.waitSignal(view.detail.sig_loaded, timeout=20000) as blocker:
            _activate_row(qtbot, view.opp_table, 0)
        detail = blocker.args[0]
        assert detail.id == view.opp_table.model.row(0).customer_id
        assert view.detail.visits.model.matching_rows == len(detail.visits) > 0
        model = view.detail.visits.model
        evidence_col = [c.key for c in model.columns].index("evidence")
        text = model.data(model.index(0, evidence_col))
        assert text.startswith(("✓", "⚠", "○"))
        assert view.detail.history.topLevelItemCount() >= 1
        view.grab().save(str(artifacts / "funnel_customer.png"))
        # the high-potential tab lists tagged customers of the region
        view.detail.back_button.click()
        view.lists.setCurrentIndex(1)
        qtbot.waitUntil(lambda: view.customer_table.model.matching_rows > 0, timeout=10000)
        assert all(r.tags for r in view.customer_table.model.visible_rows())


def test_demo_funnel_and_alerts_in_chinese(qtbot, qapp, demo_cache, artifacts):
    from core import i18n
    from desktop.views.alerts import AlertsView
    from desktop.views.funnel import FunnelView

    i18n.set_language("zh_CN")
    try:
        with supervisor_context(demo_cache, "sup_sh", DEMO_TODAY, qapp) as ctx:
            view = FunnelView(ctx)
            qtbot.addWidget(view)
            view.resize(1600, 900)
            view.show()
            qtbot.waitUntil(lambda: view.result is not None, timeout=20000)
            assert view.chart.name_items[0].toPlainText() == "线索"
            assert "万" in view.chart.value_items[0].toPlainText()
            assert "商机" in view.summary.text()
            _click_stage(qtbot, view, "payment")
            view.grab().save(str(artifacts / "funnel_zh.png"))
            alerts = AlertsView(ctx)
            qtbot.addWidget(alerts)
            alerts.resize(1500, 800)
            alerts.show()
            qtbot.waitUntil(lambda: alerts.table.model.matching_rows > 0, timeout=20000)
            assert alerts.table.model.data(alerts.table.model.index(0, 0)) == "已升级"
            alerts.grab().save(str(artifacts / "alerts_zh.png"))
    finally:
        i18n.set_language("en")


def test_demo_customer_detail_flags_a_suspicious_visit(qtbot, qapp, demo_cache, artifacts):
    from PySide6.QtWidgets import QStyleOptionViewItem

    from core.demo import demo_truth
    from core.models import Customer, Visit
    from desktop.views.customer_detail import CustomerDetailView

    truth = demo_truth(demo_cache.engine)["suspicious_visits"]
    far = sorted(v for v, kind in truth.items() if kind == "far_checkin")
    with supervisor_context(demo_cache, "sup_sh", DEMO_TODAY, qapp) as ctx:
        with demo_cache.session() as s:
            visit = next(
                v
                for v in (s.get(Visit, vid) for vid in far)
                if ctx.actor.can_store(s.get(Customer, v.customer_id).store_id)
            )
            visit_id, customer_id = visit.id, visit.customer_id
        view = CustomerDetailView(ctx)
        qtbot.addWidget(view)
        view.resize(1300, 700)
        view.show()
        with qtbot.waitSignal(view.sig_loaded, timeout=20000):
            view.show_customer(customer_id)
        model = view.visits.model
        i = next(i for i in range(model.rowCount()) if model.row(i).id == visit_id)
        row = model.row(i)
        assert row.evidence.flagged and row.evidence.checkin_distance_m > 300
        evidence_col = [c.key for c in model.columns].index("evidence")
        assert model.data(model.index(i, evidence_col)).startswith("⚠ Checked in")
        opt = QStyleOptionViewItem()
        view.visits.view.itemDelegate().initStyleOption(opt, model.index(i, 0))
        assert opt.backgroundBrush.color().name() == "#fde2e1"
        view.visits.view.scrollTo(model.index(i, 0))
        view.grab().save(str(artifacts / "customer_detail_flagged.png"))
