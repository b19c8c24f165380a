"""Evaluate the rules into ``alerts`` rows, and read them back for the screens.

:func:`evaluate_alerts` is idempotent: run it at start-up, after a sync, on a timer — the
same data gives the same rows. Lifecycle of one alert (unique on kind + subject):

* raised when its milestone is due and the next step is not booked;
* *suppressed* while a next step is booked in the future: an active alert is resolved
  (``params.resolution = "next_step_booked"``) and comes back, fresh, if the booking
  passes without the milestone being met;
* escalated to the supervisor (``escalated_at`` set, severity ``critical``) once it has
  been due for ``escalate_after_hours`` more — a snooze covering that moment postpones
  the escalation to the snooze's end;
* resolved (``resolved_at``) when the milestone is met or the subject disappears.

Alert ids are derived from kind + subject, so two offline clients (or the server) that
raise the same alert produce the same row id and sync merges instead of duplicating.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

# reading rows back needs no database library (the app's start path lists the home's
# alerts before SQLAlchemy is imported): core.alerts.rows
from core.alerts.rows import (  # noqa: F401 (re-exported)
    SEVERITY_RANK,
    AlertRow,
    _state,
    _subject_label,
    alert_rows,
    in_scope,
)
from core.alerts.rules import AlertThresholds, Candidate, all_candidates
from core.i18n import _
from core.models import Alert, Rep, Store
from core.mutations import Actor


def alert_id(kind: str, subject_type: str, subject_id: str) -> str:
    """Deterministic 32-hex id so the same alert raised twice is the same row."""
    return hashlib.md5(
        f"{kind}|{subject_type}|{subject_id}".encode(), usedforsecurity=False
    ).hexdigest()


def _escalation_time(alert: Alert, thr: AlertThresholds) -> dt.datetime | None:
    if alert.due_at is None:
        return None
    at = alert.due_at + dt.timedelta(hours=thr.escalate_after_hours)
    if alert.snoozed_until is not None and alert.snoozed_until > at:
        at = alert.snoozed_until
    return at


def _apply(alert: Alert, c: Candidate, now: dt.datetime, thr: AlertThresholds) -> None:
    if alert.resolved_at is not None:  # a new episode: forget the old one's state
        alert.resolved_at = None
        alert.raised_at = now
        alert.escalated_at = None
        alert.snoozed_until = None
        alert.snooze_reason = ""
    alert.due_at = c.due_at
    alert.region_id = c.region_id
    alert.store_id = c.store_id
    alert.rep_id = c.rep_id
    alert.params = dict(c.params)
    snoozed = alert.snoozed_until is not None and alert.snoozed_until > now
    esc = _escalation_time(alert, thr)
    if alert.escalated_at is None and not snoozed and esc is not None and now >= esc:
        alert.escalated_at = esc
    alert.severity = "critical" if alert.escalated_at is not None else "warning"


def _resolve(alert: Alert, now: dt.datetime, why: str) -> None:
    alert.resolved_at = now
    alert.params = {**(alert.params or {}), "resolution": why}


def evaluate_alerts(
    session: Session,
    now: dt.datetime,
    thresholds: AlertThresholds | None = None,
    scope: Actor | None = None,
) -> list[AlertRow]:
    """Upsert due alerts, suppress/resolve the others; return the active alerts in scope.

    ``scope`` limits both what is raised and what is resolved to the actor's stores and
    regions (None: everything — the server and the demo generator).
    """
    thr = thresholds or AlertThresholds()
    existing = {(a.kind, a.subject_id): a for a in session.scalars(select(Alert))}
    seen: set[tuple[str, str]] = set()
    for c in all_candidates(session, now, thr):
        if not in_scope(scope, c.store_id, c.region_id):
            continue
        key = (str(c.kind), c.subject_id)
        alert = existing.get(key)
        if c.due_at > now:
            continue  # not due yet: resolved below if it was active
        if c.booked_until is not None:
            seen.add(key)
            if alert is not None and alert.resolved_at is None:
                _resolve(alert, now, "next_step_booked")
            continue
        seen.add(key)
        if alert is None:
            alert = Alert(
                id=alert_id(str(c.kind), c.subject_type, c.subject_id),
                kind=str(c.kind),
                subject_type=c.subject_type,
                subject_id=c.subject_id,
                raised_at=now,
                snooze_reason="",
                params={},
            )
            session.add(alert)
            existing[key] = alert
        _apply(alert, c, now, thr)
    for key, alert in existing.items():
        if (
            key not in seen
            and alert.resolved_at is None
            and in_scope(scope, alert.store_id, alert.region_id)
        ):
            _resolve(alert, now, "done")
    session.flush()
    return list_alerts(session, now, actor=scope)


def seed_alerts(session: Session, today: dt.date) -> int:
    """Demo-generator step: evaluate every rule at the end of ``today``; returns active count."""
    now = dt.datetime.combine(today, dt.time(10, 0), tzinfo=dt.UTC)  # 18:00 in Shanghai
    return len(evaluate_alerts(session, now))


# --------------------------------------------------------------------------- reading


def list_alerts(
    session: Session,
    now: dt.datetime,
    *,
    actor: Actor | None = None,
    kinds: Iterable[str] | None = None,
    region_id: int | None = None,
    store_id: int | None = None,
    rep_id: int | None = None,
    include_snoozed: bool = True,
    include_resolved: bool = False,
) -> list[AlertRow]:
    """Alerts in scope, most severe first, then longest overdue first."""
    stmt = (
        select(Alert, Store.name, Rep.name)
        .outerjoin(Store, Store.id == Alert.store_id)
        .outerjoin(Rep, Rep.id == Alert.rep_id)
    )
    if kinds is not None:
        stmt = stmt.where(Alert.kind.in_(list(kinds)))
    if region_id is not None:
        stmt = stmt.where(Alert.region_id == region_id)
    if store_id is not None:
        stmt = stmt.where(Alert.store_id == store_id)
    if rep_id is not None:
        stmt = stmt.where(Alert.rep_id == rep_id)
    if not include_resolved:
        stmt = stmt.where(Alert.resolved_at.is_(None))
    return alert_rows(session.execute(stmt), now, actor=actor, include_snoozed=include_snoozed)


@dataclass(frozen=True)
class DigestGroup:
    """One rep's or store's share of the open alerts."""

    key: int | None
    label: str
    total: int
    escalated: int
    by_kind: dict[str, int]
    alerts: list[AlertRow]


def alert_digest(rows: Sequence[AlertRow], by: str = "rep") -> list[DigestGroup]:
    """Group the *active* alerts (not snoozed, not resolved) by ``"rep"`` or ``"store"``.

    Largest groups first; alerts without a rep (promotion approvals) form a "No rep" group.
    """
    if by not in ("rep", "store"):
        raise ValueError(f"digest by {by!r}: expected 'rep' or 'store'")
    groups: dict[int | None, list[AlertRow]] = {}
    labels: dict[int | None, str] = {}
    for r in rows:
        if r.state != "active":
            continue
        key = r.rep_id if by == "rep" else r.store_id
        groups.setdefault(key, []).append(r)
        name = r.rep_name if by == "rep" else r.store_name
        labels[key] = name or (_("No rep") if by == "rep" else _("No store"))
    out = []
    for key, items in groups.items():
        by_kind: dict[str, int] = {}
        for r in items:
            by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
        out.append(
            DigestGroup(
                key=key,
                label=labels[key],
                total=len(items),
                escalated=sum(1 for r in items if r.escalated_at is not None),
                by_kind=by_kind,
                alerts=items,
            )
        )
    out.sort(key=lambda g: (-g.escalated, -g.total, g.label))
    return out
