"""Promotion rules, maths, gift choice, proposals and decisions on hand-built stores.

Every expected number is worked out in the comments from the fixture's figures.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.models import Outbox, PromotionDecision, PromotionProposal, SkuAffinity
from core.mutations import Conflict, Rejected, ScopeDenied, apply_local
from core.promotions import maths as pm
from core.promotions.engine import (
    choose_gift,
    evaluate_rule,
    generate_proposals,
    load_snapshot,
    preview_rule,
)
from core.promotions.language import RuleSyntaxError, parse_rule
from core.promotions.outcome import promotion_outcomes
from core.promotions.queue import (
    decision_sync_states,
    list_proposals,
    proposal_detail,
    queue_rows,
)
from core.promotions.seed import DEFAULT_RULES
from tests.core.promotions_fixtures import (
    AS_OF,
    MANAGER_1,
    MANAGER_2,
    NOW,
    SUPERVISOR,
    TODAY,
    add_lot,
    add_sku,
    affinity,
    memory_session,
    rules,
    seed_org,
    sell,
    sell_days,
    stock,
)

EXPIRY = parse_rule(DEFAULT_RULES[0].text)
SEED = parse_rule(DEFAULT_RULES[1].text)


@pytest.fixture
def s():
    with memory_session() as session:
        seed_org(session)
        yield session


# --------------------------------------------------------------------------- near-expiry


def test_near_expiry_triggers_when_alert_date_is_today_and_sales_fall_short(s) -> None:
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    lot = add_lot(s, 1, 1, qty=30, expiry_in=5)  # alert date = expiry - 5 = today
    sell(s, 1, 1, last7=14)  # 2/day -> 10 expected in 5 days < 30
    matches = evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY))
    assert [(m.lot_id, m.values["expected_sales_before_expiry"]) for m in matches] == [
        (lot.id, 10.0)
    ]


def test_near_expiry_alert_date_tomorrow_does_not_trigger(s) -> None:
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=30, expiry_in=6)  # alert date tomorrow
    sell(s, 1, 1, last7=14)
    assert evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY)) == []
    # ... and it does the next day (the lot's alert date has come)
    assert len(evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY + dt.timedelta(days=1)))) == 1


def test_near_expiry_expected_sales_equal_to_qty_does_not_trigger(s) -> None:
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=10, expiry_in=5)
    sell(s, 1, 1, last7=14)  # 2/day x 5 days = 10 == qty: sells out, no markdown
    assert evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY)) == []


def test_near_expiry_counts_earlier_lots_first_fefo(s) -> None:
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=6, expiry_in=3)  # 2/day x 3 = 6: clears itself
    late = add_lot(s, 1, 1, qty=8, expiry_in=5)  # 10 expected minus 6 ahead = 4 < 8
    sell(s, 1, 1, last7=14)
    matches = evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY))
    assert [m.lot_id for m in matches] == [late.id]
    assert matches[0].values["units_ahead"] == 6
    assert matches[0].values["expected_sales_before_expiry"] == 4.0


def test_expired_and_written_off_lots_are_ignored(s) -> None:
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=30, expiry_in=-1)  # expired yesterday: write-off, not promotion
    gone = add_lot(s, 1, 1, qty=30, expiry_in=2)
    gone.written_off_qty = 30
    s.flush()
    assert evaluate_rule(EXPIRY, load_snapshot(s, 1, TODAY)) == []


def test_markdown_maths_by_hand() -> None:
    # rate 2/day, 5 days, 30 units: needs x3 volume; (1-d)^-2.5 = 3 -> d = 35.6% -> 40%
    m = pm.markdown_maths(
        qty=30,
        days_to_expiry=5,
        sales_7d=14,
        sales_28d=50,
        ahead=0,
        price_fen=1000,
        cost_fen=600,
        min_pct=10,
        max_pct=50,
    )
    assert m.discount_pct == 40
    assert m.expected_units_without == 10.0
    assert m.sell_through_without == pytest.approx(1 / 3, abs=1e-4)
    # 0.6^-2.5 = 3.586 -> 35.9 units of demand, capped at the 30 on hand
    assert m.expected_units_with == 30.0
    assert m.sell_through_with == 1.0
    assert m.waste_avoided_fen == 20 * 600
    assert m.margin_given_up_fen == 30 * 1000 * 40 // 100
    assert m.value_at_risk_fen == 20 * 600


def test_markdown_is_clamped_to_the_rule_bounds() -> None:
    m = pm.markdown_maths(
        qty=100,
        days_to_expiry=2,
        sales_7d=7,
        sales_28d=28,
        ahead=0,
        price_fen=1000,
        cost_fen=600,
        min_pct=10,
        max_pct=50,
    )
    assert m.discount_pct == 50  # would need x50 volume
    assert m.sell_through_with < 1.0
    m = pm.markdown_maths(
        qty=11,
        days_to_expiry=5,
        sales_7d=14,
        sales_28d=50,
        ahead=0,
        price_fen=1000,
        cost_fen=600,
        min_pct=10,
        max_pct=50,
    )
    assert m.discount_pct == 10  # x1.1 needs ~3.7%: the rule's floor applies


def test_no_sales_proposes_max_discount_and_says_so(s) -> None:
    rows = rules(s)
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=10, expiry_in=2)
    sell(s, 1, 1, last7=0, prev7=0)
    [p] = generate_proposals(s, [1], NOW)
    assert p.discount_pct == rows["NEAR_EXPIRY"].max_discount_pct
    assert "No sales in the last 7 days" in p.explanation


# --------------------------------------------------------------------------- seed rule


@pytest.mark.parametrize(
    ("stock_units", "safety", "prev7", "last7", "fires"),
    [
        (19, 20, 1000, 1401, True),  # +40.1%, below safety stock
        (19, 20, 1000, 1400, False),  # exactly +40%: not "more than"
        (20, 20, 1000, 1500, False),  # stock == safety stock: not below
        (19, 20, 0, 50, False),  # nothing sold the week before: change undefined
        (0, 20, 10, 15, True),  # +50%, nothing left
    ],
)
def test_seed_rule_edges(s, stock_units, safety, prev7, last7, fires) -> None:
    add_sku(s, 1)
    stock(s, 1, 1, safety=safety, max_stock=100)
    if stock_units:
        add_lot(s, 1, 1, qty=stock_units, expiry_in=30)
    sell(s, 1, 1, last7=last7, prev7=prev7)
    assert bool(evaluate_rule(SEED, load_snapshot(s, 1, TODAY))) is fires


def test_nothing_on_hand_triggers_the_rule_but_makes_no_proposal(s) -> None:
    rules(s)
    add_sku(s, 1)
    stock(s, 1, 1, safety=20, max_stock=100)
    sell(s, 1, 1, last7=15, prev7=10)
    assert len(evaluate_rule(SEED, load_snapshot(s, 1, TODAY))) == 1
    assert generate_proposals(s, [1], NOW) == []


def test_seed_rule_ignores_skus_outside_the_assortment(s) -> None:
    add_sku(s, 1)
    add_lot(s, 1, 1, qty=1, expiry_in=30)  # stock but no store_skus row (no safety stock)
    sell(s, 1, 1, last7=20, prev7=10)
    assert evaluate_rule(SEED, load_snapshot(s, 1, TODAY)) == []


# --------------------------------------------------------------------------- gift choice


def _hot_sku_with_partners(s) -> None:
    """SKU 1 is the hot, low SKU; 2..6 are bought with it (see each line)."""
    add_sku(s, 1, name="鲜牛奶")
    stock(s, 1, 1, safety=20, max_stock=100)
    add_lot(s, 1, 1, qty=10, expiry_in=20)
    sell(s, 1, 1, last7=28, prev7=14)  # +100%
    for sku in (2, 3, 4, 5, 6):
        add_sku(s, sku, alert_days=5, cost=300)
    # 2: best lift but its lot is in the alert window now -> never a gift
    stock(s, 1, 2, safety=5, max_stock=10)
    add_lot(s, 1, 2, qty=80, expiry_in=4)
    affinity(s, 1, 2, lift=3.0)
    # 3: overstocked (100 > max 40), lots far from expiry -> the gift
    stock(s, 1, 3, safety=5, max_stock=40)
    add_lot(s, 1, 3, qty=100, expiry_in=60)
    sell(s, 1, 3, last7=7, prev7=7, earlier14=14)
    affinity(s, 3, 1, lift=2.0)  # stored the other way round: still found
    # 4: better lift, but sells fast and is under its max -> not slow, not overstocked
    stock(s, 1, 4, safety=5, max_stock=40)
    add_lot(s, 1, 4, qty=20, expiry_in=60)
    sell(s, 1, 4, last7=70, prev7=70, earlier14=140)
    affinity(s, 1, 4, lift=2.5)
    # 5: slow, good lift, but a lot enters its alert window during the 7-day offer
    stock(s, 1, 5, safety=5, max_stock=200)
    add_lot(s, 1, 5, qty=50, expiry_in=8)  # alert date = today + 3
    affinity(s, 1, 5, lift=2.8)
    # 6: overstocked but bought with it less than chance
    stock(s, 1, 6, safety=5, max_stock=10)
    add_lot(s, 1, 6, qty=90, expiry_in=90)
    affinity(s, 1, 6, lift=0.8)


def test_gift_is_slow_or_overstocked_and_never_near_expiry(s) -> None:
    _hot_sku_with_partners(s)
    snap = load_snapshot(s, 1, TODAY)
    gift = choose_gift(s, snap, 1, TODAY + dt.timedelta(days=6))
    assert gift is not None
    assert gift.sku_id == 3
    assert gift.reason == "overstock"
    # 28-day rate 1/day: keeps 7 days of cover -> 93 surplus (more than the 60 over max)
    assert gift.excess_units == 93
    # once 3 is gone too, nothing qualifies
    s.execute(SkuAffinity.__table__.delete().where(SkuAffinity.other_sku_id == 1))
    assert choose_gift(s, load_snapshot(s, 1, TODAY), 1, TODAY + dt.timedelta(days=6)) is None


def test_clearance_gift_proposal_carries_gift_and_maths(s) -> None:
    _hot_sku_with_partners(s)
    rules(s)
    added = generate_proposals(s, [1], NOW)
    gift_props = [p for p in added if p.template == "clearance_gift"]
    assert len(gift_props) == 1
    p = gift_props[0]
    assert p.sku_id == 1 and p.gift_sku_id == 3
    assert p.discount_pct == 5  # the rule's minimum: demand is already up
    m = p.maths
    assert m["on_hand"] == 10 and m["sales_7d"] == 28 and m["sales_prev_7d"] == 14
    assert m["sales_7d_wow"] == 100.0
    assert m["gift_name"] == "商品3"
    # 4/day x 1.137 (5% off) x 7 days = 31.8 > 10 on hand: sells out, 10 gifts go out
    assert m["gift_units"] == 10
    assert m["margin_given_up_fen"] == round(10 * 1000 * 0.05) + 10 * 300
    assert "商品3" in p.explanation and "lift 2.0" in p.explanation


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    partners=st.lists(
        st.tuples(
            st.floats(0.5, 5.0),  # lift
            st.integers(0, 120),  # qty
            st.one_of(st.none(), st.integers(0, 40)),  # expiry in days
            st.integers(0, 60),  # 28-day sales
            st.integers(1, 100),  # max stock
        ),
        min_size=1,
        max_size=6,
    )
)
def test_gift_never_near_expiry_property(partners) -> None:
    with memory_session() as s:
        seed_org(s)
        add_sku(s, 1)
        stock(s, 1, 1, safety=20, max_stock=100)
        for i, (lift, qty, exp, s28, mx) in enumerate(partners, start=2):
            add_sku(s, i, alert_days=5)
            stock(s, 1, i, safety=1, max_stock=mx)
            if qty:
                add_lot(s, 1, i, qty=qty, expiry_in=exp)
            sell(s, 1, i, last7=s28 // 4, prev7=s28 // 4, earlier14=s28 - 2 * (s28 // 4))
            affinity(s, 1, i, lift=lift)
        offer_end = TODAY + dt.timedelta(days=6)
        snap = load_snapshot(s, 1, TODAY)
        gift = choose_gift(s, snap, 1, offer_end)
        if gift is not None:
            lots = snap.skus[gift.sku_id].lots
            assert all(lot.alert_date is None or lot.alert_date > offer_end for lot in lots)
            assert gift.lift > 1.0 and gift.excess_units > 0


# --------------------------------------------------------------------------- generation


def _expiry_case(s) -> None:
    rules(s)
    add_sku(s, 1, alert_days=5)
    stock(s, 1, 1, safety=10, max_stock=60)
    add_lot(s, 1, 1, qty=30, expiry_in=5, lot_id=501)
    sell(s, 1, 1, last7=14)
    add_sku(s, 2, alert_days=5)
    stock(s, 2, 2, safety=10, max_stock=60)
    add_lot(s, 2, 2, qty=30, expiry_in=2, lot_id=502)
    sell(s, 2, 2, last7=7)


def test_generate_is_idempotent_and_records_generated_at(s) -> None:
    _expiry_case(s)
    first = generate_proposals(s, [1, 2], NOW)
    assert sorted(p.lot_id for p in first) == [501, 502]
    assert all(p.generated_at == NOW for p in first)
    assert generate_proposals(s, [1, 2], NOW) == []
    assert generate_proposals(s, [1, 2], NOW + dt.timedelta(hours=3)) == []
    assert s.scalar(select(func.count()).select_from(PromotionProposal)) == 2
    p = next(p for p in first if p.lot_id == 501)
    assert p.maths["days_to_expiry"] == 5 and p.maths["on_hand"] == 30
    assert p.maths["sales_7d"] == 14 and p.maths["sales_28d"] == 14
    assert p.discount_pct == 40
    assert p.starts_on == TODAY and p.ends_on == TODAY + dt.timedelta(days=4)
    # more urgent: lot 502 expires in 2 days
    urg = {p.lot_id: p.urgency for p in first}
    assert urg[502] > urg[501]


def test_pending_proposal_expires_when_its_window_passes(s) -> None:
    _expiry_case(s)
    generate_proposals(s, [1], NOW)
    later = NOW + dt.timedelta(days=6)
    generate_proposals(s, [1], later)
    statuses = {p.status for p in s.scalars(select(PromotionProposal))}
    assert statuses == {"expired"}


def test_preview_lists_triggering_lots_and_refuses_bad_text(s) -> None:
    _expiry_case(s)
    rows = preview_rule(s, 1, DEFAULT_RULES[0].text, NOW)
    assert [(r.sku_code, r.stock, r.days_to_expiry) for r in rows] == [("SKU001", 30, 5)]
    assert preview_rule(s, 2, "WHEN days_to_expiry <= 2 THEN markdown", NOW)[0].lot_code
    with pytest.raises(RuleSyntaxError):
        preview_rule(s, 1, "WHEN stok < 1 THEN markdown", NOW)


def test_today_counts_once_the_store_has_closed(s) -> None:
    add_sku(s, 1)
    stock(s, 1, 1, safety=20, max_stock=100)
    add_lot(s, 1, 1, qty=10, expiry_in=30)
    sell(s, 1, 1, last7=14, prev7=10)  # +40% up to yesterday: not more than 40%
    sell_days(s, 1, 1, TODAY, [20])  # a strong day today
    text = DEFAULT_RULES[1].text
    assert preview_rule(s, 1, text, NOW) == []  # 12:00: today is not complete
    evening = NOW + dt.timedelta(hours=10, minutes=30)  # 22:30 local, store closed at 22:00
    [row] = preview_rule(s, 1, text, evening)
    # the 7 days now end today: 14 - 2 (the day that dropped out) + 20 = 32 against 10
    assert row.sales_7d == 32


def test_broken_rule_in_the_table_is_skipped(s) -> None:
    _expiry_case(s)
    r = rules(s)["HOT_LOW_GIFT"]
    r.text = "当 库纯 < 1 时 触发 清仓加赠品"
    s.flush()
    assert len(generate_proposals(s, [1, 2], NOW)) == 2


# --------------------------------------------------------------------------- decisions


def _decide(s, actor, pid, did, decision="approve", pct=40, reason=None, now=NOW):
    return apply_local(
        s,
        actor,
        "promotion.decide/1",
        {
            "proposal_id": pid,
            "decision_id": did,
            "decision": decision,
            "discount_pct": pct,
            "reason_code": reason,
            "comment": "ok",
        },
        now=now,
    )


def test_approve_makes_an_active_promotion_and_queues_the_outbox(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1, 2], NOW) if p.store_id == 1)
    changes = _decide(s, MANAGER_1, p.id, "d1", pct=35)
    assert changes.touches("promotion_decisions", "promotion_proposals", "outbox")
    assert p.status == "approved" and p.starts_on == TODAY
    dec = s.scalar(select(PromotionDecision))
    assert (dec.decided_by_name, dec.discount_pct, dec.decided_at) == ("王店长", 35, NOW)
    assert s.scalar(select(func.count()).select_from(Outbox)) == 1
    assert decision_sync_states(s)[p.id].state == "pending"
    rows = list_proposals(s, [1], statuses=("approved",))
    assert rows[0].decided_discount == 35 and rows[0].sync.state == "pending"


def test_discount_outside_bounds_and_reject_without_reason_are_refused(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW))
    with pytest.raises(Rejected) as e:
        _decide(s, MANAGER_1, p.id, "d1", pct=55)
    assert e.value.reason_code == "discount_out_of_bounds"
    with pytest.raises(Rejected) as e:
        _decide(s, MANAGER_1, p.id, "d1", pct=5)
    assert e.value.reason_code == "discount_out_of_bounds"
    with pytest.raises(Rejected) as e:
        _decide(s, MANAGER_1, p.id, "d1", decision="reject", pct=None, reason=None)
    assert e.value.reason_code == "reason_required"
    _decide(s, MANAGER_1, p.id, "d1", pct=10)  # the bounds are inclusive
    assert p.status == "approved"


def test_scope_is_checked(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW))
    with pytest.raises(ScopeDenied):
        _decide(s, MANAGER_2, p.id, "d1")
    _decide(s, SUPERVISOR, p.id, "d1", decision="reject", reason="margin_too_low")
    assert p.status == "rejected"


def test_first_decision_wins_and_the_loser_learns_who_and_when(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW))
    first_at = NOW + dt.timedelta(minutes=5)
    _decide(s, MANAGER_1, p.id, "d-first", pct=40, now=first_at)
    with pytest.raises(Conflict) as e:
        _decide(s, SUPERVISOR, p.id, "d-second", decision="reject", reason="other")
    c = e.value
    assert (c.entity, c.entity_id) == ("promotion_decision", p.id)
    assert c.theirs["decided_by_name"] == "王店长"
    assert c.theirs["decided_at"] == first_at.isoformat()
    assert c.theirs["decision"] == "approve" and c.theirs["discount_pct"] == 40
    assert "王店长" in c.message and "2026-11-27 04:05 UTC" in c.message
    # replaying the winning decision (a retried push) is harmless
    assert not _decide(s, MANAGER_1, p.id, "d-first", pct=40).touches("promotion_decisions")
    assert s.scalar(select(func.count()).select_from(PromotionDecision)) == 1


def test_unknown_proposal_is_rejected(s) -> None:
    with pytest.raises(Rejected) as e:
        _decide(s, MANAGER_1, "nope", "d1")
    assert e.value.reason_code == "not_found"


# --------------------------------------------------------------------------- queue + outcomes


def test_detail_has_28_days_of_sales(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW))
    d = proposal_detail(s, p.id)
    assert d is not None and len(d.sales) == 28
    assert d.sales[-1][0] == AS_OF and sum(u for _, u in d.sales) == 14
    assert d.row.min_pct == 10 and d.row.max_pct == 50


def test_outcome_compares_forecast_with_actual_sell_through(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW) if p.lot_id == 501)
    _decide(s, MANAGER_1, p.id, "d1", pct=40)
    # the offer runs today..today+4; sales data for its first 3 days: 7 + 6 + 5 units
    sell_days(s, 1, 1, TODAY, [7, 6, 5])
    [o] = promotion_outcomes(s, [1], TODAY, TODAY)
    assert o.decision == "approve" and o.discount_pct == 40
    assert (o.days_run, o.status) == (3, "running")
    assert o.actual_units == 18 and o.actual_sell_through == pytest.approx(0.6)
    # forecast over the offer: 30 (sells out); to date: 2/day x 3.586 x 3 days = 21.5
    assert o.forecast_units == 30.0 and o.forecast_sell_through == 1.0
    assert o.forecast_units_to_date == pytest.approx(21.52, abs=0.01)
    assert o.error_units == pytest.approx(18 - 21.52, abs=0.01)
    assert promotion_outcomes(s, [2], TODAY, TODAY) == []  # other store
    assert (
        promotion_outcomes(s, [1], TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=7)) == []
    )
    sell_days(s, 1, 1, TODAY + dt.timedelta(days=3), [4, 4])
    [o] = promotion_outcomes(s, [1], TODAY, TODAY)
    assert (o.days_run, o.status, o.actual_units) == (5, "finished", 26)


def test_rejected_outcome_uses_the_no_offer_forecast(s) -> None:
    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW) if p.lot_id == 501)
    _decide(s, MANAGER_1, p.id, "d1", decision="reject", pct=None, reason="transfer_instead")
    sell_days(s, 1, 1, TODAY, [2, 2, 2, 2, 2])
    [o] = promotion_outcomes(s, [1], TODAY, TODAY)
    assert o.discount_pct is None
    assert o.forecast_units == 10.0 and o.actual_units == 10 and o.status == "finished"


def test_sync_state_of_a_decision_pending_conflict_then_resolved(s) -> None:
    from core.conflicts import resolve_conflict
    from core.models import SyncConflict

    _expiry_case(s)
    p = next(p for p in generate_proposals(s, [1], NOW))
    _decide(s, MANAGER_1, p.id, "mine")
    assert decision_sync_states(s)[p.id].state == "pending"
    ob = s.scalar(select(Outbox))
    ob.status, ob.error = "rejected", "张督导 already rejected this proposal"
    c = SyncConflict(
        mutation_id=ob.mutation_id,
        entity="promotion_decision",
        entity_id=p.id,
        mine={},
        theirs={"decided_by_name": "张督导", "decision": "reject"},
        message=ob.error,
        created_at=NOW,
    )
    s.add(c)
    s.flush()
    state = decision_sync_states(s)[p.id]
    assert state.state == "conflict" and state.theirs["decided_by_name"] == "张督导"
    assert p.id in {r.id for r in queue_rows(s, [1])}  # shown in the queue as lost
    resolve_conflict(s, c.id, "theirs", MANAGER_1, NOW)
    s.flush()
    assert decision_sync_states(s)[p.id].state == "synced"
    assert p.id not in {r.id for r in queue_rows(s, [1])}
    ob.status = "sent"
    assert decision_sync_states(s, [p.id])[p.id].state == "synced"
    assert decision_sync_states(s, ["other"]) == {}


def test_rule_update_parses_checks_role_bounds_and_version(s) -> None:
    row = rules(s)["HOT_LOW_GIFT"]
    name = "promotion_rule.update/1"
    en = "WHEN stock < safety_stock AND sales_7d_wow > 50% THEN clearance_gift"
    with pytest.raises(ScopeDenied):
        apply_local(s, MANAGER_1, name, {"rule_id": row.id, "text": en}, base_version=1)
    with pytest.raises(Rejected) as e:
        apply_local(
            s,
            SUPERVISOR,
            name,
            {"rule_id": row.id, "text": "WHEN stok < 1 THEN markdown"},
            base_version=1,
        )
    assert e.value.reason_code == "bad_rule" and "stok" in e.value.message
    with pytest.raises(Rejected) as e:
        apply_local(
            s,
            SUPERVISOR,
            name,
            {"rule_id": row.id, "min_discount_pct": 30, "max_discount_pct": 20},
            base_version=1,
        )
    assert e.value.reason_code == "bad_bounds"
    apply_local(
        s, SUPERVISOR, name, {"rule_id": row.id, "text": en, "max_discount_pct": 25}, base_version=1
    )
    assert (row.text, row.max_discount_pct, row.version) == (en, 25, 2)
    with pytest.raises(Conflict) as c:
        apply_local(s, SUPERVISOR, name, {"rule_id": row.id, "text": en}, base_version=1)
    assert c.value.theirs["version"] == 2
