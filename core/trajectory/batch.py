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
Some decisions are first made with cheaper bounds (no trigonometry: a squared
distance, or haversine's ``a`` bounded from above and below); only what they leave
open is measured, as above (tests/core/test_trajectory_batch_edges.py puts traces on
those edges).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely

from core.timeutil import local_day_bounds
from core.timeutil import tz as zone_of
from core.trajectory.arrays import (
    _EDGE_M,
    EPOCH,
    FixArrays,
    PlaceArrays,
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
    def cos_lat(self) -> np.ndarray:
        """cos(latitude) of every fix."""
        return np.cos(np.radians(self.fa.lat))

    def maybe_fast(self, max_speed_kmh: float) -> np.ndarray:
        """For each pair (i, i+1) of one segment: False where ``speed_kmh`` of the two is
        surely at most ``max_speed_kmh``, else True (for the scalar function to decide).

        Without trigonometry: haversine's ``a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`` is
        at most ``(Δφ/2)² + (Δλ/2)²``, and ``asin(y) <= y · 2π/3`` for ``y <= 1/2``
        (asin is convex and ``asin(1/2) = π/6``), so the distance is at most
        ``2R · 2π/3 · sqrt`` of that (with a margin for rounding).
        """
        fa = self.fa
        if len(fa) < 2:
            return np.zeros(0, dtype=bool)
        hp = np.diff(fa.lat)
        hp *= math.pi / 360
        hp *= hp
        hl = np.diff(fa.lon)
        hl *= math.pi / 360
        hl *= hl
        hl += hp
        upper_kmh_s = np.sqrt(hl)
        upper_kmh_s *= 2 * EARTH_RADIUS_M * (2 * math.pi / 3) * 3.6 * (1 + 1e-6)
        secs = np.abs(np.diff(fa.t_us)) / 1_000_000
        slow = (hl <= 0.25) & (upper_kmh_s < max_speed_kmh * secs)
        return ~slow & self.same_segment()


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
    keep = np.ones(m, dtype=bool)
    # fix i after the one before it, where it may be too fast. A fix right after a
    # dropped spike is always kept (it was compared with the last kept fix when the spike
    # was dropped).
    fast = np.flatnonzero(acc.maybe_fast(max_speed_kmh)) + 1
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
    return acc.take(np.flatnonzero(keep))


def detect_stops_batch(
    b: Batch,
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[list[Stop]]:
    """:func:`core.trajectory.stops.detect_stops` of every segment (time-ordered); see
    :func:`_stop_runs`."""
    return detect_stop_table(
        b, radius_m=radius_m, min_dwell_s=min_dwell_s, max_gap_s=max_gap_s
    ).stops


@dataclass(frozen=True)
class StopTable:
    """:func:`detect_stops_batch`'s stops, and the same stops as columns: every
    segment's stops one after the other (segment by segment, in time order)."""

    stops: list[list[Stop]]
    seg: np.ndarray  # int64: the segment of each stop
    start_us: np.ndarray  # int64: Stop.start (its first fix)
    end_us: np.ndarray  # int64: Stop.end (its last fix)
    lat: np.ndarray  # Stop.lat
    lon: np.ndarray  # Stop.lon

    @property
    def offsets(self) -> np.ndarray:
        """Segment ``k``'s stops are rows ``[offsets[k], offsets[k + 1])``."""
        off = np.zeros(len(self.stops) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in self.stops], out=off[1:])
        return off


def detect_stop_table(
    b: Batch,
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> StopTable:
    """:func:`detect_stops_batch`, with the stops as columns too."""
    found = _stop_runs(b, radius_m=radius_m, min_dwell_s=min_dwell_s, max_gap_s=max_gap_s)
    out: list[list[Stop]] = [[] for _ in range(b.segments)]
    seg = np.array([k for k, _, _ in found], dtype=np.int64)
    first = np.array([s for _, s, _ in found], dtype=np.int64)
    end = np.array([j for _, _, j in found], dtype=np.int64)
    t = b.fa.t_us
    start_us, end_us = t[first], t[end - 1]
    if not found:
        z = np.zeros(0)
        return StopTable(out, seg, start_us, end_us, z, z)
    times = _instants(np.concatenate((start_us, end_us)))
    lats, lons = _run_means(b.fa.lat, b.fa.lon, first, end)
    nf = len(found)
    for m, (k, s, j) in enumerate(found):
        out[k].append(Stop(times[m], times[m + nf], lats[m], lons[m], j - s))
    return StopTable(out, seg, start_us, end_us, np.array(lats), np.array(lons))


def _stop_runs(
    b: Batch,
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[tuple[int, int, int]]:
    """The runs of :func:`detect_stops_batch`: (segment, first fix, end) of every stop,
    by segment and time.

    ``detect_stops`` extends a run from an anchor while the next fix is within reach of
    it, up to a gap in the data (here also the segment's end); a run lasting
    ``min_dwell_s`` is a stop and the scan resumes after it, else at the next fix. Two
    facts about an anchor decide everything, and neither depends on the scan:

    * whether its run lasts ``min_dwell_s``: every fix up to the first one that long
      after the anchor is within reach (and in its run). Decided for all anchors at once,
      one offset ``d`` (fix ``i + d`` against anchor ``i``) per step over whole arrays,
      until no anchor is undecided: about ``min_dwell_s`` over the fix interval steps;
    * where the run ends: needed only where the scan finds a stop (a few anchors per
      rep), searched in blocks of fixes (:meth:`_Reach.run_ends`).

    The scan then only walks from stop to stop.
    """
    n = len(b)
    if n == 0:
        return []
    fa = b.fa
    t = fa.t_us
    need = _min_us(min_dwell_s)
    if need is None or need > int(t.max()) - int(t.min()):
        return []  # no run lasts that long
    # a run ends at the first gap in the data or at its segment's end, whatever the
    # distances: that index for every fix
    gap = np.diff(t) / 1_000_000 > max_gap_s
    breaks = np.append(np.flatnonzero(gap | ~b.same_segment()) + 1, n)
    idx = np.arange(n)
    run_limit = breaks[np.searchsorted(breaks, idx, "right")]
    reach = _Reach(fa.lat, fa.lon, radius_m, b.cos_lat)

    # 1. for every anchor whose run lasts long enough: the fix it does so at
    long_at = np.full(n, -1, dtype=np.int64)
    if need == 0:
        long_at[:] = idx
    else:
        room = run_limit - idx  # fix i + d is in anchor i's run iff d < room[i]
        undecided = np.ones(n, dtype=bool)
        span, flag = np.empty(n, dtype=np.int64), np.empty(n, dtype=bool)  # scratch
        for d in range(1, n):
            m = n - d
            a = undecided[:m]  # a view: the updates below are undecided's
            a &= np.greater(room[:m], d, out=flag[:m])
            undecided[m:] = False
            if not a.any():
                break
            a &= reach.shifted(d, a)
            lasts = np.greater_equal(np.subtract(t[d:], t[:m], out=span[:m]), need, out=flag[:m])
            lasts &= a
            np.copyto(long_at[:m], idx[d:], where=lasts)
            a ^= lasts  # (lasts implies a)
    starts = np.flatnonzero(long_at >= 0)
    if not starts.size:
        return []

    # 2. the scan, from stop to stop. Run ends are searched in rounds: first for every
    # anchor starting a series of consecutive stop anchors (almost every stop starts at
    # one), then for the anchors the scan landed on and had none for
    run_end: dict[int, int] = {}
    found: list[tuple[int, int, int]] = []  # (segment, first fix, end) of each stop
    # the series of consecutive stop anchors: [series_first[k], series_end[k])
    cut = np.flatnonzero(np.diff(starts) > 1) + 1
    series_first = starts[np.append(0, cut)].tolist()
    series_end = (starts[np.append(cut - 1, len(starts) - 1)] + 1).tolist()
    pending = starts.tolist() if need == 0 else list(series_first)
    seg_ends = b.starts[1:].tolist()
    scans = [(k, int(b.starts[k])) for k in range(b.segments) if b.starts[k] < b.starts[k + 1]]
    while scans:
        if pending:
            a_ = np.array(pending, dtype=np.int64)
            ends = reach.run_ends(a_, long_at[a_] + 1, run_limit[a_])
            run_end.update(zip(pending, ends.tolist(), strict=True))
            pending = []
        waiting = []
        for k, i in scans:
            e = seg_ends[k]
            q = bisect.bisect_right(series_end, i)  # the first series ending after i
            while q < len(series_end):
                s = max(i, series_first[q])  # the first stop anchor from i on
                if s >= e:
                    break
                j = run_end.get(s)
                if j is None:
                    pending.append(s)
                    waiting.append((k, s))
                    break
                found.append((k, s, j))
                i = j
                q = bisect.bisect_right(series_end, i, q)
        scans = waiting
    found.sort()  # by segment; a rep's stops were found in time order, whatever the rounds
    return found


def _instants(us: np.ndarray) -> list[dt.datetime]:
    """``EPOCH + timedelta(microseconds=u)`` of each ``u`` (numpy makes the timedeltas)."""
    return [EPOCH + d for d in us.astype("timedelta64[us]").astype(object).tolist()]


#: ``sum()`` of floats adds them one by one, left to right, up to Python 3.11; from 3.12
#: on it compensates the rounding (Neumaier), which numpy does not reproduce
_SEQUENTIAL_SUM = sys.version_info < (3, 12)


def _run_means(
    lat: np.ndarray, lon: np.ndarray, first: np.ndarray, end: np.ndarray
) -> tuple[list[float], list[float]]:
    """For each run ``[first[m], end[m])`` (non-empty): ``sum(run) / len(run)`` of its
    latitudes and of its longitudes, as ``detect_stops`` computes a stop's centre.

    ``sum()`` starts from the int 0 (``0 + x`` is ``0.0 + x``) and, up to Python 3.11,
    adds one by one (:data:`_SEQUENTIAL_SUM`, :func:`_range_sums`).
    """
    n = end - first
    if not _SEQUENTIAL_SUM:
        lat_l, lon_l = [], []
        for s, j in zip(first.tolist(), end.tolist(), strict=True):
            run_lat, run_lon = lat[s:j].tolist(), lon[s:j].tolist()
            lat_l.append(sum(run_lat) / len(run_lat))
            lon_l.append(sum(run_lon) / len(run_lon))
        return lat_l, lon_l
    sums = _range_sums(
        first,
        end,
        np.zeros(len(n)),
        lambda i: lat.take(i, mode="clip"),
        lambda i: lon.take(i, mode="clip"),
    )
    sums /= n
    return sums[0].tolist(), sums[1].tolist()


def _range_sums(
    first: np.ndarray,
    end: np.ndarray,
    start: np.ndarray,
    *values_at: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """For each ``values_at[c]`` (``v`` at given indices) and each ``m``:
    ``start[m] + v[first[m]] + ... + v[end[m] - 1]``, added left to right as a Python loop
    does (a row per ``values_at``). ``values_at`` gets indices up to
    ``max(end) + max(end - first)``: it clips them.

    The ranges side by side as columns, their values row by row, zeros below a range's
    end (adding 0.0 changes no sum other than -0.0; ``start`` must not be -0.0), added
    into the sums a row at a time; some rows per round (temporaries up to 128 KB: bigger
    ones are fresh memory each call, whose page faults cost more than the rounds).
    """
    k, m = len(values_at), len(first)
    total = np.array(np.broadcast_to(start, (k, m)), dtype=np.float64).reshape(k * m)
    n = end - first
    if not m or int(n.max()) <= 0:
        return total.reshape(k, m)
    step = max(1, 16384 // (k * m))
    for r0 in range(0, int(n.max()), step):
        idx = first + np.arange(r0, r0 + step)[:, None]  # row r: each range's r-th
        inside = np.tile(idx < end, k)
        values = np.concatenate([f(idx) for f in values_at], axis=1)
        for row in np.where(inside, values, 0.0):
            total += row
    return total.reshape(k, m)


def _min_us(seconds: float) -> int | None:
    """The least whole number of microseconds ``d >= 0`` with ``d / 1e6 >= seconds`` (a
    duration's ``total_seconds() >= seconds``), or None if no datetime span reaches it."""
    if seconds <= 0:
        return 0
    if not seconds < 1e12:  # NaN, inf, or beyond year 1 to 9999
        return None
    d = math.ceil(seconds * 1_000_000)
    while d > 0 and (d - 1) / 1_000_000 >= seconds:
        d -= 1
    while d / 1_000_000 < seconds:
        d += 1
    return d


class _Reach:
    """Whether fix ``j`` is within reach of anchor ``i`` as ``detect_stops`` decides it:
    within unless the equirectangular pre-check (squared, against ``(radius * 1.01)²``,
    with the anchor's ``cos(lat)``) and then the haversine both say beyond. numpy
    decides where it is surely on one side (margins of 1e-9 of the square, ``_EDGE_M``
    of the haversine); the scalar functions decide the rest."""

    def __init__(
        self, lat: np.ndarray, lon: np.ndarray, radius_m: float, cos_lat: np.ndarray
    ) -> None:
        self.lat, self.lon, self.radius = lat, lon, radius_m
        self.k = cos_lat
        self.r2 = (radius_m * 1.01) ** 2
        self.surely_in = self.r2 * (1 - 1e-9)
        self.surely_out = self.r2 * (1 + 1e-9)
        self.a_radius = math.sin(radius_m / (2 * EARTH_RADIUS_M)) ** 2  # haversine's a there
        self._buf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def shifted(self, d: int, wanted: np.ndarray) -> np.ndarray:
        """For every ``i < n - d``: fix ``i + d`` is within reach of ``i`` (exact where
        ``wanted``, elsewhere possibly not)."""
        lat, lon = self.lat, self.lon
        m = len(lat) - d
        if self._buf is None:  # scratch arrays, reused from step to step
            self._buf = (np.empty(len(lat)), np.empty(len(lat)), np.empty(len(lat), dtype=bool))
        dy, dx, inside = (b[:m] for b in self._buf)
        np.subtract(lat[d:], lat[:m], out=dy)
        dy *= 111_195.0
        np.subtract(lon[d:], lon[:m], out=dx)
        dx *= 111_195.0
        dx *= self.k[:m]
        dx *= dx
        dy *= dy
        dx += dy
        np.less_equal(dx, self.surely_in, out=inside)
        check = wanted & ~inside
        if check.any():
            i = np.flatnonzero(check)
            inside[i] = self._decide(i, i + d, dx[i])
        return inside

    def eq2(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The pre-check's squared distance (m²) of fix ``j`` from anchor ``i`` (broadcast)."""
        dy = (self.lat[j] - self.lat[i]) * 111_195.0
        dx = (self.lon[j] - self.lon[i]) * 111_195.0 * self.k[i]
        return dx * dx + dy * dy

    def _decide(self, i: np.ndarray, j: np.ndarray, eq2: np.ndarray) -> np.ndarray:
        """Within reach, for pairs the pre-check's square did not put surely inside."""
        lat, lon, radius = self.lat, self.lon, self.radius
        # surely beyond, without trigonometry: the pre-check says so, and so does a lower
        # bound of haversine's a (see _haversine_a_bounds)
        lat_i, lat_j, lon_i, lon_j = lat[i], lat[j], lon[i], lon[j]
        low, _ = _haversine_a_bounds(lat_i, lon_i, lat_j, lon_j, self.k[i] * self.k[j])
        inside = np.zeros(len(i), dtype=bool)
        open_ = np.flatnonzero(~((eq2 > self.surely_out) & (low > self.a_radius * (1 + 1e-8))))
        if not open_.size:
            return inside
        h = haversine_np(lat_i[open_], lon_i[open_], lat_j[open_], lon_j[open_])
        inside[open_] = h <= radius - _EDGE_M
        beyond = np.ones(len(i), dtype=bool)
        beyond[open_] = (eq2[open_] > self.surely_out) & (h > radius + _EDGE_M)
        for u in np.flatnonzero(~inside & ~beyond).tolist():
            alat, alon = float(lat[i[u]]), float(lon[i[u]])
            flat, flon = float(lat[j[u]]), float(lon[j[u]])
            k = math.cos(math.radians(alat))
            dy = (flat - alat) * 111_195.0
            dx = (flon - alon) * 111_195.0 * k
            inside[u] = not (
                dx * dx + dy * dy > self.r2 and haversine_m(alat, alon, flat, flon) > radius
            )
        return inside

    def run_ends(self, a: np.ndarray, p: np.ndarray, limit: np.ndarray) -> np.ndarray:
        """For each anchor ``a[k]``: the first index from ``p[k]`` on that is out of its
        reach, or ``limit[k]`` (its run's end) if none is before."""
        n = len(self.lat)
        out = np.empty(len(a), dtype=np.int64)
        rows = np.arange(len(a))
        width = max(16, 4096 // len(a))  # blocks of a few thousand pairs
        while rows.size:
            cols = p[:, None] + np.arange(width)
            eq2 = self.eq2(a[:, None], np.minimum(cols, n - 1))
            # cells that may end the run; the first of each row is decided, and if it
            # does not end it (the haversine says within reach), the next one
            maybe = (eq2 > self.surely_in) | (cols >= limit[:, None])
            while True:
                first = maybe.argmax(axis=1)
                r = np.flatnonzero(maybe[np.arange(len(first)), first])
                c = first[r]
                inner = cols[r, c] < limit[r]
                r, c = r[inner], c[inner]
                if not r.size:
                    break
                within = self._decide(a[r], cols[r, c], eq2[r, c])
                if not within.any():
                    break
                maybe[r[within], c[within]] = False
            hit = maybe.any(axis=1)
            out[rows[hit]] = (p + first)[hit]
            miss = ~hit
            rows, a, p, limit = rows[miss], a[miss], p[miss] + width, limit[miss]
            width *= 2
        return out


def match_stops_batch(
    stops: Sequence[Sequence[Stop]],
    places: PlaceArrays,
    *,
    max_distance_m: float = MATCH_RADIUS_M,
) -> list[list[StopMatch]]:
    """:func:`core.trajectory.stops.match_stops` of every segment's stops.

    All stops at once; a stop's candidate places come from the places sorted by
    latitude, in a band a little wider than both the box test of ``match_stops`` (which
    then decides as there) and the match radius (a great circle is at least as long as
    its difference in latitude), not from a stops x places matrix. numpy measures the
    candidates; a stop whose nearest place is nearer than any other and inside the
    radius, both by more than ``_EDGE_M``, gets it at the scalar distance, any other stop
    with a candidate is decided by the scalar loop of ``match_stops`` (places in their
    order: on a tie the first wins).
    """
    flat = [s for part in stops for s in part]
    if not flat:
        return [[] for _ in stops]
    slat = np.array([s.lat for s in flat])
    slon = np.array([s.lon for s in flat])
    order = np.argsort(places.lat, kind="stable")
    band_lat = places.lat[order]
    # 1 degree of latitude is over 111 km on the sphere of haversine_m
    half = max(0.0, min(0.0101, (max_distance_m + 1) / 111_000))
    lo = np.searchsorted(band_lat, slat - half, "left")
    hi = np.searchsorted(band_lat, slat + half, "right")
    lens = hi - lo
    si = np.repeat(np.arange(len(flat)), lens)
    pi = order[
        np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
    ]
    box = (np.abs(places.lat[pi] - slat[si]) <= 0.01) & (np.abs(places.lon[pi] - slon[si]) <= 0.012)
    si, pi = si[box], pi[box]
    d = haversine_np(slat[si], slon[si], places.lat[pi], places.lon[pi])
    keep = d <= max_distance_m + _EDGE_M
    si, pi, d = si[keep], pi[keep], d[keep]
    by_stop = np.lexsort((pi, si))  # per stop, places in their order
    si, pi, d = si[by_stop], pi[by_stop], d[by_stop]

    best_id: list[int | None] = [None] * len(flat)
    best_d: list[float | None] = [None] * len(flat)
    if si.size:
        group = np.flatnonzero(np.diff(si, prepend=-1))  # each stop's first candidate
        glen = np.diff(group, append=len(si))
        nearest = np.minimum.reduceat(d, group)
        close = np.flatnonzero(d <= np.repeat(nearest, glen) + _EDGE_M)
        # the first of a stop's nearest candidates (in the places' order) wins if the
        # others are the same point (a customer listed again for a visit)
        close_g = np.repeat(np.arange(len(group)), glen)[close]
        head = close[np.flatnonzero(np.diff(close_g, prepend=-1))]
        hp = pi[head][close_g]
        cp = pi[close]
        other = (places.lat[cp] != places.lat[hp]) | (places.lon[cp] != places.lon[hp])
        clear = nearest <= max_distance_m - _EDGE_M
        clear[close_g[other]] = False
        plat, plon, ids = places.lat.tolist(), places.lon.tolist(), places.ids
        win = head[clear]
        for i, j in zip(si[win].tolist(), pi[win].tolist(), strict=True):
            best_id[i] = ids[j]
            best_d[i] = haversine_m(flat[i].lat, flat[i].lon, plat[j], plon[j])
        for g in np.flatnonzero(~clear).tolist():
            a, z = int(group[g]), int(group[g] + glen[g])
            s = flat[int(si[a])]
            best: tuple[float, int] | None = None
            for j in pi[a:z].tolist():  # the exact (scalar) distance, as match_stops
                d_ = haversine_m(s.lat, s.lon, plat[j], plon[j])
                if d_ <= max_distance_m and (best is None or d_ < best[0]):
                    best = (d_, ids[j])
            if best is not None:
                best_d[int(si[a])], best_id[int(si[a])] = best
    matched = [StopMatch(s, i, d_) for s, i, d_ in zip(flat, best_id, best_d, strict=True)]
    out, k = [], 0
    for part in stops:
        out.append(matched[k : k + len(part)])
        k += len(part)
    return out


def visit_times(visits: Sequence[RecordedVisit]) -> tuple[np.ndarray, np.ndarray]:
    """Each visit's check-in and its end (check-out, or check-in without one), in µs."""
    cin = np.array([to_us(v.check_in_at) for v in visits], dtype=np.int64)
    end = np.array([to_us(v.check_out_at or v.check_in_at) for v in visits], dtype=np.int64)
    return cin, end


def compare_with_visits_batch(
    table: StopTable,
    matched: Sequence[Sequence[StopMatch]],
    visits: Sequence[RecordedVisit],
    segments: Sequence[int],
    *,
    slack: dt.timedelta = dt.timedelta(minutes=15),
    max_distance_m: float = MATCH_RADIUS_M,
    times: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[int | None], list[list[int]]]:
    """:func:`core.trajectory.stops.compare_with_visits` of every segment's matches
    (``matched[k]``: ``match_stops_batch`` of ``table.stops[k]``) with its visits
    (``segments[v]``: the segment of ``visits[v]``).

    Returns, for each visit, its segment's ``VisitComparison.visit_stop.get(visit.id)``,
    and each segment's ``unrecorded_stops``. The pairs a visit may take (the stop's
    times widened by ``slack`` meet the visit's, and the stop is at its customer or
    within ``max_distance_m`` of it) are found for all visits at once (numpy measures;
    within ``_EDGE_M`` of the radius the scalar ``haversine_m`` decides); then the
    visits take them in check-in order, as ``compare_with_visits`` does. ``times``:
    :func:`visit_times` of ``visits``, when made already.
    """
    nv = len(visits)
    nseg = len(matched)
    off = table.offsets
    visit_stop: list[int | None] = [None] * nv
    if nv and len(table.seg):
        seg_v = np.asarray(segments, dtype=np.int64)
        cin, end = visit_times(visits) if times is None else times
        # every (visit, stop of its segment) pair whose times meet
        cnt = off[seg_v + 1] - off[seg_v]
        vi = np.repeat(np.arange(nv), cnt)
        si = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt - off[seg_v], cnt)
        slack_us = slack // _US
        meet = (table.end_us[si] + slack_us >= cin[vi]) & (table.start_us[si] - slack_us <= end[vi])
        vi, si = vi[meet], si[meet]
        # at the visit's customer, or near it
        cust = [m.customer_id for part in matched for m in part]
        v_cust = [v.customer_id for v in visits]
        near = np.array(
            [cust[s] == v_cust[v] for v, s in zip(vi.tolist(), si.tolist(), strict=True)],
            dtype=bool,
        )
        far = np.flatnonzero(~near)
        if far.size:
            clat = np.array([v.customer_lat for v in visits])
            clon = np.array([v.customer_lon for v in visits])
            fs, fv = si[far], vi[far]
            d = haversine_np(table.lat[fs], table.lon[fs], clat[fv], clon[fv])
            near[far] = d <= max_distance_m
            for u in np.flatnonzero(np.abs(d - max_distance_m) <= _EDGE_M).tolist():
                s_, v_ = int(fs[u]), int(fv[u])
                near[far[u]] = (
                    haversine_m(float(table.lat[s_]), float(table.lon[s_]), clat[v_], clon[v_])
                    <= max_distance_m
                )
        vi, si = vi[near], si[near]
        overlap = (
            np.minimum(table.end_us[si], end[vi]) - np.maximum(table.start_us[si], cin[vi])
        ) / 1_000_000
        # each visit's pairs, in stop order; the visits in check-in order (per segment,
        # as compare_with_visits sorts them; segments share no stops)
        pairs: dict[int, list[tuple[float, int]]] = {}
        for v, ov, s in zip(vi.tolist(), overlap.tolist(), si.tolist(), strict=True):
            pairs.setdefault(v, []).append((ov, s))
        used: set[int] = set()
        taken: dict[tuple[int, str], int] = {}
        seg_l = seg_v.tolist()
        with_pairs = np.array(list(pairs), dtype=np.int64)
        for v in with_pairs[np.argsort(cin[with_pairs], kind="stable")].tolist():
            best: tuple[float, int] | None = None
            for ov, s in pairs[v]:
                if s not in used and (best is None or ov > best[0]):
                    best = (ov, s)
            if best is not None:
                used.add(best[1])
                taken[seg_l[v], visits[v].id] = best[1] - int(off[seg_l[v]])
        if taken:
            visit_stop = [taken.get((k, v.id)) for k, v in zip(seg_l, visits, strict=True)]
    else:
        used = set()
    off_l = off.tolist()
    unrecorded = [
        [
            i
            for i, m in enumerate(matched[k])
            if off_l[k] + i not in used and m.customer_id is not None
        ]
        for k in range(nseg)
    ]
    return visit_stop, unrecorded


def trace_facts_batch(
    visits: Sequence[RecordedVisit],
    segments: Sequence[int],
    b: Batch,
    tz: str,
    *,
    max_speed_kmh: float = MAX_SPEED_KMH,
    times: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[TraceFacts]:
    """:func:`core.trajectory.evidence.trace_facts` for visits of many reps and days.

    ``segments[k]`` is the segment (rep) of ``visits[k]``; each visit is judged against
    its rep's cleaned fixes of the visit's local day (``b`` time-ordered per segment), as
    :func:`core.trajectory.field_day.prepare_field_map_reference` does. ``times``:
    :func:`visit_times` of ``visits``, when made already.
    """
    nv = len(visits)
    if nv == 0:
        return []
    fa = b.fa
    win_us = WINDOW // _US
    slack_us = JUMP_SLACK // _US
    day_bounds: dict[dt.date, tuple[int, int]] = {}
    day_lo, day_hi = [0] * nv, [0] * nv
    zone = zone_of(tz)
    for k, v in enumerate(visits):
        day = v.check_in_at.astimezone(zone).date()  # to_local(v.check_in_at, tz).date()
        bounds = day_bounds.get(day)
        if bounds is None:
            a_, b_ = local_day_bounds(day, tz)
            bounds = day_bounds[day] = (to_us(a_), to_us(b_))
        day_lo[k], day_hi[k] = bounds
    cin, end = visit_times(visits) if times is None else times
    seg = np.asarray(segments, dtype=np.int64)
    search = _SegmentSearch(b)
    # the visit's day of its rep's fixes: [g0, g1); its window: [lo, hi) (as bisect with
    # lo/hi bounds: the segment's search clipped to the range)
    g0 = search(seg, np.array(day_lo, dtype=np.int64), "left")
    g1 = search(seg, np.array(day_hi, dtype=np.int64), "left")
    has_day = g1 > g0
    lo = np.where(has_day, np.clip(search(seg, cin - win_us, "left"), g0, g1), 0)
    hi = np.where(has_day, np.clip(search(seg, end + win_us, "right"), g0, g1), 0)

    lens = np.maximum(hi - lo, 0)
    dwell = np.zeros(nv)
    if int(lens.sum()):
        clat_v = np.array([v.customer_lat for v in visits])
        clon_v = np.array([v.customer_lon for v in visits])
        _dwell_batch(b, lo, lens, clat_v, clon_v, dwell)

    cov = _coverage_batch(b, search, seg, lo, hi, cin, end)
    fast_at = np.flatnonzero(b.maybe_fast(max_speed_kmh))
    fast = fast_at.tolist()
    # the pairs (j, j + 1) that may be fast within each window: fast[p0:p1]
    p0 = np.searchsorted(fast_at, lo, "left").tolist()
    p1 = np.searchsorted(fast_at, hi - 1, "left").tolist()

    out: list[TraceFacts] = []
    cin_l, end_l = cin.tolist(), end.tolist()
    for k, (day_ok, window, cov_k, dwell_k) in enumerate(
        zip(has_day.tolist(), (hi > lo).tolist(), cov.tolist(), dwell.tolist(), strict=True)
    ):
        if not day_ok:
            out.append(TraceFacts(False, False, None, None, []))
            continue
        if not window:
            out.append(TraceFacts(True, False, cov_k, None, []))
            continue
        jumps = []
        c, e = cin_l[k], end_l[k]
        for j in fast[p0[k] : p1[k]]:
            fa_, fb = fa.fix(j), fa.fix(j + 1)
            if speed_kmh(fa_, fb) <= max_speed_kmh:
                continue
            if to_us(fa_.ts) <= e + slack_us and to_us(fb.ts) >= c - slack_us:
                jumps.append((fa_.ts, fa_.lat, fa_.lon, fb.ts, fb.lat, fb.lon))
        out.append(TraceFacts(True, True, cov_k, dwell_k, jumps))
    return out


#: window fixes measured per round of :func:`_dwell_batch` (temporaries up to 128 KB:
#: bigger ones are fresh memory each call, whose page faults cost more than the rounds)
_DWELL_CHUNK = 16384


def _dwell_batch(
    b: Batch,
    lo: np.ndarray,
    lens: np.ndarray,
    clat_v: np.ndarray,
    clon_v: np.ndarray,
    dwell: np.ndarray,
) -> None:
    """``evidence._longest_near_run`` of each visit's window ``[lo, lo + lens)`` around
    its customer (``clat_v``, ``clon_v``), into ``dwell`` (seconds; left as is for an
    empty window). The windows one after the other, in rounds of whole windows."""
    fa = b.fa
    t = fa.t_us
    cos_lat = b.cos_lat
    cos_clat_v = np.cos(np.radians(clat_v))
    nv = len(lens)
    ends = np.cumsum(lens)
    offs = ends - lens  # each window's place in the windows one after the other
    shift = lo - offs  # a window's fix = its place + its shift
    v0 = 0
    while v0 < nv:
        base = int(offs[v0])
        v1 = max(v0 + 1, int(np.searchsorted(ends, base + _DWELL_CHUNK, "right")))
        n_w = int(ends[v1 - 1]) - base
        v0_, v0 = v0, v1
        if not n_w:
            continue
        wseg = np.repeat(np.arange(v0_, v1), lens[v0_:v1])
        pos = np.arange(base, base + n_w)
        idx = pos + shift[wseg]
        lat = fa.lat[idx]
        # a fix more than _NEAR_DLAT from the customer in latitude is surely not near
        # (a great circle is at least as long as its difference in latitude)
        band = np.flatnonzero(np.abs(lat - clat_v[wseg]) <= _NEAR_DLAT)
        if not band.size:
            continue
        i_b, w_b = idx[band], wseg[band]
        near = _near(
            lat[band], fa.lon[i_b], clat_v[w_b], clon_v[w_b], cos_lat[i_b], cos_clat_v[w_b]
        )
        # the fixes near the customer, in order: a run goes on while the next one is the
        # window's next fix, in the same window, with no long hole in the data before it
        at = band[near]
        if not at.size:
            continue
        w, tn = wseg[at], t[idx[at]]
        starts_ = np.ones(len(at), dtype=bool)
        starts_[1:] = (
            (np.diff(at) != 1)
            | (np.diff(w) != 0)
            | (np.diff(tn) > GAP_S * 5 * 1_000_000)  # (whole µs: as / 1e6 > GAP_S * 5)
        )
        # a run's longest stretch is from its first fix to its last (times increase)
        first = np.flatnonzero(starts_)
        last = np.append(first[1:], len(at)) - 1
        runs, w = tn[last] - tn[first], w[first]
        group = np.flatnonzero(np.diff(w, prepend=-1))  # each window's first run
        longest = np.maximum.reduceat(runs, group)
        dwell[w[group]] = np.maximum(0.0, longest / 1_000_000)


class _SegmentSearch:
    """``bisect`` of values in their segment's (time-ordered) fix times, for many values
    at once: one ``searchsorted`` over (segment, time) keys, or value by value where
    such keys would not fit in int64 (times millennia apart)."""

    def __init__(self, b: Batch) -> None:
        self.b = b
        t = b.fa.t_us
        if len(t):
            self.t0 = int(t.min())
            self.span = int(t.max()) - self.t0 + 3  # a segment's keys, and one either side
        if len(t) and self.span * (b.segments + 1) < 2**62:
            self.keys: np.ndarray | None = (t - self.t0) + b.seg * self.span
        else:
            self.keys = None

    def __call__(
        self, seg: np.ndarray, values: np.ndarray, side: Literal["left", "right"]
    ) -> np.ndarray:
        b = self.b
        if not len(b):
            return b.starts[seg]
        if self.keys is not None:
            v = np.clip(values, self.t0 - 1, self.t0 + self.span - 2) - self.t0 + seg * self.span
            return np.searchsorted(self.keys, v, side)
        tl, starts = b.fa.t_us.tolist(), b.starts.tolist()
        find = bisect.bisect_left if side == "left" else bisect.bisect_right
        return np.array(
            [
                find(tl, v, starts[s], starts[s + 1])
                for s, v in zip(seg.tolist(), values.tolist(), strict=True)
            ],
            dtype=np.int64,
        )


#: sin²(NEAR_CUSTOMER_M / 2R): haversine_m's ``a`` at exactly NEAR_CUSTOMER_M
_NEAR_A = math.sin(NEAR_CUSTOMER_M / (2 * EARTH_RADIUS_M)) ** 2


def _haversine_a_bounds(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray, cos_cos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of haversine's ``a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)``
    (``cos_cos``: cos φ1 cos φ2), without trigonometry: with the half angles ``x``,
    ``x² (1 - x²/3) <= sin² x <= x²``; the distance grows with ``a``. (Both within a few
    ulps; callers leave a margin of 1e-8 of the value they compare with.)"""
    hp = lat2 - lat1
    hp *= math.pi / 360
    hp *= hp
    hl = lon2 - lon1
    hl *= math.pi / 360
    hl *= hl
    upper = cos_cos * hl
    upper += hp
    low = np.maximum(hp, hl)
    low *= -1 / 3
    low += 1
    low *= upper
    return low, upper


def _near(
    lat: np.ndarray,
    lon: np.ndarray,
    clat: np.ndarray,
    clon: np.ndarray,
    cos_lat: np.ndarray,
    cos_clat: np.ndarray,
) -> np.ndarray:
    """``haversine_m(lat, lon, clat, clon) <= NEAR_CUSTOMER_M``, element by element:
    decided by bounds of haversine's ``a`` (:func:`_haversine_a_bounds`) where they are
    clear, else by the numpy haversine, and within ``_EDGE_M`` of the limit the scalar one.
    """
    low, upper = _haversine_a_bounds(lat, lon, clat, clon, cos_lat * cos_clat)
    near = upper <= _NEAR_A * (1 - 1e-8)
    open_ = np.flatnonzero(~near & (low < _NEAR_A * (1 + 1e-8)))
    if open_.size:
        d = haversine_np(lat[open_], lon[open_], clat[open_], clon[open_])
        near[open_] = d <= NEAR_CUSTOMER_M
        for i in open_[np.abs(d - NEAR_CUSTOMER_M) <= _EDGE_M].tolist():
            near[i] = (
                haversine_m(float(lat[i]), float(lon[i]), float(clat[i]), float(clon[i]))
                <= NEAR_CUSTOMER_M
            )
    return near


def _coverage_batch(
    b: Batch,
    search: _SegmentSearch,
    seg: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cin: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """``evidence._coverage`` of each visit's window ``[lo, hi)`` for a visit from
    ``cin`` to ``end`` (µs): the gaps between the fixes inside the visit (and from its
    start and to its end), each capped at GAP_S, summed in order."""
    t = b.fa.t_us
    total = (end - cin) / 1_000_000
    cov = np.where(hi > lo, 1.0, 0.0)  # a visit of no duration
    a = np.clip(search(seg, cin, "left"), lo, hi)
    z = np.clip(search(seg, end, "right"), lo, hi)
    k = np.flatnonzero((total > 0) & (z > a))
    cov[total > 0] = 0.0
    if not k.size:
        return cov
    a, z = a[k], z[k]
    head = np.minimum((t[a] - cin[k]) / 1_000_000, GAP_S)
    tail = np.minimum((end[k] - t[z - 1]) / 1_000_000, GAP_S)
    # the capped gaps between the fixes inside (from fix p to p + 1, p in [a, z - 1)),
    # summed in order after the head, then the tail

    def gaps(p: np.ndarray) -> np.ndarray:
        return np.minimum((t.take(p + 1, mode="clip") - t.take(p, mode="clip")) / 1_000_000, GAP_S)

    covered = _range_sums(a, z - 1, head, gaps)[0] + tail
    cov[k] = np.maximum(0.0, np.minimum(1.0, covered / total[k]))
    return cov


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
    starts = b.starts.tolist()
    is_long = lens > 2
    long_ = np.flatnonzero(is_long).tolist()
    out: list[tuple[np.ndarray, np.ndarray]] = [
        (fa.lat[starts[k] : starts[k + 1]].copy(), fa.lon[starts[k] : starts[k + 1]].copy())
        if not is_long[k]
        else (fa.lat[:0], fa.lon[:0])  # replaced below
        for k in range(nseg)
    ]
    if not long_:
        return out
    lens_long = lens[long_]
    budgets = np.array(
        [
            max(2, int(total_max_points * n / max(total, total_max_points)))
            for n in lens_long.tolist()
        ]
    )
    # each track's projection: its mean latitude's cosine
    cos_k = np.array(
        [math.cos(math.radians(float(fa.lat[starts[k] : starts[k + 1]].mean()))) for k in long_]
    )
    if len(long_) == nseg:
        lat, lon = fa.lat, fa.lon
    else:
        sel = np.repeat(is_long, lens)
        lat, lon = fa.lat[sel], fa.lon[sel]
    x = np.radians(lon) * np.repeat(cos_k, lens_long) * EARTH_RADIUS_M
    y = np.radians(lat) * EARTH_RADIUS_M
    owner = np.repeat(np.arange(len(long_)), lens_long)
    lines = shapely.linestrings(np.column_stack((x, y)), indices=owner)
    tol = np.full(len(long_), float(start_tolerance_m))
    simplified = shapely.simplify(lines, tol, preserve_topology=False)
    over = shapely.get_num_coordinates(simplified) > budgets
    while over.any():
        tol[over] *= 2
        simplified[over] = shapely.simplify(lines[over], tol[over], preserve_topology=False)
        over = shapely.get_num_coordinates(simplified) > budgets
    coords, index = shapely.get_coordinates(simplified, return_index=True)
    cut = np.searchsorted(index, np.arange(len(long_) + 1)).tolist()
    lats = np.degrees(coords[:, 1] / EARTH_RADIUS_M)
    lons = np.degrees(coords[:, 0] / np.repeat(cos_k * EARTH_RADIUS_M, np.diff(cut)))
    for pos, k in enumerate(long_):
        out[k] = (lats[cut[pos] : cut[pos + 1]], lons[cut[pos] : cut[pos + 1]])
    return out
