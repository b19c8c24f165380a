"""Collect a pack's numbers from the feature analytics (never recomputing their maths).

* traffic KPIs, daily trend, power hours: :mod:`core.traffic.analytics`
* schedule vs demand: :mod:`core.scheduling.week` (forecast demand ÷ target STAR)
* promotions decided and their outcome: :mod:`core.promotions.outcome`
* funnel: :mod:`core.funnel`; rep activity and visit evidence: :mod:`core.trajectory`

A region's figures are sums of its stores' figures; ratios are re-derived from the summed
numerators and denominators (conversion = Σ trusted transactions ÷ Σ trusted visitors),
never averaged.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.i18n import N_, translate_in
from core.models import (
    InventoryLot,
    PromotionProposal,
    ProposalStatus,
    Region,
    Sku,
    Store,
    SyncState,
)
from core.reports.model import (
    DayRow,
    FunnelRow,
    HourRow,
    Kpi,
    PackData,
    PromotionRow,
    RankingRow,
    RepRow,
    StaffingRow,
)
from core.tasks import TaskState
from core.timeutil import local_day_bounds, parse_iso_week
from core.traffic.analytics import Kpis, _grid, load_store_data


class ScopeNotFound(LookupError):
    """No store/region with that code or id (the CLI turns it into a one-line error)."""


@dataclass(frozen=True)
class Scope:
    kind: str  # store | region
    id: int
    code: str
    name: str
    store_ids: tuple[int, ...]
    region_id: int


def resolve_scope(
    session: Session, *, store: str | None = None, region: str | None = None
) -> Scope:
    """A store or region by code (case-insensitive) or numeric id."""
    if store is not None:
        s = _by_code_or_id(session, Store, store)
        if s is None:
            raise ScopeNotFound(f"no store {store!r}")
        return Scope("store", s.id, s.code, s.name, (s.id,), s.region_id)
    if region is not None:
        r = _by_code_or_id(session, Region, region)
        if r is None:
            raise ScopeNotFound(f"no region {region!r}")
        ids = tuple(
            session.scalars(select(Store.id).where(Store.region_id == r.id).order_by(Store.code))
        )
        return Scope("region", r.id, r.code, r.name, ids, r.id)
    raise ScopeNotFound("a store or a region is required")


def _by_code_or_id(session: Session, model: type, key: str):
    obj = session.scalar(select(model).where(func.upper(model.code) == key.strip().upper()))
    if obj is None and key.strip().isdigit():
        obj = session.get(model, int(key))
    return obj


def last_sync_time(session: Session) -> dt.datetime | None:
    row = session.get(SyncState, "last_success_at")
    if row is None:
        return None
    try:
        value = dt.datetime.fromisoformat(row.value)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def data_as_of(session: Session) -> dt.datetime | None:
    """The last sync, or for a never-synced (demo) file the newest traffic hour."""
    synced = last_sync_time(session)
    if synced is not None:
        return synced
    from core.models import HourlyTraffic

    newest = session.scalar(select(func.max(HourlyTraffic.hour_start)))
    if newest is None:
        return None
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return newest + dt.timedelta(hours=1)


# --------------------------------------------------------------------------- traffic


@dataclass
class _Sum:
    visitors: int = 0
    trusted_txn: float = 0.0
    transactions: int = 0
    sales_fen: int = 0
    units: int = 0
    units_txn: int = 0
    staff_hours: float = 0.0
    excluded: int = 0

    def add(self, k: Kpis) -> None:
        self.visitors += k.visitors
        self.trusted_txn += (k.conversion or 0.0) * k.visitors
        self.transactions += k.transactions
        self.sales_fen += k.sales_fen
        if k.units is not None and k.upt:
            self.units += k.units
            self.units_txn += round(k.units / k.upt)
        self.staff_hours += k.staff_hours
        self.excluded += k.excluded_hours

    @property
    def conversion(self) -> float | None:
        return self.trusted_txn / self.visitors if self.visitors else None

    @property
    def atv_fen(self) -> float | None:
        return self.sales_fen / self.transactions if self.transactions else None

    @property
    def upt(self) -> float | None:
        return self.units / self.units_txn if self.units_txn else None

    @property
    def star(self) -> float | None:
        return self.visitors / self.staff_hours if self.staff_hours else None


def _kpis(cur: _Sum, prev: _Sum) -> list[Kpi]:
    return [
        Kpi("visitors", N_("Visitors"), cur.visitors, prev.visitors),
        Kpi("transactions", N_("Transactions"), cur.transactions, prev.transactions),
        Kpi("sales", N_("Sales"), cur.sales_fen, prev.sales_fen, "money_fen"),
        Kpi("conversion", N_("Conversion"), cur.conversion, prev.conversion, "pct"),
        Kpi("atv", N_("Average transaction value"), cur.atv_fen, prev.atv_fen, "money_fen"),
        Kpi("upt", N_("Units per transaction"), cur.upt, prev.upt, "ratio"),
        Kpi(
            "star",
            N_("Visitors per staff-hour (STAR)"),
            cur.star,
            prev.star,
            "ratio",
            higher_is_better=False,
        ),
    ]


def _traffic(
    session: Session, data: PackData, scope: Scope, state: TaskState
) -> dict[int, tuple[_Sum, _Sum]]:
    start, end = data.week_start, data.week_end
    per_store: dict[int, tuple[_Sum, _Sum]] = {}
    cur_total, prev_total = _Sum(), _Sum()
    by_day: dict[dt.date, list] = defaultdict(list)
    hour_visitors: dict[int, list[float]] = defaultdict(list)
    hour_txn: dict[int, float] = defaultdict(float)
    hour_vis_sum: dict[int, float] = defaultdict(float)
    n = len(scope.store_ids)
    prev_start, prev_end = start - dt.timedelta(days=7), end - dt.timedelta(days=7)
    for i, sid in enumerate(scope.store_ids):
        state.progress(0.05 + 0.45 * i / max(1, n))
        # One load per store covers both weeks (outages judged against the same history).
        store_data = load_store_data(session, sid, prev_start, end)
        cur, prev = _Sum(), _Sum()
        cur.add(store_data.kpis(start, end))
        prev.add(store_data.kpis(prev_start, prev_end))
        cur_total.add(store_data.kpis(start, end))
        prev_total.add(store_data.kpis(prev_start, prev_end))
        per_store[sid] = (cur, prev)
        for offset in range(7):
            day = start + dt.timedelta(days=offset)
            before = day - dt.timedelta(days=7)
            by_day[day].append((store_data.kpis(day, day), store_data.kpis(before, before)))
        if scope.kind == "store":
            data.excluded_hours = [
                f"{o.day:%m-%d} {o.hour:02d}:00 {o.describe()}"
                for (day, _hour), o in sorted(store_data.outages.items())
                if start <= day <= end
            ]
            _hour_profile(_grid(store_data, start, end), hour_visitors, hour_txn, hour_vis_sum)
    data.kpis = _kpis(cur_total, prev_total)
    for day in sorted(by_day):
        c, p = _Sum(), _Sum()
        for k_now, k_prev in by_day[day]:
            c.add(k_now)
            p.add(k_prev)
        data.days.append(
            DayRow(
                day, c.visitors, c.transactions, c.sales_fen, c.conversion, p.visitors, p.conversion
            )
        )
    if hour_visitors:
        data.hours = [
            HourRow(
                h, sum(v) / len(v), (hour_txn[h] / hour_vis_sum[h]) if hour_vis_sum[h] else None
            )
            for h, v in sorted(hour_visitors.items())
        ]
    return per_store


def _hour_profile(grid, visitors: dict, txn: dict, vis_sum: dict) -> None:
    """Collect the week's trusted hours of a heat grid by hour of day (outages left out)."""
    for di, day in enumerate(grid.days):
        for hi, hour in enumerate(grid.hours):
            v = grid.visitors[di][hi]
            if v is None or (day, hour) in grid.outages:
                continue
            visitors[hour].append(v)
            txn[hour] += grid.transactions[di][hi] or 0
            vis_sum[hour] += v


# --------------------------------------------------------------------------- schedule


def _staffing(session: Session, data: PackData, scope: Scope, state: TaskState) -> None:
    from core.scheduling.week import load_week

    per_day: dict[dt.date, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    n = len(scope.store_ids)
    for i, sid in enumerate(scope.store_ids):
        state.progress(0.5 + 0.2 * i / max(1, n))
        week = load_week(session, sid, data.week_start)
        if week is None or not week.demand.forecast_available:
            continue
        for day in week.demand.days:
            acc = per_day[day.day]
            acc[0] += day.scheduled_hours
            acc[1] += day.required_hours
            acc[2] += len(day.short_hours)
    data.staffing = [StaffingRow(d, s, r, u) for d, (s, r, u) in sorted(per_day.items())]


# --------------------------------------------------------------------------- promotions


def _promotions(session: Session, data: PackData, scope: Scope) -> None:
    from core.promotions.outcome import promotion_outcomes

    outcomes = promotion_outcomes(session, scope.store_ids, data.week_start, data.week_end)
    for o in outcomes:
        data.promotions.append(
            PromotionRow(
                store=o.store_name,
                sku=o.sku_name,
                template=o.template,
                decision="approved" if o.decision == "approve" else "rejected",
                discount_pct=o.discount_pct,
                decided_by=o.decided_by_name,
                expected_units=o.forecast_units_to_date if o.days_run else o.forecast_units,
                actual_units=float(o.actual_units) if o.days_run else None,
                waste_avoided_fen=o.waste_avoided_forecast_fen if o.decision == "approve" else 0,
            )
        )
    data.waste_avoided_fen = sum(r.waste_avoided_fen for r in data.promotions)
    data.pending_promotions = (
        session.scalar(
            select(func.count()).where(
                PromotionProposal.store_id.in_(scope.store_ids),
                PromotionProposal.status == ProposalStatus.PENDING.value,
            )
        )
        or 0
    )
    # Incurred waste: lots of the scope that expired during the week, valued at cost.
    data.waste_incurred_fen = int(
        session.scalar(
            select(func.coalesce(func.sum(InventoryLot.qty * InventoryLot.cost_fen), 0))
            .join(Sku, Sku.id == InventoryLot.sku_id)
            .where(
                InventoryLot.store_id.in_(scope.store_ids),
                InventoryLot.expiry_date >= data.week_start,
                InventoryLot.expiry_date <= data.week_end,
                InventoryLot.qty > 0,
            )
        )
        or 0
    )


# --------------------------------------------------------------------------- region-only


def _ranking(session: Session, data: PackData, per_store: dict[int, tuple[_Sum, _Sum]]) -> None:
    names = dict(session.execute(select(Store.id, Store.name).where(Store.id.in_(per_store))).all())
    rows = []
    for sid, (cur, prev) in per_store.items():
        change = (cur.sales_fen - prev.sales_fen) / prev.sales_fen if prev.sales_fen else None
        rows.append(RankingRow(names[sid], cur.visitors, cur.conversion, cur.sales_fen, change))
    rows.sort(key=lambda r: (-r.sales_fen, r.store))
    data.ranking = rows


def _funnel(session: Session, data: PackData, scope: Scope) -> None:
    from core.funnel import FunnelQuery, compute_funnel

    start, _ = local_day_bounds(data.week_start)
    _, end = local_day_bounds(data.week_end)
    # The funnel of the 13 weeks ending with the pack's week: one week is too few
    # opportunities for stable conversion rates.
    query = FunnelQuery(start=start - dt.timedelta(weeks=12), end=end, region_id=scope.region_id)
    result = compute_funnel(session, query)
    data.funnel = [
        FunnelRow(s.stage, s.count, s.amount_fen, s.next_conversion, s.cumulative_conversion)
        for s in result.stages
    ]


def _reps(session: Session, data: PackData, scope: Scope, state: TaskState) -> None:
    from core.trajectory.field_day import load_field_day, prepare_field_map

    raw = load_field_day(session, scope.region_id, None, data.week_start, data.week_end)
    state.progress(0.8)
    fmap = prepare_field_map(raw)
    stats: dict[int, list] = {r.id: [r.name, 0, 0, 0, set()] for r in raw.reps}
    for v in fmap.visits:
        visit = v.row.visit
        row = stats.get(visit.rep_id)
        if row is None:
            continue
        row[1] += 1
        if v.evidence.flagged:
            row[3] += 1
        else:  # effective: the trace does not contradict the record
            row[2] += 1
        row[4].add(visit.customer_id)
    data.reps = sorted(
        (
            RepRow(name, n, eff, flagged, len(custs))
            for name, n, eff, flagged, custs in stats.values()
        ),
        key=lambda r: (-r.visits, r.rep),
    )
    data._field_map = fmap  # type: ignore[attr-defined]  # reused by the static map


def _static_map(data: PackData, lang: str) -> None:
    """The visits for the pack's static map (drawn by the renderer, see PackData)."""
    fmap = data.__dict__.pop("_field_map", None)  # not carried to the renderer
    if fmap is None:
        return
    data.map_visits = [
        (v.row.visit.customer_lat, v.row.visit.customer_lon, bool(v.evidence.flagged))
        for v in fmap.visits
    ]
    flagged = sum(1 for v in data.map_visits if v[2])
    data.map_caption = translate_in(
        lang, N_("{n} visits of the week at their customers; {flagged} with weak evidence in red.")
    ).format(n=len(data.map_visits), flagged=flagged)


# --------------------------------------------------------------------------- entry


def gather_pack(
    session: Session,
    *,
    store: str | None = None,
    region: str | None = None,
    week: str,
    author_role: str = "store_manager",
    lang: str = "zh_CN",
    state: TaskState | None = None,
) -> PackData:
    """All numbers for the pack of one store or region and one ISO week ('2026-W47')."""
    state = state or TaskState()
    year, wk = parse_iso_week(week)
    scope = resolve_scope(session, store=store, region=region)
    monday = dt.date.fromisocalendar(year, wk, 1)
    data = PackData(
        scope_kind=scope.kind,
        scope_code=scope.code,
        scope_name=scope.name,
        year=year,
        week=wk,
        week_start=monday,
        as_of=data_as_of(session),
        author_role=author_role,
    )
    per_store = _traffic(session, data, scope, state)
    _staffing(session, data, scope, state)
    state.progress(0.7)
    _promotions(session, data, scope)
    if scope.kind == "region":
        _ranking(session, data, per_store)
        _funnel(session, data, scope)
        _reps(session, data, scope, state)
        _static_map(data, lang)
    state.progress(0.9)
    return data
