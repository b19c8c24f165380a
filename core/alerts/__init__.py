"""Overdue-milestone alerts (超时预警): rules, evaluation, digest and the snooze mutation.

``rules`` finds what is overdue (plain candidates), ``engine`` turns candidates into
``alerts`` rows (upsert, suppress, escalate, resolve) and reads them back for screens,
``mutations`` holds ``alert.snooze/1``.
"""

import importlib
from typing import Any

# Imported on first use (PEP 562): ``core.alerts.rows`` is read by the app's start path
# before SQLAlchemy is imported, and importing it runs this package first.
_WHERE = {
    "KIND_LABELS": "core.alerts.rows",
    "AlertKind": "core.alerts.rows",
    "AlertRow": "core.alerts.rows",
    "AlertThresholds": "core.alerts.rules",
    "DigestGroup": "core.alerts.engine",
    "alert_digest": "core.alerts.engine",
    "evaluate_alerts": "core.alerts.engine",
    "list_alerts": "core.alerts.engine",
    "seed_alerts": "core.alerts.engine",
}

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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
