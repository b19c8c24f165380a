"""The bulk (whole-region) traffic reads give exactly what the per-store functions give.

The home screen reads a region's week KPIs with :func:`stores_week_kpis` (one query for
the hours, one for the shifts) instead of a :func:`week_comparison` per store; outage
detection judges only the days it is asked about. These tests hold old and new together
on the demo region, including stores moved to a time zone with a DST change in range.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.demo import demo_truth
from core.home import supervisor_home
from core.models import Region, Store
from core.mutations import Actor
from core.timeutil import local_day_bounds, to_local
from core.traffic.analytics import stores_week_kpis, week_comparison
from core.traffic.hours import (
    floor_shifts_many,
    floor_staff_hours,
    holidays,
    load_hours,
    load_hours_many,
    staff_hours_of,
    stores_info,
)
from core.traffic.quality import REFERENCE_WEEKS, detect_outages
from tests.conftest import DEMO_TODAY
from tests.core.traffic_fixtures import DEMO_DAYS, move_two_shanghai_stores_to_berlin

DAYS = DEMO_DAYS


@pytest.fixture
def cache(demo_cache):
    """The demo with two Shanghai stores moved to Berlin (DST ends 2026-10-25)."""
    move_two_shanghai_stores_to_berlin(demo_cache)
    return demo_cache


def _region_ids(s, region_id: int) -> list[int]:
    return list(s.scalars(select(Store.id).where(Store.region_id == region_id)).all())


@pytest.mark.parametrize("region", [1, 2], ids=["two-zones", "one-zone"])
def test_bulk_loads_equal_the_per_store_loads(cache, region: int) -> None:
    start, end = DEMO_TODAY - dt.timedelta(days=70), DEMO_TODAY
    with cache.session() as s:
        infos = stores_info(s, _region_ids(s, region))
        assert len({i.timezone for i in infos}) == (2 if region == 1 else 1)
        many = load_hours_many(s, infos, start, end)
        shifts = floor_shifts_many(s, infos, start, end)
        for info in infos:
            assert many[info.id] == load_hours(s, info, start, end), info.code
            assert many[info.id], info.code
            for a, b in ((start, end), (end - dt.timedelta(days=6), end), (end, end)):
                lo = local_day_bounds(a, info.timezone)[0]
                hi = local_day_bounds(b, info.timezone)[1]
                got = staff_hours_of(shifts[info.id], info.timezone, lo, hi)
                assert got == floor_staff_hours(s, info, a, b), (info.code, a, b)


def _staff_hours_reference(shifts, timezone: str, lo: dt.datetime, hi: dt.datetime):
    """The aware-datetime walk that staff_hours_of replaced, kept to hold the two equal."""
    zone = ZoneInfo(timezone)
    out: dict[tuple[dt.date, int], float] = {}
    for s_start, s_end in shifts:
        if s_end <= lo or s_start >= hi:
            continue
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


@pytest.mark.parametrize(
    "zone",
    ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"],
)
def test_staff_hours_equal_the_aware_datetime_walk(zone: str) -> None:
    """Shifts over midnight and across DST changes (Lord Howe's is 30 minutes), clipped."""
    rng = random.Random(zone)
    first = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    shifts = []
    for _ in range(3000):
        start = first + dt.timedelta(minutes=rng.randrange(0, 280 * 24 * 60, 5))
        start += dt.timedelta(seconds=rng.choice((0, 0, 0, 17)), microseconds=rng.choice((0, 250)))
        shifts.append((start, start + dt.timedelta(minutes=rng.randrange(20, 14 * 60))))
    shifts.sort()
    for lo_day, hi_day in (
        (dt.date(2026, 3, 1), dt.date(2026, 12, 6)),
        (dt.date(2026, 3, 27), dt.date(2026, 4, 8)),
        (dt.date(2026, 10, 23), dt.date(2026, 11, 3)),
    ):
        lo = local_day_bounds(lo_day, zone)[0]
        hi = local_day_bounds(hi_day, zone)[1]
        want = _staff_hours_reference(shifts, zone, lo, hi)
        assert want
        assert staff_hours_of(shifts, zone, lo, hi) == want


def test_judging_some_days_gives_the_full_verdict_for_those_days(cache) -> None:
    with cache.session() as s:
        infos = stores_info(s, _region_ids(s, 1) + _region_ids(s, 2))
        start, end = DEMO_TODAY - dt.timedelta(days=27), DEMO_TODAY - dt.timedelta(days=7)
        ref = start - dt.timedelta(weeks=REFERENCE_WEEKS)
        hols = holidays(s, ref, end)
        found_any = False
        for info in infos:
            recs = load_hours(s, info, ref, end)
            full = detect_outages(recs, info, hols)
            part = detect_outages(recs, info, hols, judge=(start, end))
            want = {k: o for k, o in full.items() if start <= k[0] <= end}
            assert part == want, info.code
            found_any = found_any or bool(want)
        assert found_any, "the demo plants outages; the test must see some"


@pytest.mark.parametrize("day", DAYS)
def test_stores_week_kpis_equal_week_comparison(cache, day) -> None:
    with cache.session() as s:
        ids = _region_ids(s, 1) + _region_ids(s, 2)[:5]
        bulk = stores_week_kpis(s, ids, day, day)
        assert set(bulk) == set(ids)
        for sid in ids:
            wc = week_comparison(s, sid, day, day)
            assert bulk[sid] == (wc.current, wc.previous_week), sid


def test_stores_week_kpis_equal_week_comparison_in_weeks_with_outages(cache) -> None:
    planted = demo_truth(cache.engine)["outages"]
    weeks = set()
    for store_id, first, _hours, _kind in planted:
        day = to_local(dt.datetime.fromisoformat(first)).date()
        if DEMO_TODAY - dt.timedelta(days=60) <= day <= DEMO_TODAY:
            weeks.add((store_id, day + dt.timedelta(days=6 - day.weekday())))  # its Sunday
    assert weeks, "the demo plants outages in its last weeks"
    with cache.session() as s:
        for store_id, sunday in sorted(weeks)[:12]:
            for day in (sunday, sunday + dt.timedelta(days=7)):  # as current and as previous
                wc = week_comparison(s, store_id, day, day)
                got = stores_week_kpis(s, [store_id], day, day)[store_id]
                assert got == (wc.current, wc.previous_week), (store_id, day)
                assert got[0].excluded_hours or got[1].excluded_hours


def test_stores_week_kpis_of_nothing_and_of_a_store_without_data(cache) -> None:
    with cache.session() as s:
        assert stores_week_kpis(s, [], DEMO_TODAY, DEMO_TODAY) == {}
        sid = _region_ids(s, 1)[0]
        far = dt.date(2020, 1, 6)
        wc = week_comparison(s, sid, far, far)
        assert stores_week_kpis(s, [sid], far, far)[sid] == (wc.current, wc.previous_week)
        assert wc.current.hours == 0


def _supervisor_home_per_store(s, region_id: int, day: dt.date, actor: Actor | None):
    """The ranking and KPIs as supervisor_home computed them before the bulk read."""
    week_start = day - dt.timedelta(days=day.weekday())
    stores = s.execute(
        select(Store.id, Store.code, Store.name)
        .where(Store.region_id == region_id)
        .order_by(Store.code)
    ).all()
    if actor is not None and actor.role != "admin":
        stores = [r for r in stores if r[0] in actor.store_ids]
    ranking = []
    cur_v = prev_v = cur_s = prev_s = 0
    cur_txn = prev_txn = 0.0
    for sid, code, name in stores:
        wc = week_comparison(s, sid, week_start, day)
        c, p = wc.current, wc.previous_week
        ranking.append((sid, code, name, c.sales_fen, p.sales_fen, c.visitors, c.conversion))
        cur_v, prev_v = cur_v + c.visitors, prev_v + p.visitors
        cur_s, prev_s = cur_s + c.sales_fen, prev_s + p.sales_fen
        cur_txn += (c.conversion or 0.0) * c.visitors
        prev_txn += (p.conversion or 0.0) * p.visitors
    ranking.sort(key=lambda r: (-r[3], r[1]))
    kpis = [
        (cur_s, prev_s),
        (cur_v, prev_v),
        (cur_txn / cur_v if cur_v else None, prev_txn / prev_v if prev_v else None),
    ]
    return ranking, kpis


@pytest.mark.parametrize("day", [DEMO_TODAY, DEMO_TODAY - dt.timedelta(days=12)])
def test_supervisor_home_equals_the_per_store_computation(cache, day) -> None:
    with cache.session() as s:
        region = s.scalar(select(Region).where(Region.code == "SH"))
        ids = _region_ids(s, region.id)
        scoped = Actor(1, "sup", "supervisor", frozenset(ids[3:]), frozenset({region.id}))
        for actor in (None, scoped):
            home = supervisor_home(s, region.id, day, actor)
            ranking, kpis = _supervisor_home_per_store(s, region.id, day, actor)
            got = [
                (r.store_id, r.code, r.name, r.sales_fen, r.previous_fen, r.visitors, r.conversion)
                for r in home.ranking
            ]
            assert got == ranking
            assert [(k.value, k.previous) for k in home.kpis[:3]] == kpis
