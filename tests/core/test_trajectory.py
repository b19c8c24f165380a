"""Cleaning, stop detection, matching and visit evidence on synthetic traces with known answers."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from trajectory_synth import T0, TraceBuilder, offset

from core.i18n import set_language
from core.trajectory.cleaning import Fix, clean_fixes, haversine_m
from core.trajectory.evidence import score_visit
from core.trajectory.stops import (
    Place,
    RecordedVisit,
    compare_with_visits,
    detect_stops,
    match_stops,
)

HOME = (31.2000, 121.4500)
CUST_A = offset(*HOME, 0, 3000)  # 3 km east
CUST_B = offset(*HOME, 2500, 3000)
CUST_C = offset(*HOME, 2500, 0)


def _day() -> TraceBuilder:
    """09:00 leave home; 20 min at A; 3 min at B (too short for a stop); 45 min at C."""
    return (
        TraceBuilder(*HOME)
        .stay(2)
        .move(*CUST_A, 10)  # arrive 09:12
        .stay(20)  # until 09:32
        .move(*CUST_B, 8)
        .stay(3)
        .move(*CUST_C, 10)  # arrive ~09:53
        .stay(45)
        .move(*HOME, 10)
    )


def _visit(
    vid: str,
    cust: tuple[float, float],
    cid: int,
    start_min: float,
    end_min: float,
    checkin: tuple[float, float] | None = None,
) -> RecordedVisit:
    pos = checkin or cust
    return RecordedVisit(
        id=vid,
        rep_id=1,
        customer_id=cid,
        check_in_at=T0 + dt.timedelta(minutes=start_min),
        check_out_at=T0 + dt.timedelta(minutes=end_min),
        check_in_lat=pos[0],
        check_in_lon=pos[1],
        customer_lat=cust[0],
        customer_lon=cust[1],
    )


@pytest.fixture(autouse=True)
def _english():
    set_language("en")
    yield
    set_language("en")


def test_clean_drops_inaccurate_duplicate_and_spike_but_keeps_sustained_jump():
    fixes = TraceBuilder(*HOME).stay(10).fixes
    spike_at = fixes[5].ts + dt.timedelta(seconds=10)
    far = offset(*HOME, 20_000, 0)
    noisy = [
        *fixes,
        Fix(fixes[3].ts + dt.timedelta(seconds=5), HOME[0], HOME[1], 500.0),  # inaccurate
        Fix(fixes[4].ts, HOME[0], HOME[1], 5.0),  # duplicate instant
        Fix(spike_at, far[0], far[1], 5.0),  # one-fix spike 20 km away
    ]
    res = clean_fixes(noisy)
    assert (res.dropped_inaccurate, res.dropped_duplicates, res.dropped_spikes) == (1, 1, 1)
    assert len(res.fixes) == len(fixes)
    # A teleport that continues from the far place is kept (evidence must see it).
    tp = TraceBuilder(*HOME).stay(5).jump(*far).stay(5).fixes
    assert len(clean_fixes(tp).fixes) == len(tp)


def test_detect_stops_finds_the_two_long_stays_with_their_times_and_places():
    fixes = _day().fixes
    stops = detect_stops(fixes)
    # The 2-minute stay at home at the start and the 3-minute stay at B are too short.
    assert len(stops) == 2
    a, c = stops
    assert haversine_m(a.lat, a.lon, *CUST_A) < 15
    assert haversine_m(c.lat, c.lon, *CUST_C) < 15
    assert abs((a.start - (T0 + dt.timedelta(minutes=12))).total_seconds()) <= 60
    assert 19 * 60 <= a.dwell_s <= 21.5 * 60
    assert 44 * 60 <= c.dwell_s <= 46.5 * 60


def test_stop_ends_at_a_long_gap_in_the_data():
    fixes = TraceBuilder(*HOME).stay(4).gap(30).stay(4).fixes
    assert detect_stops(fixes) == []


def test_match_and_compare_with_recorded_visits():
    stops = detect_stops(_day().fixes)
    places = [Place(1, "A", *CUST_A), Place(2, "B", *CUST_B), Place(3, "C", *CUST_C)]
    matches = match_stops(stops, places)
    assert [m.customer_id for m in matches] == [1, 3]
    visits = [
        _visit("va", CUST_A, 1, 13, 31),  # backed by the stop at A
        _visit("vb", CUST_B, 2, 41, 60),  # B: only 3 minutes there -> no stop
    ]
    cmp = compare_with_visits(matches, visits)
    assert cmp.visit_stop == {"va": 0}
    assert cmp.visits_without_stop == ["vb"]
    assert cmp.unrecorded_stops == [1]  # stopped 45 min at C, recorded nothing


def test_evidence_good_visit_scores_high_and_is_not_flagged():
    fixes = clean_fixes(_day().fixes).fixes
    ev = score_visit(_visit("va", CUST_A, 1, 13, 31), fixes)
    assert not ev.flagged, ev.reasons
    assert ev.score >= 90
    assert ev.checkin_distance_m is not None and ev.checkin_distance_m < 1
    assert ev.dwell_s is not None and ev.dwell_s >= 17 * 60
    assert ev.speed_jumps == 0


def test_evidence_far_checkin_is_flagged_and_explained():
    fixes = clean_fixes(_day().fixes).fixes
    far = offset(*CUST_A, 0, 2000)
    ev = score_visit(_visit("va", CUST_A, 1, 13, 31, checkin=far), fixes)
    assert ev.flagged
    assert ev.checkin_distance_m == pytest.approx(2000, abs=5)
    assert "Checked in 2.0 km from the customer" in ev.explanation
    assert ev.score <= 60


def test_evidence_short_dwell_is_flagged():
    fixes = clean_fixes(_day().fixes).fixes
    ev = score_visit(_visit("vb", CUST_B, 2, 41, 71), fixes)  # recorded 30 min, was there 3
    assert ev.flagged
    assert ev.dwell_s is not None and 2 * 60 <= ev.dwell_s <= 4 * 60
    assert re.search(r"only [34] min near the customer", ev.explanation)
    assert ev.score <= 50
    assert "recorded as 30 min" in ev.explanation


def test_evidence_teleport_is_flagged_as_speed_jump():
    far = offset(*CUST_A, 0, 30_000)
    # sits 30 km away, the position "jumps" to the customer at check-in and back at check-out
    b = TraceBuilder(*far).stay(20).jump(*CUST_A).stay(25).jump(*far).stay(20)
    fixes = clean_fixes(b.fixes).fixes
    ev = score_visit(_visit("vt", CUST_A, 1, 20, 45), fixes)
    assert ev.speed_jumps == 2
    assert ev.flagged
    assert "jumps 30.0 km in 30 s" in ev.explanation


def test_a_jump_after_a_visit_is_not_held_against_it():
    far = offset(*CUST_A, 0, 30_000)
    b = TraceBuilder(*CUST_A).stay(30).stay(10).jump(*far).stay(20)  # jump 10 min after check-out
    fixes = clean_fixes(b.fixes).fixes
    ev = score_visit(_visit("vn", CUST_A, 1, 0, 30), fixes)
    assert ev.speed_jumps == 0 and not ev.flagged, ev.reasons


def test_a_visit_recorded_under_five_minutes_is_flagged_even_with_a_long_stop():
    fixes = clean_fixes(_day().fixes).fixes
    ev = score_visit(_visit("vs", CUST_C, 3, 60, 63), fixes)  # recorded 3 min, there 45 min
    assert ev.flagged
    assert "recorded as only 3 min" in ev.explanation
    ev_no_trace = score_visit(_visit("vs", CUST_C, 3, 60, 63), [])
    assert ev_no_trace.flagged and ev_no_trace.score <= 50


def test_evidence_missing_trace_around_visit_on_a_tracked_day_is_flagged():
    b = TraceBuilder(*HOME).stay(30).gap(180).stay(30)  # hole from 09:30 to 12:30
    fixes = clean_fixes(b.fixes).fixes
    ev = score_visit(_visit("vm", CUST_A, 1, 90, 120), fixes)
    assert not ev.has_trace and ev.flagged
    assert "sent no position" in ev.explanation


def test_evidence_day_without_trace_is_not_flagged():
    ev = score_visit(_visit("vn", CUST_A, 1, 90, 120), [])
    assert not ev.flagged
    assert "No GPS trace" in ev.explanation


def test_evidence_explained_in_chinese():
    set_language("zh_CN")
    fixes = clean_fixes(_day().fixes).fixes
    ev = score_visit(_visit("va", CUST_A, 1, 13, 31, checkin=offset(*CUST_A, 0, 2000)), fixes)
    assert "2.0 km" in ev.explanation
    assert "签到" in ev.explanation
