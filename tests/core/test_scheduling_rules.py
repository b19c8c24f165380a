"""Each rota rule fires exactly at its limit and not before, with a readable explanation."""

from __future__ import annotations

import datetime as dt

import pytest

from core import i18n
from core.scheduling.demand import required_staff, week_demand
from core.scheduling.rules import (
    HARD,
    SOFT,
    RuleSettings,
    ShiftSpan,
    StaffInfo,
    StoreInfo,
    Window,
    availability,
    coverage,
    overlap_and_rest,
    violations_for_shift,
    week_violations,
    weekly_hours,
)
from tests.core.scheduling_fixtures import WEEK, at

STORE = StoreInfo(1, "T001", "测试一店", "Asia/Shanghai", dt.time(9), dt.time(22), 10.0, 2)
ANNA = StaffInfo(1, "张导购", "sales", 20.0)
MGR = StaffInfo(2, "王店长", "manager", 40.0)
MON, TUE = WEEK, WEEK + dt.timedelta(days=1)


def sp(
    id_: str, start: dt.datetime, end: dt.datetime, staff: StaffInfo = ANNA, role: str = ""
) -> ShiftSpan:
    return ShiftSpan(id_, staff.id, role or staff.role, start, end)


def rules_of(vs) -> list[str]:
    return [v.rule for v in vs]


# --------------------------------------------------------------------------- overlap / rest


def test_overlap_fires_for_one_minute_and_not_for_adjacent_other_person() -> None:
    a = sp("a", at(MON, 9), at(MON, 13))
    b = sp("b", at(MON, 12, 59), at(MON, 17))
    found = overlap_and_rest(ANNA, [a, b], STORE)
    assert rules_of(found) == ["overlap"]
    assert found[0].severity == HARD and found[0].shift_ids == ("a", "b")
    assert "张导购" in found[0].message() and "11-30 09:00–13:00" in found[0].message()
    # Two people may overlap freely.
    assert week_violations(
        WEEK, [a, sp("m", at(MON, 10), at(MON, 14), MGR)], [ANNA, MGR], STORE
    ) == [
        v
        for v in week_violations(
            WEEK, [a, sp("m", at(MON, 10), at(MON, 14), MGR)], [ANNA, MGR], STORE
        )
        if v.rule.startswith("coverage")
    ]


def test_enclosing_shift_overlaps_both_inner_ones() -> None:
    long = sp("long", at(MON, 9), at(MON, 21))
    x, y = sp("x", at(MON, 10), at(MON, 11)), sp("y", at(MON, 15), at(MON, 16))
    pairs = {
        v.shift_ids for v in overlap_and_rest(ANNA, [long, x, y], STORE) if v.rule == "overlap"
    }
    assert pairs == {("long", "x"), ("long", "y")}


def test_rest_exactly_eleven_hours_passes_ten_59_fails() -> None:
    evening = sp("e", at(MON, 14), at(MON, 22))
    ok = sp("ok", at(TUE, 9), at(TUE, 13))  # 22:00 -> 09:00 = 11 h
    short = sp("short", at(TUE, 8, 59), at(TUE, 13))  # 10 h 59
    assert overlap_and_rest(ANNA, [evening, ok], STORE) == []
    found = overlap_and_rest(ANNA, [evening, short], STORE)
    assert rules_of(found) == ["rest"] and found[0].hard
    assert "10:59" in found[0].message() and "11" in found[0].message()


def test_rest_is_configurable_and_split_shift_is_a_rest_breach() -> None:
    evening = sp("e", at(MON, 14), at(MON, 22))
    morning = sp("m", at(TUE, 8), at(TUE, 12))  # 10 h rest
    assert (
        overlap_and_rest(
            ANNA, [evening, morning], STORE, RuleSettings(min_rest=dt.timedelta(hours=10))
        )
        == []
    )
    split = [sp("a", at(MON, 9), at(MON, 12)), sp("b", at(MON, 16), at(MON, 20))]
    assert rules_of(overlap_and_rest(ANNA, split, STORE)) == ["rest"]


# --------------------------------------------------------------------------- weekly hours


def _days(n: int, hours: float, staff: StaffInfo = ANNA) -> list[ShiftSpan]:
    out = []
    for i in range(n):
        d = WEEK + dt.timedelta(days=i)
        out.append(sp(f"d{i}", at(d, 9), at(d, 9) + dt.timedelta(hours=hours), staff))
    return out


def test_contract_hours_exactly_met_is_silent() -> None:
    assert weekly_hours(ANNA, _days(5, 4), STORE) == []  # 20 h of 20


def test_overtime_within_allowance_is_soft_above_is_hard() -> None:
    soft = weekly_hours(ANNA, _days(4, 6), STORE)  # 24 h: contract 20 + 4 allowance
    assert rules_of(soft) == ["overtime"] and soft[0].severity == SOFT
    assert "24" in soft[0].message() and "20" in soft[0].message()
    hard = weekly_hours(ANNA, [*_days(4, 6), sp("x", at(WEEK, 20), at(WEEK, 20, 30))], STORE)
    assert rules_of(hard) == ["weekly_max"] and hard[0].hard
    assert "24.5" in hard[0].message()


def test_weekly_hours_count_by_local_start_week() -> None:
    # Sunday 20:00 local of the previous week belongs to that week even though it ends Monday.
    sunday = WEEK - dt.timedelta(days=1)
    spans = [*_days(4, 6), sp("sun", at(sunday, 18), at(sunday, 23, 30))]
    assert rules_of(weekly_hours(ANNA, spans, STORE)) == ["overtime"]


# --------------------------------------------------------------------------- availability


ANNA_AV = StaffInfo(1, "张导购", "sales", 20.0, (Window(0, dt.time(9), dt.time(18)),))


def test_availability_edges() -> None:
    inside = sp("in", at(MON, 9), at(MON, 18))
    assert availability(ANNA_AV, [inside], STORE) == []
    late = sp("late", at(MON, 9), at(MON, 18, 1))
    found = availability(ANNA_AV, [late], STORE)
    assert rules_of(found) == ["availability"] and found[0].hard
    assert "09:00–18:00" in found[0].message()
    tuesday = availability(ANNA_AV, [sp("t", at(TUE, 9), at(TUE, 12))], STORE)
    assert rules_of(tuesday) == ["availability"]
    assert "Tue" in tuesday[0].message()


def test_no_availability_rows_means_always_available_and_midnight_end() -> None:
    assert availability(ANNA, [sp("n", at(MON, 0), at(MON, 23))], STORE) == []
    night = StaffInfo(
        3,
        "夜班",
        "stock",
        40,
        (Window(0, dt.time(18), dt.time(0)), Window(1, dt.time(0), dt.time(6))),
    )
    across = ShiftSpan("x", 3, "stock", at(MON, 20), at(TUE, 4))
    assert availability(night, [across], STORE) == []
    assert rules_of(
        availability(night, [ShiftSpan("y", 3, "stock", at(MON, 20), at(TUE, 7))], STORE)
    ) == ["availability"]


# --------------------------------------------------------------------------- coverage


def test_coverage_at_open_and_close_by_role() -> None:
    staff = {ANNA.id: ANNA, MGR.id: MGR}
    day_shifts = []
    for i in range(7):
        d = WEEK + dt.timedelta(days=i)
        day_shifts += [
            sp(f"o{i}", at(d, 9), at(d, 15), MGR),
            sp(f"c{i}", at(d, 14), at(d, 22), MGR),
        ]
    assert coverage(WEEK, day_shifts, staff, STORE) == []
    # Tuesday's closer leaves at 21:59: closing uncovered; sales at close does not count.
    broken = [s for s in day_shifts if s.id != "c1"] + [
        sp("c1", at(TUE, 14), at(TUE, 21, 59), MGR),
        sp("s1", at(TUE, 14), at(TUE, 22), ANNA),
    ]
    found = coverage(WEEK, broken, staff, STORE)
    assert [(v.rule, v.day) for v in found] == [("coverage_close", TUE)]
    assert found[0].severity == SOFT
    assert coverage(WEEK, broken, staff, STORE, severity=HARD)[0].hard
    # A manager who starts at 09:01 misses the opening.
    late = [s for s in day_shifts if s.id != "o0"] + [sp("o0", at(MON, 9, 1), at(MON, 15), MGR)]
    assert [v.rule for v in coverage(WEEK, late, staff, STORE)] == ["coverage_open"]


def test_sales_person_working_as_keyholder_covers() -> None:
    staff = {ANNA.id: ANNA}
    shifts = []
    for i in range(7):
        d = WEEK + dt.timedelta(days=i)
        shifts += [
            ShiftSpan(f"o{i}", ANNA.id, "keyholder", at(d, 9), at(d, 13)),
            ShiftSpan(f"c{i}", ANNA.id, "keyholder", at(d, 18), at(d, 22)),
        ]
    assert coverage(WEEK, shifts, staff, STORE) == []


def test_violations_for_shift_only_reports_the_edited_shift() -> None:
    existing = [sp("a", at(MON, 9), at(MON, 13)), sp("b", at(MON, 12), at(MON, 15))]  # overlap
    new = sp("n", at(TUE, 9), at(TUE, 12))
    assert violations_for_shift(new, existing, ANNA, STORE) == []
    moved = sp("a", at(MON, 9), at(MON, 12))  # a new version of "a" replaces the old one
    assert rules_of(violations_for_shift(moved, existing, ANNA, STORE)) == ["rest"]


def test_explanations_in_chinese() -> None:
    evening = sp("e", at(MON, 14), at(MON, 22))
    v = overlap_and_rest(ANNA, [evening, sp("s", at(TUE, 8), at(TUE, 12))], STORE)[0]
    zh = v.message_in("zh_CN")
    assert "张导购" in zh and "休息" in zh and "11" in zh
    try:
        i18n.set_language("zh_CN")
        assert v.message() == zh
        tue = availability(ANNA_AV, [sp("t", at(TUE, 9), at(TUE, 12))], STORE)[0]
        assert "周二" in tue.message()
    finally:
        i18n.set_language("en")


# --------------------------------------------------------------------------- demand


@pytest.mark.parametrize(
    ("visitors", "expected"), [(None, 2), (0.0, 2), (20.0, 2), (20.1, 3), (30.0, 3), (95.0, 10)]
)
def test_required_staff(visitors, expected) -> None:
    assert required_staff(visitors, STORE) == expected


def test_week_demand_gaps_by_hand() -> None:
    forecast = {(MON, h): 0.0 for h in range(24)}
    forecast[(MON, 12)] = 35.0  # -> 4 needed
    forecast[(MON, 13)] = 18.0  # -> 2 (floor)
    shifts = [
        sp("a", at(MON, 9), at(MON, 17), ANNA),
        sp("b", at(MON, 9), at(MON, 22), MGR),
        ShiftSpan("c", 9, "sales", at(MON, 12, 30), at(MON, 14)),  # half of 12:00, all of 13:00
        ShiftSpan("st", 10, "stock", at(MON, 9), at(MON, 22)),  # back room: not floor staff
    ]
    wd = week_demand(STORE, WEEK, forecast, shifts)
    mon = wd.days[0]
    assert [h.hour for h in mon.hours] == list(range(9, 22))
    h12, h13, h17 = wd.hour(MON, 12), wd.hour(MON, 13), wd.hour(MON, 17)
    assert (h12.required, h12.scheduled, h12.gap) == (4, 2.5, 1.5)
    assert (h13.required, h13.scheduled, h13.short) == (2, 3.0, False)
    assert (h17.required, h17.scheduled, h17.short) == (2, 1.0, True)
    assert [(h.hour) for h in mon.short_hours] == [12, 17, 18, 19, 20, 21]
    # No forecast for Tuesday at all: floor staffing everywhere, nobody scheduled.
    assert all(h.required == 2 for h in wd.days[1].hours)
    found = [v for v in wd.violations() if v.day == MON]
    assert len(found) == 1 and found[0].rule == "understaffed" and not found[0].hard
    assert "12:00" in found[0].message() and "2.5" in found[0].message()


def test_demand_without_forecast_uses_floor_and_says_so() -> None:
    wd = week_demand(STORE, WEEK, None, [])
    assert not wd.forecast_available
    assert {h.required for d in wd.days for h in d.hours} == {2}


def test_half_hour_opening_counts_full_hour() -> None:
    store = StoreInfo(1, "T", "T", "Asia/Shanghai", dt.time(9, 30), dt.time(21, 30), 10.0, 1)
    wd = week_demand(store, WEEK, None, [sp("a", at(MON, 9, 30), at(MON, 21, 30))])
    assert wd.days[0].hours[0].hour == 9 and wd.days[0].hours[0].scheduled == pytest.approx(1.0)
    assert wd.days[0].hours[-1].hour == 21 and not wd.days[0].short_hours
