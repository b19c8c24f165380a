"""The rota proposal: fills gaps, covers open/close, and never breaks a hard rule."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cache import open_cache
from core.scheduling.demand import week_demand
from core.scheduling.rules import (
    KEY_ROLES,
    ShiftSpan,
    StaffInfo,
    StoreInfo,
    Window,
    local_week_of,
    week_violations,
)
from core.scheduling.solver import propose, propose_rota
from tests.core.scheduling_fixtures import WEEK, at, build_shop

STORE = StoreInfo(1, "T001", "测试一店", "Asia/Shanghai", dt.time(9), dt.time(22), 10.0, 2)


def ids():
    counter = itertools.count(1)
    return lambda: f"p{next(counter)}"


def hard_in_week(shifts, staff, store=STORE) -> list:
    return [v for v in week_violations(WEEK, shifts, staff, store) if v.hard]


def test_proposal_covers_open_close_and_floor_demand() -> None:
    staff = [
        StaffInfo(1, "王店长", "manager", 40),
        StaffInfo(2, "李主管", "keyholder", 40),
        StaffInfo(3, "陈主管", "keyholder", 40),
        StaffInfo(4, "张导购", "sales", 40),
        StaffInfo(5, "赵收银", "cashier", 40),
        StaffInfo(6, "孙导购", "sales", 24),
    ]
    forecast = {(WEEK + dt.timedelta(days=i), h): 25.0 for i in range(7) for h in range(24)}
    p = propose(STORE, WEEK, staff, [], forecast, id_factory=ids())
    assert p.shifts and not hard_in_week(p.shifts, staff)
    # Every day has a key person at opening and at closing.
    assert not [v for v in p.remaining if v.rule.startswith("coverage")]
    # Hours stay inside each contract (no planned overtime).
    for person in staff:
        assert (
            sum(s.hours for s in p.shifts if s.staff_id == person.id) <= person.contract_hours_week
        )
    before = week_demand(STORE, WEEK, forecast, [])
    after = week_demand(STORE, WEEK, forecast, p.shifts)
    assert sum(h.gap for h in after.gaps) < 0.5 * sum(h.gap for h in before.gaps)
    assert p.staff_hours_after == sum(s.hours for s in p.shifts)


def test_proposal_respects_existing_shifts_and_rest_across_the_week_edge() -> None:
    kh = StaffInfo(2, "李主管", "keyholder", 40)
    sunday = WEEK - dt.timedelta(days=1)
    late = ShiftSpan("prev", 2, "keyholder", at(sunday, 20), at(WEEK, 2))  # ends Mon 02:00
    p = propose(STORE, WEEK, [kh], [late], None, id_factory=ids())
    mon = [s for s in p.shifts if s.start < at(WEEK, 23)]
    assert all(s.start >= at(WEEK, 13) for s in mon)  # 11 h after 02:00
    assert not hard_in_week([late, *p.shifts], [kh])


def test_nobody_available_proposes_nothing_and_reports_gaps() -> None:
    staff = [StaffInfo(1, "张导购", "sales", 40, (Window(6, dt.time(9), dt.time(12)),))]
    p = propose(STORE, WEEK, staff, [], None, id_factory=ids())
    assert p.shifts == ()
    rules = {v.rule for v in p.remaining}
    assert {"coverage_open", "coverage_close", "understaffed"} <= rules


def test_propose_rota_reads_the_store(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "s.db")
    try:
        shop = build_shop(cache)
        with cache.session() as s:
            p = propose_rota(s, shop.store_id, WEEK, forecast={})
        assert p is not None and p.shifts
        sales = [x for x in p.shifts if x.staff_id == shop.sales]
        # The sales person is only available Mon-Fri 09:00-18:00.
        for x in sales:
            a, b = x.start.astimezone(at(WEEK, 0).tzinfo), x.end.astimezone(at(WEEK, 0).tzinfo)
            assert a.weekday() < 5 and a.hour >= 9 and (b.hour, b.minute) <= (18, 0)
    finally:
        cache.close()


# --------------------------------------------------------------------------- property


times = st.integers(min_value=0, max_value=47).map(lambda n: dt.time(n // 2, 30 * (n % 2)))


@st.composite
def windows(draw) -> tuple[Window, ...]:
    if draw(st.booleans()):
        return ()  # no availability recorded: always available
    out = []
    for wd in draw(st.sets(st.integers(0, 6), max_size=7)):
        a = draw(st.integers(0, 40))
        b = draw(st.integers(a + 1, 48))
        end = dt.time(0) if b == 48 else dt.time(b // 2, 30 * (b % 2))
        out.append(Window(wd, dt.time(a // 2, 30 * (a % 2)), end))
    return tuple(out)


@st.composite
def cases(draw):
    opens_h = draw(st.integers(6, 11))
    closes_h = draw(st.integers(max(opens_h + 6, 17), 23))
    store = StoreInfo(
        1,
        "T",
        "T",
        "Asia/Shanghai",
        dt.time(opens_h, draw(st.sampled_from([0, 30]))),
        dt.time(closes_h),
        draw(st.floats(4, 20)),
        draw(st.integers(1, 3)),
    )
    roles = ["manager", "keyholder", "sales", "cashier", "stock"]
    staff = [
        StaffInfo(
            i,
            f"S{i}",
            draw(st.sampled_from(roles)),
            float(draw(st.integers(8, 48))),
            draw(windows()),
        )
        for i in range(1, draw(st.integers(1, 6)) + 1)
    ]
    # Legal shifts just before the week (rest across the edge) for some people.
    sunday = WEEK - dt.timedelta(days=1)
    existing = []
    for p in staff:
        if draw(st.booleans()):
            end_h = draw(st.integers(18, 29))
            end = at(sunday, 0) + dt.timedelta(hours=end_h)
            existing.append(ShiftSpan(f"e{p.id}", p.id, p.role, end - dt.timedelta(hours=6), end))
    forecast = {
        (WEEK + dt.timedelta(days=d), h): draw(st.floats(0, 120))
        for d in range(7)
        for h in draw(st.sets(st.integers(0, 23), max_size=6))
    }
    return store, staff, existing, forecast


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_proposal_never_breaks_a_hard_rule(case) -> None:
    store, staff, existing, forecast = case
    p = propose(store, WEEK, staff, existing, forecast, id_factory=ids())
    combined = [*existing, *p.shifts]
    found = [v for v in week_violations(WEEK, combined, staff, store) if v.hard]
    assert not found, [v.message() for v in found]
    assert all(local_week_of(s, store) == WEEK for s in p.shifts)
    by_person: dict[int, float] = {}
    for s in p.shifts:
        by_person[s.staff_id] = by_person.get(s.staff_id, 0.0) + s.hours
    for person in staff:
        assert by_person.get(person.id, 0.0) <= person.contract_hours_week + 1e-9
    # Open/close coverage is planned whenever a key person is free for it.
    if not any(p.role in KEY_ROLES for p in staff):
        assert not [s for s in p.shifts if s.role in KEY_ROLES]
