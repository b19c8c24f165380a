"""Loading hourly traffic as store-local records (the one place that converts UTC hours).

Everything in ``core.traffic`` reasons in the store's local calendar: a "day" is the
store-local business day and an "hour" the local wall-clock hour, because that is what a
manager plans and what a counter export contains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Select, String, select, type_coerce
from sqlalchemy.orm import Session

from core.models import Holiday, HourlyTraffic, Shift, ShiftStatus, StaffRole, Store
from core.timeutil import local_day_bounds, tz

#: Roles counted as "on the floor" for STAR: they serve shoppers. Stock clerks (理货) work
#: the back room and are left out, as in ShopperTrak's and RetailNext's STAR definitions.
FLOOR_ROLES: frozenset[str] = frozenset(
    {
        StaffRole.SALES.value,
        StaffRole.CASHIER.value,
        StaffRole.KEYHOLDER.value,
        StaffRole.MANAGER.value,
    }
)


class HourRecord(NamedTuple):
    """One store-hour in local time.

    A named tuple rather than a frozen dataclass: a region's home reads ~30k of them at
    start-up, and a tuple is built in a fifth of the time (immutable all the same).
    """

    day: dt.date
    hour: int
    visitors: int
    transactions: int
    sales_fen: int
    units: int | None


@dataclass(frozen=True)
class StoreInfo:
    id: int
    code: str
    name: str
    region_id: int
    cluster: str
    timezone: str
    open_hour: int  # first local hour the store is open
    close_hour: int  # first local hour after closing (22:00 -> 22; 21:30 -> 22)

    def is_open(self, hour: int) -> bool:
        return self.open_hour <= hour < self.close_hour

    @property
    def opening_hours(self) -> range:
        return range(self.open_hour, self.close_hour)


def store_info(session: Session, store_id: int) -> StoreInfo:
    store = session.get(Store, store_id)
    if store is None:
        raise LookupError(f"no store {store_id}")
    return _info(store)


def _info(store: Store) -> StoreInfo:
    close = store.closes_at
    close_hour = close.hour + (1 if (close.minute or close.second) else 0)
    if close_hour <= store.opens_at.hour:  # closes after midnight: count to the day's end
        close_hour = 24
    return StoreInfo(
        id=store.id,
        code=store.code,
        name=store.name,
        region_id=store.region_id,
        cluster=store.cluster or "",
        timezone=store.timezone or "Asia/Shanghai",
        open_hour=store.opens_at.hour,
        close_hour=close_hour,
    )


def stores_info(session: Session, store_ids: Iterable[int]) -> list[StoreInfo]:
    ids = list(store_ids)
    rows = session.scalars(select(Store).where(Store.id.in_(ids)).order_by(Store.code)).all()
    return [_info(s) for s in rows]


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


def _as_utc(raw: str | dt.datetime) -> dt.datetime:
    """An instant column read raw: what :class:`core.models.UTCDateTime` returns for it."""
    instant = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant


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
    out: dict[int, list[HourRecord]] = {sid: [] for sid in infos}
    if not infos:
        return out
    bounds = {
        sid: (local_day_bounds(start, s.timezone)[0], local_day_bounds(end, s.timezone)[1])
        for sid, s in infos.items()
    }
    lo = min(b[0] for b in bounds.values())
    hi = max(b[1] for b in bounds.values())
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
    # raw hour -> (UTC instant, local day, local hour), one table per time zone
    local_of: dict[str, dict[object, tuple[dt.datetime, dt.date, int]]] = {}
    one_zone = len({s.timezone for s in infos.values()}) == 1  # the query's bounds are exact
    current = None
    for sid, raw, visitors, transactions, sales_fen, units in rows:
        if sid != current:  # rows come store by store
            current = sid
            zone_name = infos[sid].timezone
            zone = tz(zone_name)
            memo = local_of.setdefault(zone_name, {})
            lo_s, hi_s = bounds[sid]
            bucket = out[sid]
        hit = memo.get(raw)
        if hit is None:
            instant = _as_utc(raw)
            local = instant.astimezone(zone)
            hit = memo[raw] = (instant, local.date(), local.hour)
        if one_zone or lo_s <= hit[0] < hi_s:
            bucket.append(HourRecord(hit[1], hit[2], visitors, transactions, sales_fen, units))
    return out


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


_WALL_EPOCH = dt.datetime(2000, 1, 1)
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR


def _wall_us(instant: dt.datetime, zone: dt.tzinfo) -> int:
    """The instant's local wall-clock time, as integer microseconds since 2000-01-01."""
    wall = instant.astimezone(zone).replace(tzinfo=None) - _WALL_EPOCH
    return (wall.days * 86_400 + wall.seconds) * 1_000_000 + wall.microseconds


def staff_hours_of(
    shifts: Iterable[tuple[dt.datetime, dt.datetime]],
    timezone: str,
    lo: dt.datetime,
    hi: dt.datetime,
) -> dict[tuple[dt.date, int], float]:
    """:func:`floor_staff_hours` of given (start, end) UTC shifts, clipped to ``lo``..``hi``.

    Each shift is cut at the local wall-clock hours it spans (a DST change shortens or
    lengthens the day, not the hours). Integer wall-clock microseconds instead of aware
    datetimes: the same sums (``timedelta.total_seconds`` is microseconds / 10**6 too),
    ~4× faster — a region home walks ~16k shift-hours.
    """
    zone = tz(timezone)
    out: dict[tuple[dt.date, int], float] = {}
    dates: dict[int, dt.date] = {}
    for s_start, s_end in shifts:
        if s_end <= lo or s_start >= hi:
            continue
        a = _wall_us(max(s_start, lo), zone)
        b = _wall_us(min(s_end, hi), zone)
        cur = a - a % _US_PER_HOUR
        while cur < b:
            nxt = cur + _US_PER_HOUR
            overlap_us = min(b, nxt) - max(a, cur)
            if overlap_us > 0:
                day_no, in_day = divmod(cur, _US_PER_DAY)
                day = dates.get(day_no)
                if day is None:
                    day = dates[day_no] = (_WALL_EPOCH + dt.timedelta(days=day_no)).date()
                key = (day, in_day // _US_PER_HOUR)
                out[key] = out.get(key, 0.0) + overlap_us / 1_000_000 / 3600.0
            cur = nxt
    return out


def holidays(session: Session, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    rows = session.execute(
        select(Holiday.date, Holiday.name).where(Holiday.date >= start, Holiday.date <= end)
    ).all()
    return {d: n for d, n in rows}
