""" "Propose a rota": fill a week's open needs with draft shifts that break no hard rule.

A greedy method, chosen because a manager reviews the result anyway and because it is easy
to explain ("the biggest gap first, the least-used available person"):

1. Coverage: for each day without a manager/keyholder at opening (or closing), place the
   key person shift that also covers the most unmet demand.
2. Demand: repeatedly take the candidate window (a day, a start on the half-hour grid of the
   opening hours, a length of 8, 6 or 4 hours, or "until closing") that covers the most
   unmet staff-hours, and give it to the floor person (not a stock clerk, who does not
   count towards STAR) with the most contract hours left for whom it breaks no rule; stop
   when no window helps.

A candidate is accepted only if :func:`core.scheduling.rules.violations_for_shift` finds
nothing hard for it (overlap, rest, weekly maximum, availability), and the proposal never
plans overtime: proposed hours stay within each contract. The Hypothesis test in
``tests/core/test_scheduling_solver.py`` checks that no random case breaks a hard rule.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.models import new_id
from core.scheduling.demand import Forecast, load_forecast, open_interval, week_demand
from core.scheduling.rules import (
    DEFAULT_SETTINGS,
    KEY_ROLES,
    RuleSettings,
    ShiftSpan,
    StaffInfo,
    StoreInfo,
    Violation,
    local_week_of,
    violations_for_shift,
    week_violations,
)
from core.scheduling.week import EDGE, load_spans, load_staff, load_store, week_bounds
from core.tasks import TaskState
from core.timeutil import tz
from core.traffic.hours import FLOOR_ROLES

LENGTHS_H = (8.0, 6.0, 4.0)
MIN_LENGTH_H = 4.0
STEP = dt.timedelta(minutes=30)
MAX_ROUNDS = 400


@dataclass(frozen=True)
class Proposal:
    store_id: int
    week_start: dt.date
    shifts: tuple[ShiftSpan, ...]  # new drafts, not saved
    remaining: tuple[Violation, ...]  # soft findings still open once the drafts are added
    staff_hours_before: float
    staff_hours_after: float


@dataclass(frozen=True)
class _Window:
    day: dt.date
    start: dt.datetime
    end: dt.datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0


def _windows(store: StoreInfo, week_start: dt.date) -> list[_Window]:
    out: list[_Window] = []
    for i in range(7):
        day = week_start + dt.timedelta(days=i)
        opens, closes = open_interval(day, store)
        start = opens
        while closes - start >= dt.timedelta(hours=MIN_LENGTH_H):
            ends = {start + dt.timedelta(hours=h) for h in LENGTHS_H}
            if closes - start <= dt.timedelta(hours=max(LENGTHS_H)):
                ends.add(closes)  # "until closing", never longer than the longest shift
            for end in sorted(ends):
                if end <= closes and end - start >= dt.timedelta(hours=MIN_LENGTH_H):
                    out.append(_Window(day, start, end))
            start += STEP
    return out


def _hours_in_week(shifts: Sequence[ShiftSpan], store: StoreInfo, week_start: dt.date) -> float:
    return sum(s.hours for s in shifts if local_week_of(s, store) == week_start)


def propose(
    store: StoreInfo,
    week_start: dt.date,
    staff: Sequence[StaffInfo],
    existing: Sequence[ShiftSpan],
    forecast: Forecast | None,
    settings: RuleSettings = DEFAULT_SETTINGS,
    *,
    id_factory: Callable[[], str] = new_id,
    state: TaskState | None = None,
) -> Proposal:
    """Draft shifts for ``week_start`` on top of ``existing`` (which may include shifts just
    outside the week, so rest across the week boundary is respected)."""
    people = [p for p in staff if p.active]
    by_person: dict[int, list[ShiftSpan]] = defaultdict(list)
    for s in existing:
        by_person[s.staff_id].append(s)
    week_existing = [s for s in existing if local_week_of(s, store) == week_start]
    added: list[ShiftSpan] = []
    windows = _windows(store, week_start)

    used = {p.id: _hours_in_week(by_person[p.id], store, week_start) for p in people}

    def hours_left(p: StaffInfo) -> float:
        return p.contract_hours_week - used[p.id]

    def feasible(p: StaffInfo, w: _Window, role: str) -> ShiftSpan | None:
        if hours_left(p) + 1e-9 < w.hours:
            return None
        rest = settings.min_rest
        # Cheap pre-check of overlap/rest before the full rule evaluation below.
        if any(o.start < w.end + rest and w.start < o.end + rest for o in by_person[p.id]):
            return None
        span = ShiftSpan(id_factory(), p.id, role, w.start, w.end)
        found = violations_for_shift(span, by_person[p.id], p, store, settings)
        return None if any(v.hard for v in found) else span

    def need() -> dict[dt.date, list[tuple[dt.datetime, dt.datetime, float]]]:
        """Per day: the short hours as (start, end, missing people capped at 1)."""
        demand = week_demand(store, week_start, forecast, [*week_existing, *added])
        out: dict[dt.date, list[tuple[dt.datetime, dt.datetime, float]]] = {}
        for d in demand.days:
            opens, closes = open_interval(d.day, store)
            for h in d.hours:
                if h.short:
                    a = dt.datetime.combine(d.day, dt.time(h.hour), tz(store.timezone)).astimezone(
                        dt.UTC
                    )
                    a2, b2 = max(a, opens), min(a + dt.timedelta(hours=1), closes)
                    out.setdefault(d.day, []).append((a2, b2, min(1.0, h.gap)))
        return out

    def score(
        w: _Window, gaps: dict[dt.date, list[tuple[dt.datetime, dt.datetime, float]]]
    ) -> float:
        total = 0.0
        for a, b, g in gaps.get(w.day, ()):
            lo, hi = max(a, w.start), min(b, w.end)
            if hi > lo:
                total += g * (hi - lo).total_seconds() / 3600.0
        return total

    def place(span: ShiftSpan) -> None:
        added.append(span)
        by_person[span.staff_id].append(span)
        used[span.staff_id] = used.get(span.staff_id, 0.0) + span.hours

    # 1. Opening and closing coverage by a manager or keyholder.
    keyholders = [p for p in people if p.role in KEY_ROLES]
    for i in range(7):
        day = week_start + dt.timedelta(days=i)
        opens, closes = open_interval(day, store)
        for edge in ("open", "close"):
            current = [*week_existing, *added]

            def covers(
                start: dt.datetime,
                end: dt.datetime,
                edge: str = edge,
                opens: dt.datetime = opens,
                closes: dt.datetime = closes,
            ) -> bool:
                return start <= opens < end if edge == "open" else start < closes <= end

            staff_roles = {p.id: p.role for p in staff}
            if any(
                covers(s.start, s.end)
                and (s.role in KEY_ROLES or staff_roles.get(s.staff_id) in KEY_ROLES)
                for s in current
            ):
                continue
            gaps = need()
            options = sorted(
                (w for w in windows if w.day == day and covers(w.start, w.end)),
                key=lambda w: (-score(w, gaps), -w.hours, w.start),
            )
            placed = False
            for w in options:
                for p in sorted(keyholders, key=lambda p: (-hours_left(p), p.id)):
                    span = feasible(p, w, p.role)
                    if span is not None:
                        place(span)
                        placed = True
                        break
                if placed:
                    break
        if state is not None:
            state.progress((i + 1) / 14)

    # 2. Demand: the biggest unmet need first.
    for round_no in range(MAX_ROUNDS):
        gaps = need()
        if not gaps:
            break
        ranked = sorted(
            ((score(w, gaps), w) for w in windows),
            key=lambda sw: (-sw[0], sw[1].hours, sw[1].start),
        )
        placed = False
        by_need = sorted(
            (p for p in people if p.role in FLOOR_ROLES), key=lambda p: (-hours_left(p), p.id)
        )
        for sc, w in ranked:
            if sc < 0.5:
                break
            for p in by_need:
                span = feasible(p, w, p.role)
                if span is not None:
                    place(span)
                    placed = True
                    break
            if placed:
                break
        if not placed:
            break
        if state is not None:
            state.progress(0.5 + 0.5 * min(1.0, round_no / 60))

    combined = [*existing, *added]
    remaining = [
        v for v in week_violations(week_start, combined, staff, store, settings) if not v.hard
    ]
    remaining.extend(
        week_demand(store, week_start, forecast, [*week_existing, *added]).violations()
    )
    return Proposal(
        store_id=store.id,
        week_start=week_start,
        shifts=tuple(sorted(added, key=lambda s: (s.start, s.staff_id))),
        remaining=tuple(remaining),
        staff_hours_before=_hours_in_week(week_existing, store, week_start),
        staff_hours_after=_hours_in_week([*week_existing, *added], store, week_start),
    )


def propose_rota(
    session: Session,
    store_id: int,
    week_start: dt.date,
    *,
    forecast: Forecast | None = None,
    settings: RuleSettings = DEFAULT_SETTINGS,
    state: TaskState | None = None,
) -> Proposal | None:
    """Load the store-week and propose drafts for it (None for an unknown store)."""
    store = load_store(session, store_id)
    if store is None:
        return None
    a, b = week_bounds(store, week_start)
    # Person-level rules need each person's shifts in any store around the week.
    existing = load_spans(session, store_id, a - EDGE, b + EDGE)
    staff = load_staff(session, store_id)
    if forecast is None:
        forecast = load_forecast(session, store_id, week_start, 7)
    return propose(store, week_start, staff, existing, forecast, settings, state=state)
