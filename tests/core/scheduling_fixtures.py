"""A hand-built store for scheduling tests: hours, staff and availability chosen so that
every expectation in the tests can be computed by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.cache import Cache
from core.models import Region, Staff, StaffAvailability, Store
from core.mutations import Actor

SH = ZoneInfo("Asia/Shanghai")
#: A Monday (ISO week 2026-W49).
WEEK = dt.date(2026, 11, 30)


def at(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    """Store-local wall time -> aware instant."""
    return dt.datetime.combine(day, dt.time(hh, mm), SH)


def iso(day: dt.date, hh: int, mm: int = 0) -> str:
    return at(day, hh, mm).isoformat()


@dataclass
class Shop:
    store_id: int
    other_store_id: int
    manager: int  # 店长, 40 h
    keyholder: int  # 值班主管, 40 h
    sales: int  # 导购, 20 h contract, available Mon-Fri 09:00-18:00 only
    cashier: int  # 收银, 40 h, no availability recorded (always available)
    actor: Actor


def build_shop(cache: Cache) -> Shop:
    with cache.session() as s:
        region = Region(code="T", name="测试区")
        s.add(region)
        s.flush()
        store = Store(
            region_id=region.id,
            code="T001",
            name="测试一店",
            province="上海",
            city="上海",
            lat=31.2,
            lon=121.4,
            opens_at=dt.time(9, 0),
            closes_at=dt.time(22, 0),
            target_star=10.0,
            min_floor_staff=2,
        )
        other = Store(
            region_id=region.id,
            code="T002",
            name="测试二店",
            province="上海",
            city="上海",
            lat=31.3,
            lon=121.5,
        )
        s.add_all([store, other])
        s.flush()
        mgr = Staff(store_id=store.id, name="王店长", role="manager", contract_hours_week=40)
        kh = Staff(store_id=store.id, name="李主管", role="keyholder", contract_hours_week=40)
        sales = Staff(store_id=store.id, name="张导购", role="sales", contract_hours_week=20)
        cashier = Staff(store_id=store.id, name="赵收银", role="cashier", contract_hours_week=40)
        s.add_all([mgr, kh, sales, cashier])
        s.flush()
        for wd in range(5):
            s.add(
                StaffAvailability(staff_id=sales.id, weekday=wd, start=dt.time(9), end=dt.time(18))
            )
        return Shop(
            store_id=store.id,
            other_store_id=other.id,
            manager=mgr.id,
            keyholder=kh.id,
            sales=sales.id,
            cashier=cashier.id,
            actor=Actor(
                user_id=7, name="王店长", role="store_manager", store_ids=frozenset({store.id})
            ),
        )
