"""The sales funnel's figures over loaded stage events (no database library).

The definitions are documented in :mod:`core.funnel`, which reads the events and
re-exports these names; they live apart so the app's start path (``core.quickread``)
computes the home's funnel from driver-level reads with the very same code.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from core.timeutil import local_day_bounds

#: The funnel's stages in order: the values of ``core.models.STAGE_ORDER`` (a test holds
#: them equal; kept here as text so the figures need no database library).
STAGES: tuple[str, ...] = ("lead", "visit", "opportunity", "quote", "contract", "payment")

STAGE_INDEX: dict[str, int] = {s: i for i, s in enumerate(STAGES)}


class FunnelMode(enum.StrEnum):
    ORDERED = "ordered"
    ANY = "any"


class PeriodBasis(enum.StrEnum):
    COHORT = "cohort"
    ACTIVITY = "activity"


@dataclass(frozen=True)
class FunnelQuery:
    """What to count: a half-open UTC period ``[start, end)`` plus optional filters."""

    start: dt.datetime
    end: dt.datetime
    mode: FunnelMode = FunnelMode.ORDERED
    basis: PeriodBasis = PeriodBasis.COHORT
    region_id: int | None = None
    store_id: int | None = None
    rep_id: int | None = None
    tier: str | None = None

    def previous(self) -> FunnelQuery:
        """The period of equal length immediately before this one, same filters."""
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start)


def period_of_days(
    last_day: dt.date, days: int, zone: str | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` in UTC covering ``days`` store-local days ending with ``last_day``."""
    start, _ = local_day_bounds(last_day - dt.timedelta(days=days - 1), zone)
    _, end = local_day_bounds(last_day, zone)
    return start, end


@dataclass(frozen=True)
class StageFigures:
    stage: str
    count: int
    amount_fen: int
    #: count / previous stage's count (None for the first stage or an empty previous stage).
    next_conversion: float | None
    #: count / first stage's count.
    cumulative_conversion: float | None
    #: Median total hours spent in this stage (completed spells only), None without data.
    median_hours: float | None
    #: Opportunities that reached a later stage without ever entering this one.
    skipped: int


@dataclass(frozen=True)
class FunnelResult:
    query: FunnelQuery
    stages: list[StageFigures]
    #: Opportunities considered (the cohort, or those with any event in the period).
    opportunities: int
    reopened: int
    previous: FunnelResult | None = None

    def stage(self, stage: str) -> StageFigures:
        return self.stages[STAGE_INDEX[str(stage)]]

    @property
    def is_empty(self) -> bool:
        return all(s.count == 0 for s in self.stages)


@dataclass(frozen=True)
class _Event:
    stage: str
    at: dt.datetime
    amount_fen: int


@dataclass
class _OppTrack:
    id: str
    events: list[_Event] = field(default_factory=list)

    @property
    def reopened(self) -> bool:
        idx = [STAGE_INDEX.get(e.stage, -1) for e in self.events]
        return any(b <= a for a, b in itertools.pairwise(idx))

    def first_entries(self) -> dict[str, _Event]:
        out: dict[str, _Event] = {}
        for e in self.events:
            out.setdefault(e.stage, e)
        return out

    def ordered_chain(self) -> dict[str, _Event]:
        """Earliest in-order entries lead, visit, ... (greedy gives the longest chain)."""
        out: dict[str, _Event] = {}
        t: dt.datetime | None = None
        for stage in STAGES:
            ev = next(
                (e for e in self.events if e.stage == stage and (t is None or e.at >= t)),
                None,
            )
            if ev is None:
                break
            out[stage] = ev
            t = ev.at
        return out

    def hours_in(self, stage: str) -> float | None:
        total = 0.0
        found = False
        for cur, nxt in itertools.pairwise(self.events):
            if cur.stage == stage:
                total += (nxt.at - cur.at).total_seconds() / 3600.0
                found = True
        return total if found else None


def tracks_from_rows(rows: Iterable[tuple]) -> list[_OppTrack]:
    """Events ``(opportunity_id, stage, entered_at, amount_fen, id)`` ordered by
    opportunity, time and id, as one track per opportunity."""
    tracks: dict[str, _OppTrack] = {}
    for opp_id, stage, at, amount, _id in rows:
        tracks.setdefault(opp_id, _OppTrack(opp_id)).events.append(_Event(stage, at, amount or 0))
    for (
        t
    ) in tracks.values():  # same instant: earlier stage first, so lead+visit at once is in order
        t.events.sort(key=lambda e: (e.at, STAGE_INDEX.get(e.stage, 99)))
    return list(tracks.values())


def _counted_entries(track: _OppTrack, query: FunnelQuery) -> dict[str, _Event]:
    entries = track.ordered_chain() if query.mode == FunnelMode.ORDERED else track.first_entries()
    if query.basis == PeriodBasis.ACTIVITY:
        entries = {s: e for s, e in entries.items() if query.start <= e.at < query.end}
    return entries


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _figures(query: FunnelQuery, tracks: Sequence[_OppTrack]) -> FunnelResult:
    counted = [(t, _counted_entries(t, query)) for t in tracks]
    entered = [t.first_entries().keys() for t in tracks]  # (once, not once per stage)
    stages: list[StageFigures] = []
    first_count = 0
    prev_count = 0
    for k, s in enumerate(STAGES):
        hits = [(t, e[s]) for t, e in counted if s in e]
        count = len(hits)
        hours = [h for t, _ in hits if (h := t.hours_in(s)) is not None]
        later = set(STAGES[k + 1 :])
        skipped = sum(1 for firsts in entered if s not in firsts and later & firsts)
        if k == 0:
            first_count = count
        stages.append(
            StageFigures(
                stage=s,
                count=count,
                amount_fen=sum(e.amount_fen for _, e in hits),
                next_conversion=None if k == 0 else _ratio(count, prev_count),
                cumulative_conversion=None if k == 0 else _ratio(count, first_count),
                median_hours=statistics.median(hours) if hours else None,
                skipped=skipped,
            )
        )
        prev_count = count
    return FunnelResult(
        query=query,
        stages=stages,
        opportunities=len(tracks),
        reopened=sum(1 for t in tracks if t.reopened),
    )
