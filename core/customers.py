"""Customers for the supervisor: high-potential tags with reasons, lists and the detail page.

High-potential tags (高潜客户), each with the figures behind it:

``purchases_up``
    Purchases in the last 3 complete calendar months are up *more than* 35 % on the 3
    months before (``customer_monthly_stats``). The current, incomplete month is left out
    so a customer is not judged on half a month. Exactly 35 % is not tagged; a customer
    with no purchases in the earlier window has no growth rate and is not tagged.
    Integer fen and exact fractions: no float rounding decides an edge case.

``low_turnover``
    The customer's inventory turnover (mean of its months in the same last-3-month
    window) is *more than* 20 % below the average of its segment (the mean over every
    customer of that segment in the cache with figures in the window). Slow-turning stock
    on the customer's shelves is a sell-through / assortment conversation worth a visit.
    Exactly 20 % below is not tagged.

The customer detail joins visits (with the trajectory engineer's evidence score from
:mod:`core.trajectory.evidence`), opportunities with their stage history, voice summaries
and visit notes (沟通记录), and the tags.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.funnel import STAGE_INDEX
from core.i18n import N_, _
from core.models import (
    Customer,
    CustomerMonthlyStats,
    GpsPoint,
    Opportunity,
    OpportunityStageEvent,
    Rep,
    Store,
    UserRole,
    Visit,
    VisitNote,
)
from core.mutations import Actor
from core.timeutil import local_day_bounds, to_local
from core.trajectory.cleaning import Fix, clean_fixes
from core.trajectory.evidence import VisitEvidence, score_visit
from core.trajectory.stops import RecordedVisit

TAG_LABELS: dict[str, str] = {
    "purchases_up": N_("Purchases up"),
    "low_turnover": N_("Low stock turnover"),
}


@dataclass(frozen=True)
class HighPotentialRules:
    """Thresholds for the tags (exact fractions: the edges are decided exactly)."""

    growth_more_than: Fraction = Fraction(35, 100)
    turnover_below_more_than: Fraction = Fraction(20, 100)
    window_months: int = 3


@dataclass(frozen=True)
class CustomerTag:
    kind: str  # purchases_up | low_turnover
    label: str  # translated
    reason: str  # translated sentence with the figures
    values: dict[str, Any] = field(default_factory=dict)


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    m = day.year * 12 + day.month - 1 - back
    return dt.date(m // 12, m % 12 + 1, 1)


def tag_windows(today: dt.date, months: int = 3) -> tuple[list[dt.date], list[dt.date]]:
    """(last ``months`` complete months, the ``months`` before), as first-of-month dates."""
    last = [_month_start(today, k) for k in range(months, 0, -1)]
    prev = [_month_start(today, k) for k in range(2 * months, months, -1)]
    return last, prev


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.0f}"


def high_potential_tags(
    session: Session,
    today: dt.date,
    customer_ids: list[int] | None = None,
    rules: HighPotentialRules | None = None,
) -> dict[int, list[CustomerTag]]:
    """Tags per customer id (customers without a tag are absent)."""
    rules = rules or HighPotentialRules()
    last, prev = tag_windows(today, rules.window_months)
    window = [*prev, *last]
    stmt = select(
        CustomerMonthlyStats.customer_id,
        CustomerMonthlyStats.month,
        CustomerMonthlyStats.purchases_fen,
        CustomerMonthlyStats.inventory_turnover,
        Customer.segment,
    ).join(Customer, Customer.id == CustomerMonthlyStats.customer_id)
    stmt = stmt.where(CustomerMonthlyStats.month.in_(window))
    purchases_last: dict[int, int] = defaultdict(int)
    purchases_prev: dict[int, int] = defaultdict(int)
    turns: dict[int, list[float]] = defaultdict(list)
    segment_of: dict[int, str] = {}
    last_set = set(last)
    for cid, month, fen, turnover, segment in session.execute(stmt):
        segment_of[cid] = segment or ""
        if month in last_set:
            purchases_last[cid] += fen or 0
            if turnover is not None:
                turns[cid].append(float(turnover))
        else:
            purchases_prev[cid] += fen or 0
    customer_turn = {cid: sum(v) / len(v) for cid, v in turns.items() if v}
    seg_values: dict[str, list[float]] = defaultdict(list)
    for cid, t in customer_turn.items():
        seg_values[segment_of[cid]].append(t)
    seg_avg = {seg: sum(v) / len(v) for seg, v in seg_values.items()}

    wanted = set(customer_ids) if customer_ids is not None else set(segment_of)
    out: dict[int, list[CustomerTag]] = {}
    for cid in wanted:
        tags: list[CustomerTag] = []
        before, after = purchases_prev.get(cid, 0), purchases_last.get(cid, 0)
        if before > 0 and Fraction(after - before, before) > rules.growth_more_than:
            pct = (after - before) / before * 100
            tags.append(
                CustomerTag(
                    kind="purchases_up",
                    label=_(TAG_LABELS["purchases_up"]),
                    reason=_(
                        "Purchases in the last 3 months {after} vs {before} the 3 months "
                        "before: up {pct:.1f}% (tag above {limit}%)."
                    ).format(
                        after=_yuan(after),
                        before=_yuan(before),
                        pct=pct,
                        limit=int(rules.growth_more_than * 100),
                    ),
                    values={"last_fen": after, "previous_fen": before, "growth_pct": pct},
                )
            )
        t = customer_turn.get(cid)
        avg = seg_avg.get(segment_of.get(cid, ""))
        if t is not None and avg:
            limit = avg * float(1 - rules.turnover_below_more_than)
            if t < limit and not math.isclose(t, limit, rel_tol=1e-9, abs_tol=1e-12):
                below = (avg - t) / avg * 100
                tags.append(
                    CustomerTag(
                        kind="low_turnover",
                        label=_(TAG_LABELS["low_turnover"]),
                        reason=_(
                            "Inventory turnover {turns:.1f}/year is {below:.1f}% below the "
                            "{segment} average of {avg:.1f} (tag beyond {limit}%)."
                        ).format(
                            turns=t,
                            below=below,
                            segment=segment_of.get(cid) or _("segment"),
                            avg=avg,
                            limit=int(rules.turnover_below_more_than * 100),
                        ),
                        values={"turnover": t, "segment_avg": avg, "below_pct": below},
                    )
                )
        if tags:
            out[cid] = tags
    return out


# --------------------------------------------------------------------------- lists


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    tier: str
    segment: str
    store_name: str
    rep_name: str
    last_visit_at: dt.datetime | None
    tags: list[CustomerTag]

    @property
    def tag_text(self) -> str:
        return ", ".join(t.label for t in self.tags)


def _customer_scope(actor: Actor | None) -> list:
    if actor is None or actor.role == UserRole.ADMIN.value:
        return []
    return [
        or_(
            Customer.store_id.in_(actor.store_ids or {-1}),
            and_(Customer.store_id.is_(None), Customer.region_id.in_(actor.region_ids or {-1})),
        )
    ]


def list_customers(
    session: Session,
    today: dt.date,
    *,
    actor: Actor | None = None,
    region_id: int | None = None,
    store_id: int | None = None,
    tier: str | None = None,
    tag: str | None = None,
    high_potential_only: bool = False,
) -> list[CustomerRow]:
    """Customers in scope with their tags; ``tag``/``high_potential_only`` filter on them."""
    last_visit = (
        select(Visit.customer_id.label("cid"), func.max(Visit.check_in_at).label("last"))
        .group_by(Visit.customer_id)
        .subquery()
    )
    stmt = (
        select(Customer, Store.name, Rep.name, last_visit.c.last)
        .outerjoin(Store, Store.id == Customer.store_id)
        .outerjoin(Rep, Rep.id == Customer.rep_id)
        .outerjoin(last_visit, last_visit.c.cid == Customer.id)
        .where(*_customer_scope(actor))
        .order_by(Customer.tier, Customer.name)
    )
    if region_id is not None:
        stmt = stmt.where(Customer.region_id == region_id)
    if store_id is not None:
        stmt = stmt.where(Customer.store_id == store_id)
    if tier:
        stmt = stmt.where(Customer.tier == tier)
    rows = session.execute(stmt).all()
    tags = high_potential_tags(session, today, [c.id for c, *_rest in rows])
    out = []
    for c, store_name, rep_name, last in rows:
        ctags = tags.get(c.id, [])
        if tag and not any(t.kind == tag for t in ctags):
            continue
        if high_potential_only and not ctags:
            continue
        out.append(
            CustomerRow(
                c.id, c.name, c.tier, c.segment, store_name or "", rep_name or "", last, ctags
            )
        )
    return out


# --------------------------------------------------------------------------- detail


@dataclass(frozen=True)
class VisitRow:
    id: str
    rep_name: str
    check_in_at: dt.datetime
    check_out_at: dt.datetime | None
    purpose: str
    voice_summary: str
    photo_ref: str | None
    opportunity_id: str | None
    evidence: VisitEvidence

    @property
    def dwell_minutes(self) -> float | None:
        if self.check_out_at is None:
            return None
        return (self.check_out_at - self.check_in_at).total_seconds() / 60


@dataclass(frozen=True)
class StageStep:
    stage: str
    entered_at: dt.datetime
    amount_fen: int
    #: True when this step goes back to (or repeats) an earlier stage: a reopen.
    backward: bool


@dataclass(frozen=True)
class OpportunityHistory:
    id: str
    title: str
    rep_name: str
    status: str
    stage: str
    amount_fen: int
    opened_at: dt.datetime
    next_step: str
    next_step_at: dt.datetime | None
    steps: list[StageStep]


@dataclass(frozen=True)
class NoteRow:
    """A voice summary of a visit or a note added to it (沟通记录), newest first."""

    at: dt.datetime
    author: str
    text: str
    visit_id: str
    kind: str  # voice_summary | note


@dataclass(frozen=True)
class CustomerDetail:
    id: int
    name: str
    tier: str
    segment: str
    contact: str
    address: str
    store_name: str
    rep_name: str
    tags: list[CustomerTag]
    visits: list[VisitRow]
    opportunities: list[OpportunityHistory]
    notes: list[NoteRow]


def _day_fixes(session: Session, rep_id: int, instant: dt.datetime) -> list[Fix]:
    start, end = local_day_bounds(to_local(instant).date())
    rows = session.execute(
        select(GpsPoint.ts, GpsPoint.lat, GpsPoint.lon, GpsPoint.accuracy_m).where(
            GpsPoint.rep_id == rep_id, GpsPoint.ts >= start, GpsPoint.ts < end
        )
    ).all()
    return clean_fixes(Fix(ts, lat, lon, acc) for ts, lat, lon, acc in rows).fixes


def customer_detail(
    session: Session, customer_id: int, today: dt.date, *, actor: Actor | None = None
) -> CustomerDetail | None:
    """Everything the drill-down shows about one customer (None if absent or out of scope)."""
    row = session.execute(
        select(Customer, Store.name, Rep.name)
        .outerjoin(Store, Store.id == Customer.store_id)
        .outerjoin(Rep, Rep.id == Customer.rep_id)
        .where(Customer.id == customer_id, *_customer_scope(actor))
    ).first()
    if row is None:
        return None
    c, store_name, rep_name = row
    visits: list[VisitRow] = []
    fixes_cache: dict[tuple[int, dt.date], list[Fix]] = {}
    for v, vrep in session.execute(
        select(Visit, Rep.name)
        .join(Rep, Rep.id == Visit.rep_id)
        .where(Visit.customer_id == customer_id)
        .order_by(Visit.check_in_at.desc())
    ):
        key = (v.rep_id, to_local(v.check_in_at).date())
        if key not in fixes_cache:
            fixes_cache[key] = _day_fixes(session, v.rep_id, v.check_in_at)
        recorded = RecordedVisit(
            id=v.id,
            rep_id=v.rep_id,
            customer_id=v.customer_id,
            check_in_at=v.check_in_at,
            check_out_at=v.check_out_at,
            check_in_lat=v.check_in_lat,
            check_in_lon=v.check_in_lon,
            customer_lat=c.lat,
            customer_lon=c.lon,
        )
        visits.append(
            VisitRow(
                id=v.id,
                rep_name=vrep,
                check_in_at=v.check_in_at,
                check_out_at=v.check_out_at,
                purpose=v.purpose,
                voice_summary=v.voice_summary,
                photo_ref=v.photo_ref,
                opportunity_id=v.opportunity_id,
                evidence=score_visit(recorded, fixes_cache[key]),
            )
        )
    opps: list[OpportunityHistory] = []
    for o, orep in session.execute(
        select(Opportunity, Rep.name)
        .join(Rep, Rep.id == Opportunity.rep_id)
        .where(Opportunity.customer_id == customer_id)
        .order_by(Opportunity.opened_at.desc())
    ):
        events = session.scalars(
            select(OpportunityStageEvent)
            .where(OpportunityStageEvent.opportunity_id == o.id)
            .order_by(OpportunityStageEvent.entered_at, OpportunityStageEvent.id)
        ).all()
        steps = []
        prev_idx = -1
        for e in events:
            idx = STAGE_INDEX.get(e.stage, -1)
            steps.append(StageStep(e.stage, e.entered_at, e.amount_fen or 0, idx <= prev_idx))
            prev_idx = idx
        opps.append(
            OpportunityHistory(
                id=o.id,
                title=o.title,
                rep_name=orep,
                status=o.status,
                stage=o.stage,
                amount_fen=o.amount_fen,
                opened_at=o.opened_at,
                next_step=o.next_step,
                next_step_at=o.next_step_at,
                steps=steps,
            )
        )
    notes: list[NoteRow] = [
        NoteRow(v.check_in_at, v.rep_name, v.voice_summary, v.id, "voice_summary")
        for v in visits
        if v.voice_summary
    ]
    visit_ids = [v.id for v in visits]
    if visit_ids:
        for n in session.scalars(select(VisitNote).where(VisitNote.visit_id.in_(visit_ids))):
            notes.append(NoteRow(n.created_at, n.author_name, n.text, n.visit_id, "note"))
    notes.sort(key=lambda n: n.at, reverse=True)
    return CustomerDetail(
        id=c.id,
        name=c.name,
        tier=c.tier,
        segment=c.segment,
        contact=c.contact,
        address=c.address,
        store_name=store_name or "",
        rep_name=rep_name or "",
        tags=high_potential_tags(session, today, [c.id]).get(c.id, []),
        visits=visits,
        opportunities=opps,
        notes=notes,
    )
