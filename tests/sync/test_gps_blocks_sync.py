"""The GPS blocks (:mod:`core.trajectory.gps_blocks`) stay equal to the rows through every
sync writer, against the real central app under uvicorn (:mod:`tests.sync.harness`): a
snapshot (triggers dropped while it loads, every bucket marked after), a stopped snapshot,
an incremental pull of another desktop's GPX import (its buckets rebuilt in the page's
transaction), and a refused import whose optimistic points the server's rows delete.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from sqlalchemy import func, select

from core.models import GpsPoint, Rep
from core.mutations import Actor
from core.trajectory import gps_blocks
from core.trajectory.field_day import load_field_day
from core.trajectory.gpx import import_gpx
from sync import local
from tests.gps_blocks_check import (
    assert_blocks_current,
    assert_same_raw,
    driver,
    reference_load_field_day,
    stale_keys,
    triggers,
)
from tests.sync.harness import T0, engine_for, new_client, run
from tests.trajectory_synth import gpx_track

REP = 1  # rep P1 of store S1, region R1 (harness world), with 5 fixes from T0
START = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(
    hour=1, minute=0, second=0, microsecond=0
)


def _gpx(n: int) -> bytes:
    return gpx_track(n, START, 5, origin=(31.2, 121.4), step_deg=1e-6, digits=7).encode()


def _sync(cache, server, user: str, **kw) -> tuple[object, Actor | None]:
    async def go():
        eng = engine_for(cache, server, user, **kw)
        try:
            return await eng.sync_once(), eng._actor()
        finally:
            await eng.aclose()

    return run(go())


def _same_map(cache, day: dt.date) -> None:
    with cache.session() as s:
        assert_same_raw(load_field_day(s, 1, None, day), reference_load_field_day(s, 1, None, day))


def test_snapshot_then_pull_keep_the_blocks(server, tmp_path) -> None:
    a, b = new_client(tmp_path, "a"), new_client(tmp_path, "b")
    try:
        _sync(a, server, "sup1")
        _, actor_b = _sync(b, server, "sup1")
        with a.session() as s:  # the snapshot: triggers back, every bucket marked
            raw = driver(s)
            assert triggers(raw) == set(gps_blocks.TRIGGERS)
            assert stale_keys(raw) == {(REP, T0.strftime("%Y-%m-%d %H"))}
            assert_blocks_current(raw)
        _same_map(a, T0.date())
        with a.session() as s:
            assert_blocks_current(driver(s), none_stale=True)
            assert s.scalar(select(func.count()).select_from(GpsPoint)) == 5

        with b.session() as s:  # another desktop imports a track and pushes it
            assert import_gpx(s, REP, _gpx(1500), actor_b).inserted == 1500
        _sync(b, server, "sup1")
        res, _ = _sync(a, server, "sup1")  # A pulls it
        assert "gps_points" in res.pulled_tables
        with a.session() as s:
            raw = driver(s)
            assert stale_keys(raw) == set()  # rebuilt in the pull page's transaction
            assert_blocks_current(raw)
            assert raw.execute("SELECT sum(n) FROM gps_blocks").fetchone()[0] == 1505
        _same_map(a, START.date())
        _same_map(a, T0.date())
    finally:
        a.close()
        b.close()


def test_a_stopped_snapshot_leaves_no_unmarked_blocks(server, tmp_path) -> None:
    """A snapshot that stops while gps_points loads (the triggers dropped): the indexes
    and the triggers come back at once, every bucket marked, and a read is right."""
    cache = new_client(tmp_path, "a")
    try:
        _sync(cache, server, "sup1")
        _same_map(cache, T0.date())  # blocks built
        local.begin_snapshot(cache, 1, [("gps_points", ["rep_id", "ts"])])
        stamp = T0.strftime("%Y-%m-%d %H:%M:%S.%f")
        with cache.session() as s:
            raw = driver(s)
            assert triggers(raw) == set()
            assert raw.execute("SELECT count(*) FROM gps_blocks").fetchone()[0] == 0
            raw.execute("PRAGMA foreign_keys=OFF")  # the load's first page (reps still to come)
            raw.execute(
                "INSERT INTO gps_points (rep_id, ts, lat, lon, accuracy_m, source) "
                "VALUES (1, ?, 31.25, 121.4, 5.0, 'app')",
                (stamp,),
            )
        with cache.session() as s:
            driver(s).execute("PRAGMA foreign_keys=ON")
        local.build_missing_indexes(cache)  # the engine's step when a sync stops
        with cache.session() as s:
            raw = driver(s)
            assert triggers(raw) == set(gps_blocks.TRIGGERS)
            assert stale_keys(raw) == {(REP, T0.strftime("%Y-%m-%d %H"))}
            fixes = gps_blocks.read_fixes(raw, [REP], T0, T0 + dt.timedelta(hours=1))
            assert fixes[REP].t_us.tolist() == [int(T0.timestamp() * 1_000_000)]
            assert fixes[REP].lat.tolist() == [31.25]
            assert_blocks_current(raw, none_stale=True)
    finally:
        cache.close()


def test_a_refused_import_deletes_its_points_from_the_blocks(server, tmp_path) -> None:
    """mgr3 (store S3) imports for rep P1 of store S1 through a stale replica: the server
    refuses, its rows request deletes the optimistic points, and their blocks go too."""
    cache = new_client(tmp_path, "m3")
    try:
        _sync(cache, server, "mgr3")
        with cache.session() as s:
            s.add(
                Rep(id=REP, region_id=1, store_id=None, code="P1", name="x", home_lat=0, home_lon=0)
            )
        admin_here = Actor(user_id=4, name="MGR3", role="admin", store_ids=frozenset())
        with cache.session() as s:
            import_gpx(s, REP, _gpx(40), admin_here)
            raw = driver(s)
            assert raw.execute("SELECT sum(n) FROM gps_blocks WHERE rep_id = 1").fetchone() == (40,)
        res, _ = _sync(cache, server, "mgr3")
        assert res.rejected == 1
        with cache.session() as s:
            raw = driver(s)
            assert s.scalar(select(func.count()).select_from(GpsPoint)) == 0
            assert stale_keys(raw) == set()  # rebuilt with the server's rows
            assert raw.execute("SELECT count(*) FROM gps_blocks").fetchone()[0] == 0
            assert_blocks_current(raw)
            assert gps_blocks.read_fixes(raw, [REP], START, START + dt.timedelta(days=1)) == {}
    finally:
        cache.close()


def test_a_snapshot_wipes_the_fixes_without_a_trigger_per_row(tmp_path, monkeypatch) -> None:
    """The blocks' triggers go before the snapshot's wipe of gps_points: with them, the
    DELETE runs a trigger per fix (~1 s per million) instead of SQLite's whole-table delete."""
    cache = new_client(tmp_path, "w")
    raw = sqlite3.connect(cache.path)  # (foreign keys off: no rep row needed)
    try:
        raw.executemany(
            "INSERT INTO gps_points (rep_id, ts, lat, lon, accuracy_m, source)"
            " VALUES (1, ?, 31.2, 121.4, 10.0, 'app')",
            [(f"2026-11-26 0{h}:00:00.000000",) for h in range(5)],
        )
        raw.commit()
        assert triggers(raw)
        rows_when_dropped: list[int] = []
        drop = gps_blocks.drop_triggers

        def spy(conn) -> None:
            rows_when_dropped.append(conn.execute("SELECT count(*) FROM gps_points").fetchone()[0])
            drop(conn)

        monkeypatch.setattr(gps_blocks, "drop_triggers", spy)
        local.begin_snapshot(cache, 1, [("gps_points", ["rep_id", "ts"])])
        assert rows_when_dropped == [5]  # dropped before the wipe
        assert not triggers(raw) and stale_keys(raw) == set()
        assert raw.execute("SELECT count(*) FROM gps_points").fetchone()[0] == 0
    finally:
        raw.close()
        cache.close()
