"""The StoreDesk sync wire protocol (version 2): pydantic models and the row encoding.

Both ends import this module (the central server through ``central → sync.protocol``), so
the message shapes, the list of synced tables, the wire form of values and the checksum
are defined exactly once.

Row encoding. Rows travel as JSON arrays in the table's column order (``columns`` is sent
once per table per message), never as objects: that halves the payload and lets the client
hand rows straight to ``executemany``. Values are in the **SQLite storage form** that
SQLAlchemy itself writes, so a client bulk-loads them without any per-value conversion:

* instants: UTC ``"YYYY-MM-DD HH:MM:SS.ffffff"``; dates ``"YYYY-MM-DD"``; times
  ``"HH:MM:SS.ffffff"``; JSON columns: the JSON text; booleans: 0/1; numbers as numbers.

Snapshot pages (version 2). A client that asks ``/v1/sync/snapshot`` with
``format=sqlite`` receives the page as a small SQLite database instead of JSON (see
:func:`encode_page` / :func:`decode_page`): the server builds it with one
``CREATE TABLE … AS SELECT`` and the client loads it with one ``INSERT … SELECT``, so no
row value passes through Python on either side except for the checksum. Version 1 clients
(JSON pages, ``repr`` checksums) are still served; the other messages are unchanged.

Checksums (:func:`table_checksum`) are order-independent (sum of CRC-32 of each row's
canonical bytes), so the server and the client can compute them in any row order.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import marshal
import sqlite3
import struct
import zlib
from collections.abc import Iterable, Sequence
from itertools import islice, repeat
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON as SAJSON
from sqlalchemy import Date, DateTime, Table, Time

from core.models import CLIENT_ONLY_TABLES, Base

#: Bumped when a message shape, the meaning of a field or the set of mutations changes
#: (a mutation name is versioned, ``name/n``; a client may send only the mutations of its
#: protocol, so a server that does not know one answers 426 before any push, never a
#: refusal that would drop the user's edit).
#: 2: snapshot pages as SQLite page files (``format=sqlite``); checksums of a binary
#: form of each row instead of its ``repr`` (:func:`row_checksum_terms`).
#: 3: the ``gps.import/1`` mutation (GPX tracks imported on a desktop); push requests are
#: at most :data:`MAX_PUSH_BYTES` (413 beyond).
PROTOCOL_VERSION = 3
#: The oldest client protocol the server still serves; older clients get 426.
MIN_PROTOCOL_VERSION = 1
#: The oldest server a desktop still talks to, in that server's protocol (page-file
#: snapshots and binary checksums came with 2): a server that answers 426 naming 2 is
#: spoken to in protocol 2, so servers can be updated after the desktops.
MIN_SERVER_PROTOCOL = 2
#: The protocol each mutation came with (others: 1). Speaking an older protocol, a desktop
#: sends its outbox only up to the first mutation that protocol does not know.
MUTATION_PROTOCOL: dict[str, int] = {"gps.import/1": 3}


def mutation_protocol(name: str) -> int:
    """The first protocol that knows mutation ``name``."""
    return MUTATION_PROTOCOL.get(name, 1)


PROTOCOL_HEADER = "X-StoreDesk-Protocol"

#: Caps that keep a hostile or broken peer from exhausting memory.
MAX_PAGE_ROWS = 50_000
MAX_PUSH_MUTATIONS = 500
#: Body of one push request (the client sends about 1 MB at a time, see sync.engine).
MAX_PUSH_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

#: Columns that never leave the server.
EXCLUDED_COLUMNS: dict[str, frozenset[str]] = {"users": frozenset({"password_hash"})}

Scalar = int | float | str | bool | None


# --------------------------------------------------------------------------- tables


def synced_tables() -> list[Table]:
    """Every synced table, parents before children (foreign-key order)."""
    return [t for t in Base.metadata.sorted_tables if t.name not in CLIENT_ONLY_TABLES]


SYNCED_TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in synced_tables())


def table(name: str) -> Table:
    if name not in SYNCED_TABLE_NAMES:
        raise KeyError(f"not a synced table: {name!r}")
    return Base.metadata.tables[name]


def wire_columns(tbl: Table) -> list[str]:
    skip = EXCLUDED_COLUMNS.get(tbl.name, frozenset())
    return [c.name for c in tbl.columns if c.name not in skip]


def pk_columns(tbl: Table) -> list[str]:
    return [c.name for c in tbl.primary_key.columns]


# --------------------------------------------------------------------------- values


def encode_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def to_wire(value: Any) -> Scalar:
    """A Python value (ORM attribute or PostgreSQL driver value) in its wire form."""
    if value is None or isinstance(value, str | int | float):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, enum.Enum):
            return value.value
        return value
    if isinstance(value, dt.datetime):
        return encode_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__} for the wire")


def from_wire(value: Scalar, coltype: Any) -> Any:
    """A wire value back to the Python value a typed SQLAlchemy column binds."""
    if value is None:
        return None
    if isinstance(coltype, DateTime) or isinstance(getattr(coltype, "impl", None), DateTime):
        d = dt.datetime.fromisoformat(str(value))
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)
    if isinstance(coltype, Date):
        return dt.date.fromisoformat(str(value))
    if isinstance(coltype, Time):
        return dt.time.fromisoformat(str(value))
    if isinstance(coltype, SAJSON):
        return json.loads(str(value))
    return value


#: How a row is turned into bytes for its CRC-32, by protocol version (see
#: :func:`row_checksum_terms`). The server answers ``/v1/sync/verify`` in the form of the
#: client's protocol.
CHECKSUM_REPR = 1
CHECKSUM_BINARY = 2


def checksum_form(protocol: int) -> int:
    return CHECKSUM_REPR if protocol < 2 else CHECKSUM_BINARY


def row_checksum_terms(
    rows: Iterable[Sequence[Any]], form: int = CHECKSUM_BINARY
) -> tuple[int, int]:
    """(count, sum of the CRC-32s of the rows) of rows in wire form.

    Rows must already be in wire form (int — booleans as 0/1 —, float, str or None). How
    a row becomes bytes:

    * ``CHECKSUM_REPR`` (protocol 1): ``repr(tuple(row))`` in UTF-8.
    * ``CHECKSUM_BINARY`` (protocol 2): ``b"("`` + the number of values (4 bytes, little
      endian) + each value: ``b"N"`` for None; an int in [-2**31, 2**31) as ``b"i"`` +
      4 bytes little endian two's complement, a larger one as ``b"l"`` + the signed count
      of its base-2**15 digits (4 bytes LE) + the digits of its absolute value, least
      significant first, 2 bytes LE each; a float as ``b"g"`` + its IEEE 754 binary64,
      little endian; a str as ``b"u"`` + its UTF-8 length (4 bytes LE) + UTF-8
      (``surrogatepass``). That is the layout of :mod:`marshal` format 2, which computes
      it in C; ``tests/sync/test_checksum_form.py`` checks marshal against this
      definition, so a Python whose marshal changed would be noticed. Formatting floats
      as text (``repr``) was most of the cost of a checksum.

    The per-row work runs in C (``map``).
    """
    n = 0
    total = 0
    it = iter(rows)
    # Small chunks: one ``sum(map(...))`` runs in C without ever releasing the GIL, so a
    # 20,000-row chunk froze the UI thread for 50-90 ms while the DB worker verified a
    # sync (heartbeat benchmark); 2,000 rows is a few ms and costs nothing in throughput.
    while chunk := list(islice(it, 2_000)):
        n += len(chunk)
        if form == CHECKSUM_REPR:
            total += sum(map(zlib.crc32, map(str.encode, map(repr, map(tuple, chunk)))))
        else:
            total += sum(map(zlib.crc32, map(marshal.dumps, map(tuple, chunk), repeat(2))))
    return n, total


def table_checksum(count: int, crc_sum: int) -> str:
    return f"{count}:{crc_sum & 0xFFFFFFFFFFFFFFFF:016x}"


# --------------------------------------------------------------------------- messages


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LoginRequest(_Msg):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserInfo(_Msg):
    id: int
    username: str
    display_name: str
    role: str
    store_ids: list[int]
    region_ids: list[int]


class LoginResponse(_Msg):
    token: str = Field(min_length=16, max_length=256)
    expires_at: dt.datetime
    user: UserInfo


class MutationIn(_Msg):
    id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=64)
    args: dict[str, Any]
    base_version: int | None = None


class PushRequest(_Msg):
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    mutations: list[MutationIn] = Field(max_length=MAX_PUSH_MUTATIONS)


class MutationOutcome(_Msg):
    id: int
    status: Literal["applied", "rejected", "conflict"]
    reason_code: str | None = None
    message: str = ""
    entity: str | None = None
    entity_id: str | None = None
    theirs: dict[str, Any] | None = None
    #: True when this outcome was recorded by an earlier delivery of the same mutation.
    replayed: bool = False


class PushResponse(_Msg):
    last_mutation_id: int = Field(ge=0)
    results: list[MutationOutcome]


class GapError(_Msg):
    """409 body: the server expects this mutation id next."""

    error: Literal["gap"] = "gap"
    expected: int
    message: str


class Change(_Msg):
    seq: int = Field(ge=1)
    table: str
    op: Literal["upsert", "delete"]
    pk: list[Scalar]
    row: list[Scalar] | None = None


class PullResponse(_Msg):
    cursor: int = Field(ge=0)
    next_cursor: int = Field(ge=0)
    has_more: bool
    columns: dict[str, list[str]]
    changes: list[Change] = Field(max_length=MAX_PAGE_ROWS)


class SnapshotTableInfo(_Msg):
    name: str
    columns: list[str]
    pk: list[str]
    #: rows in scope when the snapshot started (for progress; may drift while it runs)
    count: int = Field(default=0, ge=0)


class SnapshotStart(_Msg):
    """A snapshot pins the change sequence at its start; pull continues from ``token``."""

    token: int = Field(ge=0)
    tables: list[SnapshotTableInfo]


class SnapshotPage(_Msg):
    token: int
    table: str
    columns: list[str]
    rows: list[list[Any]] = Field(max_length=MAX_PAGE_ROWS)
    #: keyset position to ask for next; ``None`` when the table is complete.
    next_after: list[Scalar] | None


class SnapshotPageInfo(_Msg):
    """The envelope of a SQLite snapshot page (version 2): everything but the rows."""

    token: int
    table: str
    columns: list[str]
    count: int = Field(ge=0, le=MAX_PAGE_ROWS)
    next_after: list[Scalar] | None


# --------------------------------------------------------------------------- page files

#: Media type of a SQLite snapshot page.
PAGE_MEDIA_TYPE = "application/vnd.storedesk.snapshot-page"
#: The one table of a page file.
PAGE_TABLE = "sd_page"
_PAGE_MAGIC = b"SDPG"
_PAGE_HEAD = struct.Struct(">4sI")


def page_connection() -> sqlite3.Connection:
    """An empty in-memory database to build a page file in."""
    con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=OFF")
    return con


def page_from_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> sqlite3.Connection:
    """A page database holding ``rows`` (wire form, columns without declared types)."""
    con = page_connection()
    cols = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con.execute(f"CREATE TABLE {PAGE_TABLE} ({cols})")
    con.executemany(f"INSERT INTO {PAGE_TABLE} VALUES ({', '.join('?' * len(columns))})", rows)
    return con


def encode_page(info: SnapshotPageInfo, page_db: sqlite3.Connection) -> bytes:
    """``SDPG`` + length + JSON envelope + the serialized page database."""
    head = info.model_dump_json().encode()
    return _PAGE_HEAD.pack(_PAGE_MAGIC, len(head)) + head + page_db.serialize()


def decode_page(body: bytes) -> tuple[SnapshotPageInfo, bytes]:
    """Split a page into its validated envelope and the database bytes (not yet opened).

    Raises ``ValueError`` (or pydantic's ``ValidationError``) for anything malformed.
    """
    if len(body) < _PAGE_HEAD.size:
        raise ValueError("short page")
    magic, n = _PAGE_HEAD.unpack_from(body)
    if magic != _PAGE_MAGIC or n > 1 << 20 or _PAGE_HEAD.size + n > len(body):
        raise ValueError("not a snapshot page")
    info = SnapshotPageInfo.model_validate_json(body[_PAGE_HEAD.size : _PAGE_HEAD.size + n])
    data = body[_PAGE_HEAD.size + n :]
    if not data.startswith(b"SQLite format 3\x00"):
        raise ValueError("the page holds no SQLite database")
    return info, data


class TableSum(_Msg):
    count: int = Field(ge=0)
    checksum: str


class VerifyResponse(_Msg):
    seq: int = Field(ge=0)
    tables: dict[str, TableSum]


class Health(_Msg):
    status: str
    protocol: int
    min_protocol: int
    server_time: dt.datetime


class ErrorBody(_Msg):
    detail: Any = None


class RowsRequest(_Msg):
    table: str
    pks: list[list[Scalar]] = Field(max_length=1000)


class RowsResponse(_Msg):
    table: str
    columns: list[str]
    rows: list[list[Any]]
    missing: list[list[Scalar]]
