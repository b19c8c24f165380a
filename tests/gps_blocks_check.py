"""Checks shared by the GPS block tests (core and sync): the blocks hold exactly the rows,
and the field map's query equals the row-based read it replaced (kept here verbatim as
the reference)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Customer, GpsPoint, Region, Rep, Store, Visit
from core.timeutil import local_day_bounds
from core.trajectory import gps_blocks
from core.trajectory.arrays import FixArrays, to_us
from core.trajectory.field_day import (
    HEAT_DAYS,
    CustomerInfo,
    FieldDayRaw,
    RepInfo,
    StoreInfo,
    VisitRow,
)
from core.trajectory.stops import RecordedVisit

RECORD = np.dtype([("t", "<i8"), ("lat", "<f8"), ("lon", "<f8"), ("acc", "<f8")])


def driver(session_or_cache: Any) -> sqlite3.Connection:
    raw = gps_blocks.driver_connection(session_or_cache)
    assert raw is not None, "no GPS blocks in this database"
    return raw


def stale_keys(raw: sqlite3.Connection) -> set[tuple[int, str]]:
    return {(r, d) for r, d in raw.execute("SELECT rep_id, hour FROM gps_block_stale")}


def triggers(raw: sqlite3.Connection) -> set[str]:
    return {
        r[0]
        for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'gps_points'"
        )
    }


def block_problems(raw: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """Buckets whose block is not exactly their rows (in time order), stale ones aside.

    Every (rep, hour) that has rows or a block is checked; a bucket marked stale may differ
    (the next read rebuilds it). An empty list is the invariant every writer keeps.
    """
    stale = stale_keys(raw)
    rows: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
    for rep_id, ts, lat, lon, acc in raw.execute(
        "SELECT rep_id, ts, lat, lon, accuracy_m FROM gps_points ORDER BY rep_id, ts"
    ):
        rows.setdefault((rep_id, ts[: gps_blocks.KEY_LEN]), []).append((ts, lat, lon, acc))
    blocks = {(r, d): (n, data) for r, d, n, data in raw.execute("SELECT * FROM gps_blocks")}
    problems = []
    for key in sorted(rows.keys() | blocks.keys()):
        if key in stale:
            continue
        if key not in blocks:
            problems.append((*key, "no block"))
            continue
        if key not in rows:
            problems.append((*key, "a block without rows"))
            continue
        n, data = blocks[key]
        rec = np.frombuffer(data, dtype=RECORD)
        want = rows[key]
        expect = np.array(
            [
                (to_us(dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)), lat, lon, acc)
                for ts, lat, lon, acc in want
            ],
            dtype=RECORD,
        )
        if n != len(want) or len(rec) != n or not np.array_equal(rec, expect):
            problems.append((*key, f"block of {len(rec)} fixes differs from {len(want)} rows"))
    return problems


def assert_blocks_current(raw: sqlite3.Connection, *, none_stale: bool = False) -> None:
    assert triggers(raw) == set(gps_blocks.TRIGGERS)
    assert block_problems(raw) == []
    if none_stale:
        assert stale_keys(raw) == set()


# --------------------------------------------------------------------------- reference


def reference_load_field_day(
    session: Session,
    region_id: int,
    rep_ids: Sequence[int] | None,
    day_from: dt.date,
    day_to: dt.date | None = None,
) -> FieldDayRaw:
    """``load_field_day`` as it was before the GPS blocks: every row through the driver."""
    day_to = day_to or day_from
    region = session.get(Region, region_id)
    if region is None:
        raise LookupError(f"no region {region_id}")
    tz = region.timezone
    start, _ = local_day_bounds(day_from, tz)
    _, end = local_day_bounds(day_to, tz)
    conn = session.connection()
    rep_q = (
        select(Rep.id, Rep.code, Rep.name, Rep.region_id, Rep.store_id)
        .where(Rep.region_id == region_id)
        .order_by(Rep.code)
    )
    if rep_ids is not None:
        rep_q = rep_q.where(Rep.id.in_(list(rep_ids)))
    reps = [RepInfo(*r) for r in conn.execute(rep_q)]
    ids = [r.id for r in reps]
    names = {r.id: r.name for r in reps}
    gps: dict[int, FixArrays] = {}
    if ids:
        rows = _plain_rows(
            conn,
            select(GpsPoint.rep_id, GpsPoint.ts, GpsPoint.lat, GpsPoint.lon, GpsPoint.accuracy_m)
            .where(GpsPoint.rep_id.in_(ids), GpsPoint.ts >= start, GpsPoint.ts < end)
            .order_by(GpsPoint.rep_id, GpsPoint.ts),
        )
        gps = _fix_arrays(rows)
    visits: list[VisitRow] = []
    if ids:
        for row in conn.execute(
            select(
                Visit.id, Visit.rep_id, Visit.customer_id, Visit.check_in_at, Visit.check_out_at,
                Visit.check_in_lat, Visit.check_in_lon, Customer.lat, Customer.lon,
                Customer.name, Customer.tier, Visit.purpose, Visit.photo_ref, Visit.voice_summary,
            )
            .join(Customer, Customer.id == Visit.customer_id)
            .where(Visit.rep_id.in_(ids), Visit.check_in_at >= start, Visit.check_in_at < end)
            .order_by(Visit.check_in_at)
        ):  # fmt: skip
            visits.append(
                VisitRow(
                    visit=RecordedVisit(*row[:9]),
                    rep_name=names[row.rep_id],
                    customer_name=row.name,
                    customer_tier=row.tier,
                    purpose=row.purpose,
                    photo_ref=row.photo_ref,
                    voice_summary=row.voice_summary,
                )
            )
    cust_q = select(
        Customer.id, Customer.name, Customer.tier, Customer.lat, Customer.lon, Customer.rep_id
    ).where(Customer.region_id == region_id)
    if rep_ids is not None:
        cust_q = cust_q.where(Customer.rep_id.in_(ids))
    customers = [CustomerInfo(*c) for c in _plain_rows(conn, cust_q)]
    stores = [
        StoreInfo(*st)
        for st in conn.execute(
            select(Store.id, Store.code, Store.name, Store.lat, Store.lon).where(
                Store.region_id == region_id
            )
        )
    ]
    heat_start, _ = local_day_bounds(day_to - dt.timedelta(days=HEAT_DAYS - 1), tz)
    heat = _plain_rows(
        conn,
        select(Customer.lat, Customer.lon)
        .join(Visit, Visit.customer_id == Customer.id)
        .join(Rep, Rep.id == Visit.rep_id)
        .where(
            Rep.region_id == region_id,
            Visit.check_in_at >= heat_start,
            Visit.check_in_at < end,
        ),
    )
    return FieldDayRaw(
        region_id=region_id,
        region_name=region.name,
        timezone=tz,
        day_from=day_from,
        day_to=day_to,
        reps=reps,
        gps=gps,
        visits=visits,
        customers=customers,
        stores=stores,
        heat=heat,
    )


def _plain_rows(conn: Any, stmt: Any) -> list[tuple[Any, ...]]:
    res = conn.execute(stmt)
    try:
        return res.cursor.fetchall()
    finally:
        res.close()


def _fix_arrays(rows: Sequence[Any]) -> dict[int, FixArrays]:
    if not rows:
        return {}
    rep_col, ts_col, lat_col, lon_col, acc_col = zip(*rows, strict=True)
    try:
        t = np.array(ts_col, dtype="datetime64[us]").astype(np.int64)
    except ValueError:
        t = np.array([to_us(_utc(v)) for v in ts_col], dtype=np.int64)
    rep = np.array(rep_col, dtype=np.int64)
    lat = np.array(lat_col, dtype=np.float64)
    lon = np.array(lon_col, dtype=np.float64)
    acc = np.array(acc_col, dtype=np.float64)
    cuts = np.flatnonzero(np.diff(rep)) + 1
    out: dict[int, FixArrays] = {}
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rep)], strict=True):
        out[int(rep[lo])] = FixArrays(t[lo:hi], lat[lo:hi], lon[lo:hi], acc[lo:hi])
    return out


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def assert_same_raw(got: FieldDayRaw, want: FieldDayRaw) -> None:
    """Field by field; the heat points as a multiset (the query has no order)."""
    for name in ("region_id", "region_name", "timezone", "day_from", "day_to", "reps"):
        assert getattr(got, name) == getattr(want, name), name
    assert got.visits == want.visits
    assert got.customers == want.customers
    assert got.stores == want.stores
    assert sorted(got.heat) == sorted(want.heat)
    assert all(type(p) is tuple and len(p) == 2 for p in got.heat)
    assert got.gps.keys() == want.gps.keys()
    for rep_id, fa in want.gps.items():
        g = got.gps[rep_id]
        for col in ("t_us", "lat", "lon", "acc"):
            a, b = getattr(g, col), getattr(fa, col)
            assert a.dtype == b.dtype and np.array_equal(a, b), (rep_id, col)
