"""Loading hourly traffic as store-local records (the one place that converts UTC hours).

Everything in ``core.traffic`` reasons in the store's local calendar: a "day" is the
store-local business day and an "hour" the local wall-clock hour, because that is what a
manager plans and what a counter export contains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Select, String, select, type_coerce
from sqlalchemy.orm import Session

from core.models import Holiday, HourlyTraffic, Shift, ShiftStatus, Store
from core.timeutil import local_day_bounds, tz

# the records, the store facts and the staff-hours arithmetic need no database library
# (the app's start path uses them before SQLAlchemy is imported): core.traffic.records
from core.traffic.records import (  # noqa: F401 (re-exported)
    FLOOR_ROLES,
    HourRecord,
    StoreInfo,
    _as_utc,
    _wall_us,
    hours_window,
    info_of,
    records_from_rows,
    staff_hours_of,
)


def store_info(session: Session, store_id: int) -> StoreInfo:
    store = session.get(Store, store_id)
    if store is None:
        raise LookupError(f"no store {store_id}")
    return info_of(store)


def stores_info(session: Session, store_ids: Iterable[int]) -> list[StoreInfo]:
    ids = list(store_ids)
    rows = session.scalars(select(Store).where(Store.id.in_(ids)).order_by(Store.code)).all()
    return [info_of(s) for s in rows]


def load_hours(
    session: Session, store: StoreInfo, start: dt.date, end: dt.date
) -> list[HourRecord]:
    """Records of local days ``start`` .. ``end`` inclusive, ordered by time."""
    lo, _ = local_day_bounds(start, store.timezone)
    _, hi = local_day_bounds(end, store.timezone)
    zone = tz(store.timezone)
    rows = session.execute(
        select(
            HourlyTraffic.hour_start,
            HourlyTraffic.visitors,
            HourlyTraffic.transactions,
            HourlyTraffic.sales_fen,
            HourlyTraffic.units,
        )
        .where(
            HourlyTraffic.store_id == store.id,
            HourlyTraffic.hour_start >= lo,
            HourlyTraffic.hour_start < hi,
        )
        .order_by(HourlyTraffic.hour_start)
    ).all()
    out = []
    for hour_start, visitors, transactions, sales_fen, units in rows:
        if hour_start.tzinfo is None:  # raw text from a bulk path
            hour_start = hour_start.replace(tzinfo=dt.UTC)
        local = hour_start.astimezone(zone)
        out.append(HourRecord(local.date(), local.hour, visitors, transactions, sales_fen, units))
    return out


def _driver_rows(session: Session, stmt: Select) -> list[tuple]:
    """``stmt``'s rows as the driver returns them, skipping SQLAlchemy's per-row work.

    For bulk reads of tens of thousands of rows (~4× faster than ORM rows); columns that
    need a type's result processing must be read raw (``type_coerce(col, String)``) and
    converted by the caller. A Core execute does not autoflush, so this flushes first.
    """
    session.flush()
    result = session.connection().execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def load_hours_many(
    session: Session, stores: Iterable[StoreInfo], start: dt.date, end: dt.date
) -> dict[int, list[HourRecord]]:
    """:func:`load_hours` of several stores in one query (store id -> its records).

    The region home reads ~30 stores × 10 weeks of hours (~30k rows) at start-up; one
    Core query fetched straight from the driver cursor, its hour column read as stored
    (no per-row result processing, ~4× faster than ORM rows), with each distinct UTC hour
    converted to local time once, keeps that to a few tens of milliseconds. Equal to
    calling :func:`load_hours` per store (a test holds them together).
    """
    infos = {s.id: s for s in stores}
    if not infos:
        return {}
    lo, hi, bounds = hours_window(infos.values(), start, end)
    rows = _driver_rows(
        session,
        select(
            HourlyTraffic.store_id,
            type_coerce(HourlyTraffic.hour_start, String),
            HourlyTraffic.visitors,
            HourlyTraffic.transactions,
            HourlyTraffic.sales_fen,
            HourlyTraffic.units,
        )
        .where(
            HourlyTraffic.store_id.in_(list(infos)),
            HourlyTraffic.hour_start >= lo,
            HourlyTraffic.hour_start < hi,
        )
        .order_by(HourlyTraffic.store_id, HourlyTraffic.hour_start),
    )
    return records_from_rows(infos, bounds, rows)


def floor_staff_hours(
    session: Session, store: StoreInfo, start: dt.date, end: dt.date
) -> dict[tuple[dt.date, int], float]:
    """Published floor-role shift time per local (day, hour), in staff-hours.

    A shift 09:30-18:00 contributes 0.5 to the 9 o'clock hour and 1.0 to each of 10..17.
    Drafts are left out: KPIs measure the rota the store actually worked to.
    """
    lo, _ = local_day_bounds(start, store.timezone)
    _, hi = local_day_bounds(end, store.timezone)
    shifts = session.execute(
        select(Shift.start_at, Shift.end_at)
        .where(
            Shift.store_id == store.id,
            Shift.status == ShiftStatus.PUBLISHED.value,
            Shift.role.in_(FLOOR_ROLES),
            Shift.end_at > lo,
            Shift.start_at < hi,
        )
        .order_by(Shift.start_at, Shift.id)  # a fixed order: the float sums repeat exactly
    ).all()
    return staff_hours_of(shifts, store.timezone, lo, hi)


def floor_shifts_many(
    session: Session, stores: Iterable[StoreInfo], start: dt.date, end: dt.date
) -> dict[int, list[tuple[dt.datetime, dt.datetime]]]:
    """The shifts :func:`floor_staff_hours` counts, for several stores in one query.

    Store id -> (start, end) UTC pairs in the same order as :func:`floor_staff_hours`
    reads them; feed a store's list to :func:`staff_hours_of` with a range's bounds.
    """
    infos = {s.id: s for s in stores}
    out: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {sid: [] for sid in infos}
    if not infos:
        return out
    lo = min(local_day_bounds(start, s.timezone)[0] for s in infos.values())
    hi = max(local_day_bounds(end, s.timezone)[1] for s in infos.values())
    rows = _driver_rows(
        session,
        select(
            Shift.store_id,
            type_coerce(Shift.start_at, String),
            type_coerce(Shift.end_at, String),
        )
        .where(
            Shift.store_id.in_(list(infos)),
            Shift.status == ShiftStatus.PUBLISHED.value,
            Shift.role.in_(FLOOR_ROLES),
            Shift.end_at > lo,
            Shift.start_at < hi,
        )
        .order_by(Shift.store_id, Shift.start_at, Shift.id),
    )
    for sid, s_start, s_end in rows:
        out[sid].append((_as_utc(s_start), _as_utc(s_end)))
    return out


def holidays(session: Session, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    rows = session.execute(
        select(Holiday.date, Holiday.name).where(Holiday.date >= start, Holiday.date <= end)
    ).all()
    return {d: n for d, n in rows}
