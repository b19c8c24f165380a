"""Loading hourly traffic as store-local records (the one place that converts UTC hours).

Everything in ``core.traffic`` reasons in the store's local calendar: a "day" is the
store-local business day and an "hour" the local wall-clock hour, because that is what a
manager plans and what a counter export contains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
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


@dataclass(frozen=True)
class HourRecord:
    """One store-hour in local time."""

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


def floor_staff_hours(
    session: Session, store: StoreInfo, start: dt.date, end: dt.date
) -> dict[tuple[dt.date, int], float]:
    """Published floor-role shift time per local (day, hour), in staff-hours.

    A shift 09:30-18:00 contributes 0.5 to the 9 o'clock hour and 1.0 to each of 10..17.
    Drafts are left out: KPIs measure the rota the store actually worked to.
    """
    lo, _ = local_day_bounds(start, store.timezone)
    _, hi = local_day_bounds(end, store.timezone)
    zone = tz(store.timezone)
    shifts = session.execute(
        select(Shift.start_at, Shift.end_at).where(
            Shift.store_id == store.id,
            Shift.status == ShiftStatus.PUBLISHED.value,
            Shift.role.in_(FLOOR_ROLES),
            Shift.end_at > lo,
            Shift.start_at < hi,
        )
    ).all()
    out: dict[tuple[dt.date, int], float] = {}
    for s_start, s_end in shifts:
        a = max(s_start, lo).astimezone(zone)
        b = min(s_end, hi).astimezone(zone)
        cur = a.replace(minute=0, second=0, microsecond=0)
        while cur < b:
            nxt = cur + dt.timedelta(hours=1)
            overlap = (min(b, nxt) - max(a, cur)).total_seconds() / 3600.0
            if overlap > 0:
                key = (cur.date(), cur.hour)
                out[key] = out.get(key, 0.0) + overlap
            cur = nxt
    return out


def holidays(session: Session, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    rows = session.execute(
        select(Holiday.date, Holiday.name).where(Holiday.date >= start, Holiday.date <= end)
    ).all()
    return {d: n for d, n in rows}
