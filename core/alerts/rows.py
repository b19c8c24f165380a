"""Alerts read back for the screens: rows, scope and order (no database library).

:mod:`core.alerts.engine` reads ``alerts`` with the ORM and re-exports these names; the
app's start path (``core.quickread``) reads the same columns with the sqlite3 driver and
builds the very same rows here. An alert is any object with the ``Alert`` columns as
attributes (instants aware UTC, ``params`` a dict or None).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.i18n import N_

if TYPE_CHECKING:
    from core.actor import Actor


class AlertKind(enum.StrEnum):
    NO_QUOTE = "no_quote"
    PAYMENT_OVERDUE = "payment_overdue"
    A_TIER_UNVISITED = "a_tier_unvisited"
    PROMOTION_PENDING = "promotion_pending"


#: English source labels, translated with ``_()`` where shown.
KIND_LABELS: dict[str, str] = {
    AlertKind.NO_QUOTE: N_("No quote after opportunity"),
    AlertKind.PAYMENT_OVERDUE: N_("Contract signed, payment overdue"),
    AlertKind.A_TIER_UNVISITED: N_("A-tier customer not visited"),
    AlertKind.PROMOTION_PENDING: N_("Promotion awaiting approval"),
}


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def in_scope(actor: Actor | None, store_id: int | None, region_id: int | None) -> bool:
    """Store-bound alerts follow the store scope, the others their region's."""
    if actor is None or actor.role == "admin":
        return True
    if store_id is not None:
        return actor.can_store(store_id)
    return actor.can_region(region_id)


@dataclass(frozen=True)
class AlertRow:
    id: str
    kind: str
    severity: str
    #: active | snoozed | resolved
    state: str
    subject_type: str
    subject_id: str
    subject_label: str
    customer_id: int | None
    region_id: int | None
    store_id: int | None
    store_name: str
    rep_id: int | None
    rep_name: str
    raised_at: dt.datetime
    due_at: dt.datetime | None
    #: Hours since the milestone fell due (at evaluation time ``now``).
    overdue_hours: float
    escalated_at: dt.datetime | None
    snoozed_until: dt.datetime | None
    snooze_reason: str
    resolved_at: dt.datetime | None
    params: dict[str, Any] = field(default_factory=dict)


def _subject_label(a: Any) -> str:
    p = a.params or {}
    if a.subject_type == "opportunity":
        return f"{p.get('title', a.subject_id)} · {p.get('customer_name', '')}".strip(" ·")
    if a.subject_type == "customer":
        return str(p.get("customer_name", a.subject_id))
    if a.subject_type == "promotion_proposal":
        return f"{p.get('sku_name', '')} @ {p.get('store_name', '')}"
    return a.subject_id


def _state(a: Any, now: dt.datetime) -> str:
    if a.resolved_at is not None:
        return "resolved"
    if a.snoozed_until is not None and a.snoozed_until > now:
        return "snoozed"
    return "active"


def alert_rows(
    records: Iterable[tuple[Any, str | None, str | None]],
    now: dt.datetime,
    *,
    actor: Actor | None = None,
    include_snoozed: bool = True,
) -> list[AlertRow]:
    """(alert, store name, rep name) records in scope as rows, most severe first, then
    longest overdue first (what :func:`core.alerts.engine.list_alerts` returns)."""
    rows: list[AlertRow] = []
    for a, store_name, rep_name in records:
        if not in_scope(actor, a.store_id, a.region_id):
            continue
        state = _state(a, now)
        if state == "snoozed" and not include_snoozed:
            continue
        p = a.params or {}
        cid = p.get("customer_id")
        rows.append(
            AlertRow(
                id=a.id,
                kind=a.kind,
                severity=a.severity,
                state=state,
                subject_type=a.subject_type,
                subject_id=a.subject_id,
                subject_label=_subject_label(a),
                customer_id=int(cid) if cid is not None else None,
                region_id=a.region_id,
                store_id=a.store_id,
                store_name=store_name or "",
                rep_id=a.rep_id,
                rep_name=rep_name or "",
                raised_at=a.raised_at,
                due_at=a.due_at,
                overdue_hours=max(0.0, (now - a.due_at).total_seconds() / 3600)
                if a.due_at
                else 0.0,
                escalated_at=a.escalated_at,
                snoozed_until=a.snoozed_until,
                snooze_reason=a.snooze_reason or "",
                resolved_at=a.resolved_at,
                params=dict(p),
            )
        )
    rows.sort(key=lambda r: (SEVERITY_RANK.get(r.severity, 9), -r.overdue_hours, r.id))
    return rows
