"""What the home screen shows, assembled from the feature modules' own functions.

A store manager's home is their store's week: today's traffic by hour against the same
weekday last week, pending promotion approvals, rota gaps, and KPI cards with
week-over-week change. A supervisor's home is their region: open alerts, the funnel,
yesterday's visits and a store ranking.

This module owns no maths: KPIs (with counter outages excluded) come from
:mod:`core.traffic.analytics` (:func:`~core.traffic.analytics.stores_week_kpis`: the
current and previous week of :func:`~core.traffic.analytics.week_comparison`, read for a
whole region at once), rota gaps from :mod:`core.scheduling` (the same demand gaps
the schedule screen shows), pending approvals from :mod:`core.promotions.queue`, alerts
from :mod:`core.alerts.engine`, the funnel from :mod:`core.funnel`. "Week to date" is
Monday..selected day against the same weekdays of the previous week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.timeutil import local_day_bounds

if TYPE_CHECKING:  # the figures' types need no database library (core.quickread)
    from sqlalchemy.orm import Session

    from core.actor import Actor
    from core.alerts.rows import AlertRow
    from core.funnel_figures import FunnelResult
    from core.scheduling.demand import WeekDemand
    from core.traffic.kpis import Kpis

#: Days the home's funnel summary covers (ending on the selected day).
FUNNEL_DAYS = 28


@dataclass(frozen=True)
class Kpi:
    """A figure with its value for the previous period, for a week-over-week arrow."""

    key: str  # sales | visitors | conversion | basket | visits
    value: float | None
    previous: float | None
    unit: str  # fen | count | ratio

    @property
    def change(self) -> float | None:
        """Relative change (0.05 = +5 %), None when there is nothing to compare with."""
        from core.traffic.kpis import pct_change

        return pct_change(self.value, self.previous)


@dataclass(frozen=True)
class RotaGap:
    day: dt.date
    hour: int  # local hour
    scheduled: float
    required: int


@dataclass(frozen=True)
class ManagerHome:
    store_id: int
    store_name: str
    store_code: str
    day: dt.date
    week_start: dt.date
    today_visitors: int
    today_transactions: int
    today_sales_fen: int
    #: (local hour, visitors today, visitors same weekday last week); None = counter outage
    hourly: list[tuple[int, int | None, int | None]]
    pending_approvals: int
    rota_gaps: list[RotaGap]
    kpis: list[Kpi]


@dataclass(frozen=True)
class AlertLine:
    id: str
    kind: str
    title: str  # English source label of the kind (translate with _())
    severity: str
    subject: str
    raised_at: dt.datetime
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoreRank:
    store_id: int
    code: str
    name: str
    sales_fen: int
    previous_fen: int
    visitors: int
    conversion: float | None

    @property
    def change(self) -> float | None:
        from core.traffic.kpis import pct_change

        return pct_change(self.sales_fen, self.previous_fen)


@dataclass(frozen=True)
class SupervisorHome:
    region_id: int
    region_name: str
    day: dt.date
    week_start: dt.date
    open_alerts: int
    alerts: list[AlertLine]
    #: (stage, opportunities that reached it in the last FUNNEL_DAYS, their amount in fen)
    funnel: list[tuple[str, int, int]]
    yesterday: dt.date
    yesterday_visits: int
    yesterday_reps: int
    #: (rep name, visits yesterday), most visits first
    visits_by_rep: list[tuple[str, int]]
    ranking: list[StoreRank]
    kpis: list[Kpi]


# --------------------------------------------------------------------------- store manager


def rota_gaps(session: Session, store_id: int, week_start: dt.date) -> list[RotaGap]:
    """The schedule's own demand gaps for the week (hours with fewer staff than needed)."""
    from core.scheduling.week import load_week

    week = load_week(session, store_id, week_start)
    if week is None:
        return []
    return gaps_of(week.demand)


def gaps_of(demand: WeekDemand) -> list[RotaGap]:
    """The home's rota gaps: the short hours of a week's demand overlay."""
    return [RotaGap(h.day, h.hour, h.scheduled, h.required) for h in demand.gaps]


#: (local hour, visitors — None when the counter is not trusted that hour, transactions,
#: sales in fen): one hour of a store's day, in hour order
HomeHour = tuple[int, int | None, int, int]


def _day_points(points) -> list[HomeHour]:
    return [
        (p.hour, None if p.outage is not None else p.visitors, p.transactions, p.sales_fen)
        for p in points
    ]


def manager_home(session: Session, store_id: int, day: dt.date) -> ManagerHome:
    """The store's week, read with the ORM (:func:`core.quickread.manager_home` reads the
    same with the sqlite3 driver for the app; a test holds the two equal)."""
    from core.models import Store
    from core.promotions.queue import list_proposals
    from core.traffic.analytics import store_day_hours, stores_week_kpis

    store = session.get(Store, store_id)
    if store is None:
        raise LookupError(f"store {store_id} is not in the local data")
    week_start = day - dt.timedelta(days=day.weekday())
    return assemble_manager_home(
        store.id,
        store.name,
        store.code,
        day,
        _day_points(store_day_hours(session, store_id, day)),
        _day_points(store_day_hours(session, store_id, day - dt.timedelta(days=7))),
        stores_week_kpis(session, [store_id], week_start, day)[store_id],
        len(list_proposals(session, [store_id], ("pending",))),
        rota_gaps(session, store_id, week_start),
    )


def assemble_manager_home(
    store_id: int,
    store_name: str,
    store_code: str,
    day: dt.date,
    today_points: list[HomeHour],
    last_week_points: list[HomeHour],
    week: tuple[Kpis, Kpis],
    pending_approvals: int,
    rota_gaps: list[RotaGap],
) -> ManagerHome:
    """The store's week from its loaded parts (both readers end here).

    ``today_points``/``last_week_points``: the hours of ``day`` and of a week before;
    ``week``: the (current, previous) week-to-date KPIs of
    :func:`core.traffic.analytics.stores_week_kpis`.
    """
    today = {h: v for h, v, _t, _s in today_points}
    last_week = {h: v for h, v, _t, _s in last_week_points}
    cur, prev = week
    return ManagerHome(
        store_id=store_id,
        store_name=store_name,
        store_code=store_code,
        day=day,
        week_start=day - dt.timedelta(days=day.weekday()),
        today_visitors=sum(v for v in today.values() if v is not None),
        today_transactions=sum(t for _h, _v, t, _s in today_points),
        today_sales_fen=sum(s for _h, _v, _t, s in today_points),
        hourly=[(h, today.get(h), last_week.get(h)) for h in sorted(set(today) | set(last_week))],
        pending_approvals=pending_approvals,
        rota_gaps=rota_gaps,
        kpis=[
            Kpi("sales", cur.sales_fen, prev.sales_fen, "fen"),
            Kpi("visitors", cur.visitors, prev.visitors, "count"),
            Kpi("conversion", cur.conversion, prev.conversion, "ratio"),
            Kpi("basket", cur.atv_fen, prev.atv_fen, "fen"),
        ],
    )


# --------------------------------------------------------------------------- supervisor


def supervisor_home(
    session: Session, region_id: int, day: dt.date, actor: Actor | None = None
) -> SupervisorHome:
    """The region's home, read with the ORM (:func:`core.quickread.supervisor_home` reads
    the same with the sqlite3 driver for the app; a test holds the two equal)."""
    from sqlalchemy import select

    from core.alerts.engine import list_alerts
    from core.funnel import FunnelQuery, _load_tracks, period_of_days
    from core.models import Region, Store
    from core.traffic.analytics import stores_week_kpis

    region = session.get(Region, region_id)
    if region is None:
        raise LookupError(f"region {region_id} is not in the local data")
    zone = region.timezone
    week_start = day - dt.timedelta(days=day.weekday())
    stores = (
        session.execute(
            select(Store.id, Store.code, Store.name)
            .where(Store.region_id == region_id)
            .order_by(Store.code)
        )
        .tuples()
        .all()
    )
    if actor is not None and actor.role != "admin":
        stores = [s for s in stores if s[0] in actor.store_ids]
    weeks = stores_week_kpis(session, [s[0] for s in stores], week_start, day)
    alert_rows = list_alerts(
        session,
        local_day_bounds(day, zone)[1],
        actor=actor,
        region_id=region_id,
        include_snoozed=False,
    )
    start, end = period_of_days(day, FUNNEL_DAYS, zone)
    query = FunnelQuery(start, end, region_id=region_id)
    tracks = _load_tracks(session, query, actor)
    yesterday = day - dt.timedelta(days=1)
    by_rep = _visits_by_rep(session, region_id, yesterday, zone)
    last_week = _visits_by_rep(session, region_id, yesterday - dt.timedelta(days=7), zone)
    return assemble_supervisor_home(
        region.id, region.name, day, stores, weeks, alert_rows, query, tracks, by_rep, last_week
    )


def assemble_supervisor_home(
    region_id: int,
    region_name: str,
    day: dt.date,
    stores: list[tuple[int, str, str]],
    weeks: dict[int, tuple[Kpis, Kpis]],
    alert_rows: list[AlertRow],
    funnel_query: object,
    funnel_tracks: list,
    by_rep: list[tuple[str, int]],
    last_week_by_rep: list[tuple[str, int]],
) -> SupervisorHome:
    """The region home from its loaded parts (both readers end here).

    ``stores``: (id, code, name) in scope ordered by code; ``weeks``: their
    :func:`core.traffic.kpis.weeks_kpis`; ``alert_rows``: open, unsnoozed alerts in
    scope; the funnel's query and its loaded tracks; check-ins per rep yesterday and a
    week before.
    """
    from core.alerts.rows import KIND_LABELS
    from core.funnel_figures import _figures

    week_start = day - dt.timedelta(days=day.weekday())
    # ranking and region totals from each store's own week comparison (read in bulk)
    ranking: list[StoreRank] = []
    cur_v = prev_v = cur_s = prev_s = 0
    cur_txn = prev_txn = 0.0  # trusted transactions = conversion x visitors
    for sid, code, name in stores:
        c, p = weeks[sid]
        ranking.append(
            StoreRank(sid, code, name, c.sales_fen, p.sales_fen, c.visitors, c.conversion)
        )
        cur_v, prev_v = cur_v + c.visitors, prev_v + p.visitors
        cur_s, prev_s = cur_s + c.sales_fen, prev_s + p.sales_fen
        cur_txn += (c.conversion or 0.0) * c.visitors
        prev_txn += (p.conversion or 0.0) * p.visitors
    ranking.sort(key=lambda r: (-r.sales_fen, r.code))

    alerts = [
        AlertLine(
            a.id,
            a.kind,
            KIND_LABELS.get(a.kind, a.kind),
            a.severity,
            a.subject_label,
            a.raised_at,
            a.params,
        )
        for a in alert_rows[:8]
    ]
    fr: FunnelResult = _figures(funnel_query, funnel_tracks)  # type: ignore[arg-type]
    funnel = [(s.stage, s.count, s.amount_fen) for s in fr.stages]
    yesterday = day - dt.timedelta(days=1)
    ylast = sum(n for _, n in last_week_by_rep)
    yvisits = sum(n for _, n in by_rep)
    kpis = [
        Kpi("sales", cur_s, prev_s, "fen"),
        Kpi("visitors", cur_v, prev_v, "count"),
        Kpi(
            "conversion",
            cur_txn / cur_v if cur_v else None,
            prev_txn / prev_v if prev_v else None,
            "ratio",
        ),
        Kpi("visits", yvisits, ylast, "count"),
    ]
    return SupervisorHome(
        region_id=region_id,
        region_name=region_name,
        day=day,
        week_start=week_start,
        open_alerts=len(alert_rows),
        alerts=alerts,
        funnel=funnel,
        yesterday=yesterday,
        yesterday_visits=yvisits,
        yesterday_reps=len(by_rep),
        visits_by_rep=by_rep,
        ranking=ranking,
        kpis=kpis,
    )


def _visits_by_rep(
    session: Session, region_id: int, day: dt.date, zone: str
) -> list[tuple[str, int]]:
    """Check-ins per rep on a local day (a count; visit evidence lives in core.trajectory)."""
    from sqlalchemy import func, select

    from core.models import Rep, Visit

    lo, hi = local_day_bounds(day, zone)
    rows = session.execute(
        select(Rep.name, func.count(Visit.id))
        .join(Rep, Rep.id == Visit.rep_id)
        .where(Rep.region_id == region_id, Visit.check_in_at >= lo, Visit.check_in_at < hi)
        .group_by(Rep.id, Rep.name)
        .order_by(func.count(Visit.id).desc(), Rep.name)
    ).tuples()
    return [(name, int(n)) for name, n in rows]
