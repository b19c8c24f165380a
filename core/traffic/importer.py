"""Import hourly traffic from a POS / door-counter CSV, and the ``traffic.import/1`` mutation.

The file format is documented in ``docs/traffic-csv.md``. The import is all-or-nothing:
:func:`validate_csv` checks every row first and a file with any bad row is refused with
row-level errors (row number as Excel shows it, column, what is wrong — in the user's
language) and nothing is written. A good file becomes one ``traffic.import/1`` mutation
per store (chunked), applied locally with its outbox rows in one transaction so it syncs;
rows identical to what the cache already holds are skipped, so importing the same file
twice changes nothing and queues nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import N_, _
from core.models import HourlyTraffic, Store
from core.mutations import Actor, Changes, Rejected, apply_local, mutation
from core.timeutil import local_to_utc

MUTATION = "traffic.import/1"
#: Rows per mutation: keeps each outbox entry (and each push request) a sensible size.
CHUNK = 500
MAX_ROWS = 200_000

REQUIRED = ("store_code", "date", "hour", "visitors", "transactions", "sales_yuan")
OPTIONAL = ("units",)

#: Header spellings accepted for each column (Chinese counter/POS exports use Chinese names).
ALIASES: dict[str, tuple[str, ...]] = {
    "store_code": ("store_code", "store", "门店编码", "门店代码", "门店编号", "门店"),
    "date": ("date", "日期"),
    "hour": ("hour", "小时", "时段"),
    "visitors": ("visitors", "客流", "客流量", "进店人数"),
    "transactions": ("transactions", "交易笔数", "成交笔数", "小票数"),
    "sales_yuan": ("sales_yuan", "sales", "销售额", "销售额(元)", "销售额（元）"),
    "units": ("units", "件数", "销售件数"),
}

MESSAGES: dict[str, str] = {
    "empty_file": N_("The file is empty."),
    "encoding": N_("The file is neither UTF-8 nor GBK text; save it as CSV (UTF-8) and retry."),
    "missing_column": N_("Required column “{column}” is missing from the header row."),
    "unknown_column": N_("Unknown column “{value}” in the header row."),
    "duplicate_column": N_("Column “{column}” appears twice in the header row."),
    "field_count": N_("Expected {expected} fields but found {found}."),
    "required": N_("Value is missing."),
    "unknown_store": N_("Unknown store code “{value}”."),
    "store_out_of_scope": N_("Store “{value}” is not one of your stores."),
    "bad_date": N_("“{value}” is not a date (use YYYY-MM-DD)."),
    "future_date": N_("Date {value} is in the future."),
    "future_hour": N_("Hour {value} has not started yet."),
    "bad_hour": N_("“{value}” is not an hour from 0 to 23."),
    "bad_int": N_("“{value}” is not a whole number of 0 or more."),
    "bad_money": N_("“{value}” is not an amount in yuan of 0 or more with at most 2 decimals."),
    "sales_without_transactions": N_("Sales of {value} yuan but 0 transactions."),
    "units_below_transactions": N_("Fewer units ({value}) than transactions."),
    "duplicate_row": N_("Same store, date and hour as row {value}."),
    "too_many_rows": N_("The file has more than {value} rows; split it."),
}


@dataclass(frozen=True)
class RowError:
    """One problem in the file: ``row`` is the line number as a spreadsheet shows it."""

    row: int
    column: str  # canonical column name, "" for the whole row/file
    code: str  # a key of MESSAGES
    message: str  # translated, ready to show


@dataclass(frozen=True)
class ParsedRow:
    row: int
    store_id: int
    store_code: str
    day: dt.date
    hour: int
    hour_start: dt.datetime  # aware UTC
    visitors: int
    transactions: int
    sales_fen: int
    units: int | None

    def args(self) -> dict[str, Any]:
        return {
            "hour_start": self.hour_start.isoformat(),
            "visitors": self.visitors,
            "transactions": self.transactions,
            "sales_fen": self.sales_fen,
            "units": self.units,
        }


@dataclass
class Validation:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ImportResult:
    ok: bool
    errors: list[RowError]
    rows_in_file: int
    inserted: int
    updated: int
    unchanged: int
    mutations: int
    stores: list[str]
    encoding: str
    changes: Changes


def _err(row: int, col: str, code: str, **params: Any) -> RowError:
    return RowError(row, col, code, _(MESSAGES[code]).format(**params))


def decode(data: bytes) -> tuple[str, str] | None:
    """(text, encoding): UTF-8 (with or without BOM) first, then GBK (GB18030), else None."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc), ("utf-8" if enc == "utf-8-sig" else "gbk")
        except UnicodeDecodeError:
            continue
    return None


_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")
_HOUR_RE = re.compile(r"^(\d{1,2})(?::00(?::00)?)?$")
_INT_RE = re.compile(r"^\d+$")
_MONEY_RE = re.compile(r"^\d+(\.\d{1,2})?$")


def _parse_date(text: str) -> dt.date | None:
    m = _DATE_RE.match(text)
    if not m:
        return None
    y, mo, d = (g for g in m.groups() if g is not None)
    try:
        return dt.date(int(y), int(mo), int(d))
    except ValueError:
        return None


def _parse_hour(text: str) -> int | None:
    m = _HOUR_RE.match(text)
    if not m:
        return None
    h = int(m.group(1))
    return h if 0 <= h <= 23 else None


def _parse_int(text: str) -> int | None:
    t = text.replace(",", "")
    return int(t) if _INT_RE.match(t) else None


def _parse_fen(text: str) -> int | None:
    t = text.replace(",", "").lstrip("¥￥").strip()
    if not _MONEY_RE.match(t):
        return None
    try:
        return int(Decimal(t) * 100)
    except InvalidOperation:
        return None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for fields in reader:
        yield reader.line_num, fields


def validate_csv(
    session: Session,
    data: bytes,
    actor: Actor,
    today: dt.date,
    now: dt.datetime | None = None,
) -> Validation:
    """Check every row; ``Validation.rows`` is only meaningful when there are no errors.

    ``now`` (aware) also refuses hours of today that have not started yet, as the
    ``traffic.import/1`` handler would.
    """
    out = Validation()
    decoded = decode(data)
    if decoded is None:
        out.errors.append(_err(1, "", "encoding"))
        return out
    text, out.encoding = decoded
    rows = _rows(text)
    header: list[str] | None = None
    for line, fields in rows:
        if any(f.strip() for f in fields):
            header = fields
            header_line = line
            break
    if header is None:
        out.errors.append(_err(1, "", "empty_file"))
        return out

    lookup = {alias.lower(): canon for canon, names in ALIASES.items() for alias in names}
    columns: list[str] = []
    for name in header:
        canon = lookup.get(name.strip().lower())
        if canon is None:
            out.errors.append(_err(header_line, "", "unknown_column", value=name.strip()))
            canon = ""
        elif canon in columns:
            out.errors.append(_err(header_line, canon, "duplicate_column", column=canon))
        columns.append(canon)
    for req in REQUIRED:
        if req not in columns:
            out.errors.append(_err(header_line, req, "missing_column", column=req))
    if out.errors:
        return out

    stores = {
        code: (sid, tzname)
        for sid, code, tzname in session.execute(select(Store.id, Store.code, Store.timezone))
    }
    seen: dict[tuple[int, dt.date, int], int] = {}
    n = 0
    for line, fields in rows:
        if not any(f.strip() for f in fields):
            continue  # blank lines (spreadsheets leave them at the end)
        n += 1
        if n > MAX_ROWS:
            out.errors.append(_err(line, "", "too_many_rows", value=MAX_ROWS))
            break
        if len(fields) != len(columns):
            out.errors.append(
                _err(line, "", "field_count", expected=len(columns), found=len(fields))
            )
            continue
        vals = {c: f.strip() for c, f in zip(columns, fields, strict=True)}
        before = len(out.errors)

        def bad(column: str, code: str, value: Any = "", _line: int = line) -> None:
            out.errors.append(_err(_line, column, code, value=value))

        for c in REQUIRED:
            if not vals[c]:
                bad(c, "required")
        store = stores.get(vals["store_code"]) if vals["store_code"] else None
        if vals["store_code"] and store is None:
            bad("store_code", "unknown_store", vals["store_code"])
        elif store is not None and not actor.can_store(store[0]):
            bad("store_code", "store_out_of_scope", vals["store_code"])
        day = _parse_date(vals["date"]) if vals["date"] else None
        if vals["date"] and day is None:
            bad("date", "bad_date", vals["date"])
        elif day is not None and day > today:
            bad("date", "future_date", day.isoformat())
        hour = _parse_hour(vals["hour"]) if vals["hour"] else None
        if vals["hour"] and hour is None:
            bad("hour", "bad_hour", vals["hour"])
        ints: dict[str, int | None] = {}
        for c in ("visitors", "transactions", "units"):
            raw = vals.get(c, "")
            ints[c] = _parse_int(raw) if raw else None
            if raw and ints[c] is None:
                bad(c, "bad_int", raw)
        fen = _parse_fen(vals["sales_yuan"]) if vals["sales_yuan"] else None
        if vals["sales_yuan"] and fen is None:
            bad("sales_yuan", "bad_money", vals["sales_yuan"])
        txn = ints["transactions"]
        if fen and txn == 0:
            bad("sales_yuan", "sales_without_transactions", vals["sales_yuan"])
        if ints["units"] is not None and txn is not None and ints["units"] < txn:
            bad("units", "units_below_transactions", ints["units"])
        if len(out.errors) > before:
            continue
        assert store is not None and day is not None and hour is not None and fen is not None
        key = (store[0], day, hour)
        if key in seen:
            bad("", "duplicate_row", seen[key])
            continue
        hour_start = local_to_utc(dt.datetime.combine(day, dt.time(hour)), store[1])
        if now is not None and hour_start > now:
            bad("hour", "future_hour", f"{day.isoformat()} {hour:02d}:00")
            continue
        seen[key] = line
        visitors, transactions = ints["visitors"], ints["transactions"]
        assert visitors is not None and transactions is not None
        out.rows.append(
            ParsedRow(
                row=line,
                store_id=store[0],
                store_code=vals["store_code"],
                day=day,
                hour=hour,
                hour_start=hour_start,
                visitors=visitors,
                transactions=transactions,
                sales_fen=fen,
                units=ints["units"],
            )
        )
    if n == 0 and not out.errors:
        out.errors.append(_err(header_line, "", "empty_file"))
    return out


def import_csv(
    session: Session, data: bytes, actor: Actor, today: dt.date, now: dt.datetime
) -> ImportResult:
    """Validate, then (only if the whole file is good) queue the changed rows as mutations."""
    v = validate_csv(session, data, actor, today, now)
    if not v.ok:
        return ImportResult(False, v.errors, 0, 0, 0, 0, 0, [], v.encoding, Changes())
    by_store: dict[int, list[ParsedRow]] = {}
    for r in v.rows:
        by_store.setdefault(r.store_id, []).append(r)
    inserted = updated = unchanged = mutations = 0
    changes = Changes()
    codes = []
    for store_id, rows in sorted(by_store.items()):
        existing = {
            (t.hour_start): (t.visitors, t.transactions, t.sales_fen, t.units)
            for t in session.scalars(
                select(HourlyTraffic).where(
                    HourlyTraffic.store_id == store_id,
                    HourlyTraffic.hour_start >= min(r.hour_start for r in rows),
                    HourlyTraffic.hour_start <= max(r.hour_start for r in rows),
                )
            )
        }
        todo = []
        for r in rows:
            old = existing.get(r.hour_start)
            if old == (r.visitors, r.transactions, r.sales_fen, r.units):
                unchanged += 1
                continue
            if old is None:
                inserted += 1
            else:
                updated += 1
            todo.append(r)
        if todo:
            codes.append(rows[0].store_code)
        for i in range(0, len(todo), CHUNK):
            args = {"store_id": store_id, "rows": [r.args() for r in todo[i : i + CHUNK]]}
            changes.merge(apply_local(session, actor, MUTATION, args, now=now))
            mutations += 1
    return ImportResult(
        True, [], len(v.rows), inserted, updated, unchanged, mutations, codes, v.encoding, changes
    )


# --------------------------------------------------------------------------- the mutation


def _nonneg_int(value: Any, name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Rejected("bad_traffic_row", f"{name} must be an integer >= 0, got {value!r}")
    return value


@mutation("traffic.import")
def handle_traffic_import(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    """Upsert hourly rows of one store (source='import'); replaying it changes nothing."""
    store_id = args.get("store_id")
    if isinstance(store_id, bool) or not isinstance(store_id, int):
        raise Rejected("bad_traffic_row", f"store_id must be an integer, got {store_id!r}")
    actor.require_store(store_id)
    if session.get(Store, store_id) is None:
        raise Rejected("unknown_store", f"no store {store_id}")
    rows = args.get("rows")
    if not isinstance(rows, list):
        raise Rejected("bad_traffic_row", "rows must be a list")
    parsed = []
    for row in rows:
        if not isinstance(row, dict):
            raise Rejected("bad_traffic_row", "each row must be an object")
        try:
            hour_start = dt.datetime.fromisoformat(str(row.get("hour_start")))
        except ValueError:
            raise Rejected("bad_traffic_row", f"bad hour_start {row.get('hour_start')!r}") from None
        if hour_start.tzinfo is None or hour_start.minute or hour_start.second:
            raise Rejected(
                "bad_traffic_row", f"hour_start must be an aware whole hour: {hour_start}"
            )
        hour_start = hour_start.astimezone(dt.UTC)
        if hour_start > now:
            raise Rejected("bad_traffic_row", f"hour_start {hour_start} is in the future")
        parsed.append(
            (
                hour_start,
                _nonneg_int(row.get("visitors"), "visitors"),
                _nonneg_int(row.get("transactions"), "transactions"),
                _nonneg_int(row.get("sales_fen"), "sales_fen"),
                _nonneg_int(row.get("units"), "units", optional=True),
            )
        )
    changes = Changes()
    for hour_start, visitors, transactions, sales_fen, units in parsed:
        existing = session.get(HourlyTraffic, (store_id, hour_start))
        if existing is None:
            session.add(
                HourlyTraffic(
                    store_id=store_id,
                    hour_start=hour_start,
                    visitors=visitors,
                    transactions=transactions,
                    sales_fen=sales_fen,
                    units=units,
                    source="import",
                )
            )
        elif (existing.visitors, existing.transactions, existing.sales_fen, existing.units) != (
            visitors,
            transactions,
            sales_fen,
            units,
        ):
            existing.visitors = visitors  # type: ignore[assignment]
            existing.transactions = transactions  # type: ignore[assignment]
            existing.sales_fen = sales_fen  # type: ignore[assignment]
            existing.units = units
            existing.source = "import"
        else:
            continue
        changes.add("hourly_traffic", store_id)
    session.flush()
    return changes
