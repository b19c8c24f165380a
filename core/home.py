"""What the home screen shows, assembled from plain queries (no Qt, no ORM objects out).

A store manager's home is their store's week: today's traffic by hour against the same
weekday last week, pending promotion approvals, rota gaps (open hours this week with fewer
floor staff scheduled than the store's minimum), and KPI cards with week-over-week change.
A supervisor's home is their region: open alerts, the funnel by stage, yesterday's visits
and a store ranking by week-to-date sales.

"Week to date" is Monday..selected day of the selected day's ISO week, compared with the
same weekdays of the previous week, so a Wednesday never compares 3 days with 7.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
    Alert,
    HourlyTraffic,
    Opportunity,
    PromotionProposal,
    ProposalStatus,
    Region,
    Rep,
    Shift,
    StaffRole,
    Stage,
    Store,
    Visit,
)
from core.mutations import Actor
from core.timeutil import local_day_bounds, tz

FLOOR_ROLES = frozenset(
    {
        StaffRole.SALES.value,
        StaffRole.CASHIER.value,
        StaffRole.KEYHOLDER.value,
        StaffRole.MANAGER.value,
    }
)


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
        if self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / self.previous


@dataclass(frozen=True)
class RotaGap:
    day: dt.date
    hour: int  # local hour
    scheduled: int
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
    #: (local hour, visitors today, visitors same weekday last week)
    hourly: list[tuple[int, int, int]]
    pending_approvals: int
    rota_gaps: list[RotaGap]
    kpis: list[Kpi]


@dataclass(frozen=True)
class AlertLine:
    id: str
    kind: str
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
    transactions: int

    @property
    def change(self) -> float | None:
        return (
            (self.sales_fen - self.previous_fen) / self.previous_fen if self.previous_fen else None
        )

    @property
    def conversion(self) -> float | None:
        return self.transactions / self.visitors if self.visitors else None


@dataclass(frozen=True)
class SupervisorHome:
    region_id: int
    region_name: str
    day: dt.date
    week_start: dt.date
    open_alerts: int
    alerts: list[AlertLine]
    #: (stage, open opportunities currently in it, their amount in fen), funnel order
    funnel: list[tuple[str, int, int]]
    yesterday: dt.date
    yesterday_visits: int
    yesterday_reps: int
    #: (rep name, visits yesterday), most visits first
    visits_by_rep: list[tuple[str, int]]
    ranking: list[StoreRank]
    kpis: list[Kpi]


# --------------------------------------------------------------------------- traffic sums


def _range_bounds(first: dt.date, last: dt.date, zone: str) -> tuple[dt.datetime, dt.datetime]:
    return local_day_bounds(first, zone)[0], local_day_bounds(last, zone)[1]


def _traffic_sums(
    session: Session, store_ids: list[int], first: dt.date, last: dt.date, zone: str
) -> dict[int, tuple[int, int, int]]:
    """store_id -> (visitors, transactions, sales_fen) over local days first..last."""
    lo, hi = _range_bounds(first, last, zone)
    rows = session.execute(
        select(
            HourlyTraffic.store_id,
            func.sum(HourlyTraffic.visitors),
            func.sum(HourlyTraffic.transactions),
            func.sum(HourlyTraffic.sales_fen),
        )
        .where(
            HourlyTraffic.store_id.in_(store_ids),
            HourlyTraffic.hour_start >= lo,
            HourlyTraffic.hour_start < hi,
        )
        .group_by(HourlyTraffic.store_id)
    ).tuples()
    return {sid: (int(v or 0), int(t or 0), int(s or 0)) for sid, v, t, s in rows}


def _hourly_visitors(session: Session, store_id: int, day: dt.date, zone: str) -> dict[int, int]:
    lo, hi = local_day_bounds(day, zone)
    out: dict[int, int] = {}
    for hour_start, visitors in session.execute(
        select(HourlyTraffic.hour_start, HourlyTraffic.visitors).where(
            HourlyTraffic.store_id == store_id,
            HourlyTraffic.hour_start >= lo,
            HourlyTraffic.hour_start < hi,
        )
    ).tuples():
        out[hour_start.astimezone(tz(zone)).hour] = visitors
    return out


def _sum_kpis(cur: tuple[int, int, int], prev: tuple[int, int, int]) -> list[Kpi]:
    (v, t, s), (pv, pt, ps) = cur, prev
    return [
        Kpi("sales", float(s), float(ps), "fen"),
        Kpi("visitors", float(v), float(pv), "count"),
        Kpi("conversion", t / v if v else None, pt / pv if pv else None, "ratio"),
        Kpi("basket", s / t if t else None, ps / pt if pt else None, "fen"),
    ]


def _add(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


# --------------------------------------------------------------------------- store manager


def rota_gaps(session: Session, store: Store, week_start: dt.date) -> list[RotaGap]:
    """Open hours of the week where fewer floor staff are scheduled than the store minimum."""
    zone = store.timezone
    lo, hi = _range_bounds(week_start, week_start + dt.timedelta(days=6), zone)
    shifts = session.execute(
        select(Shift.start_at, Shift.end_at, Shift.role).where(
            Shift.store_id == store.id, Shift.start_at < hi, Shift.end_at > lo
        )
    ).tuples()
    cover: dict[tuple[dt.date, int], int] = defaultdict(int)
    for start, end, role in shifts:
        if role not in FLOOR_ROLES:
            continue
        t = start.astimezone(tz(zone)).replace(minute=0, second=0, microsecond=0)
        local_end = end.astimezone(tz(zone))
        while t < local_end:
            # count an hour as covered when the shift covers at least half of it
            covered = min(local_end, t + dt.timedelta(hours=1)) - max(start.astimezone(tz(zone)), t)
            if covered >= dt.timedelta(minutes=30):
                cover[(t.date(), t.hour)] += 1
            t += dt.timedelta(hours=1)
    open_h = store.opens_at.hour
    close_h = store.closes_at.hour + (1 if store.closes_at.minute else 0)
    gaps = []
    for d in range(7):
        day = week_start + dt.timedelta(days=d)
        for h in range(open_h, close_h):
            n = cover.get((day, h), 0)
            if n < store.min_floor_staff:
                gaps.append(RotaGap(day, h, n, store.min_floor_staff))
    return gaps


def manager_home(session: Session, store_id: int, day: dt.date) -> ManagerHome:
    store = session.get(Store, store_id)
    if store is None:
        raise LookupError(f"store {store_id} is not in the local data")
    zone = store.timezone
    week_start = day - dt.timedelta(days=day.weekday())
    today = _hourly_visitors(session, store_id, day, zone)
    last_week = _hourly_visitors(session, store_id, day - dt.timedelta(days=7), zone)
    hours = sorted(set(today) | set(last_week))
    tsum = _traffic_sums(session, [store_id], day, day, zone).get(store_id, (0, 0, 0))
    cur = _traffic_sums(session, [store_id], week_start, day, zone).get(store_id, (0, 0, 0))
    prev = _traffic_sums(
        session, [store_id], week_start - dt.timedelta(days=7), day - dt.timedelta(days=7), zone
    ).get(store_id, (0, 0, 0))
    pending = session.scalar(
        select(func.count()).where(
            PromotionProposal.store_id == store_id,
            PromotionProposal.status == ProposalStatus.PENDING.value,
        )
    )
    return ManagerHome(
        store_id=store.id,
        store_name=store.name,
        store_code=store.code,
        day=day,
        week_start=week_start,
        today_visitors=tsum[0],
        today_transactions=tsum[1],
        today_sales_fen=tsum[2],
        hourly=[(h, today.get(h, 0), last_week.get(h, 0)) for h in hours],
        pending_approvals=int(pending or 0),
        rota_gaps=rota_gaps(session, store, week_start),
        kpis=_sum_kpis(cur, prev),
    )


# --------------------------------------------------------------------------- supervisor


def supervisor_home(
    session: Session, region_id: int, day: dt.date, actor: Actor | None = None
) -> SupervisorHome:
    region = session.get(Region, region_id)
    if region is None:
        raise LookupError(f"region {region_id} is not in the local data")
    zone = region.timezone
    week_start = day - dt.timedelta(days=day.weekday())
    stores = (
        session.execute(
            select(Store.id, Store.code, Store.name).where(Store.region_id == region_id)
        )
        .tuples()
        .all()
    )
    if actor is not None and actor.role != "admin":
        stores = [s for s in stores if s[0] in actor.store_ids]
    ids = [s[0] for s in stores]
    cur = _traffic_sums(session, ids, week_start, day, zone)
    prev = _traffic_sums(
        session, ids, week_start - dt.timedelta(days=7), day - dt.timedelta(days=7), zone
    )
    ranking = sorted(
        (
            StoreRank(
                sid,
                code,
                name,
                cur.get(sid, (0, 0, 0))[2],
                prev.get(sid, (0, 0, 0))[2],
                cur.get(sid, (0, 0, 0))[0],
                cur.get(sid, (0, 0, 0))[1],
            )
            for sid, code, name in stores
        ),
        key=lambda r: (-r.sales_fen, r.code),
    )
    tot_cur = tot_prev = (0, 0, 0)
    for sid in ids:
        tot_cur = _add(tot_cur, cur.get(sid, (0, 0, 0)))
        tot_prev = _add(tot_prev, prev.get(sid, (0, 0, 0)))

    now_end = local_day_bounds(day, zone)[1]
    open_alert_q = select(Alert).where(
        Alert.region_id == region_id,
        Alert.resolved_at.is_(None),
        Alert.raised_at < now_end,
    )
    alerts_all = [
        a
        for a in session.scalars(open_alert_q.order_by(Alert.raised_at.desc()))
        if a.snoozed_until is None or a.snoozed_until < now_end
    ]
    severity_rank = {"critical": 0, "warning": 1, "info": 2}
    alerts_all.sort(key=lambda a: (severity_rank.get(a.severity, 3), -a.raised_at.timestamp()))
    alerts = [
        AlertLine(
            a.id,
            a.kind,
            a.severity,
            f"{a.subject_type} {a.subject_id}",
            a.raised_at,
            dict(a.params or {}),
        )
        for a in alerts_all[:8]
    ]

    funnel_rows = dict(
        (stage, (n, amt))
        for stage, n, amt in session.execute(
            select(Opportunity.stage, func.count(), func.sum(Opportunity.amount_fen))
            .join(Rep, Rep.id == Opportunity.rep_id)
            .where(Rep.region_id == region_id, Opportunity.status == "open")
            .group_by(Opportunity.stage)
        ).tuples()
    )
    funnel = [
        (
            s.value,
            int(funnel_rows.get(s.value, (0, 0))[0]),
            int(funnel_rows.get(s.value, (0, 0))[1] or 0),
        )
        for s in Stage
    ]

    yesterday = day - dt.timedelta(days=1)
    ylo, yhi = local_day_bounds(yesterday, zone)
    by_rep = (
        session.execute(
            select(Rep.name, func.count(Visit.id))
            .join(Rep, Rep.id == Visit.rep_id)
            .where(Rep.region_id == region_id, Visit.check_in_at >= ylo, Visit.check_in_at < yhi)
            .group_by(Rep.id, Rep.name)
            .order_by(func.count(Visit.id).desc(), Rep.name)
        )
        .tuples()
        .all()
    )
    ylast = _prev_visits(session, region_id, yesterday - dt.timedelta(days=7), zone)
    yvisits = sum(n for _, n in by_rep)
    kpis = [*_sum_kpis(tot_cur, tot_prev)[:3], Kpi("visits", float(yvisits), float(ylast), "count")]
    return SupervisorHome(
        region_id=region.id,
        region_name=region.name,
        day=day,
        week_start=week_start,
        open_alerts=len(alerts_all),
        alerts=alerts,
        funnel=funnel,
        yesterday=yesterday,
        yesterday_visits=yvisits,
        yesterday_reps=len(by_rep),
        visits_by_rep=[(name, int(n)) for name, n in by_rep],
        ranking=ranking,
        kpis=kpis,
    )


def _prev_visits(session: Session, region_id: int, day: dt.date, zone: str) -> int:
    lo, hi = local_day_bounds(day, zone)
    return int(
        session.scalar(
            select(func.count(Visit.id))
            .join(Rep, Rep.id == Visit.rep_id)
            .where(Rep.region_id == region_id, Visit.check_in_at >= lo, Visit.check_in_at < hi)
        )
        or 0
    )
