"""High-potential tags on their edges, customer lists, and the customer detail drill-down."""

from __future__ import annotations

import datetime as dt

import pytest

from core.cache import open_cache
from core.customers import customer_detail, high_potential_tags, list_customers, tag_windows
from core.models import Customer, CustomerMonthlyStats, GpsPoint, User, Visit, VisitNote
from core.mutations import actor_for_user
from tests.core.funnel_fixtures import add_opp, h, seed_org

TODAY = dt.date(2026, 11, 27)  # windows: Aug-Oct vs May-Jul (November is incomplete)


def test_windows_skip_the_current_month():
    last, prev = tag_windows(TODAY)
    assert last == [dt.date(2026, 8, 1), dt.date(2026, 9, 1), dt.date(2026, 10, 1)]
    assert prev == [dt.date(2026, 5, 1), dt.date(2026, 6, 1), dt.date(2026, 7, 1)]
    assert tag_windows(dt.date(2026, 2, 3))[1][0] == dt.date(2025, 8, 1)


def _stats(s, cid, prev_fen, last_fen, turnover, *, nov_fen=0):
    """Spread the totals over the months; November (excluded) gets ``nov_fen``."""
    last, prev = tag_windows(TODAY)
    for months, total in ((prev, prev_fen), (last, last_fen)):
        share = [total // 3, total // 3, total - 2 * (total // 3)]
        for m, fen in zip(months, share, strict=True):
            s.add(
                CustomerMonthlyStats(
                    customer_id=cid, month=m, purchases_fen=fen, inventory_turnover=turnover
                )
            )
    s.add(
        CustomerMonthlyStats(
            customer_id=cid,
            month=dt.date(2026, 11, 1),
            purchases_fen=nov_fen,
            inventory_turnover=turnover,
        )
    )


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "c.db")
    with c.session() as s:
        seed_org(s)
        for cid, seg in ((4, "超市"), (5, "超市"), (6, "便利店"), (7, "便利店")):
            s.add(
                Customer(
                    id=cid,
                    region_id=1,
                    store_id=10,
                    rep_id=100,
                    name=f"客户{cid}",
                    tier="B",
                    segment=seg,
                    lat=31.2,
                    lon=121.45,
                )
            )
        s.flush()
        # segment 超市: customers 1,2,4,5 turnover 4.0, 6.0, 5.0, 5.0 -> average 5.0
        _stats(s, 1, 10000, 13500, 4.0)  # exactly +35 %, exactly 20 % below: no tag
        _stats(s, 2, 10000, 13501, 6.0, nov_fen=999999)  # +35.01 %: tagged
        _stats(s, 4, 0, 50000, 5.0)  # nothing before: no growth rate
        _stats(s, 5, 10000, 9000, 5.0)
        # segment 便利店: 3.99 and 6.0 -> average 4.995, 20 % below = 3.996: 3.99 is tagged
        _stats(s, 6, 10000, 10000, 3.99)
        _stats(s, 7, 10000, 10000, 6.0)
    yield c
    c.close()


def test_tags_on_edge_values(cache):
    with cache.session() as s:
        tags = high_potential_tags(s, TODAY)
    assert set(tags) == {2, 6}
    (up,) = tags[2]
    assert up.kind == "purchases_up" and up.values["growth_pct"] == pytest.approx(35.01)
    assert "35.0%" in up.reason and "¥135" in up.reason
    (low,) = tags[6]
    assert low.kind == "low_turnover"
    assert low.values["segment_avg"] == pytest.approx(4.995)
    assert low.values["below_pct"] == pytest.approx((4.995 - 3.99) / 4.995 * 100)


def test_customer_list_filters_by_tag(cache):
    with cache.session() as s:
        everyone = list_customers(s, TODAY)
        assert len(everyone) == 7
        assert [r.id for r in list_customers(s, TODAY, high_potential_only=True)] == [2, 6]
        assert [r.id for r in list_customers(s, TODAY, tag="low_turnover")] == [6]
        assert {r.id for r in list_customers(s, TODAY, tier="A")} == {1, 3}
        sup = actor_for_user(s, s.get(User, 1))
        assert 3 not in {r.id for r in list_customers(s, TODAY, actor=sup)}


def test_customer_detail_visits_history_notes(cache):
    base = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
    with cache.session() as s:
        add_opp(
            s,
            "o3",
            [
                ("lead", h(0), 0),
                ("opportunity", h(20), 800),
                ("quote", h(50), 800),
                ("opportunity", h(100), 700),
            ],
        )
        # v1 checked in 5 m from the customer with a trace; v2 1.1 km away, no trace that day
        s.add(
            Visit(
                id="v1",
                rep_id=100,
                customer_id=1,
                opportunity_id="o3",
                check_in_at=base,
                check_out_at=base + dt.timedelta(minutes=30),
                check_in_lat=31.20004,
                check_in_lon=121.45003,
                voice_summary="客户想加订鲜奶",
            )
        )
        s.add(
            Visit(
                id="v2",
                rep_id=100,
                customer_id=1,
                check_in_at=base - dt.timedelta(days=20),
                check_out_at=base - dt.timedelta(days=20, minutes=-20),
                check_in_lat=31.21,
                check_in_lon=121.45,
            )
        )
        for k in range(0, 61):  # a fix every 30 s at the customer during v1
            s.add(
                GpsPoint(
                    rep_id=100, ts=base + dt.timedelta(seconds=30 * k), lat=31.20001, lon=121.45001
                )
            )
        s.flush()
        s.add(
            VisitNote(
                id="n1",
                visit_id="v1",
                author_id=1,
                author_name="上海主管",
                text="下周带样品",
                created_at=base + dt.timedelta(hours=2),
            )
        )
        s.flush()
        detail = customer_detail(s, 1, TODAY)
        assert customer_detail(s, 999, TODAY) is None
        mgr_js = actor_for_user(s, s.get(User, 2))
        assert customer_detail(s, 1, TODAY, actor=mgr_js) is None
    assert detail is not None and detail.name == "甲客户" and detail.tier == "A"
    assert [v.id for v in detail.visits] == ["v1", "v2"]
    v1, v2 = detail.visits
    assert v1.evidence.checkin_distance_m == pytest.approx(5, abs=1)
    assert not v1.evidence.flagged and v1.evidence.score >= 90 and v1.evidence.has_trace
    assert v2.evidence.flagged and v2.evidence.checkin_distance_m > 1000
    assert v1.dwell_minutes == pytest.approx(30)
    (opp,) = detail.opportunities
    assert [(st.stage, st.backward) for st in opp.steps] == [
        ("lead", False),
        ("opportunity", False),
        ("quote", False),
        ("opportunity", True),
    ]
    assert [(n.kind, n.text) for n in detail.notes] == [
        ("note", "下周带样品"),
        ("voice_summary", "客户想加订鲜奶"),
    ]
    assert detail.tags == []
