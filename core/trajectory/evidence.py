"""Visit evidence score: does the GPS trace back up what the rep recorded?

Four checks, each worth points (total 100; a flagged visit is capped at 50), in the spirit of Creatio's check-in
verification and Salesforce Maps' geofenced visits:

* **distance at check-in** (40): the recorded check-in position vs the customer;
* **dwell from the trace** (30): the longest run of fixes near the customer around the
  visit, compared with the recorded duration (a visit *recorded* under 5 minutes is
  flagged whatever the trace says);
* **speed jumps** (20): impossible speeds in the trace around the visit (a faked
  location "teleports");
* **trace coverage** (10): fixes present during the visit.

A visit is *flagged* when a check fails hard (far check-in, almost no dwell, a jump, or
no trace around the visit on a day the rep's phone was tracking). Every flag carries a
sentence in the user's language saying what was seen, so a supervisor does not have to
interpret numbers. A day without any trace (older history, GPS off) is reported as
"no trace", not flagged: there is nothing to contradict the record.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.i18n import _
from core.trajectory.cleaning import Fix, haversine_m, speed_jumps
from core.trajectory.stops import RecordedVisit

CHECKIN_OK_M = 100.0
CHECKIN_FLAG_M = 300.0
NEAR_CUSTOMER_M = 150.0
MIN_DWELL_FLAG_S = 5 * 60
WINDOW = dt.timedelta(minutes=30)
GAP_S = 3 * 60
#: A speed jump counts against a visit when it happens while checked in (give or take this).
JUMP_SLACK = dt.timedelta(minutes=2)
#: A hard failure outweighs good points elsewhere: a flagged visit never looks "fine".
FLAGGED_MAX_SCORE = 50


@dataclass
class VisitEvidence:
    visit_id: str
    score: int
    flagged: bool
    checkin_distance_m: float | None
    dwell_s: float | None
    recorded_s: float | None
    speed_jumps: int
    coverage: float | None  # fraction of the visit's time covered by fixes
    has_trace: bool
    reasons: list[str] = field(default_factory=list)  # flagged explanations (translated)
    notes: list[str] = field(default_factory=list)  # neutral observations (translated)

    @property
    def explanation(self) -> str:
        return " ".join(self.reasons or self.notes)


def format_distance(m: float) -> str:
    return f"{m / 1000:.1f} km" if m >= 1000 else f"{m:.0f} m"


def format_minutes(seconds: float) -> str:
    return _("{n} min").format(n=round(seconds / 60))


def _longest_near_run(fixes: Sequence[Fix], lat: float, lon: float) -> float:
    best = 0.0
    start: dt.datetime | None = None
    prev: Fix | None = None
    for f in fixes:
        near = haversine_m(f.lat, f.lon, lat, lon) <= NEAR_CUSTOMER_M
        if (
            near
            and start is not None
            and prev is not None
            and (f.ts - prev.ts).total_seconds() > GAP_S * 5
        ):
            start = f.ts  # a long hole in the data breaks the run
        if near:
            if start is None:
                start = f.ts
            best = max(best, (f.ts - start).total_seconds())
        else:
            start = None
        prev = f
    return best


def _coverage(fixes: Sequence[Fix], start: dt.datetime, end: dt.datetime) -> float:
    total = (end - start).total_seconds()
    if total <= 0:
        return 1.0 if any(start - WINDOW <= f.ts <= end + WINDOW for f in fixes) else 0.0
    inside = [f.ts for f in fixes if start <= f.ts <= end]
    if not inside:
        return 0.0
    covered = 0.0
    edges = [start, *inside, end]
    for a, b in itertools.pairwise(edges):
        gap = (b - a).total_seconds()
        covered += min(gap, GAP_S)
    return max(0.0, min(1.0, covered / total))


@dataclass(frozen=True, init=False)
class TraceFacts:
    """What the trace says around one visit (from a list of fixes or from arrays)."""

    has_day_trace: bool
    has_window: bool  # any fix within WINDOW of the visit
    coverage: float | None  # _coverage of the window (None without a day trace)
    dwell_s: float | None  # _longest_near_run of the window (None without a window)
    #: speed jumps while checked in (± JUMP_SLACK): (ts_a, lat_a, lon_a, ts_b, lat_b, lon_b)
    jumps: list[tuple[dt.datetime, float, float, dt.datetime, float, float]]

    def __init__(
        self,
        has_day_trace: bool,
        has_window: bool,
        coverage: float | None,
        dwell_s: float | None,
        jumps: list[tuple[dt.datetime, float, float, dt.datetime, float, float]],
    ) -> None:
        # What the frozen dataclass's own __init__ does at half its cost (that one sets
        # each field through object.__setattr__): one per visit, ~300 a region's day.
        d = self.__dict__
        d["has_day_trace"], d["has_window"], d["coverage"] = has_day_trace, has_window, coverage
        d["dwell_s"], d["jumps"] = dwell_s, jumps


def trace_facts(visit: RecordedVisit, day_fixes: Sequence[Fix]) -> TraceFacts:
    """The reference computation over a list of fixes (core.trajectory.batch: over arrays)."""
    end = visit.check_out_at or visit.check_in_at
    window = [f for f in day_fixes if visit.check_in_at - WINDOW <= f.ts <= end + WINDOW]
    if not day_fixes:
        return TraceFacts(False, bool(window), None, None, [])
    cov = _coverage(window, visit.check_in_at, end)
    dwell = _longest_near_run(window, visit.customer_lat, visit.customer_lon) if window else None
    # Only jumps while the rep was checked in (a spoofed position jumps to the customer at
    # check-in and back at check-out); a jump elsewhere in the window belongs to another visit.
    jumps = [
        (a.ts, a.lat, a.lon, b.ts, b.lat, b.lon)
        for a, b in speed_jumps(window)
        if a.ts <= end + JUMP_SLACK and b.ts >= visit.check_in_at - JUMP_SLACK
    ]
    return TraceFacts(True, bool(window), cov, dwell, jumps)


def score_visit(visit: RecordedVisit, day_fixes: Sequence[Fix]) -> VisitEvidence:
    """Score one visit against the rep's cleaned fixes of that day (time-ordered)."""
    return score_visit_facts(visit, trace_facts(visit, day_fixes))


def score_visit_facts(visit: RecordedVisit, facts: TraceFacts) -> VisitEvidence:
    """The score and its explanation from what the trace says around the visit."""
    end = visit.check_out_at or visit.check_in_at
    recorded_s = (end - visit.check_in_at).total_seconds() if visit.check_out_at else None
    has_day_trace = facts.has_day_trace
    ev = VisitEvidence(
        visit_id=visit.id,
        score=0,
        flagged=False,
        checkin_distance_m=None,
        dwell_s=None,
        recorded_s=recorded_s,
        speed_jumps=0,
        coverage=None,
        has_trace=facts.has_window,
    )
    score = 0.0

    # 1. distance at check-in (40)
    if visit.check_in_lat is not None and visit.check_in_lon is not None:
        d = haversine_m(
            visit.check_in_lat, visit.check_in_lon, visit.customer_lat, visit.customer_lon
        )
        ev.checkin_distance_m = d
        if d <= CHECKIN_OK_M:
            score += 40
        elif d < CHECKIN_FLAG_M:
            score += 40 * (CHECKIN_FLAG_M - d) / (CHECKIN_FLAG_M - CHECKIN_OK_M)
        else:
            ev.reasons.append(
                _("Checked in {distance} from the customer (expected within {limit}).").format(
                    distance=format_distance(d), limit=format_distance(CHECKIN_OK_M)
                )
            )
    else:
        score += 20
        ev.notes.append(_("The check-in has no position."))

    short_record = recorded_s is not None and recorded_s < MIN_DWELL_FLAG_S
    if short_record and recorded_s is not None:
        ev.reasons.append(
            _("The visit was recorded as only {recorded}: too short for a real visit.").format(
                recorded=format_minutes(recorded_s)
            )
        )

    if not has_day_trace:
        ev.notes.append(_("No GPS trace was recorded on this day; only the check-in is checked."))
        ev.flagged = bool(ev.reasons)
        ev.score = round(score / 40 * 100) if ev.checkin_distance_m is not None else 50
        ev.score = min(ev.score, FLAGGED_MAX_SCORE) if ev.flagged else ev.score
        return ev

    # 4. coverage (10)
    cov = facts.coverage
    assert cov is not None
    ev.coverage = cov
    score += 10 * cov
    if not facts.has_window:
        ev.reasons.append(
            _(
                "The phone sent no position between {start} and {end} although it was tracking that day."
            ).format(start=_hhmm(visit.check_in_at - WINDOW), end=_hhmm(end + WINDOW))
        )
    elif cov < 0.5:
        ev.notes.append(
            _("The trace covers only {pct}% of the visit.").format(pct=round(cov * 100))
        )

    # 2. dwell from the trace (30)
    if facts.has_window:
        dwell = facts.dwell_s
        assert dwell is not None
        ev.dwell_s = dwell
        wanted = min(recorded_s, 20 * 60) if recorded_s else MIN_DWELL_FLAG_S * 2
        score += 30 * min(1.0, dwell / wanted) if wanted > 0 else 30
        if dwell < MIN_DWELL_FLAG_S and not short_record:
            if recorded_s:
                msg = _(
                    "The trace shows only {dwell} near the customer, but the visit was recorded as {recorded}."
                )
                ev.reasons.append(
                    msg.format(dwell=format_minutes(dwell), recorded=format_minutes(recorded_s))
                )
            else:
                ev.reasons.append(
                    _("The trace shows only {dwell} near the customer.").format(
                        dwell=format_minutes(dwell)
                    )
                )

    # 3. speed jumps (20), only those while checked in (see trace_facts)
    jumps = facts.jumps
    ev.speed_jumps = len(jumps)
    if jumps:
        ta, la, oa, tb, lb, ob = max(jumps, key=lambda p: haversine_m(p[1], p[2], p[4], p[5]))
        dist = haversine_m(la, oa, lb, ob)
        secs = max(1.0, (tb - ta).total_seconds())
        ev.reasons.append(
            _(
                "The position jumps {distance} in {seconds} s around the visit ({speed} km/h): a faked or borrowed location is likely."
            ).format(
                distance=format_distance(dist), seconds=round(secs), speed=round(dist / secs * 3.6)
            )
        )
    else:
        score += 20

    ev.flagged = bool(ev.reasons)
    ev.score = max(0, min(FLAGGED_MAX_SCORE if ev.flagged else 100, round(score)))
    return ev


def _hhmm(instant: dt.datetime) -> str:
    from core.timeutil import to_local

    return to_local(instant).strftime("%H:%M")
