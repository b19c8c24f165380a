"""Small hand-built datasets for the funnel, alerts and customer tests (no demo needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from core.models import (
    Customer,
    Opportunity,
    OpportunityStageEvent,
    Region,
    Rep,
    Store,
    User,
    UserScope,
)

T0 = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    """T0 + hours."""
    return T0 + dt.timedelta(hours=hours)


def d(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def seed_org(s: Session) -> None:
    """Two regions, one store each, one rep per store, customers of each tier."""
    s.add_all(
        [
            Region(id=1, code="SH", name="上海区"),
            Region(id=2, code="JS", name="江苏区"),
        ]
    )
    s.flush()
    s.add_all(
        [
            Store(
                id=10,
                region_id=1,
                code="SH001",
                name="徐汇店",
                province="上海",
                city="上海",
                lat=31.19,
                lon=121.44,
            ),
            Store(
                id=20,
                region_id=2,
                code="JS001",
                name="鼓楼店",
                province="江苏",
                city="南京",
                lat=32.06,
                lon=118.79,
            ),
        ]
    )
    s.flush()
    s.add_all(
        [
            Rep(
                id=100,
                region_id=1,
                store_id=10,
                code="R100",
                name="张伟",
                home_lat=31.2,
                home_lon=121.4,
            ),
            Rep(
                id=200,
                region_id=2,
                store_id=20,
                code="R200",
                name="李娜",
                home_lat=32.0,
                home_lon=118.8,
            ),
        ]
    )
    s.flush()
    s.add_all(
        [
            Customer(
                id=1,
                region_id=1,
                store_id=10,
                rep_id=100,
                name="甲客户",
                tier="A",
                segment="超市",
                lat=31.20,
                lon=121.45,
            ),
            Customer(
                id=2,
                region_id=1,
                store_id=10,
                rep_id=100,
                name="乙客户",
                tier="B",
                segment="超市",
                lat=31.21,
                lon=121.46,
            ),
            Customer(
                id=3,
                region_id=2,
                store_id=20,
                rep_id=200,
                name="丙客户",
                tier="A",
                segment="便利店",
                lat=32.05,
                lon=118.78,
            ),
        ]
    )
    s.add_all(
        [
            User(id=1, username="sup_sh", display_name="上海主管", role="supervisor"),
            User(id=2, username="mgr_js001", display_name="鼓楼店长", role="store_manager"),
        ]
    )
    s.flush()
    s.add_all([UserScope(user_id=1, region_id=1), UserScope(user_id=2, store_id=20)])
    s.flush()


def add_opp(
    s: Session,
    opp_id: str,
    events: Iterable[tuple[str, dt.datetime, int]],
    *,
    customer_id: int = 1,
    rep_id: int = 100,
    store_id: int | None = 10,
    status: str = "open",
    next_step_at: dt.datetime | None = None,
    closed_at: dt.datetime | None = None,
) -> Opportunity:
    evs = list(events)
    opp = Opportunity(
        id=opp_id,
        customer_id=customer_id,
        rep_id=rep_id,
        store_id=store_id,
        title=f"商机 {opp_id}",
        amount_fen=evs[-1][2] if evs else 0,
        stage=evs[-1][0] if evs else "lead",
        status=status,
        opened_at=evs[0][1] if evs else T0,
        closed_at=closed_at,
        next_step="回访" if next_step_at else "",
        next_step_at=next_step_at,
    )
    s.add(opp)
    s.flush()
    for stage, at, amount in evs:
        s.add(
            OpportunityStageEvent(
                opportunity_id=opp_id, stage=stage, entered_at=at, amount_fen=amount
            )
        )
    s.flush()
    return opp
