"""Sync conflicts the user must resolve, and the local sync counters the status bar shows.

A conflict is stored by the sync engine as a :class:`core.models.SyncConflict` row: *mine*
(what this desktop tried) and *theirs* (the server's row when it refused). Resolving:

* ``theirs`` — accept the server's version: the conflict is closed; the local rows already
  hold the server's state after the pull that follows every push.
* ``mine`` — re-apply my intent on top of the server's version: the original mutation is
  applied again locally with ``base_version`` = the server's version, which queues a new
  outbox row (the server re-validates it on the next push). Only offered when the entity
  supports it (a promotion decision is first-wins: the later decision cannot be "mine").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Outbox, SyncConflict, SyncState
from core.mutations import Actor, Changes, Rejected, apply_local, pending_count

# The status bar's counts (LocalSyncStatus, from the LAST_SYNC_KEYS of SyncState) are read
# at start-up without SQLAlchemy too (core.quickread.local_sync_status): defined there.
from core.quickread import LAST_SYNC_KEYS, LocalSyncStatus

#: Entities where "keep mine" makes sense (intent + base_version edits).
REAPPLICABLE = frozenset({"shift"})


@dataclass(frozen=True)
class ConflictInfo:
    id: int
    mutation_id: int
    mutation_name: str
    entity: str
    entity_id: str
    mine: dict[str, Any]
    theirs: dict[str, Any]
    message: str
    created_at: dt.datetime
    can_keep_mine: bool


def open_conflict_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(SyncConflict.resolved_at.is_(None))) or 0)


def local_sync_status(session: Session) -> LocalSyncStatus:
    last = None
    for key in LAST_SYNC_KEYS:
        row = session.get(SyncState, key)
        if row is not None and row.value:
            try:
                last = dt.datetime.fromisoformat(row.value)
            except ValueError:
                continue
            if last.tzinfo is None:
                last = last.replace(tzinfo=dt.UTC)
            break
    return LocalSyncStatus(pending_count(session), open_conflict_count(session), last)


def open_conflicts(session: Session) -> list[ConflictInfo]:
    rows = session.scalars(
        select(SyncConflict).where(SyncConflict.resolved_at.is_(None)).order_by(SyncConflict.id)
    ).all()
    names = dict(
        session.execute(
            select(Outbox.mutation_id, Outbox.name).where(
                Outbox.mutation_id.in_([r.mutation_id for r in rows])
            )
        )
        .tuples()
        .all()
    )
    out = []
    for r in rows:
        name = names.get(r.mutation_id) or str((r.mine or {}).get("_mutation", ""))
        out.append(
            ConflictInfo(
                id=r.id,
                mutation_id=r.mutation_id,
                mutation_name=name,
                entity=r.entity,
                entity_id=r.entity_id,
                mine=dict(r.mine or {}),
                theirs=dict(r.theirs or {}),
                message=r.message,
                created_at=r.created_at,
                can_keep_mine=r.entity in REAPPLICABLE and bool(name),
            )
        )
    return out


def _mutation_args(session: Session, conflict: SyncConflict) -> tuple[str, dict[str, Any]]:
    ob = session.get(Outbox, conflict.mutation_id)
    if ob is not None:
        return ob.name, dict(ob.args)
    mine = dict(conflict.mine or {})
    name = str(mine.pop("_mutation", ""))
    return name, dict(mine.get("args", mine))


def resolve_conflict(
    session: Session, conflict_id: int, choice: str, actor: Actor, now: dt.datetime
) -> Changes:
    """Close a conflict with ``choice`` ('mine' | 'theirs'); 'mine' re-queues my edit."""
    c = session.get(SyncConflict, conflict_id)
    if c is None or c.resolved_at is not None:
        raise Rejected("conflict_gone", "this conflict has already been resolved")
    changes = Changes().add("sync_conflicts", c.id)
    if choice == "mine":
        if c.entity not in REAPPLICABLE:
            raise Rejected(
                "not_reapplicable", f"a {c.entity} conflict cannot keep the local version"
            )
        name, args = _mutation_args(session, c)
        theirs_version = (c.theirs or {}).get("version")
        changes.merge(
            apply_local(
                session,
                actor,
                name,
                args,
                base_version=int(theirs_version) if theirs_version is not None else None,
                now=now,
            )
        )
    elif choice != "theirs":
        raise ValueError(f"choice must be 'mine' or 'theirs', not {choice!r}")
    c.resolved_at = now
    c.resolution = choice
    return changes
