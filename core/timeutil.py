"""Time helpers: UTC storage, store-local display, ISO weeks.

Instants are aware UTC everywhere in ``core``; a store's zone is applied only to find its
business day or hour, or to display. The demo region's "today" is fixed by its generator so
that tests are deterministic; the app's clock is injectable through :data:`Clock`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"

#: A callable returning the current aware UTC instant (tests and the demo inject one).
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def tz(name: str | None = None) -> ZoneInfo:
    return ZoneInfo(name or DEFAULT_TZ)


def to_local(instant: dt.datetime, zone: str | None = None) -> dt.datetime:
    return instant.astimezone(tz(zone))


def local_to_utc(local: dt.datetime, zone: str | None = None) -> dt.datetime:
    """A naive store-local wall time -> aware UTC."""
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz(zone))
    return local.astimezone(dt.UTC)


def local_day_bounds(day: dt.date, zone: str | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a store-local business day as UTC instants."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz(zone))
    end = start + dt.timedelta(days=1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def iso_week_start(year: int, week: int) -> dt.date:
    """Monday of ISO week ``year``-W``week``; ValueError for a week that does not exist."""
    return dt.date.fromisocalendar(year, week, 1)


def parse_iso_week(text: str) -> tuple[int, int]:
    """'2026-W47' -> (2026, 47); ValueError with a readable message otherwise."""
    try:
        year_s, week_s = text.strip().upper().split("-W")
        year, week = int(year_s), int(week_s)
        dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"not an ISO week: {text!r} (expected e.g. 2026-W47)") from None
    return year, week


def week_label(monday: dt.date) -> str:
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"
