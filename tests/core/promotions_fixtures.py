"""Small hand-built inventory datasets for the promotion tests (numbers checkable by hand).

``TODAY`` is the business day; sales windows end yesterday (``AS_OF``). Daily sales are
spread evenly so "7-day sales" are exact: ``sell(s, store, sku, last7=14, prev7=10)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.cache import init_schema, make_engine
from core.models import (
    DailySkuSales,
    InventoryLot,
    PromotionRule,
    Region,
    Sku,
    SkuAffinity,
    Store,
    StoreSku,
    User,
    UserScope,
)
from core.mutations import Actor
from core.promotions.seed import seed_rules

TODAY = dt.date(2026, 11, 27)
AS_OF = TODAY - dt.timedelta(days=1)
#: 12:00 in Shanghai on TODAY.
NOW = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)

MANAGER_1 = Actor(user_id=11, name="王店长", role="store_manager", store_ids=frozenset({1}))
MANAGER_2 = Actor(user_id=12, name="李店长", role="store_manager", store_ids=frozenset({2}))
SUPERVISOR = Actor(
    user_id=21,
    name="张督导",
    role="supervisor",
    store_ids=frozenset({1, 2}),
    region_ids=frozenset({1}),
)


@contextmanager
def memory_session() -> Iterator[Session]:
    engine = make_engine("sqlite://")
    init_schema(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def seed_org(s: Session) -> None:
    s.add(Region(id=1, code="SH", name="上海区"))
    s.add_all(
        [
            Store(
                id=1,
                region_id=1,
                code="SH001",
                name="静安店",
                province="上海",
                city="上海",
                lat=31.2,
                lon=121.4,
            ),
            Store(
                id=2,
                region_id=1,
                code="SH002",
                name="徐汇店",
                province="上海",
                city="上海",
                lat=31.1,
                lon=121.4,
            ),
        ]
    )
    s.add_all(
        [
            User(
                id=11,
                username="mgr_sh001",
                display_name="王店长",
                role="store_manager",
                password_hash=None,
            ),
            User(
                id=12,
                username="mgr_sh002",
                display_name="李店长",
                role="store_manager",
                password_hash=None,
            ),
        ]
    )
    s.flush()
    s.add_all([UserScope(user_id=11, store_id=1), UserScope(user_id=12, store_id=2)])
    s.flush()


def add_sku(
    s: Session,
    sku_id: int,
    *,
    price: int = 1000,
    cost: int = 600,
    alert_days: int = 5,
    name: str | None = None,
) -> Sku:
    sku = Sku(
        id=sku_id,
        code=f"SKU{sku_id:03d}",
        name=name or f"商品{sku_id}",
        name_en=f"Item {sku_id}",
        category="dairy",
        price_fen=price,
        cost_fen=cost,
        shelf_life_days=30,
        alert_days=alert_days,
    )
    s.add(sku)
    s.flush()
    return sku


def stock(s: Session, store_id: int, sku_id: int, safety: int, max_stock: int) -> None:
    s.add(StoreSku(store_id=store_id, sku_id=sku_id, safety_stock=safety, max_stock=max_stock))
    s.flush()


def add_lot(
    s: Session,
    store_id: int,
    sku_id: int,
    qty: int,
    expiry_in: int | None,
    *,
    alert_days: int | None = None,
    lot_id: int | None = None,
) -> InventoryLot:
    sku = s.get(Sku, sku_id)
    assert sku is not None
    days = sku.alert_days if alert_days is None else alert_days
    expiry = TODAY + dt.timedelta(days=expiry_in) if expiry_in is not None else None
    lot = InventoryLot(
        id=lot_id if lot_id is not None else (s.scalar(select(func.max(InventoryLot.id))) or 0) + 1,
        store_id=store_id,
        sku_id=sku_id,
        lot_code=f"L{sku_id}-{expiry_in}",
        qty=qty,
        received_on=TODAY - dt.timedelta(days=10),
        expiry_date=expiry,
        alert_date=expiry - dt.timedelta(days=days) if expiry else None,
        cost_fen=sku.cost_fen,
        price_fen=sku.price_fen,
    )
    s.add(lot)
    s.flush()
    return lot


def _spread(total: int, days: int) -> list[int]:
    base, extra = divmod(total, days)
    return [base + (1 if i < extra else 0) for i in range(days)]


def sell(
    s: Session,
    store_id: int,
    sku_id: int,
    *,
    last7: int,
    prev7: int = 0,
    earlier14: int = 0,
    start: dt.date | None = None,
) -> None:
    """Daily sales over the 28 days ending AS_OF (or the 28 days ending ``start``)."""
    end = start or AS_OF
    units = _spread(earlier14, 14) + _spread(prev7, 7) + _spread(last7, 7)
    first = end - dt.timedelta(days=27)
    price = s.get(Sku, sku_id).price_fen  # type: ignore[union-attr]
    for i, u in enumerate(units):
        s.merge(
            DailySkuSales(
                store_id=store_id,
                sku_id=sku_id,
                date=first + dt.timedelta(days=i),
                units=u,
                revenue_fen=u * price,
            )
        )
    s.flush()


def sell_days(s: Session, store_id: int, sku_id: int, first: dt.date, per_day: list[int]) -> None:
    price = s.get(Sku, sku_id).price_fen  # type: ignore[union-attr]
    for i, u in enumerate(per_day):
        s.merge(
            DailySkuSales(
                store_id=store_id,
                sku_id=sku_id,
                date=first + dt.timedelta(days=i),
                units=u,
                revenue_fen=u * price,
            )
        )
    s.flush()


def affinity(s: Session, a: int, b: int, lift: float, baskets: int = 50) -> None:
    s.add(SkuAffinity(sku_id=a, other_sku_id=b, baskets=baskets, lift=lift))
    s.flush()


def rules(s: Session) -> dict[str, PromotionRule]:
    return {r.code: r for r in seed_rules(s)}
