"""What identifies a StoreDesk cache file, importable without SQLAlchemy.

:mod:`core.cache` opens a file and the app's start path reads it with the sqlite3 driver
before SQLAlchemy is imported (``core.quickread``); both need these facts. The data model
states the first two as well (``core.models.SCHEMA_VERSION``/``APP_ID``, bumped together;
``tests/core/test_cache.py`` holds them equal).
"""

from __future__ import annotations

#: Bumped whenever the schema changes; ``core.cache`` migrates older files on open.
SCHEMA_VERSION = 3

#: Written into ``meta`` so a file that is SQLite but not a StoreDesk cache is recognised.
APP_ID = "storedesk-cache"

#: Tables :mod:`core.quickread` reads (sign-in, pickers, sync status, the region and store
#: homes). A cache lacking one of them is completed (``init_schema``) when it is opened,
#: before any driver-level read; every other table is checked when the ORM engine is first made.
QUICKREAD_TABLES: frozenset[str] = frozenset(
    {
        "meta",
        "regions",
        "stores",
        "users",
        "user_scopes",
        "hourly_traffic",
        "holidays",
        "shifts",
        "promotion_proposals",
        "skus",
        "promotion_rules",
        "alerts",
        "reps",
        "visits",
        "customers",
        "opportunities",
        "opportunity_stage_events",
        "outbox",
        "sync_conflicts",
        "sync_state",
    }
)
