"""Hand-built stores, shifts and hourly traffic for the traffic tests (no demo needed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from core.models import HourlyTraffic, Region, Shift, Staff, Store
from core.mutations import Actor
from core.timeutil import local_to_utc

TZ = "Asia/Shanghai"
#: A Friday, like the demo's "today".
TODAY = dt.date(2026, 11, 27)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """Store-local wall time -> aware UTC."""
    return local_to_utc(dt.datetime.combine(day, dt.time(hour, minute)), TZ)


def seed_stores(s: Session) -> None:
    """Region 1 with stores 1, 2 (cluster A) and 3 (cluster B); region 2 with store 4 (A)."""
    s.add_all([Region(id=1, code="SH", name="上海区"), Region(id=2, code="JS", name="江苏区")])
    for sid, code, region, cluster in (
        (1, "SH001", 1, "A"),
        (2, "SH002", 1, "A"),
        (3, "SH003", 1, "B"),
        (4, "JS001", 2, "A"),
    ):
        s.add(
            Store(
                id=sid,
                region_id=region,
                code=code,
                name=f"门店{code}",
                province="上海",
                city="上海",
                lat=31.2,
                lon=121.4,
                opens_at=dt.time(10, 0),
                closes_at=dt.time(22, 0),
                cluster=cluster,
            )
        )
    s.flush()


def add_hour(
    s: Session,
    store_id: int,
    day: dt.date,
    hour: int,
    visitors: int,
    transactions: int,
    sales_fen: int,
    units: int | None = None,
) -> None:
    s.add(
        HourlyTraffic(
            store_id=store_id,
            hour_start=at(day, hour),
            visitors=visitors,
            transactions=transactions,
            sales_fen=sales_fen,
            units=units,
        )
    )


def add_shift(
    s: Session,
    store_id: int,
    staff_id: int,
    role: str,
    start: dt.datetime,
    end: dt.datetime,
    status: str = "published",
) -> None:
    if s.get(Staff, staff_id) is None:
        s.add(Staff(id=staff_id, store_id=store_id, name=f"员工{staff_id}", role=role))
        s.flush()
    s.add(
        Shift(
            store_id=store_id,
            staff_id=staff_id,
            role=role,
            start_at=start,
            end_at=end,
            status=status,
        )
    )


def manager(*store_ids: int) -> Actor:
    return Actor(
        user_id=7, name="王店长", role="store_manager", store_ids=frozenset(store_ids or {1})
    )


def seasonal_visitors(day: dt.date, hour: int) -> int:
    """A deterministic weekday × hour pattern: weekends busier, peaks at 12 and 18-19."""
    base = {12: 60, 13: 50, 18: 70, 19: 65}.get(hour, 30)
    factor = 1.5 if day.weekday() >= 5 else 1.0
    wiggle = ((day.toordinal() * 7 + hour * 3) % 5) - 2  # -2..2, deterministic noise
    return int(base * factor) + wiggle


def seed_history(
    s: Session, store_id: int, first: dt.date, last: dt.date, scale: float = 1.0
) -> None:
    """Seasonal hourly traffic for opening hours 10..21 of every day first..last."""
    d = first
    while d <= last:
        for h in range(10, 22):
            v = round(seasonal_visitors(d, h) * scale)
            t = v // 5
            add_hour(s, store_id, d, h, v, t, t * 8000, units=t * 2)
        d += dt.timedelta(days=1)


#: Days to compare the demo's figures on: a Monday, a mid-week day, the demo's Friday
#: "today", a Sunday, and a week with DST (for the stores moved to Berlin).
DEMO_DAYS = (
    TODAY - dt.timedelta(days=4),
    TODAY - dt.timedelta(days=9),
    TODAY,
    TODAY - dt.timedelta(days=12),
    dt.date(2026, 10, 27),
)


def move_two_shanghai_stores_to_berlin(cache) -> None:
    """The demo's first two Shanghai stores in Europe/Berlin (DST ends 2026-10-25)."""
    from sqlalchemy import select, update

    with cache.session() as s:
        ids = s.scalars(select(Store.id).where(Store.region_id == 1).order_by(Store.code)).all()
        s.execute(update(Store).where(Store.id.in_(ids[:2])).values(timezone="Europe/Berlin"))
