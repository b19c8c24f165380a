"""KPI definitions over store-hours, and a region's two-week figures (no database library).

:mod:`core.traffic.analytics` documents the definitions and re-exports these names; they
live apart so the app's start path (``core.quickread``) computes the home's figures from
driver-level reads with the very same code, before SQLAlchemy is imported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.timeutil import local_day_bounds
from core.traffic.quality import REFERENCE_WEEKS, detect_outages
from core.traffic.records import HourRecord, StoreInfo, staff_hours_of

Key = tuple[dt.date, int]


@dataclass(frozen=True)
class Kpis:
    visitors: int
    transactions: int
    sales_fen: int
    units: int | None
    conversion: float | None
    atv_fen: int | None
    upt: float | None
    staff_hours: float
    star: float | None
    hours: int  # hours with data
    excluded_hours: int  # of which not trusted for visitors

    @property
    def sales_yuan(self) -> float:
        return self.sales_fen / 100.0


def _div_round_half_up(num: int, den: int) -> int:
    return (2 * num + den) // (2 * den)


def compute_kpis(
    records: Iterable[HourRecord],
    excluded: Iterable[Key] = (),
    staff_hours: Mapping[Key, float] | None = None,
) -> Kpis:
    """The KPI definitions above over a set of hours (pure, hand-checkable)."""
    bad = set(excluded)
    staff = staff_hours or {}
    visitors = transactions = sales = 0
    trusted_txn = 0
    units = units_txn = 0
    any_units = False
    trusted_staff = 0.0
    n = n_bad = 0
    for r in records:
        n += 1
        transactions += r.transactions
        sales += r.sales_fen
        if r.units is not None:
            any_units = True
            units += r.units
            units_txn += r.transactions
        if (r.day, r.hour) in bad:
            n_bad += 1
            continue
        visitors += r.visitors
        trusted_txn += r.transactions
        trusted_staff += staff.get((r.day, r.hour), 0.0)
    return Kpis(
        visitors=visitors,
        transactions=transactions,
        sales_fen=sales,
        units=units if any_units else None,
        conversion=trusted_txn / visitors if visitors else None,
        atv_fen=_div_round_half_up(sales, transactions) if transactions else None,
        upt=units / units_txn if units_txn else None,
        staff_hours=round(trusted_staff, 4),
        star=visitors / trusted_staff if trusted_staff > 0 else None,
        hours=n,
        excluded_hours=n_bad,
    )


def pct_change(current: float | None, previous: float | None) -> float | None:
    """Relative change (0.1 = +10 %); None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


def week_pair_ranges(week_start: dt.date, today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(first day of history, first day of the previous week, last day) that
    :func:`weeks_kpis` needs loaded: hours from the first, floor shifts from the second."""
    week_start = week_start - dt.timedelta(days=week_start.weekday())
    days = max(1, min(7, (today - week_start).days + 1))
    end = week_start + dt.timedelta(days=days - 1)
    prev_start = week_start - dt.timedelta(days=7)
    return prev_start - dt.timedelta(weeks=REFERENCE_WEEKS), prev_start, end


def weeks_kpis(
    infos: Sequence[StoreInfo],
    records: Mapping[int, list[HourRecord]],
    hols: Iterable[dt.date],
    shifts: Mapping[int, list[tuple[dt.datetime, dt.datetime]]],
    week_start: dt.date,
    today: dt.date,
) -> dict[int, tuple[Kpis, Kpis]]:
    """Each store's ``(current, previous_week)`` KPIs from loaded hours and floor shifts.

    The figures of :func:`core.traffic.analytics.stores_week_kpis` (which loads the
    inputs over :func:`week_pair_ranges`): each week's outages are judged against that
    week's own :data:`REFERENCE_WEEKS` of history, as ``week_comparison`` does.
    """
    week_start = week_start - dt.timedelta(days=week_start.weekday())
    days = max(1, min(7, (today - week_start).days + 1))
    end = week_start + dt.timedelta(days=days - 1)
    windows = [(week_start - dt.timedelta(days=o), end - dt.timedelta(days=o)) for o in (0, 7)]
    hol = set(hols)
    out: dict[int, tuple[Kpis, Kpis]] = {}
    for info in infos:
        recs = records[info.id]
        # Staff-hours of the two weeks at once: a shift's share of an hour does not depend
        # on where the range is clipped, and only the weeks' own hours are looked up.
        staff = staff_hours_of(
            shifts[info.id],
            info.timezone,
            local_day_bounds(windows[-1][0], info.timezone)[0],
            local_day_bounds(end, info.timezone)[1],
        )
        got = []
        for start, stop in windows:
            ref_start = start - dt.timedelta(weeks=REFERENCE_WEEKS)
            history = [r for r in recs if ref_start <= r.day <= stop]
            outages = detect_outages(history, info, hol, judge=(start, stop))
            in_range = [r for r in history if start <= r.day <= stop]
            got.append(compute_kpis(in_range, outages.keys(), staff))
        out[info.id] = (got[0], got[1])
    return out
