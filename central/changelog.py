"""Recording every change to synced rows, in commit order, for pull.

Capture. SQLAlchemy session events see every ORM insert/update/delete of a synced table:
``before_flush`` stamps deletes (the row and its parents still exist, so the scope keys can
be resolved), ``after_flush`` remembers new and changed instances, and ``before_commit``
writes one ``change_log`` row per changed row — the full row for upserts, the key for
deletes (tombstones) — **inside the same transaction** as the change itself. A rollback
discards the captured set. Writes that bypass the ORM are not seen, except rows a handler
inserts with :func:`core.mutations.insert_new_rows` (a GPS import's thousands of points),
which tells the recorder :func:`install` puts on the sessions; handlers otherwise use the
ORM. The demo generator's bulk load is covered by the snapshot, whose pinned sequence
starts after it.

Sequence = commit order. The sequence numbers are taken from the single-row counter
``change_seq`` with ``UPDATE … SET value = value + n RETURNING value`` as the *last*
statement before COMMIT. That row lock (PostgreSQL) or the database write lock (SQLite)
is held until the transaction commits, so a second writer obtains its numbers only after
the first has committed: numbers are handed out in commit order, across any number of
server processes on one database. A pull reads the counter first and then only rows with
``seq <= head`` — every such row is already committed and visible — so no pull can move
its cursor past a transaction that commits late. The lock is held only from the counter
update to COMMIT (microseconds), so writers are serialised only at that final step.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, event, insert, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from central.models import ChangeLog, ChangeSeq
from central.scope import RULES, RegionStore, ScopeKeys, scope_keys
from central.scope import Store as StoreRule
from core.mutations import ROW_RECORDER_KEY
from sync.protocol import SYNCED_TABLE_NAMES, pk_columns, table, to_wire, wire_columns

_ORDER = {name: i for i, name in enumerate(SYNCED_TABLE_NAMES)}
_KEY = "storedesk_changes"


@dataclass
class _Pending:
    upserts: dict[tuple[str, tuple[Any, ...]], Any] = field(default_factory=dict)
    deletes: dict[tuple[str, tuple[Any, ...]], tuple[list[Any], ScopeKeys]] = field(
        default_factory=dict
    )
    #: rows whose own scope columns changed: the keys they had before (see _moved_from)
    moves: dict[tuple[str, tuple[Any, ...]], ScopeKeys] = field(default_factory=dict)
    #: rows inserted without the ORM (column name -> value), see _record_rows
    inserted: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = field(default_factory=dict)


def _pending(session: Session) -> _Pending:
    p = session.info.get(_KEY)
    if p is None:
        p = session.info[_KEY] = _Pending()
    return p


def _table_name(obj: Any) -> str | None:
    name = getattr(obj, "__tablename__", None)
    return name if name in _ORDER else None


def _row_dict(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {
        col.name: getattr(obj, prop.key)
        for prop in mapper.column_attrs
        for col in prop.columns
        if col.table is mapper.local_table
    }


def _pk(name: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(to_wire(row[c]) for c in pk_columns(table(name)))


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    pending = _pending(session)
    for obj in session.deleted:
        name = _table_name(obj)
        if name is None:
            continue
        row = _row_dict(obj)
        pk = _pk(name, row)
        pending.upserts.pop((name, pk), None)
        pending.inserted.pop((name, pk), None)
        pending.deletes[(name, pk)] = (list(pk), scope_keys(session, name, row))


def _after_flush(session: Session, _ctx: Any) -> None:
    pending = _pending(session)
    for obj in (*session.new, *session.dirty):
        name = _table_name(obj)
        if name is None or (obj in session.dirty and not session.is_modified(obj)):
            continue
        row = _row_dict(obj)
        pk = _pk(name, row)
        pending.deletes.pop((name, pk), None)
        pending.upserts[(name, pk)] = obj
        if obj in session.dirty and (name, pk) not in pending.moves:
            before = _moved_from(session, name, obj, row)
            if before is not None:
                pending.moves[(name, pk)] = before


def _moved_from(session: Session, name: str, obj: Any, row: dict[str, Any]) -> ScopeKeys | None:
    """The scope keys a row had before this flush, if its own store/region columns changed.

    The change log then carries a tombstone under the old keys (so desktops that can no
    longer see the row drop it) before the upsert under the new ones.
    """
    rule = RULES[name]
    cols = (
        [rule.col]
        if isinstance(rule, StoreRule)
        else [rule.region_col, rule.store_col]
        if isinstance(rule, RegionStore)
        else []
    )
    state = inspect(obj)
    old = dict(row)
    changed = False
    for col in cols:
        hist = state.attrs[col].history
        if hist.deleted:
            old[col] = hist.deleted[0]
            changed = changed or hist.deleted[0] != row[col]
    return scope_keys(session, name, old) if changed else None


def _record_rows(session: Session, name: str, rows: list[dict[str, Any]]) -> None:
    """Rows a handler inserted with :func:`core.mutations.insert_new_rows` (not ORM objects)."""
    if name not in _ORDER:
        return
    pending = _pending(session)
    for row in rows:
        pk = _pk(name, row)
        pending.deletes.pop((name, pk), None)
        pending.inserted[(name, pk)] = row


def _before_commit(session: Session) -> None:
    session.flush()  # commit() fires this event before its own final flush
    if _KEY not in session.info:
        return
    pending: _Pending = session.info.pop(_KEY)
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    memo: dict[tuple[str, Any], ScopeKeys] = {}  # everything is flushed: parents are final
    with session.no_autoflush:
        for (name, pk), before in pending.moves.items():
            if (name, pk) in pending.upserts:
                rows.append(_log_row(name, "delete", list(pk), None, before, now))
        upserts = [(key, _row_dict(obj)) for key, obj in pending.upserts.items()]
        upserts += [(k, row) for k, row in pending.inserted.items() if k not in pending.upserts]
        for (name, pk), data in sorted(upserts, key=lambda kv: _ORDER[kv[0][0]]):
            keys = scope_keys(session, name, data, memo)
            wire = [to_wire(data[c]) for c in wire_columns(table(name))]
            rows.append(_log_row(name, "upsert", list(pk), wire, keys, now))
        for (name, _), (pk, keys) in sorted(
            pending.deletes.items(), key=lambda kv: -_ORDER[kv[0][0]]
        ):
            rows.append(_log_row(name, "delete", pk, None, keys, now))
    if not rows:
        return
    conn = session.connection()
    # Taken last, held until COMMIT: see the module docstring.
    head = conn.execute(
        update(ChangeSeq)
        .where(ChangeSeq.id == 1)
        .values(value=ChangeSeq.value + len(rows))
        .returning(ChangeSeq.value)
    ).scalar_one()
    first = head - len(rows) + 1
    for i, r in enumerate(rows):
        r["seq"] = first + i
    conn.execute(insert(ChangeLog), rows)


def _log_row(
    name: str, op: str, pk: list[Any], wire: list[Any] | None, keys: ScopeKeys, now: dt.datetime
) -> dict[str, Any]:
    return {
        "table_name": name,
        "op": op,
        "pk": json.dumps(pk, ensure_ascii=False),
        "row": None if wire is None else json.dumps(wire, ensure_ascii=False),
        "ref": keys.ref,
        "store_id": keys.store_id,
        "region_id": keys.region_id,
        "user_id": keys.user_id,
        "committed_at": now,
    }


def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)


def install(factory: sessionmaker[Session]) -> None:
    """Record changes made through sessions of ``factory`` (the server's sessionmaker)."""
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_rollback", _after_rollback)
    factory.configure(info={**(factory.kw.get("info") or {}), ROW_RECORDER_KEY: _record_rows})


def ensure_counter(session: Session) -> None:
    if session.get(ChangeSeq, 1) is None:
        session.add(ChangeSeq(id=1, value=0, floor=0))


def head_and_floor(session: Session) -> tuple[int, int]:
    row = session.execute(select(ChangeSeq.value, ChangeSeq.floor).where(ChangeSeq.id == 1)).one()
    return int(row[0]), int(row[1])


def prune(session: Session, keep_after: int) -> int:
    """Forget changes with seq <= ``keep_after``; cursors older than that get 410."""
    head, floor = head_and_floor(session)
    keep_after = min(keep_after, head)
    if keep_after <= floor:
        return 0
    n = session.execute(delete(ChangeLog).where(ChangeLog.seq <= keep_after)).rowcount
    session.execute(update(ChangeSeq).where(ChangeSeq.id == 1).values(floor=keep_after))
    return int(n or 0)


def prune_older_than(session: Session, cutoff: dt.datetime) -> int:
    """Forget changes committed before ``cutoff`` (the retention window)."""
    last_old = session.scalar(
        select(ChangeLog.seq)
        .where(ChangeLog.committed_at < cutoff)
        .order_by(ChangeLog.seq.desc())
        .limit(1)
    )
    return prune(session, int(last_old)) if last_old is not None else 0
