"""Store-hour records and the store facts traffic analytics reasons with (no database library).

:mod:`core.traffic.hours` loads them (and re-exports these names); they live apart so the
app's start path can compute the home figures from driver-level reads before SQLAlchemy is
imported (``core.quickread``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.timeutil import local_day_bounds, tz

#: Roles counted as "on the floor" for STAR: they serve shoppers. Stock clerks (理货) work
#: the back room and are left out, as in ShopperTrak's and RetailNext's STAR definitions.
FLOOR_ROLES: frozenset[str] = frozenset(
    {
        "sales",  # core.models.StaffRole values (a test holds them equal)
        "cashier",
        "keyholder",
        "manager",
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


def info_of(store: Any) -> StoreInfo:
    """The facts of a store row (an ORM ``Store`` or any object with its columns as
    attributes, ``opens_at``/``closes_at`` as ``datetime.time``)."""
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


def _as_utc(raw: str | dt.datetime) -> dt.datetime:
    """An instant column read raw: what :class:`core.models.UTCDateTime` returns for it."""
    instant = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant


def hours_window(
    stores: Iterable[StoreInfo], start: dt.date, end: dt.date
) -> tuple[dt.datetime, dt.datetime, dict[int, tuple[dt.datetime, dt.datetime]]]:
    """(UTC lower bound, UTC upper bound, each store's own bounds) of local days
    ``start`` .. ``end`` for several stores: what a bulk read of their hours selects."""
    bounds = {
        s.id: (local_day_bounds(start, s.timezone)[0], local_day_bounds(end, s.timezone)[1])
        for s in stores
    }
    lo = min(b[0] for b in bounds.values())
    hi = max(b[1] for b in bounds.values())
    return lo, hi, bounds


def records_from_rows(
    infos: dict[int, StoreInfo],
    bounds: dict[int, tuple[dt.datetime, dt.datetime]],
    rows: Iterable[tuple],
) -> dict[int, list[HourRecord]]:
    """Driver rows ``(store_id, hour_start as stored, visitors, transactions, sales_fen,
    units)`` ordered by store and hour, as each store's local records.

    Each distinct UTC hour is converted to local time once (one table per time zone);
    with several zones a row outside its own store's bounds is dropped.
    """
    out: dict[int, list[HourRecord]] = {sid: [] for sid in infos}
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
    get = out.get
    keys: dict[int, tuple[dt.date, int]] = {}  # wall-clock hour number -> (day, hour)
    hour_us = _US_PER_HOUR
    for s_start, s_end in shifts:
        if s_end <= lo or s_start >= hi:
            continue
        a = _wall_us(s_start if s_start > lo else lo, zone)
        b = _wall_us(s_end if s_end < hi else hi, zone)
        n = a // hour_us
        cur = n * hour_us
        while cur < b:
            nxt = cur + hour_us
            overlap_us = (b if b < nxt else nxt) - (a if a > cur else cur)
            if overlap_us > 0:
                key = keys.get(n)
                if key is None:
                    day_no, in_day = divmod(cur, _US_PER_DAY)
                    day = (_WALL_EPOCH + dt.timedelta(days=day_no)).date()
                    key = keys[n] = (day, in_day // hour_us)
                out[key] = get(key, 0.0) + overlap_us / 1_000_000 / 3600.0
            cur = nxt
            n += 1
    return out
