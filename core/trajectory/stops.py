"""Stops (dwell) in a cleaned trace, matched to customers, compared with recorded visits.

Stay-point detection (Li et al. 2008, as in Salesforce Maps' "location history stops"):
from an anchor fix, extend while later fixes stay within ``radius_m`` of it; if that run
lasts at least ``min_dwell_s`` it is a stop at the run's centroid, and scanning resumes
after it. A stop near a customer (``match_radius_m``) is matched to the nearest one; then
recorded visits and trace stops are paired by customer and overlapping time, so the map
can show both "visited but no stop in the trace" and "stopped at a customer but recorded
nothing" (SPOTIO's autovisits).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.trajectory.cleaning import Fix, haversine_m

STOP_RADIUS_M = 60.0
MIN_DWELL_S = 5 * 60
MATCH_RADIUS_M = 150.0
#: A fix gap longer than this ends a stop (no data is not evidence of staying).
MAX_GAP_S = 15 * 60


@dataclass(frozen=True, init=False)
class Stop:
    start: dt.datetime
    end: dt.datetime
    lat: float
    lon: float
    n_fixes: int

    def __init__(
        self, start: dt.datetime, end: dt.datetime, lat: float, lon: float, n_fixes: int
    ) -> None:
        # What the frozen dataclass's own __init__ does at half its cost (that one sets
        # each field through object.__setattr__): a region's day has ~300 stops.
        d = self.__dict__
        d["start"], d["end"], d["lat"], d["lon"], d["n_fixes"] = start, end, lat, lon, n_fixes

    @property
    def dwell_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Place:
    """A customer (or store) location to match stops against."""

    id: int
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, init=False)
class StopMatch:
    stop: Stop
    customer_id: int | None
    distance_m: float | None

    def __init__(self, stop: Stop, customer_id: int | None, distance_m: float | None) -> None:
        # (as Stop's)
        d = self.__dict__
        d["stop"], d["customer_id"], d["distance_m"] = stop, customer_id, distance_m


@dataclass(frozen=True)
class RecordedVisit:
    """What the rep recorded (plain data, from ``core.trajectory.queries``)."""

    id: str
    rep_id: int
    customer_id: int
    check_in_at: dt.datetime
    check_out_at: dt.datetime | None
    check_in_lat: float | None
    check_in_lon: float | None
    customer_lat: float
    customer_lon: float


@dataclass
class VisitComparison:
    #: visit id -> index into the stops list of the stop that backs it
    visit_stop: dict[str, int] = field(default_factory=dict)
    #: visits with no matching stop in the trace
    visits_without_stop: list[str] = field(default_factory=list)
    #: stops at a customer with no recorded visit (index into the matches list)
    unrecorded_stops: list[int] = field(default_factory=list)


def detect_stops(
    fixes: Sequence[Fix],
    *,
    radius_m: float = STOP_RADIUS_M,
    min_dwell_s: float = MIN_DWELL_S,
    max_gap_s: float = MAX_GAP_S,
) -> list[Stop]:
    """Stay points in time-ordered cleaned fixes."""
    stops: list[Stop] = []
    n = len(fixes)
    i = 0
    while i < n:
        anchor = fixes[i]
        j = i + 1
        # cos(lat) for a cheap equirectangular pre-check before the exact distance.
        k = math.cos(math.radians(anchor.lat))
        while j < n:
            f = fixes[j]
            if (f.ts - fixes[j - 1].ts).total_seconds() > max_gap_s:
                break
            dy = (f.lat - anchor.lat) * 111_195.0
            dx = (f.lon - anchor.lon) * 111_195.0 * k
            if dx * dx + dy * dy > (radius_m * 1.01) ** 2 and (
                haversine_m(anchor.lat, anchor.lon, f.lat, f.lon) > radius_m
            ):
                break
            j += 1
        run = fixes[i:j]
        if (run[-1].ts - run[0].ts).total_seconds() >= min_dwell_s:
            stops.append(
                Stop(
                    start=run[0].ts,
                    end=run[-1].ts,
                    lat=sum(f.lat for f in run) / len(run),
                    lon=sum(f.lon for f in run) / len(run),
                    n_fixes=len(run),
                )
            )
            i = j
        else:
            i += 1
    return stops


def match_stops(
    stops: Sequence[Stop], places: Sequence[Place], *, max_distance_m: float = MATCH_RADIUS_M
) -> list[StopMatch]:
    """Each stop with its nearest customer within ``max_distance_m`` (or none)."""
    out = []
    for s in stops:
        best: tuple[float, int] | None = None
        for p in places:
            if abs(p.lat - s.lat) > 0.01 or abs(p.lon - s.lon) > 0.012:
                continue  # > ~1 km: cannot be within the match radius
            d = haversine_m(s.lat, s.lon, p.lat, p.lon)
            if d <= max_distance_m and (best is None or d < best[0]):
                best = (d, p.id)
        out.append(StopMatch(s, best[1] if best else None, best[0] if best else None))
    return out


def compare_with_visits(
    matches: Sequence[StopMatch],
    visits: Sequence[RecordedVisit],
    *,
    slack: dt.timedelta = dt.timedelta(minutes=15),
    max_distance_m: float = MATCH_RADIUS_M,
) -> VisitComparison:
    """Pair visits with stops at the same customer whose times overlap (with slack)."""
    cmp = VisitComparison()
    used: set[int] = set()
    # each stop's times widened by the slack (a visit outside them is not that stop's)
    reach = [(m.stop.start - slack, m.stop.end + slack) for m in matches]
    for v in sorted(visits, key=lambda v: v.check_in_at):
        v_start = v.check_in_at
        v_end = v.check_out_at or v_start
        best: tuple[float, int] | None = None
        for idx, (first, last) in enumerate(reach):
            if last < v_start or first > v_end or idx in used:
                continue
            m = matches[idx]
            s = m.stop
            near = m.customer_id == v.customer_id or (
                haversine_m(s.lat, s.lon, v.customer_lat, v.customer_lon) <= max_distance_m
            )
            if not near:
                continue
            overlap = (min(s.end, v_end) - max(s.start, v_start)).total_seconds()
            if best is None or overlap > best[0]:
                best = (overlap, idx)
        if best is None:
            cmp.visits_without_stop.append(v.id)
        else:
            used.add(best[1])
            cmp.visit_stop[v.id] = best[1]
    cmp.unrecorded_stops = [
        i for i, m in enumerate(matches) if i not in used and m.customer_id is not None
    ]
    return cmp
