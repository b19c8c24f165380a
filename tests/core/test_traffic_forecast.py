"""Hourly demand forecast: the API the schedule screen calls, and its error on held-out weeks."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from core.cache import open_cache
from core.models import Holiday
from core.traffic.forecast import evaluate_forecast, hourly_forecast
from tests.core.traffic_fixtures import TODAY, add_hour, seasonal_visitors, seed_stores

HOLIDAY = dt.date(2026, 10, 5)  # a Monday inside the history


@pytest.fixture
def cache(tmp_path):
    """13 weeks of noisy seasonal traffic with a holiday, an outage and a 3 % weekly trend."""
    c = open_cache(tmp_path / "t.db")
    rnd = random.Random(5)
    first = TODAY - dt.timedelta(days=90)
    with c.session() as s:
        seed_stores(s)
        s.add(Holiday(date=HOLIDAY, name="国庆节"))
        s.add(Holiday(date=dt.date(2026, 12, 7), name="测试假日"))  # a future Monday
        d = first
        while d <= TODAY:
            for h in range(10, 22):
                mean = seasonal_visitors(d, h) * (3.0 if d == HOLIDAY else 1.0)
                v = max(0, round(rnd.gauss(mean, 0.15 * mean)))
                t = max(0, round(v * rnd.uniform(0.15, 0.25)))
                if d == TODAY - dt.timedelta(days=16) and h in (12, 13, 14):
                    v = 0  # counter outage in the last week before the hold-out
                add_hour(s, 1, d, h, v, t, t * 8000)
            d += dt.timedelta(days=1)
    yield c
    c.close()


def test_forecast_api_shape(cache) -> None:
    start = TODAY + dt.timedelta(days=1)
    with cache.session() as s:
        fc = hourly_forecast(s, 1, start, 14)
    assert len(fc) == 14 * 24
    assert all(isinstance(k[0], dt.date) and 0 <= k[1] <= 23 for k in fc)
    assert fc[(start, 3)] == 0.0  # closed
    assert fc[(start, 18)] > fc[(start, 10)] > 0  # evening peak
    sat = start + dt.timedelta(days=(5 - start.weekday()) % 7)
    assert fc[(sat, 18)] == pytest.approx(1.5 * fc[(sat + dt.timedelta(days=2), 18)], rel=0.2)
    monday_holiday = dt.date(2026, 12, 7)
    # Holiday-aware: the past holiday ran about 3x its weekday, so the next one is scaled.
    ratio = fc[(monday_holiday, 18)] / fc[(monday_holiday - dt.timedelta(days=7), 18)]
    assert 2.0 < ratio < 4.0


def test_forecast_weeks_ahead_uses_the_latest_data(cache) -> None:
    with cache.session() as s:
        near = hourly_forecast(s, 1, TODAY + dt.timedelta(days=1), 7)
        far = hourly_forecast(s, 1, TODAY + dt.timedelta(days=1 + 70), 7)
    for (d, h), v in near.items():
        assert far[(d + dt.timedelta(days=70), h)] == pytest.approx(v)


def test_forecast_ignores_outages_and_holidays_in_history(cache) -> None:
    start = TODAY - dt.timedelta(days=13)  # the outage Wednesday is 16 days before TODAY
    with cache.session() as s:
        fc = hourly_forecast(s, 1, start, 7)
    d = TODAY - dt.timedelta(days=9)  # same weekday as the outage day, one week later
    assert d.weekday() == (TODAY - dt.timedelta(days=16)).weekday()
    assert fc[(d, 13)] > 30  # a zeroed counter would have pulled the mean down to ~0.8x


def test_forecast_beats_naive_on_held_out_weeks(cache) -> None:
    holdout = TODAY - dt.timedelta(days=13)  # the last 2 weeks are held out
    with cache.session() as s:
        ev = evaluate_forecast(s, [1], holdout, 14)
    print(
        f"\nsynthetic hold-out 14 days: MAPE {ev.mape:.1%} WAPE {ev.wape:.1%} | "
        f"naive last week MAPE {ev.naive_mape:.1%} WAPE {ev.naive_wape:.1%} ({ev.hours} hours)"
    )
    assert ev.hours >= 160  # 14 days x 12 opening hours, less any flagged hour
    assert ev.wape < ev.naive_wape
    assert ev.wape < 0.15  # noise is 15 % per hour, so ~12 % is the floor


def test_noise_and_holidays_raise_no_false_outages(cache) -> None:
    from core.traffic.quality import store_outages

    with cache.session() as s:
        found = store_outages(s, 1, TODAY - dt.timedelta(days=90), TODAY)
    outage_day = TODAY - dt.timedelta(days=16)
    assert [(o.day, o.hour, o.reason) for o in found] == [
        (outage_day, h, "zero_with_transactions") for h in (12, 13, 14)
    ]
