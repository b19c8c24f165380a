"""The sales funnel (销售漏斗), computed from stage history — never from the current stage.

Stages, in order: lead → visit → opportunity → quote → contract → payment (money received),
read from ``opportunity_stage_events`` (Salesforce's OpportunityHistory). Definitions, fixed
here so the screen, the weekly report and the home screen agree:

Period basis (:class:`PeriodBasis`)
    ``COHORT`` (default): the opportunities whose *first* stage event lies in
    ``[start, end)`` — "the leads of that month" — and how far each got by ``end``.
    ``ACTIVITY``: an opportunity counts at a stage when its counted entry into that stage
    lies in ``[start, end)`` — "what moved in that month".
    Events at or after ``end`` are ignored in both, so a past period is shown as it stood
    at its end, and the previous period (same length, immediately before) is compared with
    the same maturity.

Mode (:class:`FunnelMode`, HubSpot's two funnel reports)
    ``ORDERED``: an opportunity counts at stage *k* only if it entered every stage 0..k in
    that order (the earliest in-order chain of entries). An opportunity that skipped a
    stage drops out of the ordered funnel at the skipped stage.
    ``ANY``: it counts at stage *k* if it ever entered stage *k* (first entry); skipped
    stages do not stop it, so next-step conversion may exceed 100 %.

Skipped stages
    ``StageFigures.skipped`` counts the opportunities that reached a later stage without
    ever entering this one (the same in both modes).

Reopened opportunities
    An opportunity is *reopened* when its history steps back (an event whose stage is not
    after the previous event's stage, e.g. quote → opportunity after a lost deal was
    revived). It is still one opportunity: each stage counts it at most once, at its
    first (``ANY``) or first in-order (``ORDERED``) entry; ``FunnelResult.reopened``
    says how many there were.

Amounts and time
    A stage's amount is the sum of ``amount_fen`` on the counted entry events (for payment:
    money received). Time in a stage is the total of the completed spells in it (from an
    entry to the next event of that opportunity); spells still open at ``end``, and spells
    ended by losing the deal, have no end and are left out of the median.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

# the definitions over loaded events need no database library (the app's start path
# computes the home's funnel before SQLAlchemy is imported): core.funnel_figures
from core.funnel_figures import (  # noqa: F401 (re-exported)
    STAGE_INDEX,
    FunnelMode,
    FunnelQuery,
    FunnelResult,
    PeriodBasis,
    StageFigures,
    _counted_entries,
    _Event,
    _figures,
    _OppTrack,
    _ratio,
    period_of_days,
    tracks_from_rows,
)
from core.models import (
    Customer,
    Opportunity,
    OpportunityStageEvent,
    Rep,
    Stage,
    Store,
    UserRole,
)
from core.mutations import Actor


def _scope_clause(actor: Actor | None) -> list:
    if actor is None or actor.role == UserRole.ADMIN.value:
        return []
    return [
        or_(
            Opportunity.store_id.in_(actor.store_ids or {-1}),
            and_(
                Opportunity.store_id.is_(None),
                Customer.region_id.in_(actor.region_ids or {-1}),
            ),
        )
    ]


def _filtered_opps(query: FunnelQuery, actor: Actor | None) -> Select:
    stmt = select(Opportunity.id).join(Customer, Customer.id == Opportunity.customer_id)
    conds = _scope_clause(actor)
    if query.region_id is not None:
        conds.append(Customer.region_id == query.region_id)
    if query.store_id is not None:
        conds.append(Opportunity.store_id == query.store_id)
    if query.rep_id is not None:
        conds.append(Opportunity.rep_id == query.rep_id)
    if query.tier:
        conds.append(Customer.tier == query.tier)
    return stmt.where(*conds)


def _load_tracks(session: Session, query: FunnelQuery, actor: Actor | None) -> list[_OppTrack]:
    ev = OpportunityStageEvent
    opps = _filtered_opps(query, actor).subquery()
    if query.basis == PeriodBasis.COHORT:
        base = (
            select(ev.opportunity_id)
            .where(ev.opportunity_id.in_(select(opps.c.id)))
            .group_by(ev.opportunity_id)
            .having(func.min(ev.entered_at) >= query.start, func.min(ev.entered_at) < query.end)
        )
    else:
        base = (
            select(ev.opportunity_id)
            .where(
                ev.opportunity_id.in_(select(opps.c.id)),
                ev.entered_at >= query.start,
                ev.entered_at < query.end,
            )
            .distinct()
        )
    rows = session.execute(
        select(ev.opportunity_id, ev.stage, ev.entered_at, ev.amount_fen, ev.id)
        .where(ev.opportunity_id.in_(base), ev.entered_at < query.end)
        .order_by(ev.opportunity_id, ev.entered_at, ev.id)
    ).all()
    return tracks_from_rows(rows)


def compute_funnel(
    session: Session,
    query: FunnelQuery,
    *,
    actor: Actor | None = None,
    compare_previous: bool = False,
) -> FunnelResult:
    """The funnel for ``query`` (within ``actor``'s scope), optionally with the previous period."""
    result = _figures(query, _load_tracks(session, query, actor))
    if compare_previous:
        prev_q = query.previous()
        result = replace(result, previous=_figures(prev_q, _load_tracks(session, prev_q, actor)))
    return result


# --------------------------------------------------------------------------- drill-down


@dataclass(frozen=True)
class OpportunityRow:
    """One opportunity counted at a stage, ready for a table."""

    id: str
    title: str
    customer_id: int
    customer_name: str
    tier: str
    rep_id: int
    rep_name: str
    store_id: int | None
    store_name: str
    amount_fen: int  # the amount on its entry into the stage
    entered_stage_at: dt.datetime
    current_stage: str
    status: str
    next_step: str
    next_step_at: dt.datetime | None
    reopened: bool


def opportunities_at_stage(
    session: Session, query: FunnelQuery, stage: str | Stage, *, actor: Actor | None = None
) -> list[OpportunityRow]:
    """The opportunities the funnel counts at ``stage`` (same definitions), newest entry first."""
    s = str(stage)
    if s not in STAGE_INDEX:
        raise ValueError(f"unknown stage {stage!r}")
    hits = {
        t.id: (t, e[s])
        for t in _load_tracks(session, query, actor)
        if s in (e := _counted_entries(t, query))
    }
    if not hits:
        return []
    rows = session.execute(
        select(Opportunity, Customer.name, Customer.tier, Rep.name, Store.name)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .join(Rep, Rep.id == Opportunity.rep_id)
        .outerjoin(Store, Store.id == Opportunity.store_id)
        .where(Opportunity.id.in_(list(hits)))
    ).all()
    out = []
    for opp, cname, tier, rname, sname in rows:
        track, ev = hits[opp.id]
        out.append(
            OpportunityRow(
                id=opp.id,
                title=opp.title,
                customer_id=opp.customer_id,
                customer_name=cname,
                tier=tier,
                rep_id=opp.rep_id,
                rep_name=rname,
                store_id=opp.store_id,
                store_name=sname or "",
                amount_fen=ev.amount_fen,
                entered_stage_at=ev.at,
                current_stage=opp.stage,
                status=opp.status,
                next_step=opp.next_step,
                next_step_at=opp.next_step_at,
                reopened=track.reopened,
            )
        )
    out.sort(key=lambda r: (r.entered_stage_at, r.id), reverse=True)
    return out


@dataclass(frozen=True)
class FilterOption:
    id: int | None
    label: str


def funnel_filter_options(
    session: Session, region_id: int | None, actor: Actor | None = None
) -> tuple[list[FilterOption], list[FilterOption]]:
    """(stores, reps) a funnel can be filtered by, within the region and the actor's scope."""
    store_q = select(Store.id, Store.code, Store.name).order_by(Store.code)
    rep_q = select(Rep.id, Rep.code, Rep.name).order_by(Rep.code)
    if region_id is not None:
        store_q = store_q.where(Store.region_id == region_id)
        rep_q = rep_q.where(Rep.region_id == region_id)
    if actor is not None and actor.role != UserRole.ADMIN.value:
        store_q = store_q.where(Store.id.in_(actor.store_ids or {-1}))
        rep_q = rep_q.where(
            or_(
                Rep.store_id.in_(actor.store_ids or {-1}),
                and_(Rep.store_id.is_(None), Rep.region_id.in_(actor.region_ids or {-1})),
            )
        )
    stores = [FilterOption(i, f"{c} {n}") for i, c, n in session.execute(store_q)]
    reps = [FilterOption(i, f"{n} ({c})") for i, c, n in session.execute(rep_q)]
    return stores, reps
