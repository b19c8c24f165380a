"""Alert rules on a hand-built dataset: fires, suppressed, escalated, snoozed, resolved."""

from __future__ import annotations

import datetime as dt

import pytest

from core.alerts import AlertThresholds, alert_digest, evaluate_alerts, list_alerts, seed_alerts
from core.alerts.engine import alert_id
from core.cache import open_cache
from core.models import (
    Alert,
    Opportunity,
    OpportunityStageEvent,
    PromotionProposal,
    PromotionRule,
    Sku,
    User,
    Visit,
)
from core.mutations import Rejected, ScopeDenied, actor_for_user, apply_local
from tests.core.funnel_fixtures import add_opp, d, seed_org

NOW = d(10)


def hb(hours: float) -> dt.datetime:
    """NOW - hours."""
    return NOW - dt.timedelta(hours=hours)


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "a.db")
    with c.session() as s:
        seed_org(s)
        add_opp(s, "q1", [("lead", hb(60), 0), ("opportunity", hb(49), 900)])  # due 1 h ago
        add_opp(s, "q2", [("opportunity", hb(47), 0)])  # due in 1 h
        add_opp(s, "q3", [("opportunity", hb(100), 0)], next_step_at=d(11))  # booked
        add_opp(s, "q4", [("opportunity", hb(100), 0), ("quote", hb(60), 0)])  # quoted
        add_opp(s, "q5", [("opportunity", hb(100), 0)])  # due 52 h ago -> escalated
        add_opp(s, "q6", [("opportunity", hb(100), 0)], status="lost")  # lost: nothing
        add_opp(  # contract 15 days ago, unpaid (payment_days 14)
            s,
            "c1",
            [("contract", NOW - dt.timedelta(days=15), 5000)],
            customer_id=3,
            rep_id=200,
            store_id=20,
        )
        add_opp(s, "c2", [("contract", hb(400), 0), ("payment", hb(10), 0)], status="won")
        # customer 3 (A, region 2) last visited 31 days ago; customer 1 (A) never, but booked
        s.add(Visit(id="v1", rep_id=200, customer_id=3, check_in_at=NOW - dt.timedelta(days=31)))
        s.add(Sku(id=1, code="S1", name="鲜牛奶", category="乳品", price_fen=1000, cost_fen=600))
        s.add(PromotionRule(id=1, code="R1", name="临期", text="...", template="markdown"))
        s.flush()
        for pid, hours in (("p1", 25), ("p2", 23)):
            s.add(
                PromotionProposal(
                    id=pid,
                    store_id=10,
                    sku_id=1,
                    rule_id=1,
                    template="markdown",
                    discount_pct=20,
                    generated_at=hb(hours),
                )
            )
    yield c
    c.close()


def active(rows):
    return {(r.kind, r.subject_id): r for r in rows if r.state == "active"}


def test_rules_fire_and_are_suppressed(cache):
    with cache.session() as s:
        rows = evaluate_alerts(s, NOW)
    got = active(rows)
    assert set(got) == {
        ("no_quote", "q1"),
        ("no_quote", "q5"),
        ("payment_overdue", "c1"),
        ("a_tier_unvisited", "3"),
        ("promotion_pending", "p1"),
    }
    q1 = got[("no_quote", "q1")]
    assert q1.severity == "warning" and q1.escalated_at is None
    assert q1.overdue_hours == pytest.approx(1.0)
    assert q1.id == alert_id("no_quote", "opportunity", "q1")
    assert q1.customer_id == 1 and q1.rep_name == "张伟" and q1.store_name == "徐汇店"
    # customer 1 was never visited but q3 has a booked next step: suppressed, not raised
    with cache.session() as s:
        assert (
            s.scalar(
                Alert.__table__.select().where(
                    Alert.kind == "a_tier_unvisited", Alert.subject_id == "1"
                )
            )
            is None
        )


def test_escalated_after_further_delay(cache):
    with cache.session() as s:
        got = active(evaluate_alerts(s, NOW))
    q5 = got[("no_quote", "q5")]
    assert q5.severity == "critical"
    assert q5.escalated_at == hb(100) + dt.timedelta(hours=48 + 48)
    # a longer escalation delay keeps it a warning
    with cache.session() as s:
        s.query(Alert).delete()
        got = active(evaluate_alerts(s, NOW, AlertThresholds(escalate_after_hours=60)))
    assert got[("no_quote", "q5")].severity == "warning"


def test_thresholds_are_configurable(cache):
    with cache.session() as s:
        got = active(evaluate_alerts(s, NOW, AlertThresholds(no_quote_hours=46, payment_days=16)))
    assert ("no_quote", "q2") in got and ("payment_overdue", "c1") not in got


def test_idempotent_and_resolves_when_milestone_met(cache):
    with cache.session() as s:
        first = evaluate_alerts(s, NOW)
        again = evaluate_alerts(s, NOW)
        assert [r.id for r in first] == [r.id for r in again]
        assert s.query(Alert).count() == 5
        s.add(OpportunityStageEvent(opportunity_id="q1", stage="quote", entered_at=hb(0.5)))
        s.flush()
        later = evaluate_alerts(s, NOW + dt.timedelta(minutes=1))
        assert ("no_quote", "q1") not in active(later)
        a = s.get(Alert, alert_id("no_quote", "opportunity", "q1"))
        assert a.resolved_at is not None and a.params["resolution"] == "done"
        assert len(list_alerts(s, NOW, include_resolved=True)) == 5


def test_booking_passes_then_alert_comes_back(cache):
    with cache.session() as s:
        evaluate_alerts(s, NOW)
        assert ("no_quote", "q3") not in active(evaluate_alerts(s, NOW))
        got = active(evaluate_alerts(s, d(11.5)))  # the booked step (d11) passed, no quote
        assert ("no_quote", "q3") in got
        # booking a new step suppresses the active alert again
        s.get(Opportunity, "q3").next_step_at = d(13)
        s.flush()
        assert ("no_quote", "q3") not in active(evaluate_alerts(s, d(11.6)))
        a = s.get(Alert, alert_id("no_quote", "opportunity", "q3"))
        assert a.params["resolution"] == "next_step_booked"


def test_snooze_hides_and_postpones_escalation(cache):
    aid = alert_id("payment_overdue", "opportunity", "c1")
    with cache.session() as s:
        evaluate_alerts(s, NOW)
        sup_js = actor_for_user(s, s.get(User, 2))  # manager of store 20 owns c1
        ch = apply_local(
            s,
            sup_js,
            "alert.snooze/1",
            {"alert_id": aid, "until": d(12).isoformat(), "reason": "客户财务月底付款"},
            now=NOW,
        )
        assert ch.touches("alerts", "outbox")
        # due d9, would escalate at d11, but snoozed until d12
        rows = {r.id: r for r in evaluate_alerts(s, d(11.5))}
        assert rows[aid].state == "snoozed" and rows[aid].escalated_at is None
        assert rows[aid].snooze_reason == "客户财务月底付款"
        assert aid not in {r.id for r in list_alerts(s, d(11.5), include_snoozed=False)}
        rows = {r.id: r for r in evaluate_alerts(s, d(12.5))}
        assert rows[aid].state == "active" and rows[aid].severity == "critical"
        assert rows[aid].escalated_at == d(12)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"until": "2026-11-12T00:00:00+00:00", "reason": ""}, "reason_required"),
        ({"until": "2026-11-09T00:00:00+00:00", "reason": "x"}, "until_in_past"),
        ({"until": "2026-12-20T00:00:00+00:00", "reason": "x"}, "snooze_too_long"),
        ({"until": "tomorrow", "reason": "x"}, "bad_until"),
        ({"until": "2026-11-12T00:00:00", "reason": "x"}, "bad_until"),
    ],
)
def test_snooze_rejections(cache, args, code):
    aid = alert_id("no_quote", "opportunity", "q1")
    with cache.session() as s:
        evaluate_alerts(s, NOW)
        sup = actor_for_user(s, s.get(User, 1))
        with pytest.raises(Rejected) as e:
            apply_local(s, sup, "alert.snooze/1", {"alert_id": aid, **args}, now=NOW)
        assert e.value.reason_code == code


def test_snooze_scope_and_missing(cache):
    with cache.session() as s:
        evaluate_alerts(s, NOW)
        mgr_js = actor_for_user(s, s.get(User, 2))
        args = {
            "alert_id": alert_id("no_quote", "opportunity", "q1"),
            "until": d(11).isoformat(),
            "reason": "x",
        }
        with pytest.raises(ScopeDenied):
            apply_local(s, mgr_js, "alert.snooze/1", args, now=NOW)
        with pytest.raises(Rejected) as e:
            apply_local(s, mgr_js, "alert.snooze/1", {**args, "alert_id": "nope"}, now=NOW)
        assert e.value.reason_code == "not_found"


def test_scope_limits_evaluation(cache):
    with cache.session() as s:
        mgr_js = actor_for_user(s, s.get(User, 2))
        rows = evaluate_alerts(s, NOW, scope=mgr_js)
        assert {(r.kind, r.subject_id) for r in rows} == {
            ("payment_overdue", "c1"),
            ("a_tier_unvisited", "3"),
        }
        assert s.query(Alert).count() == 2  # nothing raised outside the scope


def test_digest_groups_by_rep_and_store(cache):
    with cache.session() as s:
        rows = evaluate_alerts(s, NOW)
    by_rep = alert_digest(rows, "rep")
    assert [(g.label, g.total, g.escalated) for g in by_rep] == [
        ("张伟", 2, 1),
        ("李娜", 2, 0),
        ("No rep", 1, 0),
    ]
    by_store = alert_digest(rows, "store")
    assert [(g.label, g.total) for g in by_store] == [("徐汇店", 3), ("鼓楼店", 2)]
    assert by_store[0].by_kind == {"no_quote": 2, "promotion_pending": 1}
    with pytest.raises(ValueError):
        alert_digest(rows, "region")


def test_seed_alerts_step(cache):
    with cache.session() as s:
        n = seed_alerts(s, dt.date(2026, 11, 10))
    assert n >= 4


def test_snooze_of_an_alert_the_server_has_not_raised_yet(cache):
    """A client raised it offline; the server evaluates first and finds the same id."""
    aid = alert_id("no_quote", "opportunity", "q1")
    with cache.session() as s:
        assert s.get(Alert, aid) is None
        sup = actor_for_user(s, s.get(User, 1))
        apply_local(
            s, sup, "alert.snooze/1",
            {"alert_id": aid, "until": d(11).isoformat(), "reason": "等客户回复"}, now=NOW,
        )  # fmt: skip
        a = s.get(Alert, aid)
        assert a.snoozed_until == d(11) and a.snooze_reason == "等客户回复"
