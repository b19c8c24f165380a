"""The app's start-up reads with the sqlite3 driver, before SQLAlchemy is imported.

Importing SQLAlchemy, its ORM and the data model and configuring the mappers costs more
than everything else the first window needs, so the reads that window waits for — the
remembered demo sign-in, the scope pickers, the sync status line, a supervisor's region
home and a store manager's week — are done here on a plain ``sqlite3`` connection
(:meth:`core.cache.Cache.reader`) and the ORM loads later, on the DB worker, for the
first screen that needs it.

Every function returns exactly what its ORM counterpart returns (tests in
``tests/core/test_quickread.py`` hold each pair equal on the demo region):
:func:`has_reference_data`, :func:`demo_actor`, :func:`data_last_day`,
:func:`regions_in_scope` and :func:`stores_in_scope` those of :mod:`core.directory`;
:func:`local_sync_status` that of :mod:`core.conflicts`; :func:`supervisor_home` and
:func:`manager_home` those of :mod:`core.home`. They share the arithmetic with them
(``core.traffic.kpis``, ``core.traffic.records``, ``core.traffic.quality``,
``core.traffic.forecast``, ``core.scheduling.demand``, ``core.funnel_figures``,
``core.alerts.rows``, :func:`core.home.assemble_supervisor_home` and
:func:`~core.home.assemble_manager_home`); only the SQL is written twice. Values are
read as SQLAlchemy stores them on SQLite: instants as naive UTC text
``YYYY-MM-DD HH:MM:SS.ffffff`` (:func:`_ts` writes bounds the same way, so text
comparisons select the same rows), dates as ISO text, JSON as text, booleans as 0/1.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from core.actor import Actor
from core.directory import RegionInfo, StoreInfo
from core.home import (
    FUNNEL_DAYS,
    ManagerHome,
    SupervisorHome,
    assemble_manager_home,
    assemble_supervisor_home,
    gaps_of,
)
from core.timeutil import local_day_bounds, to_local
from core.traffic.records import FLOOR_ROLES, _as_utc

#: SyncState keys the status bar reads (written by the sync engine; core.conflicts too).
LAST_SYNC_KEYS = ("last_sync_at", "last_success_at", "last_sync")


@dataclass(frozen=True)
class LocalSyncStatus:
    """What the status bar counts (:func:`core.conflicts.local_sync_status` returns it too)."""

    pending: int
    conflicts: int
    last_sync_at: dt.datetime | None


def _ts(instant: dt.datetime) -> str:
    """An aware instant as ``core.models.UTCDateTime`` binds it on SQLite (naive UTC text)."""
    d = instant.astimezone(dt.UTC)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}"
    )


def _instant(raw: str | None) -> dt.datetime | None:
    return None if raw is None else _as_utc(raw)


def _ids(values: Iterable[int]) -> str:
    """An SQL list of integer ids (ints only, so inlining is safe); ``NULL`` when empty,
    which matches nothing, as SQLAlchemy's empty ``IN``."""
    return ",".join(str(int(v)) for v in values) or "NULL"


# --------------------------------------------------------------------------- directory


def has_reference_data(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT id FROM stores LIMIT 1").fetchone() is not None


def demo_actor(conn: sqlite3.Connection, role: str, code: str) -> Actor | None:
    """:func:`core.directory.demo_actor`: the first active user (by username) of ``role``
    who looks after store/region ``code`` (any, when ``code`` is empty)."""
    if role not in ("store_manager", "supervisor"):
        return None
    users = conn.execute(
        "SELECT id, username, display_name, role FROM users "
        "WHERE active IS 1 AND role = ? ORDER BY username",
        (role,),
    ).fetchall()
    column, table = ("store_id", "stores") if role == "store_manager" else ("region_id", "regions")
    for user_id, _username, display_name, user_role in users:
        codes = {
            c
            for (c,) in conn.execute(
                f"SELECT t.code FROM user_scopes s JOIN {table} t ON t.id = s.{column} "
                "WHERE s.user_id = ?",
                (user_id,),
            )
        }
        if not code or code in codes:
            return _actor(conn, user_id, display_name, user_role)
    return None


def _actor(conn: sqlite3.Connection, user_id: int, name: str, role: str) -> Actor:
    """:func:`core.mutations.actor_for_user`: a supervisor's regions expand to their stores."""
    scopes = conn.execute(
        "SELECT store_id, region_id FROM user_scopes WHERE user_id = ?", (user_id,)
    ).fetchall()
    store_ids = {s for s, _r in scopes if s is not None}
    region_ids = {r for _s, r in scopes if r is not None}
    if region_ids:
        store_ids |= {
            i
            for (i,) in conn.execute(
                f"SELECT id FROM stores WHERE region_id IN ({_ids(region_ids)})"
            )
        }
    if store_ids and role != "store_manager":
        region_ids |= {
            r
            for (r,) in conn.execute(
                f"SELECT region_id FROM stores WHERE id IN ({_ids(store_ids)})"
            )
        }
    return Actor(
        user_id=user_id,
        name=name,
        role=role,
        store_ids=frozenset(store_ids),
        region_ids=frozenset(region_ids),
    )


def data_last_day(conn: sqlite3.Connection, zone: str | None = None) -> dt.date | None:
    (last,) = conn.execute("SELECT max(hour_start) FROM hourly_traffic").fetchone()
    if last is None:
        return None
    return to_local(_as_utc(last), zone).date()


def regions_in_scope(conn: sqlite3.Connection, actor: Actor) -> list[RegionInfo]:
    sql = "SELECT id, code, name, name_en, timezone FROM regions"
    if actor.role != "admin":
        region_ids = set(actor.region_ids)
        if actor.store_ids:
            region_ids |= {
                r
                for (r,) in conn.execute(
                    f"SELECT region_id FROM stores WHERE id IN ({_ids(actor.store_ids)})"
                )
            }
        sql += f" WHERE id IN ({_ids(region_ids)})"
    return [RegionInfo(*row) for row in conn.execute(sql + " ORDER BY code")]


def stores_in_scope(
    conn: sqlite3.Connection, actor: Actor, region_id: int | None = None
) -> list[StoreInfo]:
    conds: list[str] = []
    params: list[Any] = []
    if actor.role != "admin":
        conds.append(f"id IN ({_ids(actor.store_ids)})")
    if region_id is not None:
        conds.append("region_id = ?")
        params.append(region_id)
    where = (" WHERE " + " AND ".join(conds)) if conds else ""
    return [
        StoreInfo(*row)
        for row in conn.execute(
            f"SELECT id, code, name, region_id, city, timezone FROM stores{where} ORDER BY code",
            params,
        )
    ]


def local_sync_status(conn: sqlite3.Connection) -> LocalSyncStatus:
    """:func:`core.conflicts.local_sync_status`: unsynced edits, open conflicts, last sync."""
    last = None
    for key in LAST_SYNC_KEYS:
        row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0]:
            try:
                last = dt.datetime.fromisoformat(row[0])
            except ValueError:
                continue
            if last.tzinfo is None:
                last = last.replace(tzinfo=dt.UTC)
            break
    (pending,) = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
    (conflicts,) = conn.execute(
        "SELECT count(*) FROM sync_conflicts WHERE resolved_at IS NULL"
    ).fetchone()
    return LocalSyncStatus(int(pending or 0), int(conflicts or 0), last)


# --------------------------------------------------------------------------- region home


def supervisor_home(
    conn: sqlite3.Connection, region_id: int, day: dt.date, actor: Actor | None = None
) -> SupervisorHome:
    """:func:`core.home.supervisor_home`, read with the sqlite3 driver."""
    from core.funnel_figures import FunnelQuery, period_of_days, tracks_from_rows
    from core.traffic.kpis import week_pair_ranges, weeks_kpis
    from core.traffic.records import hours_window, info_of, records_from_rows

    region = conn.execute(
        "SELECT id, name, timezone FROM regions WHERE id = ?", (region_id,)
    ).fetchone()
    if region is None:
        raise LookupError(f"region {region_id} is not in the local data")
    _rid, region_name, zone = region
    week_start = day - dt.timedelta(days=day.weekday())
    stores = conn.execute(
        "SELECT id, code, name FROM stores WHERE region_id = ? ORDER BY code", (region_id,)
    ).fetchall()
    if actor is not None and actor.role != "admin":
        stores = [s for s in stores if s[0] in actor.store_ids]

    # each store's two weeks (core.traffic.analytics.stores_week_kpis)
    ids = _ids(s[0] for s in stores)
    infos = [
        info_of(
            SimpleNamespace(
                id=sid,
                code=code,
                name=name,
                region_id=rid,
                cluster=cluster,
                timezone=timezone,
                opens_at=dt.time.fromisoformat(opens),
                closes_at=dt.time.fromisoformat(closes),
            )
        )
        for sid, code, name, rid, cluster, timezone, opens, closes in conn.execute(
            "SELECT id, code, name, region_id, cluster, timezone, opens_at, closes_at "
            f"FROM stores WHERE id IN ({ids}) ORDER BY code"
        )
    ]
    weeks: dict = {}
    if infos:
        first_ref, shifts_from, end = week_pair_ranges(week_start, day)
        by_id = {i.id: i for i in infos}
        lo, hi, bounds = hours_window(infos, first_ref, end)
        rows = conn.execute(
            "SELECT store_id, hour_start, visitors, transactions, sales_fen, units "
            f"FROM hourly_traffic WHERE store_id IN ({ids}) AND hour_start >= ? "
            "AND hour_start < ? ORDER BY store_id, hour_start",
            (_ts(lo), _ts(hi)),
        ).fetchall()
        records = records_from_rows(by_id, bounds, rows)
        hols = [
            dt.date.fromisoformat(d)
            for (d,) in conn.execute(
                "SELECT date FROM holidays WHERE date >= ? AND date <= ?",
                (first_ref.isoformat(), end.isoformat()),
            )
        ]
        s_lo = min(local_day_bounds(shifts_from, i.timezone)[0] for i in infos)
        s_hi = max(local_day_bounds(end, i.timezone)[1] for i in infos)
        roles = ",".join(f"'{r}'" for r in sorted(FLOOR_ROLES))
        shifts: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {i.id: [] for i in infos}
        for sid, s_start, s_end in conn.execute(
            f"SELECT store_id, start_at, end_at FROM shifts WHERE store_id IN ({ids}) "
            f"AND status = 'published' AND role IN ({roles}) AND end_at > ? AND start_at < ? "
            "ORDER BY store_id, start_at, id",
            (_ts(s_lo), _ts(s_hi)),
        ):
            shifts[sid].append((_as_utc(s_start), _as_utc(s_end)))
        weeks = weeks_kpis(infos, records, hols, shifts, week_start, day)

    # open alerts in scope (core.alerts.engine.list_alerts, snoozed ones left out)
    from core.alerts.rows import alert_rows

    now_end = local_day_bounds(day, zone)[1]
    alerts = alert_rows(
        (
            (
                SimpleNamespace(
                    id=a_id,
                    kind=kind,
                    severity=severity,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    region_id=a_region,
                    store_id=a_store,
                    rep_id=a_rep,
                    raised_at=_instant(raised),
                    due_at=_instant(due),
                    escalated_at=_instant(escalated),
                    snoozed_until=_instant(snoozed),
                    snooze_reason=reason,
                    resolved_at=_instant(resolved),
                    params=json.loads(params) if params is not None else None,
                ),
                store_name,
                rep_name,
            )
            for (
                a_id,
                kind,
                severity,
                subject_type,
                subject_id,
                a_region,
                a_store,
                a_rep,
                raised,
                due,
                escalated,
                snoozed,
                reason,
                resolved,
                params,
                store_name,
                rep_name,
            ) in conn.execute(
                "SELECT a.id, a.kind, a.severity, a.subject_type, a.subject_id, a.region_id, "
                "a.store_id, a.rep_id, a.raised_at, a.due_at, a.escalated_at, a.snoozed_until, "
                "a.snooze_reason, a.resolved_at, a.params, s.name, r.name FROM alerts a "
                "LEFT OUTER JOIN stores s ON s.id = a.store_id "
                "LEFT OUTER JOIN reps r ON r.id = a.rep_id "
                "WHERE a.region_id = ? AND a.resolved_at IS NULL",
                (region_id,),
            )
        ),
        now_end,
        actor=actor,
        include_snoozed=False,
    )

    # the funnel of the last FUNNEL_DAYS, cohort basis, ordered (core.funnel._load_tracks)
    start, end_at = period_of_days(day, FUNNEL_DAYS, zone)
    query = FunnelQuery(start, end_at, region_id=region_id)
    scope = ""
    if actor is not None and actor.role != "admin":
        scope = (
            f" AND (o.store_id IN ({_ids(actor.store_ids or {-1})}) OR (o.store_id IS NULL "
            f"AND c.region_id IN ({_ids(actor.region_ids or {-1})})))"
        )
    tracks = tracks_from_rows(
        (opp, stage, _as_utc(at), amount, ev_id)
        for opp, stage, at, amount, ev_id in conn.execute(
            "SELECT e.opportunity_id, e.stage, e.entered_at, e.amount_fen, e.id "
            "FROM opportunity_stage_events e WHERE e.opportunity_id IN ("
            " SELECT opportunity_id FROM opportunity_stage_events WHERE opportunity_id IN ("
            "  SELECT o.id FROM opportunities o JOIN customers c ON c.id = o.customer_id "
            f"  WHERE c.region_id = ?{scope})"
            " GROUP BY opportunity_id"
            " HAVING min(entered_at) >= ? AND min(entered_at) < ?)"
            " AND e.entered_at < ? ORDER BY e.opportunity_id, e.entered_at, e.id",
            (region_id, _ts(start), _ts(end_at), _ts(end_at)),
        )
    )

    yesterday = day - dt.timedelta(days=1)
    by_rep = _visits_by_rep(conn, region_id, yesterday, zone)
    last_week = _visits_by_rep(conn, region_id, yesterday - dt.timedelta(days=7), zone)
    return assemble_supervisor_home(
        region_id,
        region_name,
        day,
        [tuple(s) for s in stores],
        weeks,
        alerts,
        query,
        tracks,
        by_rep,
        last_week,
    )


def _visits_by_rep(
    conn: sqlite3.Connection, region_id: int, day: dt.date, zone: str
) -> list[tuple[str, int]]:
    lo, hi = local_day_bounds(day, zone)
    return [
        (name, int(n))
        for name, n in conn.execute(
            "SELECT r.name, count(v.id) FROM visits v JOIN reps r ON r.id = v.rep_id "
            "WHERE r.region_id = ? AND v.check_in_at >= ? AND v.check_in_at < ? "
            "GROUP BY r.id, r.name ORDER BY count(v.id) DESC, r.name",
            (region_id, _ts(lo), _ts(hi)),
        )
    ]


# --------------------------------------------------------------------------- store home


def manager_home(conn: sqlite3.Connection, store_id: int, day: dt.date) -> ManagerHome:
    """:func:`core.home.manager_home`, read with the sqlite3 driver.

    The ORM path loads the store's hours four times over (today and a week before, each
    with its outage reference weeks; the two weeks' KPIs; the rota's forecast history);
    here one query reads their union and each figure takes its own days from it, with
    the same functions: :func:`~core.traffic.quality.detect_outages` (what
    :func:`core.traffic.analytics.store_day_hours` judges),
    :func:`~core.traffic.kpis.weeks_kpis`, and for the rota gaps
    :func:`~core.traffic.forecast.forecast_from_history` and
    :func:`~core.scheduling.demand.week_demand` (what ``core.scheduling.week.load_week``
    computes; its rule findings are not part of the home).
    """
    from core.scheduling.demand import week_demand
    from core.scheduling.rules import ShiftSpan
    from core.scheduling.rules import StoreInfo as RotaStore
    from core.timeutil import tz
    from core.traffic.forecast import DEFAULT_WEEKS, HOLIDAY_LOOKBACK_DAYS, forecast_from_history
    from core.traffic.kpis import week_pair_ranges, weeks_kpis
    from core.traffic.quality import REFERENCE_WEEKS, detect_outages
    from core.traffic.records import hours_window, info_of, records_from_rows

    row = conn.execute(
        "SELECT id, code, name, region_id, cluster, timezone, opens_at, closes_at, "
        "target_star, min_floor_staff FROM stores WHERE id = ?",
        (store_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"store {store_id} is not in the local data")
    sid, code, name, region_id, cluster, timezone, opens, closes, target_star, min_floor = row
    opens_at, closes_at = dt.time.fromisoformat(opens), dt.time.fromisoformat(closes)
    info = info_of(
        SimpleNamespace(
            id=sid,
            code=code,
            name=name,
            region_id=region_id,
            cluster=cluster,
            timezone=timezone,
            opens_at=opens_at,
            closes_at=closes_at,
        )
    )
    zone = info.timezone
    week = dt.timedelta(days=7)
    week_start = day - dt.timedelta(days=day.weekday())
    reference = dt.timedelta(weeks=REFERENCE_WEEKS)
    # the local days each figure reads (the ORM path's loads)
    forecast_from = week_start - dt.timedelta(days=max(DEFAULT_WEEKS * 7, HOLIDAY_LOOKBACK_DAYS))
    first_ref, shifts_from, end = week_pair_ranges(week_start, day)
    first = min(forecast_from, first_ref, day - week - reference)
    last = max(day, end)

    lo, hi, bounds = hours_window([info], first, last)
    records = records_from_rows(
        {sid: info},
        bounds,
        conn.execute(
            "SELECT store_id, hour_start, visitors, transactions, sales_fen, units "
            "FROM hourly_traffic WHERE store_id = ? AND hour_start >= ? AND hour_start < ? "
            "ORDER BY hour_start",
            (sid, _ts(lo), _ts(hi)),
        ),
    )[sid]
    hols = [
        dt.date.fromisoformat(d)
        for (d,) in conn.execute(
            "SELECT date FROM holidays WHERE date >= ? AND date <= ?",
            (first.isoformat(), max(last, week_start + week).isoformat()),
        )
    ]

    def days(a: dt.date, b: dt.date) -> list:
        return [r for r in records if a <= r.day <= b]

    def holidays(a: dt.date, b: dt.date) -> list[dt.date]:
        return [d for d in hols if a <= d <= b]

    def day_points(d: dt.date) -> list[tuple[int, int | None, int, int]]:
        history = days(d - reference, d)
        outages = detect_outages(history, info, holidays(d - reference, d), judge=(d, d))
        return [
            (
                r.hour,
                None if (r.day, r.hour) in outages else r.visitors,
                r.transactions,
                r.sales_fen,
            )
            for r in sorted((r for r in history if r.day == d), key=lambda r: r.hour)
        ]

    # the two weeks' KPIs (core.traffic.analytics.stores_week_kpis)
    s_lo = local_day_bounds(shifts_from, zone)[0]
    s_hi = local_day_bounds(end, zone)[1]
    roles = ",".join(f"'{r}'" for r in sorted(FLOOR_ROLES))
    floor_shifts = [
        (_as_utc(a), _as_utc(b))
        for a, b in conn.execute(
            f"SELECT start_at, end_at FROM shifts WHERE store_id = ? AND status = 'published' "
            f"AND role IN ({roles}) AND end_at > ? AND start_at < ? ORDER BY start_at, id",
            (sid, _ts(s_lo), _ts(s_hi)),
        )
    ]
    kpis = weeks_kpis(
        [info],
        {sid: days(first_ref, end)},
        holidays(first_ref, end),
        {sid: floor_shifts},
        week_start,
        day,
    )[sid]

    # promotion proposals waiting (core.promotions.queue.list_proposals' rows)
    (pending,) = conn.execute(
        "SELECT count(*) FROM promotion_proposals p JOIN stores s ON s.id = p.store_id "
        "JOIN skus k ON k.id = p.sku_id JOIN promotion_rules r ON r.id = p.rule_id "
        "WHERE p.store_id = ? AND p.status = 'pending'",
        (sid,),
    ).fetchone()

    # the rota's demand gaps (core.scheduling.week.load_week: every shift starting in the
    # store-local week, drafts too, against the forecast of the weeks before)
    rota_store = RotaStore(
        id=sid,
        code=code,
        name=name,
        timezone=zone,
        opens_at=opens_at,
        closes_at=closes_at,
        target_star=float(target_star or 12.0),
        min_floor_staff=int(min_floor if min_floor is not None else 2),
    )
    w_lo = dt.datetime.combine(week_start, dt.time(0), tz(zone)).astimezone(dt.UTC)
    w_hi = dt.datetime.combine(week_start + week, dt.time(0), tz(zone)).astimezone(dt.UTC)
    spans = [
        ShiftSpan(
            id=s_id,
            staff_id=staff_id,
            role=role,
            start=_as_utc(a),
            end=_as_utc(b),
            status=status,
            version=version,
            note=note or "",
        )
        for s_id, staff_id, role, a, b, status, version, note in conn.execute(
            "SELECT id, staff_id, role, start_at, end_at, status, version, note FROM shifts "
            "WHERE store_id = ? AND start_at >= ? AND start_at < ? ORDER BY start_at, id",
            (sid, _ts(w_lo), _ts(w_hi)),
        )
    ]
    forecast = forecast_from_history(
        days(forecast_from, week_start - dt.timedelta(days=1)),
        info,
        week_start,
        7,
        holidays(forecast_from, week_start + week),
    )
    demand = week_demand(rota_store, week_start, forecast, spans)

    return assemble_manager_home(
        sid,
        name,
        code,
        day,
        day_points(day),
        day_points(day - week),
        kpis,
        int(pending),
        gaps_of(demand),
    )
