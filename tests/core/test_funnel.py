"""Funnel maths on a hand-built history; every expected figure is worked out in comments."""

from __future__ import annotations

import pytest

from core.cache import open_cache
from core.funnel import (
    FunnelMode,
    FunnelQuery,
    PeriodBasis,
    compute_funnel,
    funnel_filter_options,
    opportunities_at_stage,
)
from core.models import User
from core.mutations import actor_for_user
from tests.core.funnel_fixtures import add_opp, d, h, seed_org


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "f.db")
    with c.session() as s:
        seed_org(s)
        # o1 straight through every stage
        add_opp(
            s,
            "o1",
            [
                ("lead", h(0), 100),
                ("visit", h(24), 100),
                ("opportunity", h(48), 1000),
                ("quote", h(72), 1000),
                ("contract", h(120), 1200),
                ("payment", h(240), 1200),
            ],
        )
        # o2 skips the visit
        add_opp(s, "o2", [("lead", h(0), 0), ("opportunity", h(10), 500), ("quote", h(30), 500)])
        # o3 reopened: quote -> back to opportunity -> quote -> contract
        add_opp(
            s,
            "o3",
            [
                ("lead", h(0), 0),
                ("visit", h(5), 0),
                ("opportunity", h(20), 800),
                ("quote", h(50), 800),
                ("opportunity", h(100), 700),
                ("quote", h(150), 900),
                ("contract", h(200), 900),
            ],
        )
        # o4 lead only, tier-B customer
        add_opp(s, "o4", [("lead", h(2), 0)], customer_id=2)
        # o5 other region / rep / store
        add_opp(
            s,
            "o5",
            [("lead", h(1), 0), ("visit", h(3), 0), ("opportunity", h(7), 300)],
            customer_id=3,
            rep_id=200,
            store_id=20,
        )
        # o6 lead before the period, visit inside it
        add_opp(s, "o6", [("lead", d(-5), 0), ("visit", d(1), 0)])
        # o7 entirely after the period
        add_opp(s, "o7", [("lead", d(31), 0)])
        # o8 lead late in the period, paid after the period ended
        add_opp(s, "o8", [("lead", d(29), 0), ("visit", d(29.5), 0), ("payment", d(35), 50)])
    yield c
    c.close()


Q = FunnelQuery(start=d(0), end=d(30))


def counts(result):
    return [s.count for s in result.stages]


def test_ordered_cohort_counts_amounts_and_conversion(cache):
    with cache.session() as s:
        r = compute_funnel(s, Q)
    # cohort = o1 o2 o3 o4 o5 o8; o2 drops out at visit (skipped), o8's payment is after end
    assert r.opportunities == 6
    assert counts(r) == [6, 4, 3, 2, 2, 1]
    assert [st.amount_fen for st in r.stages] == [100, 100, 2100, 1800, 2100, 1200]
    assert r.stages[0].next_conversion is None
    assert [st.next_conversion for st in r.stages[1:]] == pytest.approx(
        [4 / 6, 3 / 4, 2 / 3, 1.0, 0.5]
    )
    assert [st.cumulative_conversion for st in r.stages[1:]] == pytest.approx(
        [4 / 6, 3 / 6, 2 / 6, 2 / 6, 1 / 6]
    )
    assert r.reopened == 1
    assert r.stage("visit").skipped == 1  # o2 reached opportunity without a visit
    assert r.stage("lead").skipped == 0


def test_median_time_in_stage_sums_spells_of_reopened(cache):
    with cache.session() as s:
        r = compute_funnel(s, Q)
    # lead: o1 24, o2 10, o3 5, o5 2, o8 12 (o4 still open) -> 10
    # visit: o1 24, o3 15, o5 4 (o8's next event is after end) -> 15
    # opportunity: o1 24, o3 30+50=80 -> 52 ; quote: o1 48, o3 50+50 -> 74 ; contract: o1 120
    assert [st.median_hours for st in r.stages] == [10, 15, 52, 74, 120, None]


def test_any_stage_mode_counts_skippers(cache):
    with cache.session() as s:
        r = compute_funnel(s, FunnelQuery(start=d(0), end=d(30), mode=FunnelMode.ANY))
    assert counts(r) == [6, 4, 4, 3, 2, 1]
    assert r.stage("opportunity").amount_fen == 1000 + 500 + 800 + 300
    assert r.stage("quote").amount_fen == 1000 + 500 + 800  # o3's first quote
    assert r.stage("opportunity").next_conversion == pytest.approx(1.0)


def test_activity_basis_counts_entries_inside_period(cache):
    q = FunnelQuery(start=d(0), end=d(30), basis=PeriodBasis.ACTIVITY)
    with cache.session() as s:
        r = compute_funnel(s, q)
    # o6 joins: its lead (d-5) is outside, its visit (d1, after an in-order lead) is inside
    assert r.opportunities == 7
    assert counts(r) == [6, 5, 3, 2, 2, 1]


def test_filters_region_rep_tier_store(cache):
    with cache.session() as s:
        assert counts(compute_funnel(s, FunnelQuery(d(0), d(30), region_id=1))) == [
            5,
            3,
            2,
            2,
            2,
            1,
        ]
        assert counts(compute_funnel(s, FunnelQuery(d(0), d(30), rep_id=200))) == [1, 1, 1, 0, 0, 0]
        assert counts(compute_funnel(s, FunnelQuery(d(0), d(30), tier="B"))) == [1, 0, 0, 0, 0, 0]
        assert counts(compute_funnel(s, FunnelQuery(d(0), d(30), store_id=20))) == [
            1,
            1,
            1,
            0,
            0,
            0,
        ]


def test_empty_period_has_no_data_and_no_ratios(cache):
    with cache.session() as s:
        r = compute_funnel(s, FunnelQuery(start=d(60), end=d(90)), compare_previous=True)
    assert r.is_empty and r.opportunities == 0
    assert all(st.next_conversion is None and st.median_hours is None for st in r.stages)
    # previous period d30..d60 holds o7 (lead only)
    assert r.previous is not None and counts(r.previous) == [1, 0, 0, 0, 0, 0]


def test_previous_period_seen_as_it_stood_at_its_end(cache):
    with cache.session() as s:
        r = compute_funnel(s, Q, compare_previous=True)
    prev = r.previous
    assert prev is not None
    assert (prev.query.start, prev.query.end) == (d(-30), d(0))
    # cohort d-30..d0 = o6; its visit (d1) happened after that period ended
    assert counts(prev) == [1, 0, 0, 0, 0, 0]


def test_scope_limits_what_a_user_sees(cache):
    with cache.session() as s:
        sup = actor_for_user(s, s.get(User, 1))
        mgr = actor_for_user(s, s.get(User, 2))
        assert counts(compute_funnel(s, Q, actor=sup))[0] == 5
        assert counts(compute_funnel(s, Q, actor=mgr)) == [1, 1, 1, 0, 0, 0]
        stores, reps = funnel_filter_options(s, None, sup)
        assert [o.id for o in stores] == [10] and [o.id for o in reps] == [100]


def test_drill_lists_the_counted_opportunities(cache):
    with cache.session() as s:
        rows = opportunities_at_stage(s, Q, "quote")
        assert {r.id for r in rows} == {"o1", "o3"}
        o3 = next(r for r in rows if r.id == "o3")
        assert o3.reopened and o3.amount_fen == 800 and o3.entered_stage_at == h(50)
        assert o3.customer_name == "甲客户" and o3.rep_name == "张伟" and o3.store_name == "徐汇店"
        any_q = FunnelQuery(d(0), d(30), mode=FunnelMode.ANY)
        assert {r.id for r in opportunities_at_stage(s, any_q, "quote")} == {"o1", "o2", "o3"}
        assert opportunities_at_stage(s, FunnelQuery(d(60), d(90)), "lead") == []
        with pytest.raises(ValueError):
            opportunities_at_stage(s, Q, "won")
