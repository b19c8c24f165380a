"""Overdue-milestone alerts (超时预警): rules, evaluation, digest and the snooze mutation.

``rules`` finds what is overdue (plain candidates), ``engine`` turns candidates into
``alerts`` rows (upsert, suppress, escalate, resolve) and reads them back for screens,
``mutations`` holds ``alert.snooze/1``.
"""

from core.alerts.engine import (
    AlertRow,
    DigestGroup,
    alert_digest,
    evaluate_alerts,
    list_alerts,
    seed_alerts,
)
from core.alerts.rules import KIND_LABELS, AlertKind, AlertThresholds

__all__ = [
    "KIND_LABELS",
    "AlertKind",
    "AlertRow",
    "AlertThresholds",
    "DigestGroup",
    "alert_digest",
    "evaluate_alerts",
    "list_alerts",
    "seed_alerts",
]
