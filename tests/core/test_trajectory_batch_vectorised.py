"""The field map's steps made over all visits / stops at once, against what they replace:
the stop centres' sums (one by one, as ``sum()``), the visits' dwell measured in rounds
of windows, and the visit-to-stop pairing of every rep at once
(:func:`core.trajectory.batch.compare_with_visits_batch` against
:func:`core.trajectory.stops.compare_with_visits` rep by rep).
"""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest

from core.trajectory import batch as batch_mod
from core.trajectory.arrays import to_us
from core.trajectory.batch import (
    StopTable,
    compare_with_visits_batch,
    detect_stop_table,
    detect_stops_batch,
    visit_times,
)
from core.trajectory.cleaning import EARTH_RADIUS_M
from core.trajectory.stops import RecordedVisit, Stop, StopMatch, compare_with_visits
from tests.core.test_trajectory_batch_edges import T0, _at, _batch, _facts_as_reference, _visit


def _python_means(values: list[float], runs: list[tuple[int, int]]) -> list[float]:
    return [sum(values[s:j]) / len(values[s:j]) for s, j in runs]


@pytest.mark.parametrize("sequential", [True, False])
def test_run_means_are_those_of_sum(monkeypatch, sequential):
    """Runs of 1 to 300 values, of mixed magnitudes (where the order of the additions
    shows in the last bits): the same floats as ``sum(run) / len(run)``."""
    if sequential and not batch_mod._SEQUENTIAL_SUM:
        pytest.skip("sum() compensates its rounding on this Python")
    monkeypatch.setattr(batch_mod, "_SEQUENTIAL_SUM", sequential)
    rng = random.Random(5)
    lat = [rng.choice([1e-9, 0.1, 31.2, 89.9, -45.0]) * rng.uniform(0.5, 1.5) for _ in range(5000)]
    lon = [rng.uniform(-180.0, 180.0) for _ in range(5000)]
    runs, s = [], 0
    while True:
        s += rng.choice([0, 1, 7])
        j = s + rng.choice([1, 2, 3, 40, 121, 300])
        if j > len(lat):
            break
        runs.append((s, j))
        s = j
    rng.shuffle(runs)  # in any order
    first = np.array([s for s, _ in runs], dtype=np.int64)
    end = np.array([j for _, j in runs], dtype=np.int64)
    got_lat, got_lon = batch_mod._run_means(np.array(lat), np.array(lon), first, end)
    assert [repr(x) for x in got_lat] == [repr(x) for x in _python_means(lat, runs)]
    assert [repr(x) for x in got_lon] == [repr(x) for x in _python_means(lon, runs)]
    # (a pairwise sum, as numpy's, would differ somewhere: the test can fail)
    pairwise = [float(np.sum(np.array(lat[s:j]))) / (j - s) for s, j in runs]
    assert pairwise != _python_means(lat, runs)


def test_range_sums_start_from_the_given_values():
    rng = random.Random(6)
    v = np.array([rng.uniform(0, 200) for _ in range(1000)])
    first = np.array([0, 10, 10, 500, 999, 3], dtype=np.int64)
    end = np.array([0, 11, 300, 1000, 1000, 3], dtype=np.int64)  # empty ranges too
    start = np.array([0.0, 0.5, 179.25, 1e-3, 3.0, 7.0])
    got = batch_mod._range_sums(first, end, start, lambda i: v.take(i, mode="clip"))[0]
    for m in range(len(first)):
        total = float(start[m])
        for x in v[first[m] : end[m]].tolist():
            total += x
        assert repr(float(got[m])) == repr(total)


def test_stop_table_columns_are_the_stops():
    rng = random.Random(8)
    reps = []
    for k in range(5):
        fixes, lat = [], 31.2 + 0.01 * k
        for i in range(300):
            if rng.random() < 0.1:
                lat += 0.002
            fixes.append(_at(30 * i + rng.choice([0, 1, 2]), lat + rng.uniform(0, 2e-4), 121.45))
        reps.append(fixes)
    reps.insert(2, [])  # a rep without fixes
    b = _batch(reps)
    table = detect_stop_table(b)
    assert table.stops == detect_stops_batch(b)
    flat = [(k, s) for k, part in enumerate(table.stops) for s in part]
    assert len(flat) > 10
    assert table.seg.tolist() == [k for k, _ in flat]
    assert table.start_us.tolist() == [to_us(s.start) for _, s in flat]
    assert table.end_us.tolist() == [to_us(s.end) for _, s in flat]
    assert table.lat.tolist() == [s.lat for _, s in flat]
    assert table.lon.tolist() == [s.lon for _, s in flat]
    assert table.offsets.tolist() == np.cumsum([0] + [len(p) for p in table.stops]).tolist()


@pytest.mark.parametrize("chunk", [1, 7, 100, 16384])
def test_dwell_measured_in_rounds_of_windows(monkeypatch, chunk):
    """Windows one after the other measured a few (or one, or part of one) at a time:
    the dwell as the reference, wherever a round ends."""
    monkeypatch.setattr(batch_mod, "_DWELL_CHUNK", chunk)
    rng = random.Random(11)
    reps, visits = [], []
    for k in range(4):
        fixes = []
        for i in range(200):
            near = rng.random() < 0.7
            lat = 31.2 + (rng.uniform(-5e-4, 5e-4) if near else rng.uniform(2e-3, 5e-3))
            fixes.append(_at(30 * i + (900 if i == 100 else 0), lat, 121.45))
        reps.append(fixes)
        for j in range(6):
            start = T0 + dt.timedelta(minutes=rng.uniform(-20, 110))
            visits.append(_visit(10 * k + j, k, start, rng.choice([0, 3, 20, 45]), 31.2, 121.45))
    _facts_as_reference(reps, visits)


def _north(lat: float, metres: float) -> float:
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def _table(stops: list[list[Stop]]) -> StopTable:
    flat = [(k, s) for k, part in enumerate(stops) for s in part]
    return StopTable(
        stops,
        np.array([k for k, _ in flat], dtype=np.int64),
        np.array([to_us(s.start) for _, s in flat], dtype=np.int64),
        np.array([to_us(s.end) for _, s in flat], dtype=np.int64),
        np.array([s.lat for _, s in flat]),
        np.array([s.lon for _, s in flat]),
    )


def _compare_as_reference(
    matched: list[list[StopMatch]], visits: list[RecordedVisit], segments: list[int], **kw
) -> None:
    table = _table([[m.stop for m in part] for part in matched])
    got_stop, got_unrecorded = compare_with_visits_batch(table, matched, visits, segments, **kw)
    again = compare_with_visits_batch(
        table, matched, visits, segments, times=visit_times(visits), **kw
    )
    assert again == (got_stop, got_unrecorded)
    for k, part in enumerate(matched):
        mine = [v for v, s in zip(visits, segments, strict=True) if s == k]
        cmp = compare_with_visits(part, mine, **kw)
        assert got_unrecorded[k] == cmp.unrecorded_stops
        assert [i for v, s, i in zip(visits, segments, got_stop, strict=True) if s == k] == [
            cmp.visit_stop.get(v.id) for v in mine
        ]


def _collide(seed: int) -> tuple[list[list[StopMatch]], list[RecordedVisit], list[int]]:
    """Stops and visits of several reps on a 5-minute grid (± 1 µs), so that they
    collide: visits overlapping several stops and stops overlapping several visits,
    equal overlaps, equal check-in times, times exactly the slack apart, visits without
    check-out; stops at no customer, at the visit's customer but far, at another one at
    the match radius give or take a hair (the scalar haversine decides)."""
    rng = random.Random(seed)
    lat0, lon0 = 31.2, 121.45
    us = dt.timedelta(microseconds=1)
    matched: list[list[StopMatch]] = []
    visits: list[RecordedVisit] = []
    segments: list[int] = []
    for k in range(rng.choice([1, 3, 6])):
        part: list[StopMatch] = []
        t = T0
        for _i in range(rng.choice([0, 1, 3, 6])):
            t += dt.timedelta(minutes=5 * rng.choice([0, 1, 2, 3]))
            end = t + dt.timedelta(minutes=5 * rng.choice([1, 2, 3]))
            metres = rng.choice([0.0, 20.0, 149.9999999, 150.0, 150.0000001, 151.0, 4000.0])
            part.append(
                StopMatch(
                    Stop(t, end, _north(lat0, metres), lon0, 10), rng.choice([None, 1, 2]), None
                )
            )
            t = end
        matched.append(part)
        for j in range(rng.choice([0, 1, 3, 6])):
            start = (
                T0
                + dt.timedelta(minutes=5 * rng.randrange(-4, 16))
                + us * rng.choice([0, 0, 0, 1, -1])
            )
            out = rng.choice([None, start, start + dt.timedelta(minutes=5 * rng.choice([1, 2, 4]))])
            visits.append(
                RecordedVisit(
                    f"v{k}-{j}", 100 + k, rng.choice([1, 2]), start, out, None, None, lat0, lon0
                )
            )
            segments.append(k)
    # the visits of all reps interleaved, as the field map lists them
    order = list(range(len(visits)))
    rng.shuffle(order)
    return matched, [visits[i] for i in order], [segments[i] for i in order]


def test_compare_with_visits_of_every_rep_at_once():
    paired = 0
    for seed in range(400):
        matched, visits, segments = _collide(seed)
        _compare_as_reference(matched, visits, segments)
        _compare_as_reference(matched, visits, segments, slack=dt.timedelta(0), max_distance_m=20.0)
        table = _table([[m.stop for m in p] for p in matched])
        paired += sum(
            i is not None for i in compare_with_visits_batch(table, matched, visits, segments)[0]
        )
    assert paired > 300


def test_compare_with_visits_without_stops_or_visits():
    stop = Stop(T0, T0 + dt.timedelta(minutes=10), 31.2, 121.45, 20)
    visit = RecordedVisit("v", 1, 5, T0, None, None, None, 31.2, 121.45)
    _compare_as_reference([[], []], [], [])
    _compare_as_reference([[StopMatch(stop, 5, 0.0)], []], [], [])
    _compare_as_reference([[], []], [visit], [1])
    _compare_as_reference([[StopMatch(stop, None, None)]], [visit], [0])
