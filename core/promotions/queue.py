"""What the approval screen reads: the queue, one proposal's detail, decision sync states.

Plain dataclasses out (never ORM rows), so the view can hold them on the UI thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from core.models import (
    DailySkuSales,
    InventoryLot,
    Outbox,
    PromotionDecision,
    PromotionProposal,
    PromotionRule,
    Sku,
    Store,
    SyncConflict,
)
from core.mutations import Actor

DECIDE = "promotion.decide/1"


@dataclass(frozen=True)
class DecisionSync:
    """Where a local decision is: pending (not yet synced) | synced | rejected | conflict."""

    state: str
    message: str = ""
    theirs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProposalRow:
    id: str
    store_id: int
    store_code: str
    store_name: str
    sku_id: int
    sku_code: str
    sku_name: str
    lot_code: str
    template: str
    status: str
    discount_pct: int
    min_pct: int
    max_pct: int
    urgency: int
    value_at_risk_fen: int
    waste_avoided_fen: int
    margin_given_up_fen: int
    on_hand: int
    days_to_expiry: int | None
    expiry_date: dt.date | None
    gift_name: str
    generated_at: dt.datetime
    starts_on: dt.date | None
    ends_on: dt.date | None
    rule_name: str
    decision: str | None = None
    decided_discount: int | None = None
    decided_by_name: str = ""
    decided_at: dt.datetime | None = None
    reason_code: str | None = None
    comment: str = ""
    sync: DecisionSync | None = None


def decision_sync_states(
    session: Session, proposal_ids: Iterable[str] | None = None
) -> dict[str, DecisionSync]:
    """Sync state of the local decisions, per proposal id, from the outbox and conflicts.

    A proposal with no outbox row was decided elsewhere (arrived by pull): it is synced.
    A lost decision is ``conflict`` while the conflict is open; once the user has accepted
    the winner's decision (resolved), the local rows hold the server's state: ``synced``.
    """
    wanted = set(proposal_ids) if proposal_ids is not None else None
    conflicts = session.scalars(
        select(SyncConflict).where(SyncConflict.entity == "promotion_decision")
    ).all()
    resolved = {c.mutation_id for c in conflicts if c.resolved_at is not None}
    out: dict[str, DecisionSync] = {}
    for ob in session.scalars(
        select(Outbox).where(Outbox.name == DECIDE).order_by(Outbox.mutation_id)
    ):
        pid = str((ob.args or {}).get("proposal_id", ""))
        if wanted is not None and pid not in wanted:
            continue
        if ob.mutation_id in resolved:
            out[pid] = DecisionSync("synced")
            continue
        state = {"pending": "pending", "sent": "synced", "rejected": "rejected"}.get(
            ob.status, ob.status
        )
        out[pid] = DecisionSync(state, ob.error or "")
    for c in conflicts:
        if c.resolved_at is not None or (wanted is not None and c.entity_id not in wanted):
            continue
        out[c.entity_id] = DecisionSync("conflict", c.message, dict(c.theirs or {}))
    return out


def list_proposals(
    session: Session,
    store_ids: Sequence[int],
    statuses: Sequence[str] = ("pending",),
    limit: int | None = None,
    ids: Sequence[str] | None = None,
) -> list[ProposalRow]:
    """Proposals of ``store_ids`` in ``statuses`` (optionally only ``ids``), most urgent first."""
    gift = aliased(Sku)
    q = (
        select(PromotionProposal, Store, Sku, PromotionRule, PromotionDecision, InventoryLot, gift)
        .join(Store, Store.id == PromotionProposal.store_id)
        .join(Sku, Sku.id == PromotionProposal.sku_id)
        .join(PromotionRule, PromotionRule.id == PromotionProposal.rule_id)
        .outerjoin(PromotionDecision, PromotionDecision.proposal_id == PromotionProposal.id)
        .outerjoin(InventoryLot, InventoryLot.id == PromotionProposal.lot_id)
        .outerjoin(gift, gift.id == PromotionProposal.gift_sku_id)
        .where(PromotionProposal.store_id.in_(list(store_ids)))
        .where(PromotionProposal.status.in_(list(statuses)))
        .order_by(
            PromotionProposal.urgency.desc(),
            PromotionProposal.value_at_risk_fen.desc(),
            PromotionProposal.id,
        )
    )
    if ids is not None:
        q = q.where(PromotionProposal.id.in_(list(ids)))
    if limit:
        q = q.limit(limit)
    rows = session.execute(q).all()
    syncs = decision_sync_states(session, [r[0].id for r in rows])
    out: list[ProposalRow] = []
    for p, store, sku, rule, dec, lot, g in rows:
        m = p.maths or {}
        expiry = lot.expiry_date if lot is not None else None
        if expiry is None and m.get("expiry_date"):
            expiry = dt.date.fromisoformat(m["expiry_date"])
        out.append(
            ProposalRow(
                id=p.id,
                store_id=store.id,
                store_code=store.code,
                store_name=store.name,
                sku_id=sku.id,
                sku_code=sku.code,
                sku_name=sku.name,
                lot_code=lot.lot_code if lot is not None else "",
                template=p.template,
                status=p.status,
                discount_pct=p.discount_pct,
                min_pct=rule.min_discount_pct,
                max_pct=rule.max_discount_pct,
                urgency=p.urgency,
                value_at_risk_fen=p.value_at_risk_fen,
                waste_avoided_fen=int(m.get("waste_avoided_fen", 0)),
                margin_given_up_fen=int(m.get("margin_given_up_fen", 0)),
                on_hand=int(m.get("on_hand", 0)),
                days_to_expiry=m.get("days_to_expiry"),
                expiry_date=expiry,
                gift_name=g.name if g is not None else "",
                generated_at=p.generated_at,
                starts_on=p.starts_on,
                ends_on=p.ends_on,
                rule_name=rule.name,
                decision=dec.decision if dec else None,
                decided_discount=dec.discount_pct if dec else None,
                decided_by_name=dec.decided_by_name if dec else "",
                decided_at=dec.decided_at if dec else None,
                reason_code=dec.reason_code if dec else None,
                comment=dec.comment if dec else "",
                sync=syncs.get(p.id),
            )
        )
    return out


@dataclass(frozen=True)
class ProposalDetail:
    row: ProposalRow
    maths: dict[str, Any]
    sales: list[tuple[dt.date, int]]  # last 28 complete days, oldest first
    gift_sales: list[tuple[dt.date, int]]


def _series(session: Session, store_id: int, sku_id: int, end: dt.date, days: int = 28):
    start = end - dt.timedelta(days=days - 1)
    got = dict(
        session.execute(
            select(DailySkuSales.date, DailySkuSales.units).where(
                DailySkuSales.store_id == store_id,
                DailySkuSales.sku_id == sku_id,
                DailySkuSales.date >= start,
                DailySkuSales.date <= end,
            )
        ).all()
    )
    return [
        (start + dt.timedelta(days=i), int(got.get(start + dt.timedelta(days=i), 0)))
        for i in range(days)
    ]


def proposal_detail(session: Session, proposal_id: str) -> ProposalDetail | None:
    p = session.get(PromotionProposal, proposal_id)
    if p is None:
        return None
    rows = list_proposals(session, [p.store_id], statuses=(p.status,), ids=[proposal_id])
    if not rows:
        return None
    row = rows[0]
    m = dict(p.maths or {})
    end = (
        dt.date.fromisoformat(m["as_of"])
        if m.get("as_of")
        else p.generated_at.date() - dt.timedelta(days=1)
    )
    gift_sales = _series(session, p.store_id, p.gift_sku_id, end) if p.gift_sku_id else []
    return ProposalDetail(row, m, _series(session, p.store_id, p.sku_id, end), gift_sales)


def scope_store_ids(
    session: Session, actor: Actor, store_id: int | None, region_id: int | None
) -> list[int]:
    """The stores the queue shows: the selected store, else the actor's stores of the region."""
    if store_id is not None:
        return [store_id] if actor.can_store(store_id) else []
    q = select(Store.id).order_by(Store.id)
    if region_id is not None:
        q = q.where(Store.region_id == region_id)
    ids = list(session.scalars(q))
    return [i for i in ids if actor.can_store(i)]


def queue_rows(session: Session, store_ids: Sequence[int]) -> list[ProposalRow]:
    """Pending proposals, plus decided ones whose local decision is not yet synced, was
    refused, or lost to another decision (so the manager sees what happened to them)."""
    pending = list_proposals(session, store_ids, ("pending",))
    # Only decisions that are not settled yet: the outbox and open conflicts are small,
    # while decided proposals accumulate for ever.
    unsettled = [pid for pid, st in decision_sync_states(session).items() if st.state != "synced"]
    decided = (
        list_proposals(session, store_ids, ("approved", "rejected", "expired"), ids=unsettled)
        if unsettled
        else []
    )
    return decided + pending


@dataclass(frozen=True)
class RuleInfo:
    id: int
    code: str
    name: str
    text: str
    template: str
    min_pct: int
    max_pct: int
    enabled: bool
    version: int


def list_rules(session: Session) -> list[RuleInfo]:
    return [
        RuleInfo(
            r.id,
            r.code,
            r.name,
            r.text,
            r.template,
            r.min_discount_pct,
            r.max_discount_pct,
            r.enabled,
            r.version,
        )
        for r in session.scalars(select(PromotionRule).order_by(PromotionRule.id))
    ]


def store_label(session: Session, store_id: int | None) -> str:
    """ "SH001 静安店" for headings; empty when there is no store."""
    if store_id is None:
        return ""
    s = session.get(Store, store_id)
    return f"{s.code} {s.name}" if s else str(store_id)
