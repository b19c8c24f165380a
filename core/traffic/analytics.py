"""Traffic KPIs per store and period, in the store's local time.

Definitions (ShopperTrak / RetailNext usage; tests hold hand-computed examples):

* **visitors** — door-counter entries in *trusted* hours (counter outages excluded, see
  :mod:`core.traffic.quality`);
* **transactions, sales, units** — POS figures of all hours (the POS is not the counter);
* **conversion** = transactions ÷ visitors, both over trusted hours only, so a dead
  counter never shows as a 100 % conversion;
* **ATV** (average transaction value, 客单价) = sales ÷ transactions, in fen, rounded
  half-up;
* **UPT** (units per transaction, 连带率) = units ÷ transactions over hours whose POS sent
  units (None when none did);
* **STAR** (shopper-to-associate ratio) = visitors ÷ floor staff-hours over trusted hours;
  floor staff-hours come from *published* shifts of the floor roles (sales, cashier,
  keyholder, manager — not stock), pro rata per hour (see
  :func:`core.traffic.hours.floor_staff_hours`);
* **WoW** compares with the same days of the week before; **YoY** with the same weekdays
  364 days earlier when the history reaches that far, otherwise with the same week of the
  previous 4-week retail period (28 days earlier) — :class:`Basis` says which was used.
"""

from __future__ import annotations

import datetime as dt
import enum
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.i18n import N_, _
from core.models import HourlyTraffic, Store
from core.timeutil import to_local
from core.traffic.hours import (
    HourRecord,
    StoreInfo,
    floor_shifts_many,
    floor_staff_hours,
    holidays,
    load_hours,
    load_hours_many,
    store_info,
    stores_info,
)

# KPI definitions and the home's two-week figures need no database library (the app's
# start path computes them before SQLAlchemy is imported): core.traffic.kpis
from core.traffic.kpis import (  # noqa: F401 (re-exported)
    Kpis,
    _div_round_half_up,
    compute_kpis,
    pct_change,
    week_pair_ranges,
    weeks_kpis,
)
from core.traffic.quality import REFERENCE_WEEKS, Outage, detect_outages

Key = tuple[dt.date, int]


class Basis(enum.StrEnum):
    """Which earlier period the "year-over-year" column really compares with."""

    YOY = "yoy"  # 364 days earlier (same weekdays last year)
    LAST_PERIOD = "last_period"  # 28 days earlier (same week of the previous 4-week period)
    NONE = "none"  # not enough history for either

    @property
    def offset_days(self) -> int:
        return {"yoy": 364, "last_period": 28, "none": 0}[self.value]

    def label(self) -> str:
        return _(BASIS_LABELS[self.value])


BASIS_LABELS = {
    "yoy": N_("vs same week last year"),
    "last_period": N_("vs same week last period (4 weeks earlier; less than a year of history)"),
    "none": N_("no earlier period in the data"),
}


# --------------------------------------------------------------------------- loading


@dataclass
class StoreData:
    """One store's hours, outages and floor staff-hours over a local date range."""

    store: StoreInfo
    start: dt.date
    end: dt.date
    records: list[HourRecord]
    outages: dict[Key, Outage]
    staff: dict[Key, float]
    holidays: dict[dt.date, str]
    first_day: dt.date | None  # first day with any traffic for this store

    def between(self, start: dt.date, end: dt.date) -> list[HourRecord]:
        return [r for r in self.records if start <= r.day <= end]

    def kpis(self, start: dt.date, end: dt.date) -> Kpis:
        return compute_kpis(self.between(start, end), self.outages.keys(), self.staff)


def load_store_data(session: Session, store_id: int, start: dt.date, end: dt.date) -> StoreData:
    info = store_info(session, store_id)
    return _load(session, info, start, end)


def _load(session: Session, info: StoreInfo, start: dt.date, end: dt.date) -> StoreData:
    ref_start = start - dt.timedelta(weeks=REFERENCE_WEEKS)
    recs = load_hours(session, info, ref_start, end)
    hols = holidays(session, ref_start, end)
    outages = detect_outages(recs, info, hols, judge=(start, end))
    return StoreData(
        store=info,
        start=start,
        end=end,
        records=[r for r in recs if start <= r.day <= end],
        outages={k: o for k, o in outages.items() if start <= k[0] <= end},
        staff=floor_staff_hours(session, info, start, end),
        holidays={d: n for d, n in hols.items() if start <= d <= end},
        first_day=_first_day(session, info),
    )


def choose_basis(first_day: dt.date | None, start: dt.date) -> Basis:
    if first_day is None:
        return Basis.NONE
    if first_day <= start - dt.timedelta(days=364):
        return Basis.YOY
    if first_day <= start - dt.timedelta(days=28):
        return Basis.LAST_PERIOD
    return Basis.NONE


# --------------------------------------------------------------------------- series


@dataclass(frozen=True)
class PeriodKpis:
    start: dt.date  # the day, or the Monday of the week
    hour: int | None  # set for hourly grain
    kpis: Kpis


def kpi_series(
    session: Session, store_id: int, start: dt.date, end: dt.date, grain: str = "day"
) -> list[PeriodKpis]:
    """KPIs per ``hour``, ``day`` or ``week`` (ISO weeks, Monday start) over local days."""
    data = load_store_data(session, store_id, start, end)
    groups: dict[tuple[dt.date, int | None], list[HourRecord]] = defaultdict(list)
    for r in data.records:
        if grain == "hour":
            key: tuple[dt.date, int | None] = (r.day, r.hour)
        elif grain == "day":
            key = (r.day, None)
        elif grain == "week":
            key = (r.day - dt.timedelta(days=r.day.weekday()), None)
        else:
            raise ValueError(f"unknown grain {grain!r}")
        groups[key].append(r)
    return [
        PeriodKpis(k[0], k[1], compute_kpis(rs, data.outages.keys(), data.staff))
        for k, rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    ]


@dataclass(frozen=True)
class WeekComparison:
    """A (possibly partial) week against the same days of earlier weeks.

    ``current``, ``previous_week`` and ``reference`` are each period's own KPIs (its own
    outages excluded). The changes (:meth:`wow`, :meth:`vs_reference`) compare *matched*
    hours: an hour-slot (weekday, hour) excluded in either period is left out of both, so a
    dead counter on Tuesday afternoon does not read as a drop in traffic.
    """

    week_start: dt.date
    days: int  # days of the week compared (a running week compares like for like)
    current: Kpis
    previous_week: Kpis
    reference: Kpis | None  # YoY or last-period, see basis
    basis: Basis
    #: (current, previous week) over the hour-slots trusted in both.
    matched_wow: tuple[Kpis, Kpis] | None = None
    #: (current, reference) over the hour-slots trusted in both.
    matched_reference: tuple[Kpis, Kpis] | None = None

    def wow(self, attr: str) -> float | None:
        cur, prev = self.matched_wow or (self.current, self.previous_week)
        return pct_change(getattr(cur, attr), getattr(prev, attr))

    def vs_reference(self, attr: str) -> float | None:
        if self.reference is None:
            return None
        cur, ref = self.matched_reference or (self.current, self.reference)
        return pct_change(getattr(cur, attr), getattr(ref, attr))


def week_comparison(
    session: Session, store_id: int, week_start: dt.date, today: dt.date
) -> WeekComparison:
    week_start = week_start - dt.timedelta(days=week_start.weekday())
    days = max(1, min(7, (today - week_start).days + 1))
    end = week_start + dt.timedelta(days=days - 1)
    info = store_info(session, store_id)
    first = _first_day(session, info)
    basis = choose_basis(first, week_start)

    def data_at(offset: int) -> StoreData:
        s = week_start - dt.timedelta(days=offset)
        return _load(session, info, s, end - dt.timedelta(days=offset))

    def slots(d: StoreData) -> set[tuple[int, int]]:
        return {((day - d.start).days, hour) for day, hour in d.outages}

    def kpis(d: StoreData, bad_slots: set[tuple[int, int]] | None = None) -> Kpis:
        bad = set(bad_slots if bad_slots is not None else slots(d))
        excluded = {(d.start + dt.timedelta(days=i), h) for i, h in bad}
        return compute_kpis(d.records, excluded, d.staff)

    cur, prev = data_at(0), data_at(7)
    ref = data_at(basis.offset_days) if basis is not Basis.NONE else None
    both_prev = slots(cur) | slots(prev)
    both_ref = slots(cur) | slots(ref) if ref is not None else set()
    return WeekComparison(
        week_start=week_start,
        days=days,
        current=kpis(cur),
        previous_week=kpis(prev),
        reference=kpis(ref) if ref is not None else None,
        basis=basis,
        matched_wow=(kpis(cur, both_prev), kpis(prev, both_prev)),
        matched_reference=(kpis(cur, both_ref), kpis(ref, both_ref)) if ref is not None else None,
    )


def stores_week_kpis(
    session: Session, store_ids: Iterable[int], week_start: dt.date, today: dt.date
) -> dict[int, tuple[Kpis, Kpis]]:
    """Each store's ``(current, previous_week)`` KPIs of :func:`week_comparison`, in bulk.

    The home screen needs only these two figures per store for a whole region at
    start-up. Instead of three separate loads per store (current, previous and reference
    week, each with its own history), this reads the region's hours and floor shifts in
    one query each and judges each week's outages against that week's own
    :data:`REFERENCE_WEEKS` of history, exactly as :func:`week_comparison` does, so the
    results are equal (a test holds the two together).
    """
    infos = stores_info(session, store_ids)
    if not infos:
        return {}
    first_ref, shifts_from, end = week_pair_ranges(week_start, today)
    records = load_hours_many(session, infos, first_ref, end)
    hols = holidays(session, first_ref, end)
    shifts = floor_shifts_many(session, infos, shifts_from, end)
    return weeks_kpis(infos, records, hols, shifts, week_start, today)


def _first_day(session: Session, info: StoreInfo) -> dt.date | None:
    first = session.scalar(
        select(func.min(HourlyTraffic.hour_start)).where(HourlyTraffic.store_id == info.id)
    )
    if first is None:
        return None
    if first.tzinfo is None:  # raw text from a bulk path
        first = first.replace(tzinfo=dt.UTC)
    return to_local(first, info.timezone).date()


# --------------------------------------------------------------------------- views of a range


@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    kpis: Kpis
    wow_visitors: int | None  # same weekday a week earlier (trusted hours)
    ref_visitors: int | None  # same weekday per the trend's basis
    holiday: str  # holiday name or ""
    outages: tuple[Outage, ...]


@dataclass(frozen=True)
class DailyTrend:
    points: list[DayPoint]
    basis: Basis


def daily_trend(session: Session, store_id: int, start: dt.date, end: dt.date) -> DailyTrend:
    info = store_info(session, store_id)
    # Chosen for the range's last day, so the overlay shows wherever history allows
    # (the first days may lack a reference; their ref_visitors are None).
    basis = choose_basis(_first_day(session, info), end)
    lo = start - dt.timedelta(days=max(7, basis.offset_days))
    data = _load(session, info, lo, end)
    by_day: dict[dt.date, list[HourRecord]] = defaultdict(list)
    for r in data.records:
        by_day[r.day].append(r)
    outs_by_day: dict[dt.date, list[Outage]] = defaultdict(list)
    for o in data.outages.values():
        outs_by_day[o.day].append(o)

    def visitors_on(day: dt.date) -> int | None:
        recs = by_day.get(day)
        if not recs:
            return None
        return compute_kpis(recs, data.outages.keys()).visitors

    points = []
    d = start
    while d <= end:
        k = compute_kpis(by_day.get(d, []), data.outages.keys(), data.staff)
        points.append(
            DayPoint(
                day=d,
                kpis=k,
                wow_visitors=visitors_on(d - dt.timedelta(days=7)),
                ref_visitors=(
                    visitors_on(d - dt.timedelta(days=basis.offset_days))
                    if basis is not Basis.NONE
                    else None
                ),
                holiday=data.holidays.get(d, ""),
                outages=tuple(sorted(outs_by_day.get(d, []), key=lambda o: o.hour)),
            )
        )
        d += dt.timedelta(days=1)
    return DailyTrend(points, basis)


@dataclass(frozen=True)
class HeatGrid:
    """Visitors per local day × opening hour; None where no data."""

    days: list[dt.date]
    hours: list[int]
    visitors: list[list[int | None]]  # [day index][hour index]
    transactions: list[list[int | None]]
    sales_fen: list[list[int | None]]
    outages: dict[Key, Outage]


def heat_grid(session: Session, store_id: int, start: dt.date, end: dt.date) -> HeatGrid:
    data = load_store_data(session, store_id, start, end)
    return _grid(data, start, end)


def _grid(data: StoreData, start: dt.date, end: dt.date) -> HeatGrid:
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    hours_set = set(data.store.opening_hours)
    recs = data.between(start, end)
    hours_set.update(r.hour for r in recs)
    hours = sorted(hours_set)
    di = {d: i for i, d in enumerate(days)}
    hi = {h: i for i, h in enumerate(hours)}
    vis: list[list[int | None]] = [[None] * len(hours) for _ in days]
    txn: list[list[int | None]] = [[None] * len(hours) for _ in days]
    sal: list[list[int | None]] = [[None] * len(hours) for _ in days]
    for r in recs:
        vis[di[r.day]][hi[r.hour]] = r.visitors
        txn[di[r.day]][hi[r.hour]] = r.transactions
        sal[di[r.day]][hi[r.hour]] = r.sales_fen
    outs = {k: o for k, o in data.outages.items() if start <= k[0] <= end}
    return HeatGrid(days, hours, vis, txn, sal, outs)


@dataclass(frozen=True)
class HourPoint:
    hour: int
    visitors: int
    transactions: int
    sales_fen: int
    conversion: float | None
    staff_hours: float
    star: float | None
    outage: Outage | None


def day_hours(data: StoreData, day: dt.date) -> list[HourPoint]:
    """The drill-down of one day: its hours with KPIs and outage marks."""
    out = []
    for r in sorted(data.between(day, day), key=lambda r: r.hour):
        o = data.outages.get((r.day, r.hour))
        staff = data.staff.get((r.day, r.hour), 0.0)
        out.append(
            HourPoint(
                hour=r.hour,
                visitors=r.visitors,
                transactions=r.transactions,
                sales_fen=r.sales_fen,
                conversion=(r.transactions / r.visitors) if r.visitors and o is None else None,
                staff_hours=staff,
                star=(r.visitors / staff) if staff > 0 and o is None else None,
                outage=o,
            )
        )
    return out


def store_day_hours(session: Session, store_id: int, day: dt.date) -> list[HourPoint]:
    return day_hours(load_store_data(session, store_id, day, day), day)


@dataclass(frozen=True)
class PowerHour:
    weekday: int  # 0 = Monday
    hour: int
    avg_visitors: float
    avg_transactions: float
    avg_sales_fen: int
    conversion: float | None
    share_of_visitors: float  # of the average week's visitors


def power_hours(data: StoreData, n: int = 5, by: str = "visitors") -> list[PowerHour]:
    """The busiest weekday-hours on average over trusted hours (``by`` visitors or sales)."""
    if by not in ("visitors", "sales"):
        raise ValueError(f"power hours by {by!r}: use 'visitors' or 'sales'")
    slots: dict[tuple[int, int], list[HourRecord]] = defaultdict(list)
    for r in data.records:
        if (r.day, r.hour) not in data.outages:
            slots[(r.day.weekday(), r.hour)].append(r)
    rows = []
    for (wd, h), rs in slots.items():
        v = statistics.fmean(r.visitors for r in rs)
        t = statistics.fmean(r.transactions for r in rs)
        s = round(statistics.fmean(r.sales_fen for r in rs))
        rows.append((wd, h, v, t, s))
    week_total = sum(v for _, _, v, _, _ in rows)
    key_index = 2 if by == "visitors" else 4
    rows.sort(key=lambda x: (-x[key_index], x[0], x[1]))
    return [
        PowerHour(
            weekday=wd,
            hour=h,
            avg_visitors=v,
            avg_transactions=t,
            avg_sales_fen=s,
            conversion=t / v if v else None,
            share_of_visitors=v / week_total if week_total else 0.0,
        )
        for wd, h, v, t, s in rows[:n]
    ]


@dataclass(frozen=True)
class PeerRow:
    store_id: int
    code: str
    name: str
    visitors_per_day: float
    conversion: float | None
    atv_fen: int | None
    sales_per_day_fen: int
    star: float | None
    excluded_hours: int
    is_self: bool


#: Fewest stores (the store included) that make a cluster comparison meaningful.
MIN_PEERS = 3


@dataclass(frozen=True)
class PeerComparison:
    cluster: str  # the store's cluster ("" when none)
    widened: bool  # True: too few stores in the cluster, so the whole region is compared
    rows: list[PeerRow]  # sorted by visitors per day, descending
    median_visitors_per_day: float
    median_conversion: float | None
    rank: int  # 1-based rank of the store by visitors per day


def comparable_stores(
    session: Session, store_id: int, start: dt.date, end: dt.date
) -> PeerComparison:
    """The store against the stores of its region in the same ``cluster``.

    A cluster with fewer than :data:`MIN_PEERS` stores in the region (the store included)
    says little, so the whole region is used instead and ``widened`` says so.
    """
    me = store_info(session, store_id)
    in_region = select(Store.id).where(Store.region_id == me.region_id)
    ids = session.scalars(in_region.where(Store.cluster == me.cluster)).all() if me.cluster else []
    widened = len(ids) < MIN_PEERS
    if widened:
        ids = session.scalars(in_region).all()
    peers = stores_info(session, ids)
    rows = _peer_rows(session, peers, start, end, store_id)
    rows.sort(key=lambda r: (-r.visitors_per_day, r.code))
    convs = [r.conversion for r in rows if r.conversion is not None]
    rank = next((i + 1 for i, r in enumerate(rows) if r.is_self), 0)
    return PeerComparison(
        cluster=me.cluster,
        widened=widened,
        rows=rows,
        median_visitors_per_day=statistics.median([r.visitors_per_day for r in rows])
        if rows
        else 0.0,
        median_conversion=statistics.median(convs) if convs else None,
        rank=rank,
    )


def _peer_rows(
    session: Session, stores: list[StoreInfo], start: dt.date, end: dt.date, self_id: int | None
) -> list[PeerRow]:
    rows = []
    for p in stores:
        d = _load(session, p, start, end)
        k = d.kpis(start, end)
        n_days = len({r.day for r in d.records}) or 1
        rows.append(
            PeerRow(
                store_id=p.id,
                code=p.code,
                name=p.name,
                visitors_per_day=k.visitors / n_days,
                conversion=k.conversion,
                atv_fen=k.atv_fen,
                sales_per_day_fen=round(k.sales_fen / n_days),
                star=k.star,
                excluded_hours=k.excluded_hours,
                is_self=p.id == self_id,
            )
        )
    return rows


def region_stores(
    session: Session,
    region_id: int,
    store_ids: Iterable[int] | None,
    start: dt.date,
    end: dt.date,
) -> list[PeerRow]:
    """Stores of a region within ``store_ids`` (the actor's scope; None = all), busiest first."""
    allowed = set(store_ids) if store_ids is not None else None
    ids = [
        i
        for i in session.scalars(select(Store.id).where(Store.region_id == region_id)).all()
        if allowed is None or i in allowed
    ]
    rows = _peer_rows(session, stores_info(session, ids), start, end, None)
    rows.sort(key=lambda r: (-r.visitors_per_day, r.code))
    return rows


# --------------------------------------------------------------------------- one screen's worth


@dataclass(frozen=True)
class TrafficOverview:
    """Everything the traffic screen shows for one store, computed in one DB job."""

    store: StoreInfo
    day: dt.date  # the selected day
    week: WeekComparison
    grid: HeatGrid  # the 4 weeks ending on the selected day
    trend: DailyTrend  # the 6 weeks ending on the selected day
    power: list[PowerHour]  # over the 4 weeks, top by visitors
    power_by_sales: list[PowerHour]  # over the 4 weeks, top by sales
    peers: PeerComparison  # over the selected (partial) week
    drill: list[HourPoint]  # hours of the selected day
    outages: list[Outage] = field(default_factory=list)  # in the grid's range


def traffic_overview(
    session: Session, store_id: int, day: dt.date, today: dt.date
) -> TrafficOverview:
    day = min(day, today)
    info = store_info(session, store_id)
    grid_start = day - dt.timedelta(days=27)
    data = _load(session, info, grid_start, day)
    week = week_comparison(session, store_id, day, day)
    return TrafficOverview(
        store=info,
        day=day,
        week=week,
        grid=_grid(data, grid_start, day),
        trend=daily_trend(session, store_id, day - dt.timedelta(days=41), day),
        power=power_hours(data, 5),
        power_by_sales=power_hours(data, 5, by="sales"),
        peers=comparable_stores(session, store_id, week.week_start, day),
        drill=day_hours(data, day),
        outages=sorted(data.outages.values(), key=lambda o: (o.day, o.hour)),
    )
