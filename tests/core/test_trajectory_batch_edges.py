"""The batch steps' shortcuts against the list-of-fixes reference where they could go wrong.

core.trajectory.batch decides most things with cheap numpy bounds and leaves the close
calls to the scalar functions; these traces put fixes, places and customers on exactly
those edges (the pre-check's square, the radius, equal distances, the speed limit), at
the poles and across the antimeridian (where the equirectangular pre-check and the
haversine disagree), and make the stop scan land inside a series of stop anchors.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence

import numpy as np
import pytest

from core.timeutil import to_local
from core.trajectory.arrays import FixArrays, PlaceArrays, TrackPoints
from core.trajectory.batch import (
    Batch,
    clean_batch,
    detect_stops_batch,
    match_stops_batch,
    trace_facts_batch,
)
from core.trajectory.cleaning import EARTH_RADIUS_M, Fix, clean_fixes
from core.trajectory.evidence import trace_facts
from core.trajectory.stops import Place, RecordedVisit, detect_stops, match_stops

T0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
TZ = "Asia/Shanghai"


def _at(seconds: float, lat: float, lon: float) -> Fix:
    return Fix(T0 + dt.timedelta(seconds=seconds), lat, lon, 10.0)


def _north(lat: float, metres: float) -> float:
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def _east(lat: float, lon: float, metres: float) -> float:
    return lon + math.degrees(metres / (EARTH_RADIUS_M * math.cos(math.radians(lat))))


def _batch(reps: Sequence[Sequence[Fix]]) -> Batch:
    return clean_batch(Batch.of([FixArrays.from_fixes(r) for r in reps]))


def _stops_as_reference(reps: Sequence[Sequence[Fix]], **kw: float) -> None:
    ref = [detect_stops(clean_fixes(r).fixes, **kw) for r in reps]
    assert detect_stops_batch(_batch(reps), **kw) == ref


def test_a_slow_drift_makes_stops_that_start_inside_a_series_of_stop_anchors():
    """A rep creeping 1 m per fix: each stop ends where the anchor is out of reach and the
    next starts right there, inside the series (the scan's later rounds); with reps whose
    drifts end at other times, so the rounds run for some reps and not others."""
    reps = []
    for k, (step_m, n) in enumerate([(1.0, 600), (0.7, 400), (1.6, 500), (0.0, 90), (1.0, 3)]):
        lat, lon = 31.2 + k * 0.01, 121.45
        reps.append([_at(30 * i, _north(lat, step_m * i), lon) for i in range(n)])
    ref = [detect_stops(r) for r in reps]
    assert sum(len(s) for s in ref) > 15
    assert detect_stops_batch(_batch(reps)) == ref
    # a drift with gaps: runs end at the gaps, the next run starts after them
    gappy = [
        _at(30 * i + (1200 if i > 70 else 0), _north(31.2, 0.8 * i), 121.45) for i in range(200)
    ]
    _stops_as_reference([gappy])


@pytest.mark.parametrize(
    "min_dwell_s", [0.0, -5.0, 1e-7, 29.999999, 30.0, 299.9999995, 300.0000004, 1e13]
)
def test_stop_parameters_at_their_edges(min_dwell_s):
    """A minimum dwell of zero (every anchor a stop), of a fraction of a microsecond, of
    exactly a fix interval and beyond any trace: as the reference."""
    rng = random.Random(5)
    reps = []
    for _k in range(3):
        fixes, lat = [], 31.2
        for i in range(120):
            if i % 17 == 0:
                lat += 0.002  # move on: a new place
            fixes.append(_at(30 * i, lat + rng.gauss(0, 2e-4), 121.45 + rng.gauss(0, 2e-4)))
        reps.append(fixes)
    _stops_as_reference(reps, min_dwell_s=min_dwell_s)
    _stops_as_reference(reps, min_dwell_s=min_dwell_s, radius_m=5.0, max_gap_s=20.0)


def test_no_stop_for_a_dwell_no_trace_can_last():
    reps = [[_at(30 * i, 31.2, 121.45) for i in range(50)]]
    for dwell in (math.inf, math.nan):
        assert detect_stops_batch(_batch(reps), min_dwell_s=dwell) == [[]]
        assert detect_stops(reps[0], min_dwell_s=dwell) == []


def test_stops_where_the_pre_check_and_the_haversine_disagree():
    """At the poles and across the antimeridian the equirectangular pre-check says "out of
    reach" for fixes the haversine puts within it (and the reference keeps them in the
    run); elsewhere fixes sit on the pre-check's edge and on the radius."""
    rng = random.Random(3)
    reps = []
    # across the antimeridian: a stay at lon ±180 swinging from one side to the other
    reps.append([_at(30 * i, 10.0 + rng.gauss(0, 1e-5), 180.0 - 1e-5 * (i % 2)) for i in range(40)])
    reps[-1] += [_at(1200 + 30 * i, 10.0, -180.0 + 2e-5 * (i % 3)) for i in range(40)]
    # near the north pole: small moves in latitude are huge in longitude
    reps.append([_at(30 * i, 89.99975, rng.uniform(-180, 180)) for i in range(60)])
    # fixes alternating at distances on the edges: the radius (haversine, 60 m) and the
    # pre-check's (60.6 m in its own units: 111,195 m a degree, cos of the anchor's lat)
    k = math.cos(math.radians(31.2))
    for edge in (60.0, 59.999999, 60.000001, 60.6, 60.6 * (1 + 2e-7), 60.6 * (1 - 2e-7)):
        for east in (False, True):
            fixes = []
            for i in range(60):
                m = edge * (i % 2) * rng.choice([1.0, 1.0 + 1e-12, 1.0 - 1e-12])
                if edge == 60.0 or edge - 60.0 < 1e-5:
                    lat, lon = (31.2, _east(31.2, 121.45, m)) if east else (_north(31.2, m), 121.45)
                elif east:
                    lat, lon = 31.2, 121.45 + m / 111_195.0 / k
                else:
                    lat, lon = 31.2 + m / 111_195.0, 121.45
                fixes.append(_at(30 * i, lat, lon))
            reps.append(fixes)
    ref = [detect_stops(clean_fixes(r).fixes) for r in reps]
    assert ref[0] and ref[1]  # the reference does see stops there
    assert detect_stops_batch(_batch(reps)) == ref


def test_match_equal_and_almost_equal_distances():
    """Places a few ulps apart around a stop: the scalar distances decide which is nearer
    (the first listed of equal ones), and places on the radius: the scalar one decides."""
    s = detect_stops([_at(30 * i, 31.2, 121.45) for i in range(20)])
    assert len(s) == 1
    lat = s[0].lat
    near = _north(lat, 100.0)
    farther = float(np.nextafter(np.nextafter(near, 90.0), 90.0))  # a few 1e-10 m farther
    cases = [
        [Place(1, "", farther, 121.45), Place(2, "", near, 121.45)],  # the second is nearer
        [Place(1, "", near, 121.45), Place(2, "", near, 121.45)],  # equal: the first
        [Place(3, "", near, 121.45), Place(4, "", farther, 121.45), Place(5, "", near, 121.45)],
        [Place(6, "", _north(lat, 150.0), 121.45), Place(7, "", _north(lat, 150.0000005), 121.45)],
        [Place(8, "", _north(lat, 149.9999995), 121.45), Place(9, "", _north(lat, -150.0), 121.45)],
        [Place(10, "", _north(lat, 150.0000005), 121.45)],
        [Place(11, "", _north(lat, -149.9999995), 121.45)],
    ]
    for places in cases:
        assert match_stops_batch([s], PlaceArrays.of(places)) == [match_stops(s, places)]
    got = match_stops_batch([s], PlaceArrays.of(cases[0]))[0][0]
    assert got.customer_id == 2


def test_match_radius_beyond_the_box():
    """A match radius larger than the box test: the box decides, as in match_stops."""
    rng = random.Random(9)
    stops = detect_stops([_at(30 * i, 31.2, 121.45) for i in range(20)])
    places = [
        Place(i, "", 31.2 + rng.uniform(-0.012, 0.012), 121.45 + rng.uniform(-0.014, 0.014))
        for i in range(300)
    ]
    for radius in (0.0, 40.0, 900.0, 1500.0, 5000.0):
        assert match_stops_batch([stops], PlaceArrays.of(places), max_distance_m=radius) == [
            match_stops(stops, places, max_distance_m=radius)
        ]


def _facts_as_reference(reps: Sequence[Sequence[Fix]], visits: Sequence[RecordedVisit]) -> None:
    cleaned = [clean_fixes(r).fixes for r in reps]
    expected = []
    for v in visits:
        day = to_local(v.check_in_at, TZ).date()
        fixes = [f for f in cleaned[v.rep_id] if to_local(f.ts, TZ).date() == day]
        expected.append(trace_facts(v, fixes))
    got = trace_facts_batch(visits, [v.rep_id for v in visits], _batch(reps), TZ)
    assert got == expected


def _visit(k: int, rep: int, start: dt.datetime, minutes: float, lat: float, lon: float):
    end = start + dt.timedelta(minutes=minutes) if minutes else None
    return RecordedVisit(f"v{k}", rep, 1, start, end, None, None, lat, lon)


def test_near_the_customer_on_the_edge_at_the_poles_and_across_the_antimeridian():
    """Fixes at 150 m (give or take nothing) from the customer, and customers where the
    cheap bounds are loose (the poles, ±180°): the dwell and coverage as the reference."""
    rng = random.Random(13)
    places = [(31.2, 121.45), (89.9996, 30.0), (-89.9999, 0.0), (0.0, 179.99995), (0.0, -180.0)]
    reps, visits = [], []
    for k, (clat, clon) in enumerate(places):
        fixes = []
        for i in range(120):
            d = rng.choice([150.0, 150.0 * (1 + 1e-12), 150.0 * (1 - 1e-12), 149.0, 151.0, 20.0])
            bearing = rng.uniform(0, 2 * math.pi)
            lat = _north(clat, d * math.cos(bearing))
            lon = clon + math.degrees(d * math.sin(bearing) / EARTH_RADIUS_M)
            lon = (lon + 180.0) % 360.0 - 180.0
            fixes.append(_at(30 * i, max(-90.0, min(90.0, lat)), lon))
        reps.append(fixes)
        for j in range(4):
            start = T0 + dt.timedelta(minutes=rng.uniform(0, 60))
            visits.append(_visit(10 * k + j, k, start, rng.choice([0, 3, 20, 45]), clat, clon))
    _facts_as_reference(reps, visits)


def test_speeds_at_the_limit():
    """Pairs at 150 km/h give or take a ulp (clean keeps or drops, the jumps count or
    not as speed_kmh says), and pairs across the antimeridian (short, but far apart in
    longitude)."""
    rng = random.Random(17)
    reps = []
    for _k in range(4):
        fixes, lat, t = [], 31.2, 0.0
        for _i in range(80):
            t += 30.0
            metres = rng.choice([1250.0, 1250.0 * (1 + 1e-13), 1250.0 * (1 - 1e-13), 40.0, 5000.0])
            lat = _north(lat, metres) if rng.random() < 0.5 else lat
            fixes.append(_at(t, lat, 121.45))
        reps.append(fixes)
    reps.append([_at(i, 0.0, 179.99999 if i % 2 else -179.99999) for i in range(40)])
    assert [p.to_fixes() for p in (_batch(reps).part(k) for k in range(len(reps)))] == [
        clean_fixes(r).fixes for r in reps
    ]
    visits = [
        _visit(k, rep, T0 + dt.timedelta(minutes=m), 30, 31.2, 121.45)
        for k, (rep, m) in enumerate((r, m) for r in range(len(reps)) for m in (5, 20, 35))
    ]
    _facts_as_reference(reps, visits)


def test_visits_searched_in_reps_millennia_apart():
    """Fix times so far apart that (rep, time) keys would not fit in 64 bits: the visits'
    days and windows are searched rep by rep instead, with the same answers."""
    reps, visits = [], []
    for k in range(24):
        base = dt.datetime(2 if k % 2 else 9998, 6, 1, tzinfo=dt.UTC) + dt.timedelta(hours=k)
        reps.append(
            [
                Fix(base + dt.timedelta(seconds=30 * i), 31.2 + 1e-5 * (i % 5), 121.45, 10.0)
                for i in range(60)
            ]
        )
        for j, minutes in enumerate((-40, 5, 25)):
            visits.append(
                _visit(3 * k + j, k, base + dt.timedelta(minutes=minutes), 10, 31.2, 121.45)
            )
    _facts_as_reference(reps, visits)


def test_coverage_of_visits_with_many_few_and_no_fixes_inside():
    rng = random.Random(23)
    fixes = [_at(30 * i, 31.2, 121.45) for i in range(400)]
    # holes: single fixes missing, and runs of up to 12 (longer than GAP_S)
    holes = {i + j for i in rng.sample(range(400), 25) for j in range(rng.choice([1, 4, 12]))}
    fixes = [f for i, f in enumerate(fixes) if i not in holes]
    visits = [
        _visit(k, 0, T0 + dt.timedelta(minutes=rng.uniform(-60, 230)), m, 31.2, 121.45)
        for k, m in enumerate([0, 0.1, 1, 3, 20, 45, 180, 600] * 3)
    ]
    _facts_as_reference([fixes], visits)


def test_numpy_distances_rounded_otherwise_change_nothing(monkeypatch):
    """numpy's trigonometry may round differently from math's: with every numpy
    haversine off by almost half of _EDGE_M, the decisions on the edges are still the
    scalar function's."""
    import core.trajectory.batch as batch_module

    exact = batch_module.haversine_np

    def rounded_otherwise(*args: np.ndarray) -> np.ndarray:
        d = exact(*args)
        return d + np.where(np.arange(d.size).reshape(d.shape) % 2 == 0, 4e-7, -4e-7)

    monkeypatch.setattr(batch_module, "haversine_np", rounded_otherwise)
    test_stops_where_the_pre_check_and_the_haversine_disagree()
    test_match_equal_and_almost_equal_distances()
    test_near_the_customer_on_the_edge_at_the_poles_and_across_the_antimeridian()


def test_track_points_read_as_the_list_they_stand_for():
    lat, lon = np.array([31.2, 31.3, 31.4]), np.array([121.4, 121.5, 121.6])
    pts = TrackPoints(lat, lon)
    as_list = [(31.2, 121.4), (31.3, 121.5), (31.4, 121.6)]
    assert len(pts) == 3 and bool(pts) and not TrackPoints(lat[:0], lon[:0])
    assert pts == as_list and as_list == pts and pts == TrackPoints(lat.copy(), lon.copy())
    assert pts != as_list[:2] and pts != tuple(as_list)
    assert list(pts) == as_list and pts[1] == (31.3, 121.5) and pts[-1] == as_list[-1]
    assert pts[:2] == as_list[:2]
    assert [p for p in pts] == as_list and (31.3, 121.5) in pts
    assert all(type(c) is float for p in pts for c in p)
    with pytest.raises(ValueError):
        TrackPoints(lat, lon[:2])
