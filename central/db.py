"""The central database: engine set-up and schema creation.

SQLite (the default, one file) is opened with real transactions: pysqlite's legacy mode
would run SELECTs outside any transaction, so the ``begin`` event issues ``BEGIN`` itself
(SQLAlchemy's documented recipe). Then a verify read sees one consistent snapshot and a
push transaction whose first statement is an UPDATE takes the write lock before it reads.
PostgreSQL needs nothing special: see :mod:`central.changelog` for the commit-order
sequence that makes several server processes safe.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from central import changelog
from central.models import CentralBase
from core.models import Base


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def normalise_url(db: str | Path | URL) -> URL:
    """A database URL (``scheme://...``) as given, or a SQLite file path as a URL object.

    A path is never pasted into a URL string: a folder named ``a?b`` or ``50%`` would be
    read as a query string or an escape.
    """
    if isinstance(db, URL):
        return db
    text = str(db)
    if isinstance(db, str) and "://" in text:
        if text.startswith("postgresql://"):
            text = "postgresql+psycopg://" + text.removeprefix("postgresql://")
        return make_url(text)
    return URL.create("sqlite", database=str(Path(db)))


def make_central_engine(db: str | Path | URL) -> Engine:
    url = normalise_url(db)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8)


def init_central_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    CentralBase.metadata.create_all(engine)
    with Session(engine) as s, s.begin():
        changelog.ensure_counter(s)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose changes to synced tables are recorded for pull."""
    factory = sessionmaker(engine, expire_on_commit=False)
    changelog.install(factory)
    return factory
