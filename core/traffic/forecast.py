"""Hourly demand forecast: a seasonal baseline that the schedule screen staffs against.

The method (documented because the rota depends on it):

1. For each weekday × local hour, take the same weekday-hour over the last ``weeks``
   weeks of data before ``start`` (default 8), leaving out counter outages
   (:mod:`core.traffic.quality`) and public holidays — neither is normal demand.
2. Average them with exponentially decaying weights (``decay`` per week back, default
   0.8), so recent weeks count more without one odd week dominating.
3. A target day that is a public holiday is scaled by the store's holiday factor: the
   median ratio of a past holiday's visitors to its weekday baseline over the last year
   (1.0 when the history holds no holiday).
4. Hours outside the store's opening hours are 0.

:func:`evaluate_forecast` measures it on held-out weeks against the naive forecast
"same hour of the last week before the horizon"; see ``tests/core/test_traffic_forecast.py``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.traffic.quality import detect_outages
from core.traffic.records import HourRecord, StoreInfo

if TYPE_CHECKING:  # the method itself needs no database library (core.quickread)
    from sqlalchemy.orm import Session

Forecast = dict[tuple[dt.date, int], float]

DEFAULT_WEEKS = 8
DEFAULT_DECAY = 0.8
HOLIDAY_LOOKBACK_DAYS = 371


def hourly_forecast(
    session: Session,
    store_id: int,
    start: dt.date,
    days: int,
    *,
    weeks: int = DEFAULT_WEEKS,
    decay: float = DEFAULT_DECAY,
) -> Forecast:
    """Expected visitors per (local date, local hour 0..23) for ``days`` days from ``start``.

    Every hour of every day is present (0.0 outside opening hours), so callers may index
    ``fc[(day, hour)]`` directly. Uses only history strictly before ``start``.
    """
    from core.traffic.hours import holidays, load_hours, store_info

    info = store_info(session, store_id)
    hist_start = start - dt.timedelta(days=max(weeks * 7, HOLIDAY_LOOKBACK_DAYS))
    hist_end = start - dt.timedelta(days=1)
    recs = load_hours(session, info, hist_start, hist_end)
    hols = holidays(session, hist_start, start + dt.timedelta(days=days))
    return forecast_from_history(recs, info, start, days, hols, weeks=weeks, decay=decay)


def forecast_from_history(
    records: Iterable[HourRecord],
    store: StoreInfo,
    start: dt.date,
    days: int,
    holiday_dates: Iterable[dt.date] = (),
    *,
    weeks: int = DEFAULT_WEEKS,
    decay: float = DEFAULT_DECAY,
) -> Forecast:
    """The method above on given records (pure; used by the tests and the evaluation)."""
    hol = set(holiday_dates)
    recs = [r for r in records if r.day < start]
    outages = detect_outages(recs, store, hol)
    trusted = [r for r in recs if (r.day, r.hour) not in outages and store.is_open(r.hour)]

    # Anchor the window at the last day with data, so a forecast several weeks ahead
    # still averages the latest ``weeks`` weeks rather than an empty stretch.
    anchor = min(start, max((r.day for r in recs), default=start) + dt.timedelta(days=1))
    window_start = anchor - dt.timedelta(days=weeks * 7)
    slots: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for r in trusted:
        if r.day >= window_start and r.day not in hol:
            k = (anchor - r.day).days // 7  # 0 = the last week of data
            slots[(r.day.weekday(), r.hour)].append((decay**k, float(r.visitors)))
    baseline: dict[tuple[int, int], float] = {
        slot: sum(w * v for w, v in obs) / sum(w for w, _ in obs) for slot, obs in slots.items()
    }
    factor = _holiday_factor(trusted, hol, store)

    out: Forecast = {}
    for i in range(days):
        d = start + dt.timedelta(days=i)
        scale = factor if d in hol else 1.0
        for h in range(24):
            out[(d, h)] = baseline.get((d.weekday(), h), 0.0) * scale if store.is_open(h) else 0.0
    return out


def _holiday_factor(trusted: list[HourRecord], hol: set[dt.date], store: StoreInfo) -> float:
    """Median of (holiday visitors ÷ mean visitors of the same weekday on normal days)."""
    daily: dict[dt.date, int] = defaultdict(int)
    for r in trusted:
        daily[r.day] += r.visitors
    normal: dict[int, list[int]] = defaultdict(list)
    for d, v in daily.items():
        if d not in hol:
            normal[d.weekday()].append(v)
    ratios = []
    for d in hol:
        if d in daily and normal.get(d.weekday()):
            base = statistics.fmean(normal[d.weekday()])
            if base > 0:
                ratios.append(daily[d] / base)
    return statistics.median(ratios) if ratios else 1.0


def naive_last_week(
    records: Iterable[HourRecord], store: StoreInfo, start: dt.date, days: int
) -> Forecast:
    """The benchmark: each hour = the same hour in the last week before ``start``."""
    last: dict[tuple[dt.date, int], float] = {
        (r.day, r.hour): float(r.visitors) for r in records if r.day < start
    }
    out: Forecast = {}
    for i in range(days):
        d = start + dt.timedelta(days=i)
        src = d - dt.timedelta(days=7 * (i // 7 + 1))
        for h in range(24):
            out[(d, h)] = last.get((src, h), 0.0) if store.is_open(h) else 0.0
    return out


@dataclass(frozen=True)
class ForecastEvaluation:
    """Errors on held-out hours (trusted, opening hours with at least one visitor)."""

    holdout_start: dt.date
    days: int
    stores: int
    hours: int
    mape: float  # mean absolute percentage error, 0.12 = 12 %
    wape: float  # Σ|actual − forecast| ÷ Σ actual
    naive_mape: float
    naive_wape: float


def evaluate_forecast(
    session: Session,
    store_ids: Iterable[int],
    holdout_start: dt.date,
    days: int,
    *,
    weeks: int = DEFAULT_WEEKS,
    decay: float = DEFAULT_DECAY,
) -> ForecastEvaluation:
    """Forecast ``days`` from ``holdout_start`` using only earlier data; score vs actuals."""
    from core.traffic.hours import holidays, load_hours, store_info

    abs_err = abs_err_naive = total = 0.0
    ape: list[float] = []
    ape_naive: list[float] = []
    n_stores = 0
    end = holdout_start + dt.timedelta(days=days - 1)
    for sid in store_ids:
        info: StoreInfo = store_info(session, sid)
        hist_start = holdout_start - dt.timedelta(days=max(weeks * 7, HOLIDAY_LOOKBACK_DAYS))
        recs = load_hours(session, info, hist_start, end)
        hols = holidays(session, hist_start, end)
        history = [r for r in recs if r.day < holdout_start]
        fc = forecast_from_history(
            history, info, holdout_start, days, hols, weeks=weeks, decay=decay
        )
        nv = naive_last_week(history, info, holdout_start, days)
        # Actuals are judged against the whole range, so a broken held-out hour is not scored.
        outages = detect_outages(recs, info, hols)
        n_stores += 1
        for r in recs:
            if r.day < holdout_start or not info.is_open(r.hour) or r.visitors <= 0:
                continue
            if (r.day, r.hour) in outages:
                continue
            a = float(r.visitors)
            f = fc[(r.day, r.hour)]
            n = nv[(r.day, r.hour)]
            abs_err += abs(a - f)
            abs_err_naive += abs(a - n)
            total += a
            ape.append(abs(a - f) / a)
            ape_naive.append(abs(a - n) / a)
    if not ape:
        raise ValueError("no held-out hours to evaluate")
    return ForecastEvaluation(
        holdout_start=holdout_start,
        days=days,
        stores=n_stores,
        hours=len(ape),
        mape=statistics.fmean(ape),
        wape=abs_err / total,
        naive_mape=statistics.fmean(ape_naive),
        naive_wape=abs_err_naive / total,
    )
