"""Each rep's raw GPS fixes kept a second time, per UTC hour, as packed columns.

The field map reads a day of every rep of a region: ~25,000 ``gps_points`` rows. SQLite
finds them in under a millisecond, but the ``sqlite3`` driver makes five Python objects
per row (≈ 20 ms) before numpy can take them. ``gps_blocks`` holds the same rows in
another layout, like an index: one row per (rep, UTC hour) whose ``data`` BLOB is that
hour's fixes in time order as little-endian records (int64 µs since the epoch, float64
lat, lon, accuracy); ``np.frombuffer`` reads them without a Python object per fix.
Nothing derived is stored (no cleaning, no stops): a block is its rows, and
:func:`read_fixes` returns exactly what the row query returned.

Why hours: a local day starts on a whole UTC hour in most time zones, so a day's blocks
hold that day's fixes and no others (UTC-day blocks made a Shanghai day read two days);
a live pull that adds a rep's latest fixes rebuilds one small block.

Kept current for every writer, whatever it is: triggers on ``gps_points`` (insert,
update, delete) mark the (rep, hour) bucket stale in ``gps_block_stale``; readers rebuild
the stale buckets of the range they read first (:func:`rebuild_stale`), and the writers
that add many fixes (demo generation, GPX import, a sync's pull pages) rebuild theirs at
their end. A snapshot load, which replaces every row, drops the triggers while it loads
(:func:`drop_triggers`, as it drops non-unique indexes) and puts them back with every
bucket marked stale in one set-based statement (:func:`install`, ≈ 15 ms for the demo
region where per-row triggers would add ≈ 0.3 s to the load).

Desktop cache only: the tables are not in ``core.models.Base`` (so neither synced nor
created on the central server); :mod:`core.cache` creates them (``init_schema``, and the
schema 2 → 3 migration). Bucket key: the first 13 characters of the stored ``ts``
(``YYYY-MM-DD HH``), which for the stored form of ``UTCDateTime`` (naive UTC text, as
the sync wire sends it too) is the UTC hour.

The functions take a DBAPI ``sqlite3`` connection and run in its current transaction
(``sqlite3`` begins one before the first write); the caller commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from core.trajectory.arrays import FixArrays

log = logging.getLogger(__name__)

#: How long a read waits for another process's write lock before it reads the rows
#: instead of rebuilding stale blocks (ms).
REBUILD_WAIT_MS = 200

BLOCKS = "gps_blocks"
STALE = "gps_block_stale"
TABLES: frozenset[str] = frozenset({BLOCKS, STALE})
#: ``hour`` keys: the stored text's first characters, ``YYYY-MM-DD HH``
KEY_LEN = 13
_KEY_FORMAT = "%Y-%m-%d %H"

_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {BLOCKS} ("
    " rep_id INTEGER NOT NULL, hour TEXT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY (rep_id, hour))",
    f"CREATE TABLE IF NOT EXISTS {STALE} ("
    " rep_id INTEGER NOT NULL, hour TEXT NOT NULL, PRIMARY KEY (rep_id, hour)) WITHOUT ROWID",
)

_MARK = f"INSERT OR IGNORE INTO {STALE} (rep_id, hour) VALUES"
#: trigger name -> its SQL (the bucket of the old and/or the new row goes stale)
TRIGGERS: dict[str, str] = {
    "gps_points_blocks_ai": (
        "CREATE TRIGGER IF NOT EXISTS gps_points_blocks_ai AFTER INSERT ON gps_points BEGIN "
        f"{_MARK} (NEW.rep_id, substr(NEW.ts, 1, {KEY_LEN})); END"
    ),
    "gps_points_blocks_ad": (
        "CREATE TRIGGER IF NOT EXISTS gps_points_blocks_ad AFTER DELETE ON gps_points BEGIN "
        f"{_MARK} (OLD.rep_id, substr(OLD.ts, 1, {KEY_LEN})); END"
    ),
    "gps_points_blocks_au": (
        "CREATE TRIGGER IF NOT EXISTS gps_points_blocks_au AFTER UPDATE ON gps_points BEGIN "
        f"{_MARK} (OLD.rep_id, substr(OLD.ts, 1, {KEY_LEN})); "
        f"{_MARK} (NEW.rep_id, substr(NEW.ts, 1, {KEY_LEN})); END"
    ),
}


def _record() -> np.dtype[Any]:
    import numpy as np

    return np.dtype([("t", "<i8"), ("lat", "<f8"), ("lon", "<f8"), ("acc", "<f8")])


def present(conn: sqlite3.Connection) -> bool:
    """Whether this database keeps blocks (a desktop cache; not a central server)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (BLOCKS,)
    ).fetchone()
    return bool(row[0])


def driver_connection(conn: Any) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection under a SQLAlchemy Session or Connection (or ``conn``
    itself) when that database keeps blocks; else None (a central server, PostgreSQL)."""
    raw = conn
    if not isinstance(raw, sqlite3.Connection):
        if callable(getattr(raw, "connection", None)):  # a Session: its Connection
            raw = raw.connection()
        raw = raw.connection.driver_connection
    if isinstance(raw, sqlite3.Connection) and present(raw):
        return raw
    return None


def _triggers_present(conn: sqlite3.Connection) -> bool:
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'gps_points'"
        )
    }
    return names >= TRIGGERS.keys()


def install(conn: sqlite3.Connection) -> bool:
    """Create the tables and triggers where missing (idempotent; needs ``gps_points``).

    When triggers had to be (re)created, writes may have gone unmarked, so every bucket
    with rows or a block is marked stale. Returns whether that happened.
    """
    for ddl in _TABLE_DDL:
        conn.execute(ddl)
    if _triggers_present(conn):
        return False
    for ddl in TRIGGERS.values():
        conn.execute(ddl)
    mark_all_stale(conn)
    return True


def drop_triggers(conn: sqlite3.Connection) -> None:
    """For a bulk load that replaces ``gps_points``: no per-row marking until :func:`install`.

    Also empties both tables (the load deletes every row first). A reader meeting the
    triggers missing reinstalls them (:func:`install` marks everything stale), so a load
    that stops half-way never leaves blocks that look current.
    """
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute(f"DELETE FROM {BLOCKS}")
    conn.execute(f"DELETE FROM {STALE}")


def mark_all_stale(conn: sqlite3.Connection) -> None:
    """Every bucket with rows or a block goes stale (one scan of the primary key)."""
    conn.execute(
        f"INSERT OR IGNORE INTO {STALE} (rep_id, hour) "
        f"SELECT DISTINCT rep_id, substr(ts, 1, {KEY_LEN}) FROM gps_points"
    )
    conn.execute(f"INSERT OR IGNORE INTO {STALE} (rep_id, hour) SELECT rep_id, hour FROM {BLOCKS}")


def key_of(instant: dt.datetime) -> str:
    """The bucket key of an aware instant."""
    return instant.astimezone(dt.UTC).strftime(_KEY_FORMAT)


def keys_of(rows: Iterable[tuple[Any, Any]]) -> set[tuple[int, str]]:
    """(rep_id, stored ts) pairs -> the buckets they fall in (odd rep ids are left to the
    triggers' marks)."""
    return {(rep_id, str(ts)[:KEY_LEN]) for rep_id, ts in rows if isinstance(rep_id, int)}


def rebuild_stale(
    conn: sqlite3.Connection,
    rep_ids: Sequence[int] | None = None,
    key_from: str | None = None,
    key_to: str | None = None,
    *,
    only: set[tuple[int, str]] | None = None,
) -> int:
    """Rebuild the stale buckets (of ``rep_ids`` and hours ``key_from``..``key_to``
    inclusive, when given; of the buckets ``only``, when given) from ``gps_points``;
    returns how many.

    The marks are deleted first: that statement begins the write transaction, so the rows
    read after it are the latest and no writer can slip in before the commit.
    """
    if only is not None:
        if not only:
            return 0
        rep_ids = sorted({k[0] for k in only})
    where, params = _where(rep_ids, key_from, key_to)
    keys = conn.execute(f"SELECT rep_id, hour FROM {STALE}{where}", params).fetchall()
    if only is not None:
        keys = [k for k in keys if (k[0], k[1]) in only]
    if not keys:
        return 0
    conn.executemany(f"DELETE FROM {STALE} WHERE rep_id = ? AND hour = ?", keys)
    by_rep: dict[int, list[dt.datetime]] = {}
    odd: list[tuple[int, str]] = []
    for rep_id, key in keys:
        hour = _hour(key)
        if hour is not None:
            by_rep.setdefault(rep_id, []).append(hour)
        else:  # a stored ts that is not 'YYYY-MM-DD HH…' (no writer of ours stores one)
            odd.append((rep_id, key))
    put: list[tuple[int, str, int, bytes]] = []
    gone: list[tuple[int, str]] = []

    def keep(rep_id: int, wanted: Iterable[str], built: dict[str, tuple[int, bytes]]) -> None:
        for key in wanted:
            if key in built:
                put.append((rep_id, key, *built[key]))
            else:
                gone.append((rep_id, key))

    one_hour = dt.timedelta(hours=1)
    for rep_id, hours in by_rep.items():
        hours.sort()
        for run in _runs(hours):
            lo, hi = run[0].strftime(_KEY_FORMAT), (run[-1] + one_hour).strftime(_KEY_FORMAT)
            built = _build(conn, rep_id, "ts >= ? AND ts < ?", (lo, hi))
            keep(rep_id, (h.strftime(_KEY_FORMAT) for h in run), built)
    for rep_id, key in odd:
        keep(rep_id, [key], _build(conn, rep_id, f"substr(ts, 1, {KEY_LEN}) = ?", (key,)))
    if gone:
        conn.executemany(f"DELETE FROM {BLOCKS} WHERE rep_id = ? AND hour = ?", gone)
    if put:
        conn.executemany(
            f"INSERT OR REPLACE INTO {BLOCKS} (rep_id, hour, n, data) VALUES (?, ?, ?, ?)", put
        )
    return len(keys)


@contextlib.contextmanager
def _busy_wait(conn: sqlite3.Connection, ms: int) -> Iterator[None]:
    """The connection's busy timeout set to ``ms`` for the block, then put back."""
    (before,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(before)}")


def fixes_from_rows(
    conn: sqlite3.Connection, rep_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> dict[int, FixArrays]:
    """:func:`read_fixes` from the ``gps_points`` rows themselves (no block is read or
    written): the same arrays, at the cost of a Python object per column per row."""
    import numpy as np

    from core.trajectory.arrays import FixArrays

    def stored(instant: dt.datetime) -> str:
        return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    rows = conn.execute(
        "SELECT rep_id, ts, lat, lon, accuracy_m FROM gps_points"
        f" WHERE rep_id IN ({', '.join('?' * len(rep_ids))}) AND ts >= ? AND ts < ?"
        " ORDER BY rep_id, ts",
        [*rep_ids, stored(start), stored(end)],
    ).fetchall()
    out: dict[int, FixArrays] = {}
    for rep_id, group in groupby(rows, key=itemgetter(0)):
        _rep, ts, lat, lon, acc = zip(*group, strict=True)
        out[rep_id] = FixArrays(
            times_us(ts),
            np.array(lat, dtype=np.float64),
            np.array(lon, dtype=np.float64),
            np.array(acc, dtype=np.float64),
        )
    return out


def _hour(key: Any) -> dt.datetime | None:
    try:
        hour = dt.datetime.strptime(key, _KEY_FORMAT)
    except (TypeError, ValueError):
        return None
    return hour if hour.strftime(_KEY_FORMAT) == key else None


def _where(
    rep_ids: Sequence[int] | None, key_from: str | None, key_to: str | None
) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    if rep_ids is not None:
        conds.append(f"rep_id IN ({', '.join('?' * len(rep_ids))})")
        params += list(rep_ids)
    if key_from is not None:
        conds.append("hour >= ?")
        params.append(key_from)
    if key_to is not None:
        conds.append("hour <= ?")
        params.append(key_to)
    return (" WHERE " + " AND ".join(conds) if conds else ""), params


def _runs(hours: list[dt.datetime]) -> Iterable[list[dt.datetime]]:
    """Sorted hours -> runs of consecutive hours."""
    run = [hours[0]]
    for hour in hours[1:]:
        if hour - run[-1] != dt.timedelta(hours=1):
            yield run
            run = []
        run.append(hour)
    yield run


def _build(
    conn: sqlite3.Connection, rep_id: int, cond: str, params: tuple[str, ...]
) -> dict[str, tuple[int, bytes]]:
    """The blocks of ``rep_id``'s rows matching ``cond`` on ``ts``: key -> (n, data).

    Hour runs are text ranges (``first <= ts < hour after last``): exactly the rows whose
    first 13 characters are one of those hours, as the bucket key is taken.
    """
    import numpy as np

    rows = conn.execute(
        f"SELECT ts, lat, lon, accuracy_m FROM gps_points WHERE rep_id = ? AND {cond} ORDER BY ts",
        (rep_id, *params),
    ).fetchall()
    if not rows:
        return {}
    ts_col, lat, lon, acc = zip(*rows, strict=True)
    rec = np.empty(len(rows), dtype=_record())
    rec["t"] = times_us(ts_col)
    rec["lat"] = lat
    rec["lon"] = lon
    rec["acc"] = acc
    out: dict[str, tuple[int, bytes]] = {}
    a = 0
    for key, group in groupby(str(v)[:KEY_LEN] for v in ts_col):
        b = a + sum(1 for _ in group)
        out[key] = (b - a, rec[a:b].tobytes())
        a = b
    return out


def times_us(values: Sequence[Any]) -> np.ndarray:
    """Stored ``ts`` values -> int64 µs since the epoch (UTC)."""
    import numpy as np

    try:  # SQLAlchemy's SQLite text: 'YYYY-MM-DD HH:MM:SS.ffffff', naive UTC
        return np.array(values, dtype="datetime64[us]").astype(np.int64)
    except ValueError:  # any other stored form: as the column type reads it
        from core.trajectory.arrays import to_us

        return np.array([to_us(_utc(v)) for v in values], dtype=np.int64)


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def read_fixes(
    conn: sqlite3.Connection, rep_ids: Sequence[int], start: dt.datetime, end: dt.datetime
) -> dict[int, FixArrays]:
    """Each rep's fixes with ``start <= ts < end`` (aware instants), in time order: what
    ``SELECT … FROM gps_points WHERE rep_id IN … AND ts >= start AND ts < end ORDER BY
    rep_id, ts`` returns, as arrays per rep (reps without fixes are left out). The arrays
    are views into the blocks read (one buffer per read, no copy per column or rep).

    Rebuilds the stale buckets of the range first, so it is right whatever wrote; a
    database whose triggers went missing (a snapshot load stopped half-way, a tool that
    dropped them) gets them back, every bucket then rebuilt as it is read. That is a write:
    when another process holds the file's write lock (e.g. ``storedesk sync`` while the app
    is open), the range is read from ``gps_points`` instead, as before the blocks, and the
    stale buckets wait for the next read.
    """
    import numpy as np

    from core.trajectory.arrays import FixArrays, to_us

    if not rep_ids or end <= start:
        return {}
    key_from, key_to = key_of(start), key_of(end - dt.timedelta(microseconds=1))
    try:
        with _busy_wait(conn, REBUILD_WAIT_MS):
            if not _triggers_present(conn):
                install(conn)
            rebuild_stale(conn, rep_ids, key_from, key_to)
    except sqlite3.OperationalError as e:
        # (the first write failed: nothing was written; a later one cannot be busy)
        if "locked" not in str(e) and "busy" not in str(e):
            raise
        log.info("GPS blocks not rebuilt (%s): reading the fixes from gps_points", e)
        return fixes_from_rows(conn, rep_ids, start, end)
    where, params = _where(rep_ids, key_from, key_to)
    rows = conn.execute(
        f"SELECT rep_id, data FROM {BLOCKS}{where} ORDER BY rep_id, hour", params
    ).fetchall()
    if not rows:
        return {}
    # One buffer for the whole read, each rep's fixes a slice of it (a rep's blocks are
    # consecutive rows, in time order): the numpy work is per read, not per rep.
    rep_col, data = zip(*rows, strict=True)
    rec = np.frombuffer(b"".join(data), dtype=_record())
    reps = np.array(rep_col, dtype=np.int64)
    ends = np.cumsum(np.fromiter(map(len, data), np.int64, len(data))) // rec.itemsize
    last = np.flatnonzero(np.r_[reps[1:] != reps[:-1], True])  # each rep's last block
    stop = ends[last]
    begin = np.r_[0, stop[:-1]]
    t = rec["t"]
    # each rep's fixes in [start, end): after those before start, before those from end
    # on (counted per rep; a day's first and last hours are whole in most zones: none)
    before = np.r_[0, np.cumsum(t < to_us(start))]
    upto = np.r_[0, np.cumsum(t < to_us(end))]
    a = (begin + before[stop] - before[begin]).tolist()
    b = (begin + upto[stop] - upto[begin]).tolist()
    lat, lon, acc = rec["lat"], rec["lon"], rec["acc"]
    out: dict[int, FixArrays] = {}
    for rep_id, i, j in zip(reps[last].tolist(), a, b, strict=True):
        if i < j:
            out[rep_id] = FixArrays(t[i:j], lat[i:j], lon[i:j], acc[i:j])
    return out
