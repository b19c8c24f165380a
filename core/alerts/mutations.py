"""``alert.snooze/1`` {alert_id, until, reason}: hide an alert until a time, with a reason.

Scope: a store-bound alert may be snoozed by whoever may change that store; an alert
without a store (a customer with no home store) by whoever covers its region. The reason
is mandatory (the supervisor reads it in the digest) and a snooze is at most
:attr:`AlertThresholds.max_snooze_days` long, so nothing is buried for good. A snooze on a
resolved alert is refused: there is nothing left to hide. On the server an alert a client
raised offline may not exist yet; the handler then evaluates the rules for the actor's
scope first (same deterministic id) instead of refusing the snooze.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from core.alerts.engine import evaluate_alerts, in_scope
from core.alerts.rules import AlertThresholds
from core.models import Alert
from core.mutations import Actor, Changes, Rejected, ScopeDenied, mutation

MAX_REASON = 500


def _parse_until(value: Any) -> dt.datetime:
    try:
        until = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected("bad_until", f"not an ISO date-time: {value!r}") from None
    if until.tzinfo is None:
        raise Rejected("bad_until", "the snooze end must carry a time zone")
    return until.astimezone(dt.UTC)


@mutation("alert.snooze")
def snooze_alert(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    alert_id = str(args.get("alert_id", ""))
    alert = session.get(Alert, alert_id)
    if alert is None:
        # Raised offline by a client and not seen here yet: alert ids are derived from
        # kind + subject, so evaluating the rules for this actor raises the very same row.
        evaluate_alerts(session, now, scope=actor)
        alert = session.get(Alert, alert_id)
    if alert is None:
        raise Rejected("not_found", f"alert {alert_id!r} does not exist")
    if not in_scope(actor, alert.store_id, alert.region_id):
        raise ScopeDenied(f"alert {alert.id} is outside the scope of {actor.name}")
    if alert.resolved_at is not None:
        raise Rejected("resolved", "this alert is already resolved")
    reason = str(args.get("reason", "")).strip()
    if not reason:
        raise Rejected("reason_required", "a snooze needs a reason")
    if len(reason) > MAX_REASON:
        raise Rejected("reason_too_long", f"the reason is longer than {MAX_REASON} characters")
    until = _parse_until(args.get("until"))
    if until <= now:
        raise Rejected("until_in_past", "the snooze must end in the future")
    if until > now + dt.timedelta(days=AlertThresholds().max_snooze_days):
        raise Rejected("snooze_too_long", "an alert can be snoozed for 30 days at most")
    alert.snoozed_until = until
    alert.snooze_reason = reason
    session.flush()
    return Changes().add("alerts", alert.id)
