"""The local cache: one SQLite file per user, opened safely.

Opening checks, in order: the file is SQLite at all, it passes ``PRAGMA quick_check``, it is
a StoreDesk cache (``meta.app_id``), and its schema version is one we can migrate. A file
that fails any check is moved aside under a timestamped name and reported through
:class:`CacheRecovered` — it is never silently used nor overwritten. A file written by a
*newer* StoreDesk is refused (:class:`CacheTooNew`) and left where it is, so a downgrade
never destroys data.

``quick_check`` reads every page (≈0.15–0.3 s for the 116 MB demo), which the app cannot
afford before its first window. The app therefore opens with
``open_cache(path, defer_integrity_check=True)``: the cheap checks (header, schema, meta)
run at once, and :meth:`Cache.check_integrity` runs the full check on the DB worker right
after the window is up; a failure there closes the session, moves the file aside with
:meth:`Cache.move_aside` and tells the user, as an open-time failure does.

Nor can start-up afford SQLAlchemy's ORM (≈0.2 s of imports and mapper set-up): opening a
file that is up to date imports no SQLAlchemy at all. :meth:`Cache.reader` gives a plain
sqlite3 connection for the start path's reads (``core.quickread``); the engine and the
session factory are made when first used (the DB worker's first ORM job), and only then is
the file's table list checked against the models (the tables the start path reads are
checked at open, :data:`core.cache_format.QUICKREAD_TABLES`).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from core.cache_format import APP_ID, QUICKREAD_TABLES, SCHEMA_VERSION
from core.i18n import _

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

APP_NAME = "StoreDesk"
APP_AUTHOR = "StoreDesk"


def default_cache_path() -> Path:
    """``<user data dir>/storedesk.db`` (platformdirs), created on demand."""
    d = Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    d.mkdir(parents=True, exist_ok=True)
    return d / "storedesk.db"


class CacheError(Exception):
    """A cache problem the user must hear about, with a translated message."""


class CacheTooNew(CacheError):
    pass


class CacheDamaged(CacheError):
    """The cache failed its (deferred) integrity check: nothing more may read or write it."""


@dataclass
class CacheRecovered:
    """The previous file was unusable and has been moved to ``moved_to``."""

    original: Path
    moved_to: Path
    reason: str

    def message(self) -> str:
        return _(
            "The local data file {original} could not be used ({reason}). It was moved to "
            "{moved_to} and a fresh one was created; your data will be downloaded again at "
            "the next sync. Unsynced edits in the old file were not lost: keep the moved "
            "file and contact support if you need them."
        ).format(original=self.original, reason=self.reason, moved_to=self.moved_to)


#: SQLite page cache per connection (KiB), see _set_pragmas
CACHE_KIB = 8192


def _set_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    # 8 MiB of page cache (SQLite's default is 2 MiB): one map day reads about 2 MiB of
    # pages (GPS blocks, visits, customers), which the default evicted between requests;
    # measured on the demo day, 42.8 -> 39.1 ms per map request, +6 MiB peak memory
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def make_engine(url_or_path: str | Path, *, echo: bool = False) -> Engine:
    """An engine for a SQLite file (pragmas set on every connection) or any SQLAlchemy URL."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import URL

    url: str | URL = str(url_or_path)
    if "://" not in url:
        # URL.create keeps the path whole: "sqlite:///a?b.db" would read "?b.db" as options
        url = URL.create("sqlite", database=str(Path(url_or_path)))
    if str(url).startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 10}
        )
        event.listen(engine, "connect", _set_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


# --------------------------------------------------------------------------- migrations


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """v2 added demand-driven staffing targets to stores."""
    cols = {row[1] for row in conn.execute("PRAGMA table_info(stores)")}
    if "target_star" not in cols:
        conn.execute("ALTER TABLE stores ADD COLUMN target_star FLOAT NOT NULL DEFAULT 12.0")
    if "min_floor_staff" not in cols:
        conn.execute("ALTER TABLE stores ADD COLUMN min_floor_staff INTEGER NOT NULL DEFAULT 2")


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """v3 keeps each rep's GPS fixes a second time as per-hour blocks (a desktop-only
    layout, :mod:`core.trajectory.gps_blocks`; every bucket starts stale and is built when
    first read), and ``ix_visits_rep_checkin`` covers ``customer_id``."""
    from core.trajectory import gps_blocks

    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if "gps_points" in names:
        gps_blocks.install(conn)
    if "visits" in names:
        conn.execute("DROP INDEX IF EXISTS ix_visits_rep_checkin")
        conn.execute(
            "CREATE INDEX ix_visits_rep_checkin ON visits (rep_id, check_in_at, customer_id)"
        )


#: from_version -> step that brings a file to from_version + 1 (new tables come from create_all).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}


def _read_only_uri(path: str | Path) -> str:
    """A ``file:`` URI opening *path* read-only; ``?``, ``#`` and ``%`` in it are escaped."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check``: None when the file is sound, else the problem (translated)."""
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        return _("damaged database ({detail})").format(detail=rows[0][0])
    return None


def _probe(path: Path, *, quick_check: bool = True) -> tuple[str, int | None, frozenset[str]]:
    """Classify an existing file: ('ok', version, its tables) | ('empty' or problem, None, ...)."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"unreadable: {e.strerror}", None, frozenset()
    if head == b"":
        return "empty", None, frozenset()
    if head != b"SQLite format 3\x00":
        return _("not a database file"), None, frozenset()
    try:
        conn = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            problem = _quick_check(conn) if quick_check else None
            if problem is not None:
                return problem, None, frozenset()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                return "empty", None, frozenset()
            if "meta" not in tables:
                return _("not a StoreDesk data file"), None, frozenset()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return _("damaged database ({detail})").format(detail=e), None, frozenset()
    if meta.get("app_id") != APP_ID:
        return _("not a StoreDesk data file"), None, frozenset()
    try:
        return "ok", int(meta["schema_version"]), frozenset(tables)
    except (KeyError, ValueError):
        return _("damaged database ({detail})").format(detail="schema_version"), None, frozenset()


def _move_aside(path: Path, reason: str) -> CacheRecovered:
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.stem}.unusable-{stamp}{path.suffix}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.stem}.unusable-{stamp}-{n}{path.suffix}")
        n += 1
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    log.warning("cache %s unusable (%s); moved to %s", path, reason, target)
    return CacheRecovered(original=path, moved_to=target, reason=reason)


@dataclass
class Cache:
    """An open cache: engine, session factory, and what happened at open.

    ``engine`` and ``session_factory`` are made on first use (thread-safe), so a start that
    reads only through :meth:`reader` never imports SQLAlchemy before its first window.
    """

    path: Path
    recovered: CacheRecovered | None = None
    migrated_from: int | None = None
    #: False while the full ``quick_check`` is still due (see :func:`open_cache`).
    integrity_checked: bool = True
    #: What :meth:`check_integrity` found wrong (None: nothing, or not checked yet).
    integrity_problem: str | None = None
    #: The tables the file had at open, still to be checked against the models when the
    #: engine is made (None: checked, or the schema was created at open).
    tables_at_open: frozenset[str] | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _session_factory: sessionmaker[Session] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._connect()
        assert self._engine is not None
        return self._engine

    @property
    def session_factory(self) -> sessionmaker[Session]:
        if self._session_factory is None:
            self._connect()
        assert self._session_factory is not None
        return self._session_factory

    def _connect(self) -> None:
        from sqlalchemy.orm import sessionmaker

        with self._lock:
            if self._engine is not None:
                return
            engine = make_engine(self.path)
            if self.tables_at_open is not None and not self.tables_at_open >= cache_tables():
                init_schema(engine)  # tables added to the models since the file was written
            self.tables_at_open = None
            self._session_factory = sessionmaker(engine, expire_on_commit=False)
            self._engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.session_factory.begin() as s:
            yield s

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only sqlite3 connection in one read transaction (a consistent snapshot).

        For reads that must not wait for SQLAlchemy (``core.quickread``); closed on exit.
        Never creates the file (a cache moved aside is not silently recreated empty).
        """
        uri = Path(self.path).resolve().as_uri() + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        if not self._closed:
            if self._engine is not None:
                self._engine.dispose()
            self._closed = True

    def check_integrity(self) -> str | None:
        """Run ``PRAGMA quick_check`` now: None when sound, else the problem (translated).

        Reads the whole file without holding the GIL (sqlite3 releases it), on its own
        read-only connection so it never blocks nor joins a writer's transaction.
        """
        try:
            conn = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=10)
            try:
                problem = _quick_check(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            problem = _("damaged database ({detail})").format(detail=e)
        if problem is None:
            self.integrity_checked = True
        else:
            self.integrity_problem = problem
            log.warning("cache %s failed its integrity check: %s", self.path, problem)
        return problem

    def ensure_usable(self) -> None:
        """Raise :class:`CacheDamaged` once :meth:`check_integrity` has failed.

        The deferred check runs on the DB worker while other jobs (a sync's writes, a
        user's edit) are queued behind it; they must not touch the damaged file in the
        moment before the app has closed the session and moved the file aside.
        """
        if self.integrity_problem is not None:
            raise CacheDamaged(self.integrity_problem)

    def move_aside(self, reason: str) -> CacheRecovered:
        """Close this cache and move its file aside (after a failed :meth:`check_integrity`);
        the next :func:`open_cache` of the same path starts a fresh file."""
        self.close()
        return _move_aside(self.path, reason)


def model_tables() -> frozenset[str]:
    """The tables of the data model (imports it)."""
    from core.models import Base

    return frozenset(Base.metadata.tables)


def cache_tables() -> frozenset[str]:
    """The tables of a desktop cache: the data model's and the cache-only GPS blocks."""
    from core.trajectory.gps_blocks import TABLES

    return model_tables() | TABLES


def init_schema(engine: Engine) -> None:
    """Create every table and stamp identity + version (idempotent).

    On SQLite (a desktop cache) this includes the cache-only GPS blocks and the triggers
    that keep them current (:mod:`core.trajectory.gps_blocks`); they are not part of the
    data model, so the central server never has them.
    """
    from sqlalchemy import text

    from core.models import Base

    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            from core.trajectory import gps_blocks

            gps_blocks.install(conn.connection.driver_connection)  # type: ignore[arg-type]
        for key, value in (("app_id", APP_ID), ("schema_version", str(SCHEMA_VERSION))):
            conn.execute(
                text(
                    "INSERT INTO meta(key, value) VALUES (:k, :v) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                ),
                {"k": key, "v": value},
            )


def open_cache(path: str | Path | None = None, *, defer_integrity_check: bool = False) -> Cache:
    """Open (creating, migrating or recovering as needed) the cache at ``path``.

    ``defer_integrity_check``: skip the page-by-page ``quick_check`` here and leave it to
    :meth:`Cache.check_integrity` (``integrity_checked`` is False until it passed); the
    caller must run it. A new or just-recovered file needs no check, and a file that needs
    a migration is checked fully here before it is changed.
    """
    path = Path(path) if path is not None else default_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    recovered: CacheRecovered | None = None
    migrated_from: int | None = None
    deferred = False
    tables: frozenset[str] = frozenset()
    if path.exists():
        state, version, tables = _probe(path, quick_check=not defer_integrity_check)
        if state == "ok" and defer_integrity_check:
            deferred = True
            if version != SCHEMA_VERSION:  # never migrate (or refuse) an unchecked file
                state, version, tables = _probe(path)
                deferred = False
        if state == "ok":
            assert version is not None
            if version > SCHEMA_VERSION:
                raise CacheTooNew(
                    _(
                        "The local data file {path} was written by a newer StoreDesk "
                        "(schema {found} > {ours}). Please update StoreDesk."
                    ).format(path=path, found=version, ours=SCHEMA_VERSION)
                )
            if version < SCHEMA_VERSION:
                _migrate(path, version)
                migrated_from = version
        elif state != "empty":
            recovered = _move_aside(path, state)
    cache = Cache(
        path=path,
        recovered=recovered,
        migrated_from=migrated_from,
        integrity_checked=not deferred,
        tables_at_open=tables,
    )
    if migrated_from is not None or recovered is not None or not tables >= QUICKREAD_TABLES:
        # a new, recovered or migrated file (or one lacking a table the start path reads)
        cache.tables_at_open = frozenset()
        cache.engine  # noqa: B018 - made now: init_schema creates the tables and the stamp
    return cache


def _migrate(path: Path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        while version < SCHEMA_VERSION:
            step = MIGRATIONS.get(version)
            if step is None:
                raise CacheError(f"no migration from schema {version}")
            log.info("migrating cache %s from schema %d", path, version)
            step(conn)
            version += 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
