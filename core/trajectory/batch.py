"""The field day's steps over all reps at once: one set of arrays, reps as segments.

A region's day is ~50 reps of ~500 fixes: run rep by rep, the numpy call overhead (dozens
of small calls each) was most of the time. Here every step runs once over the
concatenated fixes, with each rep a segment ``[starts[k], starts[k + 1])``; nothing
crosses a segment boundary (pairs of consecutive fixes of two reps are masked, runs and
windows end at their segment's end). The results are those of the reference functions
over lists of fixes run on each rep alone (:func:`core.trajectory.cleaning.clean_fixes`,
:func:`core.trajectory.stops.detect_stops`, :func:`core.trajectory.stops.match_stops`,
:func:`core.trajectory.evidence.trace_facts`,
:func:`core.trajectory.simplify.simplify_tracks`; tests compare them on the demo and on
awkward synthetic traces): wherever a numpy distance or speed is within ``_EDGE_M`` of a
threshold, the scalar ``haversine_m``/``speed_kmh`` decides, as the reference does.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from core.timeutil import local_day_bounds, to_local
from core.trajectory.arrays import (
    _EDGE_M,
    FixArrays,
    PlaceArrays,
    from_us,
    haversine_np,
    to_us,
)
from core.trajectory.cleaning import (
    EARTH_RADIUS_M,
    MAX_ACCURACY_M,
    MAX_SPEED_KMH,
    haversine_m,
    speed_kmh,
)
from core.trajectory.evidence import GAP_S, JUMP_SLACK, NEAR_CUSTOMER_M, WINDOW, TraceFacts
from core.trajectory.simplify import START_TOLERANCE_M
from core.trajectory.stops import (
    MATCH_RADIUS_M,
    MAX_GAP_S,
    MIN_DWELL_S,
    STOP_RADIUS_M,
    RecordedVisit,
    Stop,
    StopMatch,
)

_US = dt.timedelta(microseconds=1)
#: degrees of latitude beyond which a fix is surely farther than NEAR_CUSTOMER_M (> 160 m)
_NEAR_DLAT = 0.00145


@dataclass(frozen=True)
class Batch:
    """Several reps' fixes in one set of arrays; segment ``k`` is ``[starts[k], starts[k+1])``."""

    fa: FixArrays
    seg: np.ndarray  # int64: the segment of each fix
    starts: np.ndarray  # int64, len = segments + 1

    @classmethod
    def of(cls, parts: Sequence[FixArrays]) -> Batch:
        lens = np.array([len(p) for p in parts], dtype=np.int64)
        starts = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lens, out=starts[1:])
        if len(parts) == 0 or starts[-1] == 0:
            return cls(FixArrays.empty(), np.zeros(0, dtype=np.int64), starts)
        fa = FixArrays(
            np.concatenate([p.t_us for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p.lat for p in parts]).astype(np.float64, copy=False),
            np.concatenate([p.lon for p in parts]).astype(np.float64, copy=False),
            np.concatenate([p.acc for p in parts]).astype(np.float64, copy=False),
        )
        return cls(fa, np.repeat(np.arange(len(parts), dtype=np.int64), lens), starts)

    @property
    def segments(self) -> int:
        return len(self.starts) - 1

    def __len__(self) -> int:
        return len(self.fa)

    def part(self, k: int) -> FixArrays:
        return self.fa.take(slice(int(self.starts[k]), int(self.starts[k + 1])))

    def take(self, idx: np.ndarray) -> Batch:
        """The fixes at ``idx`` (ascending, or ordered within segments)."""
        seg = self.seg[idx]
        starts = np.zeros_like(self.starts)
        np.cumsum(np.bincount(seg, minlength=self.segments), out=starts[1:])
        return Batch(self.fa.take(idx), seg, starts)

    def same_segment(self) -> np.ndarray:
        """For each pair (i, i+1): both fixes belong to one segment."""
        return self.seg[1:] == self.seg[:-1]

    @functools.cached_property
    def pair_m(self) -> np.ndarray:
        """haversine_np between fixes i and i+1, for every i (pairs across reps too)."""
        fa = self.fa
        if len(fa) < 2:
            return np.zeros(0)
        return haversine_np(fa.lat[:-1], fa.lon[:-1], fa.lat[1:], fa.lon[1:])

    def pair_kmh(self) -> np.ndarray:
        """:func:`speed_kmh` of fixes i and i+1 for every i, from :attr:`pair_m`."""
        if len(self) < 2:
            return np.zeros(0)
        secs = np.abs(np.diff(self.fa.t_us)) / 1_000_000
        dist = self.pair_m
        with np.errstate(divide="ignore", invalid="ignore"):
            v = dist / secs * 3.6
        return np.where(secs == 0, np.where(dist < 1, 0.0, np.inf), v)


def clean_batch(
    b: Batch, *, max_accuracy_m: float = MAX_ACCURACY_M, max_speed_kmh: float = MAX_SPEED_KMH
) -> Batch:
    """:func:`core.trajectory.cleaning.clean_fixes` (its kept fixes) of every segment."""
    n = len(b)
    if n == 0:
        return b
    fa = b.fa
    if n > 1 and bool(np.any((np.diff(fa.t_us) < 0) & b.same_segment())):
        b = b.take(np.lexsort((fa.t_us, b.seg)))  # stable: as sorted() by time, per rep
        fa = b.fa
    dup = np.zeros(n, dtype=bool)
    dup[1:] = (fa.t_us[1:] == fa.t_us[:-1]) & b.same_segment()
    inaccurate = (fa.acc > max_accuracy_m) | ~(
        (fa.lat >= -90) & (fa.lat <= 90) & (fa.lon >= -180) & (fa.lon <= 180)
    )
    acc = b.take(np.flatnonzero(~dup & ~inaccurate))
    m = len(acc)
    if m < 2:
        return acc
    same = acc.same_segment()
    speeds = acc.pair_kmh()
    keep = np.ones(m, dtype=bool)
    # speeds[i-1] is fix i after the one before it. A fix right after a dropped spike is
    # always kept (it was compared with the last kept fix when the spike was dropped).
    fast = np.flatnonzero((speeds - max_speed_kmh > -_EDGE_M) & same) + 1
    seg = acc.seg
    last_dropped = -2
    for i in fast.tolist():
        if i == last_dropped + 1:
            continue
        a, f = acc.fa.fix(i - 1), acc.fa.fix(i)
        if speed_kmh(a, f) <= max_speed_kmh:
            continue
        if i + 1 < m and seg[i + 1] == seg[i] and speed_kmh(a, acc.fa.fix(i + 1)) <= max_speed_kmh:
            keep[i] = False
            last_dropped = i
    if keep.all():
        return acc
    kept = np.flatnonzero(keep)
    out = acc.take(kept)
    # the pairs' distances carry over where two kept fixes were neighbours already
    adjacent = np.diff(kept) == 1
    pair_m = np.where(adjacent, acc.pair_m[kept[:-1]], 0.0)
    redo = np.flatnonzero(~adjacent)
    if redo.size:
        a, z = kept[redo], kept[redo + 1]
        pair_m[redo] = haversine_np(acc.fa.lat[a], acc.fa.lon[a], acc.fa.lat[z], acc.fa.lon[z])
    out.__dict__["pair_m"] = pair_m
    return out


def detect_stops_batch(
    b: Batch,
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[list[Stop]]:
    """:func:`core.trajectory.stops.detect_stops` of every segment (time-ordered)."""
    out: list[list[Stop]] = [[] for _ in range(b.segments)]
    n = len(b)
    if n == 0:
        return out
    fa = b.fa
    t, lat, lon = fa.t_us.tolist(), fa.lat.tolist(), fa.lon.tolist()
    seg = b.seg.tolist()
    # a run ends at the first gap in the data or at its segment's end, whatever the
    # distances: that index for every fix (the scalar loop below only measures distance)
    gap = np.diff(fa.t_us) / 1_000_000 > max_gap_s
    breaks = np.append(np.flatnonzero(gap | ~b.same_segment()) + 1, n)
    run_limit = breaks[np.searchsorted(breaks, np.arange(n), "right")].tolist()
    if min_dwell_s > 0 and n > 1:
        # an anchor whose next fix is surely out of reach (gap, distance with a margin, or
        # the segment's last fix) makes a one-fix run: no stop. Only the others are scanned.
        k = np.cos(np.radians(fa.lat[:-1]))
        dy = (fa.lat[1:] - fa.lat[:-1]) * 111_195.0
        dx = (fa.lon[1:] - fa.lon[:-1]) * 111_195.0 * k
        far = (dx * dx + dy * dy > ((radius_m * 1.01) ** 2) * (1 + 1e-9)) & (
            b.pair_m > radius_m + _EDGE_M
        )
        out_of_reach = np.append(gap | far | ~b.same_segment(), True)
        candidates: list[int] = np.flatnonzero(~out_of_reach).tolist()
    else:
        candidates = list(range(n))
    r2 = (radius_m * 1.01) ** 2
    pos = 0
    i = candidates[0] if candidates else n
    while i < n:
        alat, alon = lat[i], lon[i]
        e = run_limit[i]
        j = i + 1
        k_ = math.cos(math.radians(alat))
        while j < e:
            dy_ = (lat[j] - alat) * 111_195.0
            dx_ = (lon[j] - alon) * 111_195.0 * k_
            if dx_ * dx_ + dy_ * dy_ > r2 and haversine_m(alat, alon, lat[j], lon[j]) > radius_m:
                break
            j += 1
        if (t[j - 1] - t[i]) / 1_000_000 >= min_dwell_s:
            run_lat, run_lon = lat[i:j], lon[i:j]
            out[seg[i]].append(
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
    return out


def match_stops_batch(
    stops: Sequence[Sequence[Stop]],
    places: PlaceArrays,
    *,
    max_distance_m: float = MATCH_RADIUS_M,
) -> list[list[StopMatch]]:
    """:func:`core.trajectory.stops.match_stops` of every segment's stops.

    All stops at once; a stop's candidate places come from the places sorted by
    latitude (a band a little wider than the box test, which then decides as in
    ``match_stops``), not from a stops x places matrix.
    """
    flat = [s for part in stops for s in part]
    if not flat:
        return [[] for _ in stops]
    slat = np.array([s.lat for s in flat])
    slon = np.array([s.lon for s in flat])
    order = np.argsort(places.lat, kind="stable")
    band_lat = places.lat[order]
    lo = np.searchsorted(band_lat, slat - 0.0101, "left")
    hi = np.searchsorted(band_lat, slat + 0.0101, "right")
    lens = hi - lo
    si = np.repeat(np.arange(len(flat)), lens)
    pi = order[
        np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
    ]
    box = (np.abs(places.lat[pi] - slat[si]) <= 0.01) & (np.abs(places.lon[pi] - slon[si]) <= 0.012)
    si, pi = si[box], pi[box]
    by_stop = np.lexsort((pi, si))  # per stop, places in their order (ties: the first wins)
    si, pi = si[by_stop], pi[by_stop]
    d = haversine_np(slat[si], slon[si], places.lat[pi], places.lon[pi])
    keep = d <= max_distance_m + _EDGE_M
    reach: list[list[int]] = [[] for _ in flat]
    for i, j in zip(si[keep].tolist(), pi[keep].tolist(), strict=True):
        reach[i].append(j)
    matched = []
    for s, candidates in zip(flat, reach, strict=True):
        best: tuple[float, int] | None = None
        for idx in candidates:  # the exact (scalar) distance, as match_stops
            p = places.places[idx]
            d_ = haversine_m(s.lat, s.lon, p.lat, p.lon)
            if d_ <= max_distance_m and (best is None or d_ < best[0]):
                best = (d_, p.id)
        matched.append(StopMatch(s, best[1] if best else None, best[0] if best else None))
    out, k = [], 0
    for part in stops:
        out.append(matched[k : k + len(part)])
        k += len(part)
    return out


def trace_facts_batch(
    visits: Sequence[RecordedVisit],
    segments: Sequence[int],
    b: Batch,
    tz: str,
    *,
    max_speed_kmh: float = MAX_SPEED_KMH,
) -> list[TraceFacts]:
    """:func:`core.trajectory.evidence.trace_facts` for visits of many reps and days.

    ``segments[k]`` is the segment (rep) of ``visits[k]``; each visit is judged against
    its rep's cleaned fixes of the visit's local day (``b`` time-ordered per segment), as
    :func:`core.trajectory.field_day.prepare_field_map_reference` does.
    """
    nv = len(visits)
    if nv == 0:
        return []
    fa = b.fa
    tl = fa.t_us.tolist()
    starts = b.starts.tolist()
    win_us = WINDOW // _US
    slack_us = JUMP_SLACK // _US
    day_bounds: dict[dt.date, tuple[int, int]] = {}
    cin = [0] * nv
    end = [0] * nv
    lo = [0] * nv
    hi = [0] * nv
    has_day = [False] * nv
    for k, (v, s) in enumerate(zip(visits, segments, strict=True)):
        day = to_local(v.check_in_at, tz).date()
        bounds = day_bounds.get(day)
        if bounds is None:
            a_, b_ = local_day_bounds(day, tz)
            bounds = day_bounds[day] = (to_us(a_), to_us(b_))
        s0, s1 = starts[s], starts[s + 1]
        g0 = bisect.bisect_left(tl, bounds[0], s0, s1)
        g1 = bisect.bisect_left(tl, bounds[1], g0, s1)
        c, e = to_us(v.check_in_at), to_us(v.check_out_at or v.check_in_at)
        cin[k], end[k] = c, e
        if g1 > g0:
            has_day[k] = True
            lo[k] = bisect.bisect_left(tl, c - win_us, g0, g1)
            hi[k] = bisect.bisect_right(tl, e + win_us, g0, g1)

    lo_a, hi_a = np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)
    lens = np.maximum(hi_a - lo_a, 0)
    dwell: list[float | None] = [None] * nv
    total = int(lens.sum())
    if total:
        # every visit's window, one after the other; the longest run of fixes near the
        # customer in each (as evidence._longest_near_run)
        offs = np.cumsum(lens) - lens
        idx = np.arange(total) - np.repeat(offs, lens) + np.repeat(lo_a, lens)
        wseg = np.repeat(np.arange(nv), lens)
        clat = np.array([v.customer_lat for v in visits])[wseg]
        clon = np.array([v.customer_lon for v in visits])[wseg]
        lat, lon, t = fa.lat[idx], fa.lon[idx], fa.t_us[idx]
        # only fixes within reach in latitude need the distance: a great circle is at
        # least as long as its latitude difference (_NEAR_DLAT is over 160 m of it)
        reach = np.flatnonzero(np.abs(lat - clat) <= _NEAR_DLAT)
        d = haversine_np(lat[reach], lon[reach], clat[reach], clon[reach])
        near = np.zeros(total, dtype=bool)
        near[reach] = d <= NEAR_CUSTOMER_M
        for i in reach[np.abs(d - NEAR_CUSTOMER_M) <= _EDGE_M].tolist():
            near[i] = (
                haversine_m(float(lat[i]), float(lon[i]), float(clat[i]), float(clon[i]))
                <= NEAR_CUSTOMER_M
            )
        first_in_window = np.zeros(total, dtype=bool)
        nonempty = offs[lens > 0]
        first_in_window[nonempty] = True
        starts_ = near.copy()
        if total > 1:
            long_gap = np.diff(t) / 1_000_000 > GAP_S * 5
            starts_[1:] = near[1:] & (first_in_window[1:] | ~near[:-1] | long_gap)
        first = np.maximum.accumulate(np.where(starts_, np.arange(total), 0))
        runs = np.where(near, t - t[first], -1)
        longest = np.maximum.reduceat(runs, nonempty).tolist()
        for k, best in zip(np.flatnonzero(lens > 0).tolist(), longest, strict=True):
            dwell[k] = max(0.0, best / 1_000_000) if best >= 0 else 0.0

    # coverage: gaps between consecutive fixes, capped (as evidence._coverage, summed in order)
    if len(tl) > 1:
        capped = np.minimum(np.diff(fa.t_us) / 1_000_000, GAP_S).tolist()
        speeds = b.pair_kmh()
        fast = np.flatnonzero((speeds - max_speed_kmh > -_EDGE_M) & b.same_segment()).tolist()
    else:
        capped, fast = [], []

    out: list[TraceFacts] = []
    for k in range(nv):
        if not has_day[k]:
            out.append(TraceFacts(False, False, None, None, []))
            continue
        a, z, c, e = lo[k], hi[k], cin[k], end[k]
        cov = _coverage(tl, capped, a, z, c, e)
        if z <= a:
            out.append(TraceFacts(True, False, cov, None, []))
            continue
        jumps = []
        p = bisect.bisect_left(fast, a)
        while p < len(fast) and fast[p] < z - 1:
            j = fast[p]
            p += 1
            fa_, fb = fa.fix(j), fa.fix(j + 1)
            if speed_kmh(fa_, fb) <= max_speed_kmh:
                continue
            if to_us(fa_.ts) <= e + slack_us and to_us(fb.ts) >= c - slack_us:
                jumps.append((fa_.ts, fa_.lat, fa_.lon, fb.ts, fb.lat, fb.lon))
        out.append(TraceFacts(True, True, cov, dwell[k], jumps))
    return out


def _coverage(tl: list[int], capped: list[float], a: int, z: int, c: int, e: int) -> float:
    """``evidence._coverage`` of the window ``[a, z)`` for a visit from ``c`` to ``e`` (µs)."""
    total = (e - c) / 1_000_000
    if total <= 0:
        return 1.0 if z > a else 0.0
    lo = bisect.bisect_left(tl, c, a, z)
    hi = bisect.bisect_right(tl, e, a, z)
    if hi <= lo:
        return 0.0
    covered = min((tl[lo] - c) / 1_000_000, GAP_S)
    covered = functools.reduce(operator.add, capped[lo : hi - 1], covered)
    covered += min((e - tl[hi - 1]) / 1_000_000, GAP_S)
    return max(0.0, min(1.0, covered / total))


def simplify_batch(
    b: Batch, total_max_points: int, start_tolerance_m: float = START_TOLERANCE_M
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`core.trajectory.simplify.simplify_tracks` of every segment: (lats, lons) each.

    One shapely call per tolerance step for all tracks (same GEOS Douglas-Peucker, same
    projection and budgets as ``simplify_track``).
    """
    nseg = b.segments
    lens = np.diff(b.starts)
    total = int(lens.sum())
    fa = b.fa
    out: list[tuple[np.ndarray, np.ndarray]] = [
        (
            fa.lat[b.starts[k] : b.starts[k + 1]].astype(float),
            fa.lon[b.starts[k] : b.starts[k + 1]].astype(float),
        )
        for k in range(nseg)
    ]
    if total == 0:
        return out
    long_ = [k for k in range(nseg) if lens[k] > 2]
    if not long_:
        return out
    budgets = np.array(
        [max(2, int(total_max_points * int(lens[k]) / max(total, total_max_points))) for k in long_]
    )
    cos0 = np.empty(len(fa))
    sel = np.zeros(len(fa), dtype=bool)
    for k in long_:
        s0, s1 = int(b.starts[k]), int(b.starts[k + 1])
        cos0[s0:s1] = math.cos(math.radians(float(fa.lat[s0:s1].mean())))
        sel[s0:s1] = True
    lat, lon, c0 = fa.lat[sel], fa.lon[sel], cos0[sel]
    x = np.radians(lon) * c0 * EARTH_RADIUS_M
    y = np.radians(lat) * EARTH_RADIUS_M
    owner = np.repeat(np.arange(len(long_)), lens[long_])
    lines = shapely.linestrings(np.column_stack((x, y)), indices=owner)
    tol = np.full(len(long_), float(start_tolerance_m))
    simplified = shapely.simplify(lines, tol, preserve_topology=False)
    over = shapely.get_num_coordinates(simplified) > budgets
    while over.any():
        tol[over] *= 2
        simplified[over] = shapely.simplify(lines[over], tol[over], preserve_topology=False)
        over = shapely.get_num_coordinates(simplified) > budgets
    coords, index = shapely.get_coordinates(simplified, return_index=True)
    cut = np.searchsorted(index, np.arange(len(long_) + 1))
    for pos, k in enumerate(long_):
        kept = coords[cut[pos] : cut[pos + 1]]
        s0 = int(b.starts[k])
        c = math.cos(math.radians(float(fa.lat[s0 : int(b.starts[k + 1])].mean())))
        lats = np.degrees(kept[:, 1] / EARTH_RADIUS_M)
        lons = np.degrees(kept[:, 0] / (c * EARTH_RADIUS_M))
        out[k] = (lats, lons)
    return out
