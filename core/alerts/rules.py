"""The overdue-milestone rules: each finds the subjects whose milestone is due.

A rule returns :class:`Candidate` values — no rows are written here — so the rules can be
tested on their own and the engine can decide about suppression, escalation and
resolution in one place (Pipedrive's "rotting deals", as a set of typed rules).

Milestones (thresholds in :class:`AlertThresholds`):

* ``no_quote`` — an open opportunity entered the *opportunity* stage and has no quote
  (or later stage) ``no_quote_hours`` after that;
* ``payment_overdue`` — a contract was signed and no payment followed within
  ``payment_days`` (lost deals excluded);
* ``a_tier_unvisited`` — an A-tier customer has had no visit for
  ``a_tier_unvisited_days`` (a customer never visited counts from its creation);
* ``promotion_pending`` — a promotion proposal has waited for a decision longer than
  ``promotion_pending_hours``.

A candidate carries ``booked_until`` when the next step is already booked
(``opportunities.next_step_at`` in the future — for a customer, on any of its open
opportunities): the engine then suppresses the alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.alerts.rows import KIND_LABELS, AlertKind  # noqa: F401 (re-exported)
from core.models import (
    Customer,
    Opportunity,
    OpportunityStageEvent,
    PromotionProposal,
    ProposalStatus,
    Sku,
    Store,
    Visit,
)


@dataclass(frozen=True)
class AlertThresholds:
    """Configurable delays; the defaults are the ones agreed with the supervisors."""

    no_quote_hours: float = 48.0
    payment_days: float = 14.0
    a_tier_unvisited_days: float = 30.0
    promotion_pending_hours: float = 24.0
    #: Further delay after an alert falls due before it is escalated to the supervisor.
    escalate_after_hours: float = 48.0
    #: Longest snooze a user may ask for.
    max_snooze_days: float = 30.0


@dataclass(frozen=True)
class Candidate:
    kind: str
    subject_type: str  # opportunity | customer | promotion_proposal
    subject_id: str
    region_id: int | None
    store_id: int | None
    rep_id: int | None
    due_at: dt.datetime
    params: dict[str, Any] = field(default_factory=dict)
    #: The booked next step, when one lies in the future (suppresses the alert).
    booked_until: dt.datetime | None = None


_QUOTE_OR_LATER = ("quote", "contract", "payment")


def _opp_stage_rule(
    session: Session,
    now: dt.datetime,
    *,
    kind: AlertKind,
    start_stage: str,
    done_stages: tuple[str, ...],
    delay: dt.timedelta,
    statuses: tuple[str, ...],
) -> list[Candidate]:
    ev = OpportunityStageEvent
    started = (
        select(ev.opportunity_id.label("opp_id"), func.min(ev.entered_at).label("at"))
        .where(ev.stage == start_stage, ev.entered_at <= now)
        .group_by(ev.opportunity_id)
        .subquery()
    )
    done = select(ev.opportunity_id).where(ev.stage.in_(done_stages), ev.entered_at <= now)
    rows = session.execute(
        select(Opportunity, Customer.region_id, Customer.name, started.c.at)
        .join(started, started.c.opp_id == Opportunity.id)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .where(Opportunity.status.in_(statuses), Opportunity.id.not_in(done))
    ).all()
    out = []
    for opp, region_id, customer_name, at in rows:
        booked = opp.next_step_at if opp.next_step_at and opp.next_step_at > now else None
        out.append(
            Candidate(
                kind=kind,
                subject_type="opportunity",
                subject_id=opp.id,
                region_id=region_id,
                store_id=opp.store_id,
                rep_id=opp.rep_id,
                due_at=at + delay,
                params={
                    "title": opp.title,
                    "customer_id": opp.customer_id,
                    "customer_name": customer_name,
                    "amount_fen": opp.amount_fen,
                    "since": at.isoformat(),
                },
                booked_until=booked,
            )
        )
    return out


def no_quote(session: Session, now: dt.datetime, thr: AlertThresholds) -> list[Candidate]:
    return _opp_stage_rule(
        session,
        now,
        kind=AlertKind.NO_QUOTE,
        start_stage="opportunity",
        done_stages=_QUOTE_OR_LATER,
        delay=dt.timedelta(hours=thr.no_quote_hours),
        statuses=("open",),
    )


def payment_overdue(session: Session, now: dt.datetime, thr: AlertThresholds) -> list[Candidate]:
    return _opp_stage_rule(
        session,
        now,
        kind=AlertKind.PAYMENT_OVERDUE,
        start_stage="contract",
        done_stages=("payment",),
        delay=dt.timedelta(days=thr.payment_days),
        statuses=("open", "won"),
    )


def a_tier_unvisited(session: Session, now: dt.datetime, thr: AlertThresholds) -> list[Candidate]:
    last_visit = (
        select(Visit.customer_id.label("cid"), func.max(Visit.check_in_at).label("last"))
        .where(Visit.check_in_at <= now)
        .group_by(Visit.customer_id)
        .subquery()
    )
    booked = (
        select(Opportunity.customer_id.label("cid"), func.min(Opportunity.next_step_at).label("at"))
        .where(Opportunity.status == "open", Opportunity.next_step_at > now)
        .group_by(Opportunity.customer_id)
        .subquery()
    )
    rows = session.execute(
        select(Customer, last_visit.c.last, booked.c.at)
        .outerjoin(last_visit, last_visit.c.cid == Customer.id)
        .outerjoin(booked, booked.c.cid == Customer.id)
        .where(Customer.tier == "A")
    ).all()
    delay = dt.timedelta(days=thr.a_tier_unvisited_days)
    out = []
    for c, last, booked_at in rows:
        since = last or c.created_at
        out.append(
            Candidate(
                kind=AlertKind.A_TIER_UNVISITED,
                subject_type="customer",
                subject_id=str(c.id),
                region_id=c.region_id,
                store_id=c.store_id,
                rep_id=c.rep_id,
                # never visited and no creation date: due at once
                due_at=since + delay if since else now,
                params={
                    "customer_id": c.id,
                    "customer_name": c.name,
                    "last_visit_at": last.isoformat() if last else None,
                },
                booked_until=booked_at,
            )
        )
    return out


def promotion_pending(session: Session, now: dt.datetime, thr: AlertThresholds) -> list[Candidate]:
    rows = session.execute(
        select(PromotionProposal, Store.region_id, Store.name, Sku.name)
        .join(Store, Store.id == PromotionProposal.store_id)
        .join(Sku, Sku.id == PromotionProposal.sku_id)
        .where(
            PromotionProposal.status == ProposalStatus.PENDING.value,
            PromotionProposal.generated_at <= now,
        )
    ).all()
    delay = dt.timedelta(hours=thr.promotion_pending_hours)
    return [
        Candidate(
            kind=AlertKind.PROMOTION_PENDING,
            subject_type="promotion_proposal",
            subject_id=p.id,
            region_id=region_id,
            store_id=p.store_id,
            rep_id=None,
            due_at=p.generated_at + delay,
            params={
                "sku_name": sku_name,
                "store_name": store_name,
                "discount_pct": p.discount_pct,
                "value_at_risk_fen": p.value_at_risk_fen,
                "since": p.generated_at.isoformat(),
            },
        )
        for p, region_id, store_name, sku_name in rows
    ]


RULES = (no_quote, payment_overdue, a_tier_unvisited, promotion_pending)


def all_candidates(session: Session, now: dt.datetime, thr: AlertThresholds) -> list[Candidate]:
    out: list[Candidate] = []
    for rule in RULES:
        out.extend(rule(session, now, thr))
    return out
