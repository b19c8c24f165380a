"""Named, versioned mutations: the only way a user's edit changes synced data.

One handler per mutation, used twice (the Replicache model):

* on the desktop, :func:`apply_local` runs the handler optimistically and appends the
  outbox row **in the same session/transaction**, so an edit and its outbox entry are
  committed together or not at all;
* on the central server, the push endpoint runs the very same handler authoritatively,
  with the pushing user's :class:`Actor`, inside the transaction that also advances the
  client's ``last_mutation_id``.

A handler raises :class:`Rejected` for a business rule (the mutation id still advances and
the user reads the reason), :class:`Conflict` when the edit was based on stale data or lost
a first-wins race, and :class:`ScopeDenied` when the actor may not touch that store/region.
It returns :class:`Changes` so each screen can decide whether to refresh (Anki's OpChanges).

Feature modules register their handlers with :func:`mutation`; ``MUTATION_MODULES`` lists
them so :func:`load_all` can populate the registry before a push is applied.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

# Actor and the refusals live in core.actor (no SQLAlchemy: the app's start path needs them)
from core.actor import (  # noqa: F401 (re-exported)
    Actor,
    Conflict,
    MutationError,
    Rejected,
    ScopeDenied,
)
from core.models import Outbox, Store, SyncState, User, UserRole, UserScope

#: Modules whose import registers mutation handlers (each feature adds its own).
MUTATION_MODULES: list[str] = [
    "core.alerts.mutations",
    "core.traffic.importer",
    "core.scheduling.mutations",
    "core.promotions.mutations",
    "core.visits",
    "core.trajectory.gps_import",
]


def actor_for_user(session: Session, user: User) -> Actor:
    """Resolve a user's scope rows: a supervisor's regions expand to all their stores."""
    scopes = session.scalars(select(UserScope).where(UserScope.user_id == user.id)).all()
    store_ids = {s.store_id for s in scopes if s.store_id is not None}
    region_ids = {s.region_id for s in scopes if s.region_id is not None}
    if region_ids:
        store_ids |= set(
            session.scalars(select(Store.id).where(Store.region_id.in_(region_ids))).all()
        )
    if store_ids:
        region_ids |= (
            set(session.scalars(select(Store.region_id).where(Store.id.in_(store_ids))).all())
            if user.role != UserRole.STORE_MANAGER.value
            else set()
        )
    return Actor(
        user_id=user.id,
        name=user.display_name,
        role=user.role,
        store_ids=frozenset(store_ids),
        region_ids=frozenset(region_ids),
    )


@dataclass
class Changes:
    """What an edit or a sync touched: table names and row ids per table."""

    tables: dict[str, set[str]] = field(default_factory=dict)

    def add(self, table: str, *ids: Any) -> Changes:
        self.tables.setdefault(table, set()).update(str(i) for i in ids)
        return self

    def merge(self, other: Changes) -> Changes:
        for t, ids in other.tables.items():
            self.tables.setdefault(t, set()).update(ids)
        return self

    def touches(self, *tables: str) -> bool:
        return any(t in self.tables for t in tables)

    def __bool__(self) -> bool:
        return bool(self.tables)


Handler = Callable[[Session, dict[str, Any], Actor, "int | None", dt.datetime], Changes]


@dataclass(frozen=True)
class MutationSpec:
    name: str  # versioned, e.g. "shift.update/1"
    handler: Handler


REGISTRY: dict[str, MutationSpec] = {}


def mutation(name: str, version: int = 1) -> Callable[[Handler], Handler]:
    """Register ``handler(session, args, actor, base_version, now) -> Changes``."""
    full = f"{name}/{version}"

    def deco(fn: Handler) -> Handler:
        if full in REGISTRY and REGISTRY[full].handler is not fn:
            raise RuntimeError(f"mutation {full} registered twice")
        REGISTRY[full] = MutationSpec(full, fn)
        return fn

    return deco


def load_all(extra: Iterable[str] = ()) -> dict[str, MutationSpec]:
    for mod in (*MUTATION_MODULES, *extra):
        importlib.import_module(mod)
    return REGISTRY


def get(name: str) -> MutationSpec:
    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise Rejected("unknown_mutation", f"unknown mutation {name!r}") from None


def _next_mutation_id(session: Session) -> int:
    """Never reuse an id, even after acknowledged rows are pruned from the outbox."""
    row = session.get(SyncState, "next_mutation_id")
    floor = session.scalar(select(func.max(Outbox.mutation_id))) or 0
    n = max(int(row.value) if row else 1, floor + 1)
    if row is None:
        session.add(SyncState(key="next_mutation_id", value=str(n + 1)))
    else:
        row.value = str(n + 1)
    return n


def apply_local(
    session: Session,
    actor: Actor,
    name: str,
    args: dict[str, Any],
    *,
    base_version: int | None = None,
    now: dt.datetime | None = None,
) -> Changes:
    """Apply an edit to the local cache and queue it for push, in the caller's transaction."""
    now = now or dt.datetime.now(dt.UTC)
    spec = get(name)
    changes = spec.handler(session, args, actor, base_version, now)
    session.add(
        Outbox(
            mutation_id=_next_mutation_id(session),
            name=spec.name,
            args=args,
            base_version=base_version,
            created_at=now,
        )
    )
    session.flush()
    return changes.add("outbox")


#: ``session.info`` key of a change recorder: the central server's change log puts one on
#: its sessions and is told, by :func:`insert_new_rows`, of rows written without the ORM.
ROW_RECORDER_KEY = "storedesk_row_recorder"


def insert_new_rows(
    session: Session, model: Any, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert the rows whose key is still free (``INSERT … ON CONFLICT DO NOTHING``).

    For handlers that add thousands of rows to an insert-only table (a GPS import): one
    batched statement instead of an ORM object per row (a 50,000-point import spent 2.9 s
    in its handlers with ORM objects, 0.7 s this way), and a key taken meanwhile by a
    concurrent transaction is skipped instead of failing the mutation. Each row must hold
    every column. Returns the rows actually inserted, which the session's change recorder
    (if any) is given, so they sync like ORM writes.
    """
    if not rows:
        return []
    tbl = model.__table__
    pk = [c.name for c in tbl.primary_key.columns]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(tbl).on_conflict_do_nothing().returning(*[tbl.c[c] for c in pk])
    done = {tuple(r) for r in session.execute(stmt, rows)}
    inserted = [r for r in rows if tuple(r[c] for c in pk) in done]
    recorder = session.info.get(ROW_RECORDER_KEY)
    if recorder is not None and inserted:
        recorder(session, tbl.name, inserted)
    return inserted


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).where(Outbox.status == "pending")) or 0
