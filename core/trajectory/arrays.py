"""The trajectory steps over numpy arrays: what the field map runs on a region's day.

Same rules and same results as the reference functions on lists of :class:`Fix`
(:func:`core.trajectory.cleaning.clean_fixes`, :func:`core.trajectory.stops.detect_stops`,
:func:`core.trajectory.stops.match_stops`, :func:`core.trajectory.evidence.trace_facts`),
which stay the definition (tests compare both on the demo data). Times are int64
microseconds since the epoch (UTC), so durations divide exactly as
``timedelta.total_seconds()`` does. Distances are numpy haversines; wherever a decision
sits on a threshold within 1e-6 m, the scalar :func:`haversine_m` decides, as before.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.trajectory.cleaning import (
    EARTH_RADIUS_M,
    MAX_ACCURACY_M,
    MAX_SPEED_KMH,
    Fix,
    haversine_m,
    speed_kmh,
)
from core.trajectory.evidence import (
    GAP_S,
    JUMP_SLACK,
    NEAR_CUSTOMER_M,
    WINDOW,
    TraceFacts,
)
from core.trajectory.stops import (
    MATCH_RADIUS_M,
    MAX_GAP_S,
    MIN_DWELL_S,
    STOP_RADIUS_M,
    Place,
    RecordedVisit,
    Stop,
    StopMatch,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
#: below this distance from a threshold the scalar haversine decides (bit-exact with before)
_EDGE_M = 1e-6


def to_us(instant: dt.datetime) -> int:
    return (instant - EPOCH) // _US


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


@dataclass(frozen=True)
class FixArrays:
    """One rep's fixes as parallel arrays (time-ordered once cleaned)."""

    t_us: np.ndarray  # int64
    lat: np.ndarray  # float64, WGS-84
    lon: np.ndarray
    acc: np.ndarray

    def __len__(self) -> int:
        return len(self.t_us)

    @classmethod
    def empty(cls) -> FixArrays:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z)

    @classmethod
    def from_fixes(cls, fixes: Iterable[Fix]) -> FixArrays:
        fx = list(fixes)
        if not fx:
            return cls.empty()
        return cls(
            np.array([to_us(f.ts) for f in fx], dtype=np.int64),
            np.array([f.lat for f in fx], dtype=np.float64),
            np.array([f.lon for f in fx], dtype=np.float64),
            np.array([f.accuracy_m for f in fx], dtype=np.float64),
        )

    def take(self, idx: np.ndarray | slice) -> FixArrays:
        return FixArrays(self.t_us[idx], self.lat[idx], self.lon[idx], self.acc[idx])

    def fix(self, i: int) -> Fix:
        return Fix(
            from_us(self.t_us[i]), float(self.lat[i]), float(self.lon[i]), float(self.acc[i])
        )

    def to_fixes(self) -> list[Fix]:
        return [self.fix(i) for i in range(len(self))]

    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.lat.tolist(), self.lon.tolist(), strict=True))


def haversine_np(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """:func:`haversine_m` over arrays (same formula, same order of operations)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.subtract(lon2, lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _consecutive_speeds(fa: FixArrays) -> np.ndarray:
    """speed_kmh(fa[i], fa[i+1]) for every i (no zero durations: cleaned fixes)."""
    if len(fa) < 2:
        return np.zeros(0)
    secs = np.abs(np.diff(fa.t_us)) / 1_000_000
    dist = haversine_np(fa.lat[:-1], fa.lon[:-1], fa.lat[1:], fa.lon[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        v = dist / secs * 3.6
    return np.where(secs == 0, np.where(dist < 1, 0.0, np.inf), v)


def clean_arrays(
    fa: FixArrays,
    *,
    max_accuracy_m: float = MAX_ACCURACY_M,
    max_speed_kmh: float = MAX_SPEED_KMH,
) -> FixArrays:
    """:func:`clean_fixes` (its kept fixes) over arrays."""
    n = len(fa)
    if n == 0:
        return fa
    order = np.argsort(fa.t_us, kind="stable")
    fa = fa.take(order)
    dup = np.zeros(n, dtype=bool)
    dup[1:] = fa.t_us[1:] == fa.t_us[:-1]
    inaccurate = (fa.acc > max_accuracy_m) | ~(
        (fa.lat >= -90) & (fa.lat <= 90) & (fa.lon >= -180) & (fa.lon <= 180)
    )
    acc = fa.take(np.flatnonzero(~dup & ~inaccurate))
    m = len(acc)
    speeds = _consecutive_speeds(acc)
    keep = np.ones(m, dtype=bool)
    # speeds[i-1] is fix i after the one before it. A fix right after a dropped spike is
    # always kept (it was compared with the last kept fix when the spike was dropped).
    fast = np.flatnonzero(speeds - max_speed_kmh > -_EDGE_M) + 1
    last_dropped = -2
    for i in fast.tolist():
        if i == last_dropped + 1:
            continue
        a, b = acc.fix(i - 1), acc.fix(i)
        if speed_kmh(a, b) <= max_speed_kmh:
            continue
        if i + 1 < m and speed_kmh(a, acc.fix(i + 1)) <= max_speed_kmh:
            keep[i] = False
            last_dropped = i
    return acc.take(np.flatnonzero(keep)) if not keep.all() else acc


def detect_stops_arrays(
    fa: FixArrays,
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[Stop]:
    """:func:`detect_stops` over arrays (time-ordered cleaned fixes)."""
    n = len(fa)
    if n == 0:
        return []
    t, lat, lon = fa.t_us.tolist(), fa.lat.tolist(), fa.lon.tolist()
    # An anchor whose next fix is surely out of reach (gap or distance, with a margin)
    # makes a one-fix run: no stop. Only the other anchors are scanned one by one.
    candidates: list[int] = list(range(n))
    if min_dwell_s > 0 and n > 1:
        gap = np.diff(fa.t_us) / 1_000_000 > max_gap_s
        k = np.cos(np.radians(fa.lat[:-1]))
        dy = (fa.lat[1:] - fa.lat[:-1]) * 111_195.0
        dx = (fa.lon[1:] - fa.lon[:-1]) * 111_195.0 * k
        far = (dx * dx + dy * dy > ((radius_m * 1.01) ** 2) * (1 + 1e-9)) & (
            haversine_np(fa.lat[:-1], fa.lon[:-1], fa.lat[1:], fa.lon[1:]) > radius_m + _EDGE_M
        )
        out_of_reach = np.append(gap | far, True)  # the last fix has nothing after it
        candidates = np.flatnonzero(~out_of_reach).tolist()
    stops: list[Stop] = []
    r2 = (radius_m * 1.01) ** 2
    pos = 0
    i = candidates[0] if candidates else n
    while i < n:
        alat, alon = lat[i], lon[i]
        j = i + 1
        k_ = math.cos(math.radians(alat))
        while j < n:
            if (t[j] - t[j - 1]) / 1_000_000 > max_gap_s:
                break
            dy_ = (lat[j] - alat) * 111_195.0
            dx_ = (lon[j] - alon) * 111_195.0 * k_
            if dx_ * dx_ + dy_ * dy_ > r2 and haversine_m(alat, alon, lat[j], lon[j]) > radius_m:
                break
            j += 1
        if (t[j - 1] - t[i]) / 1_000_000 >= min_dwell_s:
            run_lat, run_lon = lat[i:j], lon[i:j]
            stops.append(
                Stop(
                    start=from_us(t[i]),
                    end=from_us(t[j - 1]),
                    lat=sum(run_lat) / len(run_lat),
                    lon=sum(run_lon) / len(run_lon),
                    n_fixes=j - i,
                )
            )
            nxt = j
        else:
            nxt = i + 1
        pos = bisect.bisect_left(candidates, nxt, pos)
        i = candidates[pos] if pos < len(candidates) else n
    return stops


@dataclass(frozen=True)
class PlaceArrays:
    places: Sequence[Place]
    lat: np.ndarray
    lon: np.ndarray

    @classmethod
    def of(cls, places: Sequence[Place]) -> PlaceArrays:
        return cls(
            places,
            np.array([p.lat for p in places], dtype=np.float64),
            np.array([p.lon for p in places], dtype=np.float64),
        )


def match_stops_arrays(
    stops: Sequence[Stop], places: PlaceArrays, *, max_distance_m: float = MATCH_RADIUS_M
) -> list[StopMatch]:
    """:func:`match_stops` with the box test and a first distance over arrays."""
    if not stops:
        return []
    slat = np.array([s.lat for s in stops])
    slon = np.array([s.lon for s in stops])
    box = (np.abs(places.lat[None, :] - slat[:, None]) <= 0.01) & (
        np.abs(places.lon[None, :] - slon[:, None]) <= 0.012
    )
    si, pi = np.nonzero(box)  # row-major: per stop, places in their order
    d = haversine_np(slat[si], slon[si], places.lat[pi], places.lon[pi])
    keep = d <= max_distance_m + _EDGE_M
    reach: list[list[int]] = [[] for _ in stops]
    for i, j in zip(si[keep].tolist(), pi[keep].tolist(), strict=True):
        reach[i].append(j)
    out = []
    for s, candidates in zip(stops, reach, strict=True):
        # only places that can be within reach get the exact (scalar) distance
        best: tuple[float, int] | None = None
        for idx in candidates:
            p = places.places[idx]
            d_ = haversine_m(s.lat, s.lon, p.lat, p.lon)
            if d_ <= max_distance_m and (best is None or d_ < best[0]):
                best = (d_, p.id)
        out.append(StopMatch(s, best[1] if best else None, best[0] if best else None))
    return out


def _near(fa: FixArrays, lat: float, lon: float, radius_m: float) -> np.ndarray:
    d = haversine_np(fa.lat, fa.lon, lat, lon)
    near = d <= radius_m
    for i in np.flatnonzero(np.abs(d - radius_m) <= _EDGE_M).tolist():
        near[i] = haversine_m(float(fa.lat[i]), float(fa.lon[i]), lat, lon) <= radius_m
    return near


def _longest_near_run_arrays(w: FixArrays, lat: float, lon: float) -> float:
    near = _near(w, lat, lon, NEAR_CUSTOMER_M)
    if not near.any():
        return 0.0
    n = len(w)
    starts = near.copy()
    if n > 1:
        long_gap = np.diff(w.t_us) / 1_000_000 > GAP_S * 5
        starts[1:] = near[1:] & (~near[:-1] | long_gap)
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    runs = (w.t_us - w.t_us[first])[near]
    return max(0.0, float(runs.max()) / 1_000_000) if runs.size else 0.0


def _coverage_arrays(w: FixArrays, start_us: int, end_us: int) -> float:
    total = (end_us - start_us) / 1_000_000
    if total <= 0:
        return 1.0 if len(w) else 0.0  # the window is the fixes within WINDOW already
    lo = int(np.searchsorted(w.t_us, start_us, "left"))
    hi = int(np.searchsorted(w.t_us, end_us, "right"))
    if hi <= lo:
        return 0.0
    edges = [start_us, *w.t_us[lo:hi].tolist(), end_us]
    covered = 0.0
    for a, b in itertools.pairwise(edges):
        covered += min((b - a) / 1_000_000, GAP_S)
    return max(0.0, min(1.0, covered / total))


class DayTrace:
    """One rep's cleaned fixes of one local day, for :func:`trace_facts_arrays`."""

    def __init__(self, fa: FixArrays) -> None:
        self.fa = fa
        self.speeds = _consecutive_speeds(fa)


def trace_facts_arrays(
    visit: RecordedVisit, day: DayTrace, *, max_speed_kmh: float = MAX_SPEED_KMH
) -> TraceFacts:
    """:func:`core.trajectory.evidence.trace_facts` over one day's arrays."""
    fa = day.fa
    if len(fa) == 0:
        return TraceFacts(False, False, None, None, [])
    end = visit.check_out_at or visit.check_in_at
    cin_us, end_us = to_us(visit.check_in_at), to_us(end)
    win_us = WINDOW // _US
    lo = int(np.searchsorted(fa.t_us, cin_us - win_us, "left"))
    hi = int(np.searchsorted(fa.t_us, end_us + win_us, "right"))
    w = fa.take(slice(lo, hi))
    cov = _coverage_arrays(w, cin_us, end_us)
    if hi <= lo:
        return TraceFacts(True, False, cov, None, [])
    dwell = _longest_near_run_arrays(w, visit.customer_lat, visit.customer_lon)
    # pairs (i, i+1) inside the window; the scalar speed decides near the threshold
    seg = day.speeds[lo : hi - 1]
    slack_us = JUMP_SLACK // _US
    jumps = []
    for k in np.flatnonzero(seg - max_speed_kmh > -_EDGE_M).tolist():
        a, b = fa.fix(lo + k), fa.fix(lo + k + 1)
        if speed_kmh(a, b) <= max_speed_kmh:
            continue
        if to_us(a.ts) <= end_us + slack_us and to_us(b.ts) >= cin_us - slack_us:
            jumps.append((a.ts, a.lat, a.lon, b.ts, b.lat, b.lon))
    return TraceFacts(True, True, cov, dwell, jumps)


def trace_facts_many(
    visits: Sequence[RecordedVisit], day: DayTrace, *, max_speed_kmh: float = MAX_SPEED_KMH
) -> list[TraceFacts]:
    """:func:`trace_facts_arrays` for several visits on one day, distances in one pass."""
    fa = day.fa
    n = len(visits)
    if len(fa) == 0 or n == 0:
        return [TraceFacts(False, False, None, None, []) for _ in visits]
    win_us = WINDOW // _US
    cin = np.array([to_us(v.check_in_at) for v in visits], dtype=np.int64)
    end = np.array([to_us(v.check_out_at or v.check_in_at) for v in visits], dtype=np.int64)
    lo = np.searchsorted(fa.t_us, cin - win_us, "left")
    hi = np.searchsorted(fa.t_us, end + win_us, "right")
    lens = np.maximum(hi - lo, 0)
    dwell = [None] * n
    total = int(lens.sum())
    if total:
        # every visit's window, one after the other
        offs = np.cumsum(lens) - lens
        idx = np.arange(total) - np.repeat(offs, lens) + np.repeat(lo, lens)
        seg = np.repeat(np.arange(n), lens)
        clat = np.array([v.customer_lat for v in visits])[seg]
        clon = np.array([v.customer_lon for v in visits])[seg]
        lat, lon, t = fa.lat[idx], fa.lon[idx], fa.t_us[idx]
        d = haversine_np(lat, lon, clat, clon)
        near = d <= NEAR_CUSTOMER_M
        for i in np.flatnonzero(np.abs(d - NEAR_CUSTOMER_M) <= _EDGE_M).tolist():
            near[i] = (
                haversine_m(float(lat[i]), float(lon[i]), float(clat[i]), float(clon[i]))
                <= NEAR_CUSTOMER_M
            )
        first_in_window = np.zeros(total, dtype=bool)
        nonempty = offs[lens > 0]
        first_in_window[nonempty] = True
        starts = near.copy()
        if total > 1:
            long_gap = np.diff(t) / 1_000_000 > GAP_S * 5
            starts[1:] = near[1:] & (first_in_window[1:] | ~near[:-1] | long_gap)
        first = np.maximum.accumulate(np.where(starts, np.arange(total), 0))
        runs = np.where(near, t - t[first], -1)
        longest = np.maximum.reduceat(runs, nonempty).tolist()
        for k, best in zip(np.flatnonzero(lens > 0).tolist(), longest, strict=True):
            dwell[k] = max(0.0, best / 1_000_000) if best >= 0 else 0.0
    slack_us = JUMP_SLACK // _US
    out = []
    for k in range(n):
        a, b = int(lo[k]), int(hi[k])
        w = fa.take(slice(a, b))
        cov = _coverage_arrays(w, int(cin[k]), int(end[k]))
        if b <= a:
            out.append(TraceFacts(True, False, cov, None, []))
            continue
        jumps = []
        for j in np.flatnonzero(day.speeds[a : b - 1] - max_speed_kmh > -_EDGE_M).tolist():
            fa_, fb = fa.fix(a + j), fa.fix(a + j + 1)
            if speed_kmh(fa_, fb) <= max_speed_kmh:
                continue
            if to_us(fa_.ts) <= int(end[k]) + slack_us and to_us(fb.ts) >= int(cin[k]) - slack_us:
                jumps.append((fa_.ts, fa_.lat, fa_.lon, fb.ts, fb.lat, fb.lon))
        out.append(TraceFacts(True, True, cov, dwell[k], jumps))
    return out
