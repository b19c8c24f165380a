"""Demand overlay: how many people a store needs each opening hour, and how many it has.

required(hour) = max(store.min_floor_staff, ceil(forecast visitors ÷ store.target_star))
during opening hours (0 outside). The forecast is
``core.traffic.forecast.hourly_forecast(session, store_id, start, days)`` keyed by
(store-local date, local hour). Without a forecast (module missing or no history) the
requirement is the minimum floor staffing, and ``forecast_available`` says so.

scheduled(hour) counts floor shifts (draft and published; the floor roles of
:data:`core.traffic.hours.FLOOR_ROLES`, so stock clerks in the back room do not count, as in
the STAR the traffic screen reports) by the fraction of the store's open part of that hour
they cover, so a shift starting 09:30 in a store opening at 09:30 counts fully for 09:00.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.i18n import N_
from core.scheduling.rules import SOFT, ShiftSpan, StoreInfo, Violation
from core.timeutil import tz
from core.traffic.records import FLOOR_ROLES

if TYPE_CHECKING:  # the demand maths needs no database library (core.quickread)
    from sqlalchemy.orm import Session

#: (store-local date, local hour 0..23) -> forecast visitors in that hour.
Forecast = dict[tuple[dt.date, int], float]


def load_forecast(session: Session, store_id: int, start: dt.date, days: int) -> Forecast | None:
    """The traffic forecast, or None when the forecast module is not available."""
    try:
        from core.traffic.forecast import hourly_forecast
    except ModuleNotFoundError as e:
        if e.name not in ("core.traffic", "core.traffic.forecast"):
            raise
        return None
    return hourly_forecast(session, store_id, start, days)


def required_staff(visitors: float | None, store: StoreInfo) -> int:
    if visitors is None or store.target_star <= 0:
        return store.min_floor_staff
    return max(store.min_floor_staff, math.ceil(visitors / store.target_star - 1e-9))


def open_interval(day: dt.date, store: StoreInfo) -> tuple[dt.datetime, dt.datetime]:
    zone = tz(store.timezone)
    opens = dt.datetime.combine(day, store.opens_at, zone)
    close_day = day if store.closes_at > store.opens_at else day + dt.timedelta(days=1)
    closes = dt.datetime.combine(close_day, store.closes_at, zone)
    return opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)


@dataclass(frozen=True)
class HourDemand:
    day: dt.date
    hour: int  # local hour of the day
    forecast: float | None
    required: int
    scheduled: float

    @property
    def gap(self) -> float:
        """People missing in this hour (0 when covered)."""
        return max(0.0, self.required - self.scheduled)

    @property
    def short(self) -> bool:
        return self.scheduled + 1e-6 < self.required


@dataclass(frozen=True)
class DayDemand:
    day: dt.date
    hours: tuple[HourDemand, ...]  # opening hours only, in order

    @property
    def short_hours(self) -> tuple[HourDemand, ...]:
        return tuple(h for h in self.hours if h.short)

    @property
    def required_hours(self) -> float:
        return float(sum(h.required for h in self.hours))

    @property
    def scheduled_hours(self) -> float:
        return sum(min(h.scheduled, h.required) for h in self.hours)


@dataclass(frozen=True)
class WeekDemand:
    week_start: dt.date
    days: tuple[DayDemand, ...]
    forecast_available: bool

    def hour(self, day: dt.date, hour: int) -> HourDemand | None:
        for d in self.days:
            if d.day == day:
                for h in d.hours:
                    if h.hour == hour:
                        return h
        return None

    @property
    def gaps(self) -> tuple[HourDemand, ...]:
        return tuple(h for d in self.days for h in d.short_hours)

    def violations(self) -> list[Violation]:
        """One soft ``understaffed`` finding per day with gaps, naming the worst hour."""
        out: list[Violation] = []
        for d in self.days:
            short = d.short_hours
            if not short:
                continue
            worst = max(short, key=lambda h: (h.gap, -h.hour))
            out.append(
                Violation(
                    "understaffed",
                    SOFT,
                    N_(
                        "{weekday} {date}: fewer staff than demand needs in {n} hour(s); "
                        "worst {hour}:00 with {scheduled} scheduled for {required} needed."
                    ),
                    {
                        "weekday": d.day.weekday(),
                        "date": f"{d.day:%m-%d}",
                        "n": len(short),
                        "hour": f"{worst.hour:02d}",
                        "scheduled": f"{worst.scheduled:.1f}".rstrip("0").rstrip("."),
                        "required": worst.required,
                    },
                    (),
                    (),
                    d.day,
                )
            )
        return out


def scheduled_per_hour(
    day: dt.date, store: StoreInfo, shifts: Sequence[ShiftSpan]
) -> dict[int, float]:
    """Local hour -> people on the floor (fraction of the open part of the hour covered)."""
    zone = tz(store.timezone)
    opens, closes = open_interval(day, store)
    shifts = [s for s in shifts if s.role in FLOOR_ROLES]
    out: dict[int, float] = {}
    for h in range(24):
        a = dt.datetime.combine(day, dt.time(h), zone).astimezone(dt.UTC)
        b = a + dt.timedelta(hours=1)
        a, b = max(a, opens), min(b, closes)
        if b <= a:
            continue
        span = (b - a).total_seconds()
        total = 0.0
        for s in shifts:
            lo, hi = max(a, s.start), min(b, s.end)
            if hi > lo:
                total += (hi - lo).total_seconds() / span
        out[h] = total
    return out


def day_demand(
    day: dt.date, store: StoreInfo, forecast: Forecast | None, shifts: Sequence[ShiftSpan]
) -> DayDemand:
    sched = scheduled_per_hour(day, store, shifts)
    hours = []
    for h, n in sorted(sched.items()):
        visitors = forecast.get((day, h), 0.0) if forecast is not None else None
        hours.append(HourDemand(day, h, visitors, required_staff(visitors, store), n))
    return DayDemand(day, tuple(hours))


def week_demand(
    store: StoreInfo,
    week_start: dt.date,
    forecast: Forecast | None,
    shifts: Sequence[ShiftSpan],
) -> WeekDemand:
    days = tuple(
        day_demand(week_start + dt.timedelta(days=i), store, forecast, shifts) for i in range(7)
    )
    return WeekDemand(week_start, days, forecast is not None)
