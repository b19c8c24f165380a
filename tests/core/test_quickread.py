"""core.quickread (sqlite3 driver) returns exactly what its ORM counterparts return.

The app reads its first window's data through core.quickread so that it never waits for
SQLAlchemy; these tests hold every pair equal on the demo region, after edits and syncs
change what they read, and across time zones (two stores moved to Berlin: DST, two zones).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core import conflicts, directory, home, quickread
from core.cache import open_cache
from core.models import (
    Alert,
    Holiday,
    PromotionProposal,
    Region,
    Shift,
    Store,
    SyncConflict,
    SyncState,
    UserRole,
)
from core.mutations import Actor, apply_local
from tests.conftest import DEMO_TODAY
from tests.core.traffic_fixtures import DEMO_DAYS, move_two_shanghai_stores_to_berlin

#: The shared days, and a day long before the data (empty weeks).
DAYS = (*DEMO_DAYS, dt.date(2025, 1, 8))


@pytest.fixture
def cache(demo_cache):
    """The demo with two Shanghai stores moved to Berlin (DST ends 2026-10-25)."""
    move_two_shanghai_stores_to_berlin(demo_cache)
    return demo_cache


def _actors(s) -> list[Actor | None]:
    sh = s.scalar(select(Region.id).where(Region.code == "SH"))
    ids = sorted(s.scalars(select(Store.id).where(Store.region_id == sh)).all())
    return [
        None,
        directory.actor_for_username(s, "admin"),
        directory.demo_actor(s, "supervisor", "SH"),
        directory.demo_actor(s, "supervisor", "JS"),
        directory.demo_actor(s, "store_manager", "SH003"),
        Actor(1, "part of SH", "supervisor", frozenset(ids[3:]), frozenset({sh})),
        Actor(2, "nobody", "supervisor", frozenset(), frozenset()),
    ]


def _assert_homes_equal(cache, days=DAYS) -> None:
    with cache.session() as s, cache.reader() as conn:
        regions = s.scalars(select(Region.id).order_by(Region.id)).all()
        for actor in _actors(s):
            for rid in regions:
                for day in days:
                    want = home.supervisor_home(s, rid, day, actor)
                    got = quickread.supervisor_home(conn, rid, day, actor)
                    assert got == want, (actor and actor.name, rid, day)
        with pytest.raises(LookupError):
            quickread.supervisor_home(conn, 999_999, DEMO_TODAY)


def test_region_home_equals_the_orm_home(cache) -> None:
    _assert_homes_equal(cache)
    with cache.session() as s, cache.reader() as conn:  # not an empty comparison
        actor = directory.demo_actor(s, "supervisor", "SH")
        got = quickread.supervisor_home(conn, min(actor.region_ids), DEMO_TODAY, actor)
    assert len(got.ranking) > 20 and got.alerts and got.visits_by_rep
    assert got.kpis[0].value > 0 and sum(n for _s, n, _a in got.funnel) > 0


def test_region_home_equal_after_edits_and_a_sync(cache) -> None:
    """What local edits and sync pulls write is read back equally (nothing is stored)."""
    now = dt.datetime.combine(DEMO_TODAY, dt.time(9), tzinfo=dt.UTC)
    with cache.session() as s:
        sup = directory.demo_actor(s, "supervisor", "SH")
        alerts = s.scalars(
            select(Alert)
            .where(Alert.region_id.in_(sup.region_ids), Alert.resolved_at.is_(None))
            .order_by(Alert.id)
        ).all()
        assert len(alerts) >= 3
        # a snooze through the mutation (outbox row), an escalation and a resolution as a
        # pull would write them, and a traffic hour rewritten by an import
        apply_local(
            s,
            sup,
            "alert.snooze/1",
            {
                "alert_id": alerts[0].id,
                "until": (now + dt.timedelta(days=2)).isoformat(),
                "reason": "customer on holiday",
            },
            now=now,
        )
        alerts[1].escalated_at = now - dt.timedelta(hours=3)
        alerts[1].severity = "critical"
        alerts[2].resolved_at = now
        store = min(sup.store_ids)
        rows = [
            {
                "hour_start": f"{DEMO_TODAY - dt.timedelta(days=1)}T12:00:00+08:00",
                "visitors": 0,
                "transactions": 9,
                "sales_fen": 12_345,
                "units": 11,
            }
        ]
        apply_local(s, sup, "traffic.import/1", {"store_id": store, "rows": rows}, now=now)
    _assert_homes_equal(cache, days=(DEMO_TODAY,))
    with cache.session() as s, cache.reader() as conn:
        got = quickread.supervisor_home(conn, min(sup.region_ids), DEMO_TODAY, sup)
        assert alerts[0].id not in {a.id for a in got.alerts}  # snoozed: not on the home
        assert quickread.local_sync_status(conn) == conflicts.local_sync_status(s)
        assert quickread.local_sync_status(conn).pending == 2


def _store_ids(s) -> list[int]:
    """SH001/SH002 (moved to Berlin), SH003, a Jiangsu and a Zhejiang store."""
    codes = ("SH001", "SH002", "SH003", "JS002", "ZJ010")
    return list(s.scalars(select(Store.id).where(Store.code.in_(codes)).order_by(Store.code)))


def _assert_store_homes_equal(cache, days=DAYS) -> list[home.ManagerHome]:
    got_all = []
    with cache.session() as s, cache.reader() as conn:
        for store_id in _store_ids(s):
            for day in days:
                want = home.manager_home(s, store_id, day)
                got = quickread.manager_home(conn, store_id, day)
                assert got == want, (store_id, day)
                got_all.append(got)
        with pytest.raises(LookupError):
            quickread.manager_home(conn, 999_999, DEMO_TODAY)
    return got_all


def test_store_home_equals_the_orm_home(cache) -> None:
    homes = _assert_store_homes_equal(cache)
    # not an empty comparison: figures, counter outages, approvals and rota gaps are there
    today = [h for h in homes if h.day == DEMO_TODAY]
    assert len(today) == 5 and all(h.kpis[0].value > 0 and h.hourly for h in today)
    assert any(h.pending_approvals for h in today)
    assert all(h.rota_gaps for h in today)
    assert any(v is None for h in homes for _h, v, _lw in h.hourly)  # an outage hour
    assert len({h.rota_gaps[0].required for h in today}) > 1 or any(
        g.scheduled > 0 for h in today for g in h.rota_gaps
    )


def test_store_home_equal_after_edits(cache) -> None:
    """Rota edits, a decision, a traffic import, a holiday and staffing targets, as stored
    by the app and by a pull, are read back equally (nothing derived is stored)."""
    now = dt.datetime.combine(DEMO_TODAY, dt.time(9), tzinfo=dt.UTC)
    week_start = DEMO_TODAY - dt.timedelta(days=DEMO_TODAY.weekday())
    with cache.session() as s:
        mgr = directory.demo_actor(s, "store_manager", "SH003")
        store_id = min(mgr.store_ids)
        lo = dt.datetime.combine(week_start, dt.time(0), tzinfo=dt.UTC)
        shifts = s.scalars(
            select(Shift)
            .where(Shift.store_id == store_id, Shift.start_at >= lo)
            .order_by(Shift.start_at, Shift.id)
        ).all()
        assert len(shifts) >= 4
        s.delete(shifts[0])  # a gap opens
        shifts[1].status = "draft"  # still on the rota, no longer in the KPIs' staff-hours
        shifts[2].role = "stock"  # back room: not on the floor
        s.add(  # a draft shift covering a late hour
            Shift(
                id="qr-late",
                store_id=store_id,
                staff_id=shifts[3].staff_id,
                role="sales",
                start_at=dt.datetime.combine(week_start, dt.time(11, 30), tzinfo=dt.UTC),
                end_at=dt.datetime.combine(week_start, dt.time(13, 45), tzinfo=dt.UTC),
                status="draft",
            )
        )
        pending = s.scalars(
            select(PromotionProposal).where(
                PromotionProposal.store_id == store_id, PromotionProposal.status == "pending"
            )
        ).all()
        assert pending
        pending[0].status = "approved"
        s.add(Holiday(date=week_start + dt.timedelta(days=2), name="test holiday"))
        s.add(Holiday(date=week_start - dt.timedelta(days=12), name="past holiday"))
        store = s.get(Store, store_id)
        store.target_star = 7.5
        store.min_floor_staff = 3
        rows = [
            {
                "hour_start": f"{DEMO_TODAY}T{h:02d}:00:00+08:00",
                "visitors": 0,
                "transactions": 9,
                "sales_fen": 12_345,
                "units": 11,
            }
            for h in (11, 12)
        ]
        apply_local(s, mgr, "traffic.import/1", {"store_id": store_id, "rows": rows}, now=now)
    homes = _assert_store_homes_equal(cache, days=(DEMO_TODAY, DEMO_TODAY - dt.timedelta(days=3)))
    with cache.reader() as conn:
        got = quickread.manager_home(conn, store_id, DEMO_TODAY)
    assert got in homes
    assert dict((h, v) for h, v, _lw in got.hourly)[11] is None  # the imported outage
    assert min(g.required for g in got.rota_gaps) >= 3


def test_sign_in_pickers_and_sync_status_equal_the_orm(cache) -> None:
    with cache.session() as s, cache.reader() as conn:
        assert quickread.has_reference_data(conn) is directory.has_reference_data(s) is True
        for zone in (None, "Asia/Shanghai", "Europe/Berlin", "America/Los_Angeles"):
            assert quickread.data_last_day(conn, zone) == directory.data_last_day(s, zone)
        codes = ("", "SH", "JS", "ZJ", "XX", "SH001", "SH003", "JS002", "ZJ010", "JS999")
        seen = 0
        for role in ("supervisor", "store_manager", "admin", "nobody"):
            for code in codes:
                want = directory.demo_actor(s, role, code)
                assert quickread.demo_actor(conn, role, code) == want, (role, code)
                seen += want is not None
        assert seen >= 8  # both roles, with and without a code
        for actor in [a for a in _actors(s) if a is not None]:
            assert quickread.regions_in_scope(conn, actor) == directory.regions_in_scope(s, actor)
            assert quickread.stores_in_scope(conn, actor) == directory.stores_in_scope(s, actor)
            for rid in (1, 2, 3, 999):
                assert quickread.stores_in_scope(conn, actor, rid) == directory.stores_in_scope(
                    s, actor, rid
                )
        assert quickread.local_sync_status(conn) == conflicts.local_sync_status(s)
    # after a sync: its time, and an open conflict
    with cache.session() as s:
        s.add(SyncState(key="last_success_at", value="2026-11-27T08:30:00"))
        s.add(
            SyncConflict(
                mutation_id=7,
                entity="shift",
                entity_id="x",
                mine={},
                theirs={},
                message="stale",
                created_at=dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC),
            )
        )
    with cache.session() as s, cache.reader() as conn:
        got = quickread.local_sync_status(conn)
        assert got == conflicts.local_sync_status(s)
        assert got.conflicts == 1
        assert got.last_sync_at == dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)


def test_empty_cache_reads(tmp_path) -> None:
    cache = open_cache(tmp_path / "empty.db")
    try:
        with cache.session() as s, cache.reader() as conn:
            assert quickread.has_reference_data(conn) is directory.has_reference_data(s) is False
            assert quickread.data_last_day(conn) is directory.data_last_day(s) is None
            assert quickread.demo_actor(conn, "supervisor", "SH") is None
            assert quickread.local_sync_status(conn) == conflicts.local_sync_status(s)
    finally:
        cache.close()


def test_the_reader_cannot_write(cache) -> None:
    import sqlite3

    with cache.reader() as conn, pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM stores")


def test_literals_equal_the_data_model() -> None:
    """The facts the driver-level code states as text are the data model's."""
    from core import cache_format, models
    from core.funnel_figures import STAGES
    from core.traffic.records import FLOOR_ROLES

    assert cache_format.SCHEMA_VERSION == models.SCHEMA_VERSION
    assert cache_format.APP_ID == models.APP_ID
    assert set(models.Base.metadata.tables) >= cache_format.QUICKREAD_TABLES
    assert tuple(s.value for s in models.STAGE_ORDER) == STAGES
    assert UserRole.ADMIN.value == "admin"
    assert {UserRole.STORE_MANAGER.value, UserRole.SUPERVISOR.value} == {
        "store_manager",
        "supervisor",
    }
    assert {"sales", "cashier", "keyholder", "manager"} == FLOOR_ROLES
    assert set(FLOOR_ROLES) < {r.value for r in models.StaffRole}
    assert models.ShiftStatus.PUBLISHED.value == "published"
    from core.scheduling.rules import KEY_ROLES, ROLE_LABELS

    assert set(ROLE_LABELS) == {r.value for r in models.StaffRole}
    assert {models.StaffRole.MANAGER.value, models.StaffRole.KEYHOLDER.value} == KEY_ROLES
    assert models.ProposalStatus.PENDING.value == "pending"
