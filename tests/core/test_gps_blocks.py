"""The cache keeps each rep's GPS fixes a second time as per-hour blocks
(:mod:`core.trajectory.gps_blocks`), which the field map reads instead of the rows.

Held here: after every local writer (demo generation, a GPX import, raw inserts, updates
and deletes) each block is exactly its rows or marked stale; a read rebuilds what is stale;
``load_field_day`` equals the row-based read it replaced (``tests.gps_blocks_check``) on
the demo for several days, regions, rep subsets and time zones; a schema-2 file is
migrated; the central server never gets the tables. Sync writers: tests/sync.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text

from central.db import init_central_schema, make_central_engine
from core.cache import open_cache
from core.models import Base, GpsPoint, Region, Rep
from core.mutations import Actor
from core.timeutil import local_day_bounds
from core.trajectory import gps_blocks
from core.trajectory.arrays import TrackPoints
from core.trajectory.field_day import (
    HEAT_DAYS,
    _aware,
    _heat_grouped,
    _stored,
    load_field_day,
)
from core.trajectory.gpx import import_gpx
from sync.protocol import SYNCED_TABLE_NAMES
from tests.conftest import DEMO_TODAY
from tests.gps_blocks_check import (
    assert_blocks_current,
    assert_same_raw,
    block_problems,
    driver,
    reference_load_field_day,
    stale_keys,
    triggers,
)
from tests.trajectory_synth import gpx_track

ADMIN = Actor(user_id=1, name="admin", role="admin", store_ids=frozenset())


def _regions(cache) -> dict[str, int]:
    with cache.session() as s:
        return {r.code: r.id for r in s.scalars(select(Region))}


def _rep_ids(cache, region_id: int) -> list[int]:
    with cache.session() as s:
        return list(s.scalars(select(Rep.id).where(Rep.region_id == region_id).order_by(Rep.id)))


def test_demo_generation_builds_every_block(demo_cache) -> None:
    with demo_cache.session() as s:
        raw = driver(s)
        assert_blocks_current(raw, none_stale=True)
        n_rows = raw.execute("SELECT count(*) FROM gps_points").fetchone()[0]
        n_blocks, n_fixes = raw.execute("SELECT count(*), sum(n) FROM gps_blocks").fetchone()
    assert n_rows > 100_000 and n_fixes == n_rows and n_blocks > 1000


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles"])  # fmt: skip
def test_load_field_day_equals_the_row_read(demo_cache, tz: str) -> None:
    """Every region, days inside and outside the GPS week, a week range, rep subsets; in
    time zones whose midnight is a whole UTC hour or not (Kolkata: +05:30)."""
    regions = _regions(demo_cache)
    with demo_cache.session() as s:
        s.execute(text("UPDATE regions SET timezone = :tz"), {"tz": tz})
    days = [DEMO_TODAY, DEMO_TODAY - dt.timedelta(days=1), DEMO_TODAY - dt.timedelta(days=6)]
    days.append(DEMO_TODAY - dt.timedelta(days=7))  # the GPS week's edge
    days.append(DEMO_TODAY - dt.timedelta(days=30))  # visits, no GPS
    checked = 0
    for rid in regions.values():
        reps = _rep_ids(demo_cache, rid)
        subsets = [None, reps[:1], reps[3:9], [reps[0], 999_999]]
        with demo_cache.session() as s:
            for day in days:
                for subset in subsets:
                    got = load_field_day(s, rid, subset, day)
                    want = reference_load_field_day(s, rid, subset, day)
                    assert_same_raw(got, want)
                    checked += sum(len(v) for v in want.gps.values())
            week = (DEMO_TODAY - dt.timedelta(days=6), DEMO_TODAY)
            assert_same_raw(
                load_field_day(s, rid, None, *week), reference_load_field_day(s, rid, None, *week)
            )
    assert checked > 100_000  # the comparison saw real fixes


def _one_point(cache) -> tuple[int, str]:
    with cache.session() as s:
        return tuple(  # type: ignore[return-value]
            driver(s)
            .execute("SELECT rep_id, ts FROM gps_points WHERE ts >= ? ORDER BY ts LIMIT 1", (
                (DEMO_TODAY - dt.timedelta(days=1)).isoformat() + " 03",))
            .fetchone()
        )  # fmt: skip


def test_raw_writes_are_marked_and_rebuilt_on_read(demo_cache) -> None:
    """Inserts, updates (moving a fix to another hour and rep) and deletes that no code of
    ours made: the triggers mark their buckets, the next read rebuilds them."""
    rep_id, ts = _one_point(demo_cache)
    with demo_cache.session() as s:
        region_id = s.get(Rep, rep_id).region_id
        other = s.scalar(select(Rep.id).where(Rep.region_id == region_id, Rep.id != rep_id))
    day = DEMO_TODAY - dt.timedelta(days=1)
    with demo_cache.session() as s:
        raw = driver(s)
        n0 = len(reference_load_field_day(s, region_id, [rep_id], day).gps[rep_id])
        raw.execute(
            "INSERT INTO gps_points (rep_id, ts, lat, lon, accuracy_m, source) "
            "SELECT rep_id, substr(ts, 1, 20) || '999999', lat + 0.001, lon, 7.5, 'app' "
            "FROM gps_points WHERE rep_id = ? AND ts >= ? AND ts < ?",
            (rep_id, ts[:13], ts[:13] + ":10"),
        )
        raw.execute(
            "UPDATE gps_points SET lat = lat + 0.5 WHERE rep_id = ? AND ts = ?", (rep_id, ts)
        )
        raw.execute(  # to the other rep, at 02 h UTC (a fraction no fix of the demo has)
            "UPDATE gps_points SET rep_id = ?, "
            "ts = substr(ts, 1, 11) || '02' || substr(ts, 14, 7) || '123457' "
            "WHERE rep_id = ? AND ts > ? AND ts < ?",
            (other, rep_id, ts[:13] + ":10", ts[:13] + ":30"),
        )
        raw.execute(
            "DELETE FROM gps_points WHERE rep_id = ? AND ts >= ? AND ts < ?",
            (rep_id, ts[:11] + "05", ts[:11] + "06"),
        )
        marked = stale_keys(raw)
        assert (rep_id, ts[:13]) in marked and (other, ts[:11] + "02") in marked
        assert (rep_id, ts[:11] + "05") in marked
        assert block_problems(raw) == []  # every changed bucket is marked
    with demo_cache.session() as s:
        got = load_field_day(s, region_id, None, day)
        want = reference_load_field_day(s, region_id, None, day)
        assert_same_raw(got, want)
        assert len(got.gps[rep_id]) != n0
        raw = driver(s)
        assert not {k for k in stale_keys(raw) if k[0] in (rep_id, other)}
        assert_blocks_current(raw, none_stale=True)


def test_a_read_while_another_process_writes_reads_the_rows(demo_cache) -> None:
    """Stale blocks want a write; with another process holding the file's write lock (a
    headless ``storedesk sync`` while the app is open) the map reads the rows instead, at
    once, and the blocks are rebuilt by a later read."""
    import time

    rep_id, ts = _one_point(demo_cache)
    with demo_cache.session() as s:
        region_id = s.get(Rep, rep_id).region_id
        driver(s).execute(
            "UPDATE gps_points SET lat = lat + 0.25 WHERE rep_id = ? AND ts = ?", (rep_id, ts)
        )
        s.commit()
    day = DEMO_TODAY - dt.timedelta(days=1)
    other = sqlite3.connect(demo_cache.path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
        with demo_cache.session() as s:
            t0 = time.perf_counter()
            got = load_field_day(s, region_id, None, day)
            waited = time.perf_counter() - t0
            assert_same_raw(got, reference_load_field_day(s, region_id, None, day))
            assert (rep_id, ts[:13]) in stale_keys(driver(s))  # not rebuilt: it could not
        assert waited < 5  # (the cache's busy timeout is 10 s)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with demo_cache.session() as s:
        assert_same_raw(
            load_field_day(s, region_id, None, day),
            reference_load_field_day(s, region_id, None, day),
        )
        assert (rep_id, ts[:13]) not in stale_keys(driver(s))
        assert_blocks_current(driver(s))


def test_missing_triggers_are_put_back_by_a_read(demo_cache) -> None:
    """Blocks written by a tool that dropped the triggers are not trusted."""
    rep_id, _ts = _one_point(demo_cache)
    with demo_cache.session() as s:
        region_id = s.get(Rep, rep_id).region_id
        raw = driver(s)
        for name in gps_blocks.TRIGGERS:
            raw.execute(f"DROP TRIGGER {name}")
        raw.execute("UPDATE gps_points SET lon = lon - 0.25 WHERE rep_id = ?", (rep_id,))
    day = DEMO_TODAY - dt.timedelta(days=1)
    with demo_cache.session() as s:
        assert_same_raw(
            load_field_day(s, region_id, None, day),
            reference_load_field_day(s, region_id, None, day),
        )
        raw = driver(s)
        assert triggers(raw) == set(gps_blocks.TRIGGERS)
        assert block_problems(raw) == []


def test_gpx_import_builds_its_blocks(demo_cache) -> None:
    rep_id, ts = _one_point(demo_cache)
    with demo_cache.session() as s:
        region_id = s.get(Rep, rep_id).region_id
    start = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC) + dt.timedelta(seconds=7)
    track = gpx_track(400, start, 11, origin=(31.2, 121.4), step_deg=2e-5, digits=7)
    with demo_cache.session() as s:
        summary = import_gpx(s, rep_id, track.encode(), ADMIN, now=start + dt.timedelta(days=3))
        assert summary.inserted > 300  # instants the rep already has are skipped
        raw = driver(s)
        assert stale_keys(raw) == set()  # built in the import's transaction
        assert_blocks_current(raw)
    day = DEMO_TODAY - dt.timedelta(days=1)
    with demo_cache.session() as s:
        got = load_field_day(s, region_id, [rep_id], day)
        assert_same_raw(got, reference_load_field_day(s, region_id, [rep_id], day))
        assert int(start.timestamp() * 1_000_000) in set(got.gps[rep_id].t_us.tolist())


def test_heat_edge_rows_as_the_row_read(demo_db: Path) -> None:
    """The heat's odd visits: a region rep's visit to another region's customer (not among
    the customers read), one whose customer row is gone (left out, as the join leaves
    it); then a customer id stored as text, a blob or a real (the grouped query reads
    that window; the blob's bytes are another customer's id in digits)."""
    day = DEMO_TODAY - dt.timedelta(days=1)
    conn = sqlite3.connect(demo_db)  # foreign keys off: the dangling id can be written
    region_id, rep_id = conn.execute(
        "SELECT region_id, id FROM reps WHERE region_id = (SELECT min(id) FROM regions)"
        " ORDER BY id LIMIT 1"
    ).fetchone()
    other, lat, lon = conn.execute(
        "SELECT id, lat, lon FROM customers WHERE region_id <> ? ORDER BY id LIMIT 1",
        (region_id,),
    ).fetchone()
    for vid, cid, hour in (("odd-other", other, 2), ("odd-gone", 987_654, 3)):
        conn.execute(
            "INSERT INTO visits (id, rep_id, customer_id, check_in_at, purpose, voice_summary)"
            " VALUES (?, ?, ?, ?, 'routine', '')",
            (vid, rep_id, cid, f"{day.isoformat()} 0{hour}:00:00.000000"),
        )
    conn.commit()
    cache = open_cache(demo_db)
    try:
        with cache.session() as s:
            got = load_field_day(s, region_id, None, day)
            assert_same_raw(got, reference_load_field_day(s, region_id, None, day))
            assert isinstance(got.heat, TrackPoints)  # read as arrays
            assert (lat, lon) in list(got.heat)
            # ascending customer id, as the grouped query gives them
            first = day - dt.timedelta(days=HEAT_DAYS - 1)
            since = _stored(local_day_bounds(first, got.timezone)[0])
            until = _stored(local_day_bounds(day, got.timezone)[1])
            assert got.heat == _heat_grouped(driver(s), (region_id, since, until))
            subset = load_field_day(s, region_id, [rep_id], day)  # customers read: the rep's
            assert subset.heat == got.heat
        # ids SQLite keeps as they are in an INTEGER column: no customer's
        for odd in ("c-1", str(other).encode(), other + 0.5):
            conn.execute("UPDATE visits SET customer_id = ? WHERE id = 'odd-gone'", (odd,))
            conn.commit()
            with cache.session() as s:
                got = load_field_day(s, region_id, None, day)
                assert_same_raw(got, reference_load_field_day(s, region_id, None, day))
                assert type(got.heat) is list and (lat, lon) in got.heat
                assert got.heat.count((lat, lon)) == 1, odd
    finally:
        cache.close()
        conn.close()


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-26 00:37:24.000000",
        "2026-11-26 00:37:24.5",
        "2026-11-26T23:59:59",
        "2026-11-26 00:37",
        "2026-11-26",
        "2026-11-26 08:37:24+08:00",
        "2026-11-26 00:37:24Z",
        dt.datetime(2026, 11, 26, 0, 37, 24, 123),
        dt.datetime(2026, 11, 26, 0, 37, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    ],
)
def test_stored_instants_read_back_as_the_column_type(value) -> None:
    """``_aware``'s fast path (naive text parsed with ``+00:00``) gives what parsing then
    ``replace(tzinfo=UTC)`` gives, for every form; odd forms take that way."""
    old = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    want = old.replace(tzinfo=dt.UTC)
    got = _aware(value)
    assert got == want and got.tzinfo is dt.UTC and got.fold == want.fold
    assert _aware(None) is None


def _schema_2_file(path: Path) -> None:
    """A cache as StoreDesk wrote it before the blocks: no tables, no triggers, the old
    visits index, schema_version 2 — with GPS rows in it."""
    cache = open_cache(path)
    with cache.session() as s:
        s.add(Region(id=1, code="R", name="区", timezone="Asia/Shanghai"))
        s.flush()
        s.add(Rep(id=7, region_id=1, code="P7", name="代表", home_lat=31.2, home_lon=121.4))
        s.flush()
        t0 = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)  # to 20:35 UTC
        for i in range(300):
            s.add(GpsPoint(rep_id=7, ts=t0 + dt.timedelta(seconds=97 * i), lat=31.2 + i / 1e4,
                           lon=121.4, accuracy_m=8.0 + i % 5))  # fmt: skip
    cache.close()
    conn = sqlite3.connect(path)
    for name in gps_blocks.TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE gps_blocks")
    conn.execute("DROP TABLE gps_block_stale")
    conn.execute("DROP INDEX ix_visits_rep_checkin")
    conn.execute("CREATE INDEX ix_visits_rep_checkin ON visits (rep_id, check_in_at)")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("defer", [False, True], ids=["checked", "deferred"])
def test_a_schema_2_cache_is_migrated(tmp_path: Path, defer: bool) -> None:
    path = tmp_path / "v2.db"
    _schema_2_file(path)
    cache = open_cache(path, defer_integrity_check=defer)
    try:
        assert cache.migrated_from == 2
        with cache.session() as s:
            raw = driver(s)
            assert triggers(raw) == set(gps_blocks.TRIGGERS)
            assert {k[0] for k in stale_keys(raw)} == {7} and len(stale_keys(raw)) == 9
            cols = [r[2] for r in raw.execute("PRAGMA index_info(ix_visits_rep_checkin)")]
            assert cols == ["rep_id", "check_in_at", "customer_id"]
        day = dt.date(2026, 11, 26)
        with cache.session() as s:
            got = load_field_day(s, 1, None, day)
            assert_same_raw(got, reference_load_field_day(s, 1, None, day))
            assert len(got.gps[7]) == 130  # to local midnight, 16:00 UTC
            raw = driver(s)  # the hours read were built; the others wait for their read
            assert stale_keys(raw) == {(7, f"2026-11-26 {h}") for h in range(16, 21)}
            assert_blocks_current(raw)
    finally:
        cache.close()


def test_the_blocks_stay_on_the_desktop(tmp_path: Path) -> None:
    """Neither synced nor in the data model, so never created on the central server."""
    assert not gps_blocks.TABLES & set(Base.metadata.tables)
    assert not gps_blocks.TABLES & set(SYNCED_TABLE_NAMES)
    engine = make_central_engine(tmp_path / "central.db")
    init_central_schema(engine)
    with engine.connect() as conn:
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    engine.dispose()
    assert "gps_points" in names
    assert not names & (gps_blocks.TABLES | set(gps_blocks.TRIGGERS))
