"""The sync engine's work on the local cache: plain synchronous functions, one transaction each.

The desktop runs them on its single DB worker thread (the engine awaits them through an
injectable ``run_db``), so the UI thread never touches SQLAlchemy. Every function that
writes does so in **one** SQLite transaction: a snapshot page and the snapshot position, or
a pull page and the new cursor, are committed together or not at all — a client killed at
any instant restarts from a consistent state.

Writes of server rows use ``INSERT OR REPLACE`` through ``executemany`` with foreign-key
enforcement off for that transaction: the server is the truth, a scoped replica
legitimately references rows outside its scope (a visit's customer who belongs to a
neighbouring store), and a stale optimistic local row that collides on a unique key (a
losing promotion decision) must give way to the server's row.

Optimistic local rows versus pulled rows: the server's row overwrites the local one, and
then every still-pending outbox mutation is re-applied on top of it in a savepoint
(Replicache's rebase), in the same transaction. So an edit made while a pull was running
stays visible, and it is the server that decides when the edit is pushed. A re-applied
handler that now fails (the server state moved on) is skipped locally: the push will bring
the server's verdict.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.cache import Cache
from core.i18n import _
from core.models import Base, Outbox, SyncConflict, SyncState
from core.mutations import Actor, MutationError, get
from sync.protocol import (
    SYNCED_TABLE_NAMES,
    Change,
    MutationOutcome,
    row_checksum_terms,
    table_checksum,
)

K_CLIENT = "client_id"
K_CURSOR = "cursor"
K_SNAP_TOKEN = "snapshot_token"
K_SNAP_TABLES = "snapshot_tables"  # JSON [[name, [columns]], ...]
K_SNAP_POS = "snapshot_pos"  # JSON {"table": index, "after": key | null}
K_SERVER = "server_url"
K_USER = "server_user_id"
K_LAST_SYNC = "last_sync_at"
K_SCOPE = "server_scope"  # JSON of the user's role, stores and regions at the last sync


@dataclass(frozen=True)
class OutboxItem:
    mutation_id: int
    name: str
    args: dict[str, Any]
    base_version: int | None


@dataclass(frozen=True)
class LocalState:
    client_id: str | None
    cursor: int | None
    server_url: str | None
    user_id: int | None
    snapshot_token: int | None
    snapshot_tables: list[tuple[str, list[str]]]
    snapshot_table_index: int
    snapshot_after: list[Any] | None
    snapshot_done: int
    snapshot_total: int
    pending: int
    conflicts: int
    last_sync_at: dt.datetime | None


def _get(session: Session, key: str) -> str | None:
    row = session.get(SyncState, key)
    return row.value if row else None


def _put(session: Session, key: str, value: str | None) -> None:
    row = session.get(SyncState, key)
    if value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(SyncState(key=key, value=value))
    else:
        row.value = value


def ensure_client_id(cache: Cache) -> str:
    with cache.session() as s:
        cid = _get(s, K_CLIENT)
        if cid is None:
            cid = uuid.uuid4().hex
            _put(s, K_CLIENT, cid)
        return cid


def read_state(cache: Cache) -> LocalState:
    from sqlalchemy import func

    with cache.session() as s:
        tables = json.loads(_get(s, K_SNAP_TABLES) or "[]")
        pos = json.loads(_get(s, K_SNAP_POS) or '{"table": 0, "after": null}')
        last = _get(s, K_LAST_SYNC)
        cursor = _get(s, K_CURSOR)
        token = _get(s, K_SNAP_TOKEN)
        user = _get(s, K_USER)
        return LocalState(
            client_id=_get(s, K_CLIENT),
            cursor=int(cursor) if cursor is not None else None,
            server_url=_get(s, K_SERVER),
            user_id=int(user) if user is not None else None,
            snapshot_token=int(token) if token is not None else None,
            snapshot_tables=[(t[0], list(t[1])) for t in tables],
            snapshot_table_index=int(pos["table"]),
            snapshot_after=pos["after"],
            snapshot_done=int(pos.get("done", 0)),
            snapshot_total=int(pos.get("total", 0)),
            pending=int(
                s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending"))
                or 0
            ),
            conflicts=int(
                s.scalar(
                    select(func.count())
                    .select_from(SyncConflict)
                    .where(SyncConflict.resolved_at.is_(None))
                )
                or 0
            ),
            last_sync_at=dt.datetime.fromisoformat(last) if last else None,
        )


def bind_server(cache: Cache, server_url: str, user_id: int, scope: str = "") -> bool:
    """Remember which server and user this cache mirrors; forget the cursor if they changed.

    Another user (or server) on the same cache: the data is downloaded again, the cache
    gets a new client id (the server ties a client id to one user), and the previous
    user's unsent edits are withdrawn with a readable reason — they are never sent in the
    name of someone else. The same user with a changed scope (``scope``: their stores and
    regions) snapshots again too, to receive the rows of stores they can now see.
    Returns True when the cache must be snapshotted again.
    """
    with cache.session() as s:
        prev_server, prev_user = _get(s, K_SERVER), _get(s, K_USER)
        same = prev_server == server_url and prev_user == str(user_id)
        if same and scope and _get(s, K_SCOPE) not in (None, scope):
            for k in (K_CURSOR, K_SNAP_TOKEN, K_SNAP_TABLES, K_SNAP_POS):
                _put(s, k, None)
            _put(s, K_SCOPE, scope)
            return True
        if scope:
            _put(s, K_SCOPE, scope)
        if not same:
            for k in (K_CURSOR, K_SNAP_TOKEN, K_SNAP_TABLES, K_SNAP_POS):
                _put(s, k, None)
            if prev_user is not None:
                _put(s, K_CLIENT, uuid.uuid4().hex)
                for ob in s.scalars(select(Outbox).where(Outbox.status == "pending")):
                    ob.status = "rejected"
                    ob.error = _("Not sent: another user signed in on this computer.")
            _put(s, K_SERVER, server_url)
            _put(s, K_USER, str(user_id))
        return not same


def pending_outbox(cache: Cache, limit: int = 200) -> list[OutboxItem]:
    with cache.session() as s:
        rows = s.scalars(
            select(Outbox)
            .where(Outbox.status == "pending")
            .order_by(Outbox.mutation_id)
            .limit(limit)
        ).all()
        return [OutboxItem(r.mutation_id, r.name, dict(r.args), r.base_version) for r in rows]


def affected_shift_keys(cache: Cache, name: str, args: dict[str, Any]) -> list[str]:
    """Local shift ids a refused publish / copy-week may have changed (schedule's rule)."""
    from core.scheduling.mutations import affected_shift_ids

    with cache.session() as s:
        return affected_shift_ids(s, name, args)


def record_push_results(
    cache: Cache, outcomes: Sequence[MutationOutcome], now: dt.datetime
) -> None:
    """Acknowledge pushed mutations; keep refusals readable and conflicts to resolve."""
    with cache.session() as s:
        for o in outcomes:
            ob = s.get(Outbox, o.id)
            if ob is None or ob.status != "pending":
                continue
            if o.status == "applied":
                ob.status = "sent"
                continue
            ob.status = "rejected"
            ob.error = o.message or (o.reason_code or "")
            if o.status == "conflict":
                s.add(
                    SyncConflict(
                        mutation_id=o.id,
                        entity=(o.entity or ob.name.split(".", 1)[0])[:32],
                        entity_id=(o.entity_id or "")[:32],
                        mine={"_mutation": ob.name, "args": dict(ob.args)},
                        theirs=o.theirs or {},
                        message=o.message,
                        created_at=now,
                    )
                )


# --------------------------------------------------------------------------- raw writes


@contextmanager
def _sync_tx(cache: Cache) -> Iterator[tuple[sqlite3.Connection, Session]]:
    """One IMMEDIATE transaction with FK enforcement off, plus a Session on it."""
    with cache.engine.connect() as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if raw.in_transaction:
            raw.rollback()
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            raw.execute("BEGIN IMMEDIATE")
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            try:
                yield raw, session
                session.flush()
                raw.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            finally:
                session.close()
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def _local_columns(name: str) -> set[str]:
    return {c.name for c in Base.metadata.tables[name].columns}


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _insert_rows(raw: sqlite3.Connection, name: str, columns: list[str], rows: list[Any]) -> int:
    if name not in SYNCED_TABLE_NAMES:
        raise ValueError(f"the server sent rows for an unknown table {name!r}")
    local = _local_columns(name)
    missing_pk = [
        c.name for c in Base.metadata.tables[name].primary_key.columns if c.name not in columns
    ]
    if missing_pk or len(set(columns)) != len(columns):
        raise ValueError(f"the server sent rows of {name} without a proper key")
    keep = [i for i, c in enumerate(columns) if c in local]
    if len(keep) != len(columns):
        rows = [[r[i] for i in keep] for r in rows]
        columns = [columns[i] for i in keep]
    if not rows:
        return 0
    sql = (
        f"INSERT OR REPLACE INTO {_q(name)} ({', '.join(map(_q, columns))}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    raw.executemany(sql, rows)
    return len(rows)


def _delete_rows(raw: sqlite3.Connection, name: str, pks: list[list[Any]]) -> None:
    pkc = [c.name for c in Base.metadata.tables[name].primary_key.columns]
    where = " AND ".join(f"{_q(c)} = ?" for c in pkc)
    bad = [k for k in pks if len(k) != len(pkc)]
    if bad:
        raise ValueError(f"bad key {bad[0]!r} for {name}")
    raw.executemany(f"DELETE FROM {_q(name)} WHERE {where}", pks)


def _rebase(session: Session, actor: Actor | None, now: dt.datetime) -> int:
    """Re-apply pending outbox mutations over freshly written server rows."""
    if actor is None:
        return 0
    items = session.scalars(
        select(Outbox).where(Outbox.status == "pending").order_by(Outbox.mutation_id)
    ).all()
    n = 0
    for ob in items:
        try:
            with session.begin_nested():
                get(ob.name).handler(session, dict(ob.args), actor, ob.base_version, now)
            n += 1
        except (MutationError, SQLAlchemyError, KeyError, ValueError, TypeError):
            continue
    return n


# --------------------------------------------------------------------------- snapshot


def begin_snapshot(
    cache: Cache, token: int, tables: list[tuple[str, list[str]]], total: int = 0
) -> None:
    """Start a fresh snapshot: wipe every synced table and remember the plan."""
    for name, _cols in tables:
        if name not in SYNCED_TABLE_NAMES:
            raise ValueError(f"the server announced an unknown table {name!r}")
    with _sync_tx(cache) as (raw, _s):
        for name in reversed(SYNCED_TABLE_NAMES):
            raw.execute(f"DELETE FROM {_q(name)}")
        _set_raw(raw, K_CURSOR, None)
        _set_raw(raw, K_SNAP_TOKEN, str(token))
        _set_raw(raw, K_SNAP_TABLES, json.dumps(tables))
        _set_raw(
            raw, K_SNAP_POS, json.dumps({"table": 0, "after": None, "done": 0, "total": total})
        )


def _set_raw(raw: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        raw.execute("DELETE FROM sync_state WHERE key = ?", (key,))
    else:
        raw.execute(
            "INSERT INTO sync_state(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _get_raw(raw: sqlite3.Connection, key: str) -> str | None:
    row = raw.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


class StaleWrite(Exception):
    """The local sync position moved since this page was requested (another sync ran)."""


def apply_snapshot_page(
    cache: Cache,
    token: int,
    table_index: int,
    columns: list[str],
    rows: list[list[Any]],
    next_after: list[Any] | None,
) -> None:
    """Insert one page and advance the snapshot position, in one transaction."""
    with _sync_tx(cache) as (raw, _s):
        if _get_raw(raw, K_SNAP_TOKEN) != str(token):
            raise StaleWrite("snapshot token changed")
        pos = json.loads(_get_raw(raw, K_SNAP_POS) or "{}")
        if pos.get("table") != table_index:
            raise StaleWrite("snapshot position changed")
        tables = json.loads(_get_raw(raw, K_SNAP_TABLES) or "[]")
        name = tables[table_index][0]
        _insert_rows(raw, name, columns, rows)
        nxt = {
            "table": table_index if next_after is not None else table_index + 1,
            "after": next_after,
            "done": int(pos.get("done", 0)) + len(rows),
            "total": int(pos.get("total", 0)),
        }
        _set_raw(raw, K_SNAP_POS, json.dumps(nxt))


def finish_snapshot(cache: Cache, token: int, actor: Actor | None, now: dt.datetime) -> None:
    """All tables loaded: pull continues from the token; pending edits go back on top."""
    with _sync_tx(cache) as (raw, session):
        if _get_raw(raw, K_SNAP_TOKEN) != str(token):
            raise StaleWrite("snapshot token changed")
        _set_raw(raw, K_CURSOR, str(token))
        for k in (K_SNAP_TOKEN, K_SNAP_POS):
            _set_raw(raw, k, None)
        _rebase(session, actor, now)


def forget_cursor(cache: Cache) -> None:
    """Make the next sync start a fresh snapshot (410, failed verification)."""
    with cache.session() as s:
        for k in (K_CURSOR, K_SNAP_TOKEN, K_SNAP_POS):
            _put(s, k, None)


# --------------------------------------------------------------------------- pull


def apply_pull_page(
    cache: Cache,
    cursor: int,
    next_cursor: int,
    columns: dict[str, list[str]],
    changes: Sequence[Change],
    actor: Actor | None,
    now: dt.datetime,
) -> int:
    """Apply changes in sequence order and store ``next_cursor``, in one transaction."""
    if next_cursor < cursor:
        raise ValueError("the server moved the cursor backwards")
    last_seq = cursor
    for ch in changes:
        if ch.seq <= last_seq or ch.seq > next_cursor:
            raise ValueError("changes out of sequence")
        last_seq = ch.seq
        if ch.table not in SYNCED_TABLE_NAMES:
            raise ValueError(f"change for an unknown table {ch.table!r}")
        if ch.op == "upsert" and (ch.row is None or len(ch.row) != len(columns.get(ch.table, ()))):
            raise ValueError(f"malformed row for {ch.table}")
    with _sync_tx(cache) as (raw, session):
        stored = _get_raw(raw, K_CURSOR)
        if stored != str(cursor):
            raise StaleWrite(f"cursor is {stored}, page was for {cursor}")
        # Consecutive changes of the same table and kind go in one executemany.
        i = 0
        while i < len(changes):
            j = i
            while (
                j < len(changes)
                and changes[j].table == changes[i].table
                and changes[j].op == changes[i].op
            ):
                j += 1
            batch = changes[i:j]
            name = batch[0].table
            if batch[0].op == "upsert":
                _insert_rows(raw, name, columns[name], [c.row for c in batch])
            else:
                _delete_rows(raw, name, [list(c.pk) for c in batch])
            i = j
        _set_raw(raw, K_CURSOR, str(next_cursor))
        if changes:
            _rebase(session, actor, now)
    return len(changes)


def apply_server_rows(
    cache: Cache,
    name: str,
    columns: list[str],
    rows: list[list[Any]],
    missing: list[list[Any]],
    actor: Actor | None,
    now: dt.datetime,
) -> None:
    """Overwrite local rows with the server's (and drop rows the server does not have)."""
    with _sync_tx(cache) as (raw, session):
        if missing:
            _delete_rows(raw, name, missing)
        _insert_rows(raw, name, columns, rows)
        _rebase(session, actor, now)


# --------------------------------------------------------------------------- verify & status


def local_checksums(cache: Cache, tables: list[tuple[str, list[str]]]) -> dict[str, str]:
    out: dict[str, str] = {}
    with cache.engine.connect() as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        for name, columns in tables:
            local = _local_columns(name)
            cols = ", ".join(_q(c) if c in local else "NULL" for c in columns)
            n, crc = row_checksum_terms(raw.execute(f"SELECT {cols} FROM {_q(name)}"))
            out[name] = table_checksum(n, crc)
    return out


def mark_success(cache: Cache, now: dt.datetime) -> None:
    with cache.session() as s:
        _put(s, K_LAST_SYNC, now.isoformat())
        s.execute(
            delete(Outbox).where(
                Outbox.status == "sent", Outbox.created_at < now - dt.timedelta(days=30)
            )
        )
