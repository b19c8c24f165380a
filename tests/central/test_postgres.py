"""The central server on PostgreSQL: same protocol, and commit-ordered sequences hold
with concurrent transactions and with two server processes on one database."""

from __future__ import annotations

import asyncio
import threading
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text

from central.db import init_central_schema, make_central_engine
from central.models import ChangeLog
from core.models import PromotionDecision, Shift, SyncConflict, VisitNote
from core.mutations import apply_local
from sync.protocol import PROTOCOL_HEADER
from tests.central.pg import postgres_cluster
from tests.sync.harness import PASSWORD, LiveServer, build_world, engine_for, new_client

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url():
    yield from postgres_cluster()


@pytest.fixture
def pg_servers(pg_url):
    """Two server processes' worth of apps (two uvicorn servers) on one fresh database."""
    eng = make_central_engine(pg_url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    init_central_schema(eng)
    world = build_world(eng)
    eng.dispose()
    a, b = LiveServer(pg_url).start(), LiveServer(pg_url).start()
    a.world = b.world = world  # type: ignore[attr-defined]
    yield a, b
    a.stop()
    b.stop()


def test_sync_round_trip_on_postgres_with_checksums(pg_servers, tmp_path):
    a_srv, b_srv = pg_servers
    ca, cb = new_client(tmp_path, "a"), new_client(tmp_path, "b")
    pid = a_srv.world.proposals["S1"]

    def decide(cache, eng, decision):
        with cache.session() as s:
            apply_local(s, eng._actor(), "promotion.decide/1",
                        {"proposal_id": pid, "decision_id": uuid.uuid4().hex, "decision": decision,
                         "discount_pct": 20, "reason_code": "other"})  # fmt: skip

    async def go():
        ea = engine_for(ca, a_srv, "mgr1", snapshot_limit=2)  # many pages: keyset on PostgreSQL
        eb = engine_for(cb, b_srv, "mgr1b")  # the other manager talks to the other process
        ra0 = await ea.sync_once()
        rb0 = await eb.sync_once()
        decide(ca, ea, "approve")
        decide(cb, eb, "reject")
        with ca.session() as s:
            apply_local(
                s,
                ea._actor(),
                "visit_note.add/1",
                {"id": "pgnote", "visit_id": "visitS1", "text": "中文"},
            )
        ra = await ea.sync_once()
        rb = await eb.sync_once()
        await ea.sync_once()
        await ea.aclose()
        await eb.aclose()
        return ra0, rb0, ra, rb

    ra0, rb0, ra, rb = asyncio.run(go())
    assert ra0.verified is True and rb0.verified is True  # PostgreSQL values -> same wire form
    assert (ra.pushed, rb.conflicts) == (2, 1)
    with cb.session() as s:
        assert s.scalars(select(SyncConflict)).one().theirs["decided_by_name"] == "MGR1"
    with ca.session() as s:
        assert s.get(VisitNote, "pgnote").text == "中文"
    with a_srv.session() as s:
        assert s.scalar(select(func.count()).select_from(PromotionDecision)) == 1
    ca.close()
    cb.close()


def test_pull_never_skips_a_late_committing_transaction(pg_servers, tmp_path):
    srv, _other = pg_servers
    cache = new_client(tmp_path, "r")

    async def sync():
        e = engine_for(cache, srv, "admin")
        await e.sync_once()
        await e.aclose()

    asyncio.run(sync())
    factory = srv.app.state.session_factory
    slow = factory()
    slow.begin()
    slow.get(Shift, "shS10").note = "slow, started first"
    slow.flush()  # row written, not committed
    with factory() as fast, fast.begin():
        fast.get(Shift, "shS11").note = "fast, committed first"
    asyncio.run(sync())  # pulls the fast one; must not move past the slow one
    with cache.session() as s:
        assert s.get(Shift, "shS11").note == "fast, committed first"
        assert s.get(Shift, "shS10").note != "slow, started first"
    slow.commit()
    slow.close()
    asyncio.run(sync())
    with cache.session() as s:
        assert s.get(Shift, "shS10").note == "slow, started first"
    cache.close()


def test_two_server_processes_give_gapless_commit_ordered_sequences(pg_servers):
    a_srv, b_srv = pg_servers
    n_clients, per = 6, 15

    def pusher(k: int) -> None:
        srv = (a_srv, b_srv)[k % 2]
        with httpx.Client(timeout=60) as c:
            tok = c.post(
                srv.url + "/v1/auth/login", json={"username": "admin", "password": PASSWORD}
            ).json()["token"]
            h = {"Authorization": f"Bearer {tok}", PROTOCOL_HEADER: "1"}
            for i in range(1, per + 1):
                m = {
                    "id": i,
                    "name": "visit_note.add/1",
                    "args": {"id": f"c{k}n{i}", "visit_id": "visitS1", "text": "x"},
                }
                body = {"client_id": f"client-{k:04d}", "mutations": [m]}
                # the same mutation through both processes at once: one effect
                ts = [threading.Thread(target=httpx.post, args=(s.url + "/v1/sync/push",),
                                       kwargs={"json": body, "headers": h, "timeout": 60})
                      for s in (a_srv, b_srv)]  # fmt: skip
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()

    threads = [threading.Thread(target=pusher, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with a_srv.session() as s:
        seqs = list(s.scalars(select(ChangeLog.seq).order_by(ChangeLog.seq)))
        notes = s.scalar(select(func.count()).select_from(VisitNote))
    assert notes == n_clients * per
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no holes, no duplicates


def test_the_same_gpx_pushed_at_once_through_two_processes_lands_once(pg_servers, tmp_path):
    """Two managers import one file and push through two server processes concurrently:
    every point exists once, both mutations are applied (a key taken by the other
    transaction is skipped, not an error), and a third desktop's snapshot verifies."""
    from core.models import GpsPoint
    from core.trajectory.gpx import import_gpx
    from tests.sync.test_gpx_sync import START, gpx_bytes

    a_srv, b_srv = pg_servers
    n = 4_500  # three mutations each
    ca, cb, cc = (new_client(tmp_path, x) for x in "abc")

    async def go():
        ea, eb = engine_for(ca, a_srv, "mgr1"), engine_for(cb, b_srv, "mgr1b")
        await asyncio.gather(ea.sync_once(), eb.sync_once())
        for cache, eng in ((ca, ea), (cb, eb)):
            with cache.session() as s:
                import_gpx(s, 1, gpx_bytes(n), eng._actor())
        results = await asyncio.gather(ea.sync_once(), eb.sync_once())
        await ea.sync_once()
        ec = engine_for(cc, a_srv, "sup1")
        rc = await ec.sync_once()
        for e in (ea, eb, ec):
            await e.aclose()
        return results, rc

    (ra, rb), rc = asyncio.run(go())
    assert (ra.pushed, ra.rejected, rb.pushed, rb.rejected) == (3, 0, 3, 0)
    assert rc.verified is True
    with a_srv.session() as s:
        got = s.scalar(select(func.count()).select_from(GpsPoint).where(GpsPoint.source == "gpx"))
        assert got == n
        first = s.get(GpsPoint, (1, START))
        assert first is not None and first.lat == pytest.approx(31.2)
    for cache in (ca, cb, cc):
        with cache.session() as s:
            assert (
                s.scalar(select(func.count()).select_from(GpsPoint).where(GpsPoint.source == "gpx"))
                == n
            )
        cache.close()
