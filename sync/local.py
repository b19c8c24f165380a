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

from sqlalchemy import Index, delete, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex

from core.cache import Cache
from core.i18n import _
from core.models import Base, Outbox, SyncConflict, SyncState
from core.mutations import Actor, MutationError, get
from core.trajectory import gps_blocks
from sync.protocol import (
    PAGE_TABLE,
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
# JSON {"token": t, "tables": {name: [rows, crc sum]}}: checksum terms of every snapshot row
# received, kept with the snapshot position; dropped as soon as anything else is written.
K_SNAP_SUMS = "snapshot_sums"
_CRC_MASK = 0xFFFFFFFFFFFFFFFF


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


def withdraw_unsendable(cache: Cache, mutation_id: int, message: str) -> str:
    """Refuse the first pending edit on this computer (no server accepts it) and start a
    new client id, so the server sees no gap in the edits that follow. Returns the id."""
    with cache.session() as s:
        ob = s.get(Outbox, mutation_id)
        first = s.scalar(
            select(Outbox.mutation_id)
            .where(Outbox.status == "pending")
            .order_by(Outbox.mutation_id)
            .limit(1)
        )
        if ob is None or first != mutation_id:
            raise ValueError(f"edit #{mutation_id} is not the first one waiting")
        ob.status = "rejected"
        ob.error = message
        cid = uuid.uuid4().hex
        _put(s, K_CLIENT, cid)
        return cid


# --------------------------------------------------------------------------- raw writes


@contextmanager
def _raw_tx(raw: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction on ``raw`` with FK enforcement off."""
    if raw.in_transaction:
        raw.rollback()
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield raw
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


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
                raw.execute("COMMIT")  # before the session closes (closing rolls back)
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


def _check_columns(name: str, columns: list[str]) -> None:
    if name not in SYNCED_TABLE_NAMES:
        raise ValueError(f"the server sent rows for an unknown table {name!r}")
    missing_pk = [
        c.name for c in Base.metadata.tables[name].primary_key.columns if c.name not in columns
    ]
    if missing_pk or len(set(columns)) != len(columns):
        raise ValueError(f"the server sent rows of {name} without a proper key")


def _insert_rows(raw: sqlite3.Connection, name: str, columns: list[str], rows: list[Any]) -> int:
    _check_columns(name, columns)
    local = _local_columns(name)
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
    try:
        raw.executemany(sql, rows)
    except sqlite3.IntegrityError as e:  # e.g. a NULL where none may be
        raise ValueError(f"rows of {name} cannot be stored: {e}") from None
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


def _pk_names(name: str) -> list[str]:
    return [c.name for c in Base.metadata.tables[name].primary_key.columns]


def _gps_keys(columns: list[str], rows: Sequence[Sequence[Any]]) -> set[tuple[int, str]]:
    """The GPS block buckets (:mod:`core.trajectory.gps_blocks`) of ``gps_points`` rows."""
    try:
        r, t = columns.index("rep_id"), columns.index("ts")
    except ValueError:
        return set()
    return gps_blocks.keys_of((row[r], row[t]) for row in rows if row[r] is not None)


def _rebuild_gps_blocks(
    raw: sqlite3.Connection, session: Session, touched: set[tuple[int, str]]
) -> None:
    """Rebuild the GPS blocks of the hours a page wrote, in its transaction (the rebase's
    own writes, if any, are marked stale by the triggers and rebuilt when read). Hours a
    snapshot left stale are not this page's work: the map rebuilds them when it reads."""
    if touched and gps_blocks.present(raw):
        session.flush()
        gps_blocks.rebuild_stale(raw, only=touched)


# --------------------------------------------------------------------------- snapshot


def _deferred_indexes() -> list[Index]:
    """The synced tables' non-unique indexes: dropped while a snapshot loads, built after.

    Unique indexes stay: ``INSERT OR REPLACE`` relies on them. Building an index once over
    the loaded rows (a sort) costs far less than updating it row by row.
    """
    return [
        ix
        for name in SYNCED_TABLE_NAMES
        for ix in sorted(Base.metadata.tables[name].indexes, key=lambda i: str(i.name))
        if not ix.unique
    ]


def _create_deferred_indexes(raw: sqlite3.Connection, table: str | None = None) -> None:
    dialect = sqlite_dialect.dialect()
    for ix in _deferred_indexes():
        if table is None or (ix.table is not None and ix.table.name == table):
            raw.execute(str(CreateIndex(ix, if_not_exists=True).compile(dialect=dialect)))


def _index_names(raw: sqlite3.Connection) -> set[str]:
    return {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def resume_snapshot(cache: Cache, token: int) -> None:
    """A snapshot load starts again where it stopped: drop the non-unique indexes of the
    tables it has still to load (the current one and the later, empty ones), which
    :func:`build_missing_indexes` built when it stopped, so the rest loads in bulk too."""
    with _sync_tx(cache) as (raw, _s):
        if _get_raw(raw, K_SNAP_TOKEN) != str(token):
            raise StaleWrite("snapshot token changed")
        pos = json.loads(_get_raw(raw, K_SNAP_POS) or "{}")
        tables = json.loads(_get_raw(raw, K_SNAP_TABLES) or "[]")
        todo = {t[0] for t in tables[int(pos.get("table", 0)) :]}
        for ix in _deferred_indexes():
            if ix.table is not None and ix.table.name in todo:
                raw.execute(f"DROP INDEX IF EXISTS {_q(str(ix.name))}")
        if "gps_points" in todo and gps_blocks.present(raw):
            gps_blocks.drop_triggers(raw)


def build_missing_indexes(cache: Cache) -> list[str]:
    """Build the non-unique indexes a snapshot load dropped, if any are missing; their names.

    For a load that stopped before its end (cancelled, failed, the app killed): the
    partial cache is what the user works with until the snapshot can go on (offline, say),
    and without its indexes every screen over the table being loaded would scan it. Only
    that table holds rows without its indexes (earlier tables got theirs with their last
    page, later ones are empty), so this costs one table's index build at most.
    """
    with cache.engine.connect() as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if raw.in_transaction:
            raw.rollback()
        have = _index_names(raw)
        missing = [str(ix.name) for ix in _deferred_indexes() if str(ix.name) not in have]
        if missing:
            with _raw_tx(raw):
                _create_deferred_indexes(raw)
        if gps_blocks.present(raw):  # the blocks' triggers, which the load dropped too
            with _raw_tx(raw):
                gps_blocks.install(raw)
        return missing


def begin_snapshot(
    cache: Cache, token: int, tables: list[tuple[str, list[str]]], total: int = 0
) -> None:
    """Start a fresh snapshot: wipe every synced table and remember the plan.

    The synced tables' non-unique indexes are dropped until the table's last page is
    loaded (:func:`apply_snapshot_page` builds them in that page's transaction);
    :func:`finish_snapshot` makes sure all exist before the cursor is set. A load that
    stops before then gets them back at once (:func:`build_missing_indexes`, called by the
    engine when a sync ends without finishing) and drops them again when it resumes
    (:func:`resume_snapshot`).
    """
    for name, _cols in tables:
        if name not in SYNCED_TABLE_NAMES:
            raise ValueError(f"the server announced an unknown table {name!r}")
    with _sync_tx(cache) as (raw, _s):
        # no per-row marking while the fixes are wiped and loaded: dropped before the wipe,
        # which with them would run a trigger per row (~1 s per million fixes) instead of
        # SQLite's whole-table delete
        if gps_blocks.present(raw):
            gps_blocks.drop_triggers(raw)
        for name in reversed(SYNCED_TABLE_NAMES):
            raw.execute(f"DELETE FROM {_q(name)}")
        for ix in _deferred_indexes():
            raw.execute(f"DROP INDEX IF EXISTS {_q(str(ix.name))}")
        _set_raw(raw, K_CURSOR, None)
        _set_raw(raw, K_SNAP_TOKEN, str(token))
        _set_raw(raw, K_SNAP_TABLES, json.dumps(tables))
        _set_raw(
            raw, K_SNAP_POS, json.dumps({"table": 0, "after": None, "done": 0, "total": total})
        )
        _set_raw(raw, K_SNAP_SUMS, json.dumps({"token": token, "tables": {}}))


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


_PAGE_SCHEMA = "sd_incoming"


@dataclass(frozen=True)
class PageSums:
    """A checked snapshot page file: its row count and the sum of its rows' CRC-32s."""

    count: int
    crc_sum: int


def _page_objects_ok(raw: sqlite3.Connection, schema: str, columns: list[str]) -> None:
    objects = raw.execute(f"SELECT type, name FROM {schema}.sqlite_master").fetchall()
    if objects != [("table", PAGE_TABLE)]:
        raise ValueError("the page file holds other objects than its table")
    info = raw.execute(f"PRAGMA {schema}.table_xinfo({PAGE_TABLE})").fetchall()
    if [r[1] for r in info] != columns or any(r[6] for r in info):
        raise ValueError("the page file's columns are not the table's")


def page_checksum(data: bytes, columns: list[str]) -> PageSums:
    """Check a page file from the server and compute its rows' checksum terms.

    Runs on any thread (its own in-memory connection), so the engine does it for the next
    page while the DB worker loads the current one. Anything but one plain table with
    exactly ``columns`` (no views, triggers, indexes, generated columns), a file that fails
    ``quick_check``, more rows than a page may hold or a BLOB value (the wire has none)
    raises ``ValueError``.
    """
    from sync.protocol import MAX_PAGE_ROWS

    con = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        try:
            # Nothing in the received file's schema may call a function that is not
            # innocuous (on top of the structural checks below, which run after the open).
            con.execute("PRAGMA trusted_schema=OFF")
            con.deserialize(data)
            _page_objects_ok(con, "main", columns)
            if con.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise ValueError("the page file is damaged")
            blob = " OR ".join(f"typeof({_q(c)}) = 'blob'" for c in columns)
            n, blobs = con.execute(
                f"SELECT count(*), count(CASE WHEN {blob} THEN 1 END) FROM {PAGE_TABLE}"
            ).fetchone()
            if n > MAX_PAGE_ROWS or blobs:
                raise ValueError("the page file holds too many rows or binary values")
            count, crc = row_checksum_terms(
                con.execute(f"SELECT {', '.join(map(_q, columns))} FROM {PAGE_TABLE}")
            )
        except sqlite3.DatabaseError as e:
            raise ValueError(f"the page file cannot be read: {e}") from None
    finally:
        con.close()
    return PageSums(count, crc)


def apply_snapshot_page(
    cache: Cache,
    token: int,
    table_index: int,
    columns: list[str],
    data: bytes,
    sums: PageSums,
    next_after: list[Any] | None,
) -> None:
    """Load one page file (checked by :func:`page_checksum`) and advance the snapshot
    position, in one transaction.

    The rows go from the page file to the table with one ``INSERT … SELECT`` (no Python
    per value); then, in the same transaction, the rows are read back from the table and
    compared with the page's, value by value and type by type (:func:`_stored_as_sent`):
    a value SQLite would store converted (type affinity: text ``'12'`` into an INTEGER
    column) or replaced (a NULL by a column default, a row by a later one with the same
    key) refuses the page with ``ValueError``, and nothing of it is kept. So the page's
    checksum terms, added to the snapshot's running sums here, are those of the rows as
    stored, and the verify at the end need not read the whole cache again.
    """
    with cache.engine.connect() as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if raw.in_transaction:
            raw.rollback()
        trusted = raw.execute("PRAGMA trusted_schema").fetchone()[0]
        raw.execute("PRAGMA trusted_schema=OFF")  # see page_checksum
        raw.execute(f"ATTACH DATABASE ':memory:' AS {_PAGE_SCHEMA}")
        try:
            try:
                raw.deserialize(data, name=_PAGE_SCHEMA)
                _page_objects_ok(raw, _PAGE_SCHEMA, columns)
            except sqlite3.DatabaseError as e:
                raise ValueError(f"the page file cannot be read: {e}") from None
            src = f"{_PAGE_SCHEMA}.{PAGE_TABLE}"
            with _raw_tx(raw):
                if _get_raw(raw, K_SNAP_TOKEN) != str(token):
                    raise StaleWrite("snapshot token changed")
                pos = json.loads(_get_raw(raw, K_SNAP_POS) or "{}")
                if pos.get("table") != table_index:
                    raise StaleWrite("snapshot position changed")
                tables = json.loads(_get_raw(raw, K_SNAP_TABLES) or "[]")
                name = tables[table_index][0]
                _check_columns(name, columns)
                local = _local_columns(name)
                cols = ", ".join(_q(c) for c in columns if c in local)
                last = raw.execute(f"SELECT max(rowid) FROM {_q(name)}").fetchone()[0]
                try:
                    cur = raw.execute(
                        f"INSERT OR REPLACE INTO {_q(name)} ({cols}) SELECT {cols} FROM {src}"
                    )
                except sqlite3.IntegrityError as e:  # e.g. a NULL where none may be
                    raise ValueError(f"rows of {name} cannot be stored: {e}") from None
                if cur.rowcount != sums.count:
                    raise ValueError("the page file changed while it was loaded")
                _stored_as_sent(raw, name, columns, src, sums.count, last or 0)
                if next_after is None:  # the table is complete: build its indexes now
                    _create_deferred_indexes(raw, name)
                    if name == "gps_points" and gps_blocks.present(raw):
                        gps_blocks.install(raw)  # triggers back, every hour marked stale
                snap = json.loads(_get_raw(raw, K_SNAP_SUMS) or "null")
                if snap is not None and snap.get("token") == token:
                    have = snap["tables"].get(name, [0, 0])
                    snap["tables"][name] = [
                        have[0] + sums.count,
                        (have[1] + sums.crc_sum) & _CRC_MASK,
                    ]
                    _set_raw(raw, K_SNAP_SUMS, json.dumps(snap))
                nxt = {
                    "table": table_index if next_after is not None else table_index + 1,
                    "after": next_after,
                    "done": int(pos.get("done", 0)) + sums.count,
                    "total": int(pos.get("total", 0)),
                }
                _set_raw(raw, K_SNAP_POS, json.dumps(nxt))
        finally:
            if raw.in_transaction:
                raw.rollback()
            raw.execute(f"DETACH DATABASE {_PAGE_SCHEMA}")
            raw.execute(f"PRAGMA trusted_schema={int(trusted)}")


def _affinity(declared: str) -> str:
    """SQLite's type affinity of a column declared ``declared`` (its documented rules)."""
    d = declared.upper()
    if "INT" in d:
        return "INTEGER"
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return "TEXT"
    if "BLOB" in d or not d:
        return "BLOB"
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return "REAL"
    return "NUMERIC"


def _stored_as_sent(
    raw: sqlite3.Connection, name: str, columns: list[str], src: str, count: int, last: int
) -> None:
    """Prove that the ``count`` rows of page table ``src`` are stored in ``name`` exactly.

    Each page row is compared with a stored row, column by column, with ``IS`` on
    affinity-free ``+`` operands (no conversion: text ``'12'`` is not integer 12, NULL is
    not a default). Where the stored column's affinity could keep the value but change
    its storage class (integer 12 and real 12.0 compare equal) their ``typeof`` results
    are compared too; a TEXT column holds only text or NULL, so ``IS`` alone decides
    there. A column the local table lacks must be NULL (a full re-read sees NULL there).
    Runs in SQLite, inside the page's transaction.

    Which stored row: the page's rows were just inserted in page order after rowid
    ``last``, so the i-th page row is first looked for at rowid ``last + i`` (one rowid
    lookup each). That guess proves the page when every row matches (distinct stored
    rows, all columns equal, keys included); otherwise — a table whose key is its rowid,
    a row replaced — each page row is looked up by its key, which decides.
    """
    info = raw.execute(f"PRAGMA main.table_info({_q(name)})").fetchall()
    declared = {r[1]: r[2] for r in info}
    pkc = [c.name for c in Base.metadata.tables[name].primary_key.columns]

    def same(c: str) -> str:
        if c not in declared:
            return f"p.{_q(c)} IS NULL"
        t, p = f"t.{_q(c)}", f"p.{_q(c)}"
        if _affinity(declared[c]) == "TEXT":
            return f"+{t} IS +{p}"
        return f"+{t} IS +{p} AND typeof({t}) = typeof({p})"

    where = " AND ".join(map(same, columns))
    rowid_key = [r[2].upper() for r in info if r[5]] == ["INTEGER"]
    if not rowid_key:
        lo, hi = raw.execute(f"SELECT min(rowid), max(rowid) FROM {src}").fetchone()
        if lo is not None and hi - lo + 1 == count:
            by_place = (
                f"{src} AS p JOIN main.{_q(name)} AS t ON t.rowid = p.rowid + {last - lo + 1}"
            )
            if raw.execute(f"SELECT count(*) FROM {by_place} WHERE {where}").fetchone()[0] == count:
                return
    on = " AND ".join(f"t.{_q(c)} = p.{_q(c)}" for c in pkc)
    join = f"{src} AS p JOIN main.{_q(name)} AS t ON {on}"
    if raw.execute(f"SELECT count(*) FROM {join} WHERE {where}").fetchone()[0] == count:
        return
    for c in columns:  # name the first column that differs, for the error
        stored = f"t.{_q(c)}" if c in declared else "NULL"
        row = raw.execute(
            f"SELECT typeof(p.{_q(c)}), typeof({stored}) FROM {join} WHERE NOT ({same(c)}) LIMIT 1"
        ).fetchone()
        if row is not None:
            raise ValueError(
                f"rows of {name} would not be stored as sent "
                f"(column {c}: {row[0]} stored as {row[1]})"
            )
    raise ValueError(f"rows of {name} would not be stored as sent (a row replaced by another)")


def finish_snapshot(cache: Cache, token: int, actor: Actor | None, now: dt.datetime) -> None:
    """All tables loaded: pull continues from the token; pending edits go back on top."""
    with _sync_tx(cache) as (raw, session):
        if _get_raw(raw, K_SNAP_TOKEN) != str(token):
            raise StaleWrite("snapshot token changed")
        _create_deferred_indexes(raw)
        if gps_blocks.present(raw):
            gps_blocks.install(raw)
        _set_raw(raw, K_CURSOR, str(token))
        for k in (K_SNAP_TOKEN, K_SNAP_POS):
            _set_raw(raw, k, None)
        _rebase(session, actor, now)


def forget_cursor(cache: Cache) -> None:
    """Make the next sync start a fresh snapshot (410, failed verification)."""
    with cache.session() as s:
        for k in (K_CURSOR, K_SNAP_TOKEN, K_SNAP_POS, K_SNAP_SUMS):
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
        touched: set[tuple[int, str]] = set()  # GPS block buckets the page wrote
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
                if name == "gps_points":
                    touched |= _gps_keys(columns[name], [c.row for c in batch])
            else:
                _delete_rows(raw, name, [list(c.pk) for c in batch])
                if name == "gps_points":
                    touched |= _gps_keys(_pk_names(name), [list(c.pk) for c in batch])
            i = j
        _set_raw(raw, K_CURSOR, str(next_cursor))
        if changes:
            _set_raw(raw, K_SNAP_SUMS, None)  # the snapshot's sums no longer describe the cache
            _rebase(session, actor, now)
        _rebuild_gps_blocks(raw, session, touched)
    return len(changes)


@dataclass(frozen=True)
class ServerRows:
    """The server's current rows of ``name`` for some keys, and the keys it does not have."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    missing: list[list[Any]]


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
    apply_server_row_sets(cache, [ServerRows(name, columns, rows, missing)], actor, now)


def apply_server_row_sets(
    cache: Cache, sets: Sequence[ServerRows], actor: Actor | None, now: dt.datetime
) -> None:
    """:func:`apply_server_rows` for several answers in one transaction and one rebase.

    The pending edits are re-applied once over all of them: the result is the same as
    rebasing after each, without re-running every pending edit once per answer.
    """
    with _sync_tx(cache) as (raw, session):
        _set_raw(raw, K_SNAP_SUMS, None)
        touched: set[tuple[int, str]] = set()
        for rs in sets:
            if rs.missing:
                _delete_rows(raw, rs.name, rs.missing)
            _insert_rows(raw, rs.name, rs.columns, rs.rows)
            if rs.name == "gps_points":
                touched |= _gps_keys(_pk_names(rs.name), rs.missing)
                touched |= _gps_keys(rs.columns, rs.rows)
        _rebase(session, actor, now)
        _rebuild_gps_blocks(raw, session, touched)


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


def snapshot_checksums(cache: Cache, tables: list[tuple[str, list[str]]]) -> dict[str, str] | None:
    """Per-table checksums of the snapshot just loaded, from the sums kept while loading.

    ``None`` when they no longer describe the cache (a change was pulled or repaired since,
    or another snapshot began): the caller then reads everything (:func:`local_checksums`).
    Each table's stored row count is checked against the rows received: a row lost to a
    key collision on load makes the checksum differ from the server's.
    """
    with cache.engine.connect() as conn:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        sums = json.loads(_get_raw(raw, K_SNAP_SUMS) or "null")
        cursor = _get_raw(raw, K_CURSOR)
        if sums is None or cursor is None or _get_raw(raw, K_SNAP_TOKEN) is not None:
            return None
        out: dict[str, str] = {}
        for name, _columns in tables:
            n, crc = sums["tables"].get(name, [0, 0])
            stored = raw.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0]
            out[name] = table_checksum(stored, crc) if stored == n else f"{stored}:stored"
        return out


def mark_success(cache: Cache, now: dt.datetime) -> None:
    with cache.session() as s:
        _put(s, K_LAST_SYNC, now.isoformat())
        _put(s, K_SNAP_SUMS, None)  # only the verify that ends a snapshot may use them
        s.execute(
            delete(Outbox).where(
                Outbox.status == "sent", Outbox.created_at < now - dt.timedelta(days=30)
            )
        )
