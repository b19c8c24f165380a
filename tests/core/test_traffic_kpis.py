"""KPI definitions on hand-computed examples: conversion, ATV, UPT, STAR, WoW, basis, peers."""

from __future__ import annotations

import datetime as dt

import pytest

from core.cache import open_cache
from core.models import HourlyTraffic, Store
from core.traffic.analytics import (
    Basis,
    comparable_stores,
    compute_kpis,
    daily_trend,
    heat_grid,
    kpi_series,
    load_store_data,
    pct_change,
    power_hours,
    store_day_hours,
    traffic_overview,
    week_comparison,
)
from core.traffic.hours import HourRecord
from tests.core.traffic_fixtures import (
    TODAY,
    add_hour,
    add_shift,
    at,
    seasonal_visitors,
    seed_history,
    seed_stores,
)

DAY = dt.date(2026, 11, 23)  # a Monday


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "t.db")
    with c.session() as s:
        seed_stores(s)
    yield c
    c.close()


def test_compute_kpis_by_hand() -> None:
    recs = [
        HourRecord(DAY, 10, 100, 20, 200_000, 50),
        HourRecord(DAY, 11, 50, 10, 150_001, None),
        HourRecord(DAY, 12, 0, 5, 30_000, None),  # counter dead: excluded from visitor KPIs
    ]
    staff = {(DAY, 10): 1.0, (DAY, 11): 0.5, (DAY, 12): 2.0}
    k = compute_kpis(recs, excluded=[(DAY, 12)], staff_hours=staff)
    assert k.visitors == 150
    assert k.transactions == 35  # POS figures keep every hour
    assert k.sales_fen == 380_001
    assert k.conversion == pytest.approx(30 / 150)  # trusted hours only: 0.2
    assert k.atv_fen == 10_857  # 380001 / 35 = 10857.17 -> 10857 fen = 108.57 yuan
    assert k.units == 50
    assert k.upt == pytest.approx(2.5)  # 50 units / 20 transactions of the hours with units
    assert k.staff_hours == pytest.approx(1.5)
    assert k.star == pytest.approx(100.0)  # 150 visitors / 1.5 staff-hours
    assert (k.hours, k.excluded_hours) == (3, 1)


def test_atv_rounds_half_up_and_empty_period() -> None:
    k = compute_kpis([HourRecord(DAY, 10, 10, 2, 301, None)])
    assert k.atv_fen == 151  # 150.5 -> 151
    assert k.upt is None and k.units is None and k.star is None
    empty = compute_kpis([])
    assert empty.conversion is None and empty.atv_fen is None and empty.visitors == 0


def test_pct_change() -> None:
    assert pct_change(110, 100) == pytest.approx(0.10)
    assert pct_change(90, 100) == pytest.approx(-0.10)
    assert pct_change(5, 0) is None and pct_change(None, 3) is None


def test_store_kpis_with_shifts_and_outage(cache) -> None:
    with cache.session() as s:
        add_hour(s, 1, DAY, 10, 100, 20, 200_000, 50)
        add_hour(s, 1, DAY, 11, 50, 10, 150_001)
        add_hour(s, 1, DAY, 12, 0, 5, 30_000)
        # sales associate 09:30-11:30 -> 1.0 h in hour 10, 0.5 h in hour 11 (09:30-10 is before
        # the store opens and has no traffic row)
        add_shift(s, 1, 11, "sales", at(DAY, 9, 30), at(DAY, 11, 30))
        add_shift(s, 1, 12, "stock", at(DAY, 10), at(DAY, 12))  # back room: not floor staff
        add_shift(s, 1, 13, "cashier", at(DAY, 10), at(DAY, 11), status="draft")  # not worked
        add_shift(s, 2, 14, "sales", at(DAY, 10), at(DAY, 12))  # another store
    with cache.session() as s:
        data = load_store_data(s, 1, DAY, DAY)
        k = data.kpis(DAY, DAY)
        assert data.staff[(DAY, 9)] == pytest.approx(0.5)
        assert k.visitors == 150 and k.conversion == pytest.approx(0.2)
        assert k.star == pytest.approx(100.0)
        assert [(o.hour, o.reason) for o in data.outages.values()] == [
            (12, "zero_with_transactions")
        ]
        hours = store_day_hours(s, 1, DAY)
        assert [h.hour for h in hours] == [10, 11, 12]
        assert hours[0].conversion == pytest.approx(0.2) and hours[0].star == pytest.approx(100)
        assert hours[2].outage is not None and hours[2].conversion is None
        series = kpi_series(s, 1, DAY, DAY, "hour")
        assert [(p.hour, p.kpis.visitors) for p in series] == [(10, 100), (11, 50), (12, 0)]
        (daily,) = kpi_series(s, 1, DAY, DAY, "day")
        assert daily.kpis == k


def test_local_time_zone_day_boundaries(cache) -> None:
    """Hour 0 local of a day is 16:00 UTC of the day before: it belongs to the local day."""
    with cache.session() as s:
        add_hour(s, 1, DAY, 0, 3, 1, 100)
        add_hour(s, 1, DAY, 23, 4, 1, 100)
        add_hour(s, 1, DAY + dt.timedelta(days=1), 0, 5, 1, 100)
    with cache.session() as s:
        (p,) = kpi_series(s, 1, DAY, DAY, "day")
        assert p.kpis.visitors == 7


def test_week_over_week_like_for_like_and_basis(cache) -> None:
    first = TODAY - dt.timedelta(days=90)  # 13 weeks, like the demo
    with cache.session() as s:
        seed_history(s, 1, first, TODAY - dt.timedelta(days=7))
        seed_history(s, 1, TODAY - dt.timedelta(days=6), TODAY, scale=1.1)
    with cache.session() as s:
        wk = week_comparison(s, 1, TODAY, TODAY)
        assert wk.week_start == dt.date(2026, 11, 23) and wk.days == 5  # Mon..Fri so far
        assert wk.basis is Basis.LAST_PERIOD  # 13 weeks of history: no year-ago week
        prev = load_store_data(s, 1, dt.date(2026, 11, 16), dt.date(2026, 11, 20)).kpis(
            dt.date(2026, 11, 16), dt.date(2026, 11, 20)
        )
        assert wk.previous_week == prev
        assert wk.wow("visitors") == pytest.approx(wk.current.visitors / prev.visitors - 1)
        assert 0.05 < wk.wow("visitors") < 0.15
        ref = load_store_data(s, 1, dt.date(2026, 10, 26), dt.date(2026, 10, 30))
        assert wk.reference == ref.kpis(dt.date(2026, 10, 26), dt.date(2026, 10, 30))
        trend = daily_trend(s, 1, TODAY - dt.timedelta(days=13), TODAY)
        assert trend.basis is Basis.LAST_PERIOD
        last = trend.points[-1]
        assert last.day == TODAY
        assert last.wow_visitors == daily_visitors(s, TODAY - dt.timedelta(days=7))
        assert last.ref_visitors == daily_visitors(s, TODAY - dt.timedelta(days=28))


def daily_visitors(s, day: dt.date) -> int:
    (p,) = kpi_series(s, 1, day, day, "day")
    return p.kpis.visitors


def test_week_over_week_matches_hours_around_an_outage(cache) -> None:
    """A dead counter on Monday 12:00 this week must not read as a traffic drop."""
    monday = dt.date(2026, 11, 23)
    with cache.session() as s:
        for week_start in (monday - dt.timedelta(days=7), monday):
            for h in (11, 12, 13):
                visitors = 100 if week_start == monday else 80
                add_hour(s, 1, week_start, h, visitors, 20, 20_000)
        s.execute(
            HourlyTraffic.__table__.update()
            .where(HourlyTraffic.store_id == 1, HourlyTraffic.hour_start == at(monday, 12))
            .values(visitors=0)
        )
    with cache.session() as s:
        wk = week_comparison(s, 1, monday, monday)
    assert wk.days == 1
    assert wk.current.visitors == 200 and wk.current.excluded_hours == 1
    assert wk.previous_week.visitors == 240  # its own hours are all fine
    # Matched: 11:00 + 13:00 in both weeks -> 200 vs 160 = +25 %, not 200 vs 240 = -17 %.
    assert wk.wow("visitors") == pytest.approx(0.25)
    assert wk.wow("conversion") == pytest.approx((40 / 200) / (40 / 160) - 1)
    assert wk.wow("sales_fen") == pytest.approx(0.0)  # the POS saw every hour


def test_year_over_year_when_a_year_exists(cache) -> None:
    with cache.session() as s:
        seed_history(s, 1, TODAY - dt.timedelta(days=370), TODAY - dt.timedelta(days=350))
        seed_history(s, 1, TODAY - dt.timedelta(days=10), TODAY)
    with cache.session() as s:
        wk = week_comparison(s, 1, TODAY, TODAY)
        assert wk.basis is Basis.YOY
        assert wk.reference is not None and wk.reference.visitors > 0
    with cache.session() as s:
        assert week_comparison(s, 3, TODAY, TODAY).basis is Basis.NONE  # no data at all


def test_power_hours_and_grid(cache) -> None:
    with cache.session() as s:
        seed_history(s, 1, TODAY - dt.timedelta(days=27), TODAY)
    with cache.session() as s:
        data = load_store_data(s, 1, TODAY - dt.timedelta(days=27), TODAY)
        top = power_hours(data, 3)
        # Saturday/Sunday 18:00 (70 * 1.5) are the busiest, then Saturday/Sunday 19:00.
        assert [(p.weekday, p.hour) for p in top[:2]] == [(5, 18), (6, 18)]
        assert top[0].avg_visitors == pytest.approx(105, abs=2)
        assert top[0].conversion == pytest.approx(0.2, abs=0.01)
        by_sales = power_hours(data, 3, by="sales")
        assert by_sales[0].avg_sales_fen == max(
            p.avg_sales_fen for p in power_hours(data, 99, by="sales")
        )
        assert len(power_hours(data, 999)) == 7 * 12  # every weekday x opening hour
        with pytest.raises(ValueError):
            power_hours(data, 3, by="units")
        grid = heat_grid(s, 1, TODAY - dt.timedelta(days=6), TODAY)
        assert grid.hours == list(range(10, 22)) and len(grid.days) == 7
        assert grid.visitors[-1][grid.hours.index(18)] is not None


def test_comparable_stores_same_region_and_cluster(cache) -> None:
    with cache.session() as s:
        seed_history(s, 1, TODAY - dt.timedelta(days=6), TODAY)
        seed_history(s, 2, TODAY - dt.timedelta(days=6), TODAY, scale=2.0)
        seed_history(s, 3, TODAY - dt.timedelta(days=6), TODAY, scale=3.0)  # other cluster
        seed_history(s, 4, TODAY - dt.timedelta(days=6), TODAY, scale=4.0)  # other region
        s.add(
            Store(
                id=5,
                region_id=1,
                code="SH005",
                name="门店SH005",
                province="上海",
                city="上海",
                lat=31.2,
                lon=121.4,
                cluster="A",
            )
        )
        s.flush()
        seed_history(s, 5, TODAY - dt.timedelta(days=6), TODAY, scale=2.5)
    with cache.session() as s:
        cmp = comparable_stores(s, 1, TODAY - dt.timedelta(days=6), TODAY)
        assert cmp.cluster == "A" and not cmp.widened
        assert [r.code for r in cmp.rows] == ["SH005", "SH002", "SH001"]  # not SH003, JS001
        assert cmp.rank == 3 and cmp.rows[2].is_self
        assert cmp.rows[1].visitors_per_day == pytest.approx(
            2 * cmp.rows[2].visitors_per_day, rel=0.02
        )
        assert cmp.rows[2].visitors_per_day == pytest.approx(
            sum(
                seasonal_visitors(TODAY - dt.timedelta(days=k), h)
                for k in range(7)
                for h in range(10, 22)
            )
            / 7,
            rel=0.01,
        )
        # SH003's cluster B has one store in the region: compare with the whole region.
        wide = comparable_stores(s, 3, TODAY - dt.timedelta(days=6), TODAY)
        assert wide.widened and {r.code for r in wide.rows} == {"SH001", "SH002", "SH003", "SH005"}


def test_overview_bundles_everything(cache) -> None:
    with cache.session() as s:
        seed_history(s, 1, TODAY - dt.timedelta(days=90), TODAY)
        add_shift(s, 1, 11, "sales", at(TODAY, 10), at(TODAY, 18))
    with cache.session() as s:
        ov = traffic_overview(s, 1, TODAY, TODAY)
        assert ov.store.code == "SH001"
        assert len(ov.grid.days) == 28 and len(ov.trend.points) == 42
        assert [h.hour for h in ov.drill] == list(range(10, 22))
        assert ov.drill[0].star is not None
        assert ov.week.basis is Basis.LAST_PERIOD
