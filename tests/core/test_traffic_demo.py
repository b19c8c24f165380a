"""Traffic on the demo region: planted counter outages are found exactly; forecast vs naive."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.cache import open_cache
from core.demo import demo_truth
from core.models import Store
from core.timeutil import to_local
from core.traffic.analytics import traffic_overview
from core.traffic.forecast import evaluate_forecast, hourly_forecast
from core.traffic.quality import store_outages
from tests.conftest import DEMO_TODAY


@pytest.fixture(scope="module")
def demo(demo_db_template):
    cache = open_cache(demo_db_template)
    yield cache
    cache.close()


def test_planted_outages_are_found_and_nothing_else(demo) -> None:
    truth = demo_truth(demo.engine)["outages"]
    assert truth, "the demo plants outages"
    planted = set()
    for store_id, first, hours, _kind in truth:
        start = dt.datetime.fromisoformat(first)
        for k in range(hours):
            local = to_local(start + dt.timedelta(hours=k))
            planted.add((store_id, local.date(), local.hour))
    found = set()
    with demo.session() as s:
        for sid in s.scalars(select(Store.id)).all():
            for o in store_outages(s, sid, DEMO_TODAY - dt.timedelta(days=90), DEMO_TODAY):
                found.add((sid, o.day, o.hour))
    assert found == planted


def test_forecast_beats_naive_last_week_on_held_out_weeks(demo) -> None:
    """Hold out the last 2 weeks of all stores; the rest of the history is the training data."""
    with demo.session() as s:
        ids = s.scalars(select(Store.id)).all()
        ev = evaluate_forecast(s, ids, DEMO_TODAY - dt.timedelta(days=13), 14)
    print(
        f"\ndemo hold-out {ev.holdout_start}..+{ev.days}d, {ev.stores} stores, {ev.hours} hours: "
        f"seasonal MAPE {ev.mape:.1%} WAPE {ev.wape:.1%} | naive last week MAPE "
        f"{ev.naive_mape:.1%} WAPE {ev.naive_wape:.1%}"
    )
    assert ev.stores == len(ids) and ev.hours > 10_000
    assert ev.wape < ev.naive_wape and ev.mape < ev.naive_mape
    assert ev.wape < 0.20  # Poisson + 12 % day noise put the floor near 12 %


def test_forecast_for_next_week_and_overview(demo) -> None:
    with demo.session() as s:
        store = s.scalars(select(Store).where(Store.code == "SH001")).one()
        start = DEMO_TODAY + dt.timedelta(days=3)  # the Monday of the draft week
        fc = hourly_forecast(s, store.id, start, 7)
        ov = traffic_overview(s, store.id, DEMO_TODAY, DEMO_TODAY)
    assert len(fc) == 7 * 24
    open_hours = range(store.opens_at.hour, store.closes_at.hour)
    assert all(fc[(start, h)] > 0 for h in open_hours)
    assert all(fc[(start, h)] == 0 for h in range(24) if h not in open_hours)
    # Next Saturday's busiest hour is in the same ballpark as the last Saturdays'.
    sat = start + dt.timedelta(days=5)
    assert max(fc[(sat, h)] for h in open_hours) > 0.5 * max(p.avg_visitors for p in ov.power)
    assert ov.week.basis.value == "last_period"
