"""GPX tracks imported on a desktop reach the server and other desktops (``gps.import/1``).

Against the real central app under uvicorn on loopback (:mod:`tests.sync.harness`): import
on desktop A, sync, desktop B sees the points in its field-map data; the server refuses a
rep outside the user's scope and bad values (and the refused desktop's optimistic points
are reconciled away); a push whose reply is lost is replayed exactly once; a large track
goes out in several bounded requests.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import func, select

from central.models import ChangeLog
from core.models import GpsPoint, Outbox, Rep, VisitNote
from core.mutations import Actor, apply_local
from core.trajectory.field_day import load_field_day
from core.trajectory.gps_import import CHUNK, MAX_POINTS, MUTATION
from core.trajectory.gpx import import_gpx
from sync.engine import PUSH_BYTES, AuthError, _outbox_batch
from sync.protocol import MAX_PUSH_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION
from tests.sync.harness import PASSWORD, engine_for, new_client, run
from tests.trajectory_synth import gpx_track

REP = 1  # rep P1 of store S1, region R1 (harness world)
# A day the harness world has no GPS on, in the past whatever the clock says.
START = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(
    hour=1, minute=0, second=0, microsecond=0
)


def gpx_bytes(n: int, start: dt.datetime = START, step_s: int = 5) -> bytes:
    return gpx_track(n, start, step_s, origin=(31.2, 121.4), step_deg=1e-6, digits=7).encode()


class Desktop:
    """One desktop's cache, synced as ``user`` by a fresh engine per sync (one loop each)."""

    def __init__(self, tmp_path, server, name: str, user: str) -> None:
        self.cache = new_client(tmp_path, name)
        self.server, self.user = server, user
        self.actor: Actor | None = None

    def sync(self, **kw):
        async def go():
            eng = engine_for(self.cache, self.server, self.user, **kw)
            try:
                return await eng.sync_once()
            finally:
                self.actor = eng._actor()
                await eng.aclose()

        return run(go())

    def close(self) -> None:
        self.cache.close()


def synced(tmp_path, server, name: str, user: str) -> Desktop:
    d = Desktop(tmp_path, server, name, user)
    d.sync()
    return d


def server_points(server, rep_id: int = REP, source: str = "gpx") -> int:
    with server.session() as s:
        return s.scalar(
            select(func.count())
            .select_from(GpsPoint)
            .where(GpsPoint.rep_id == rep_id, GpsPoint.source == source)
        )


def local_points(cache, rep_id: int = REP) -> int:
    with cache.session() as s:
        return s.scalar(
            select(func.count())
            .select_from(GpsPoint)
            .where(GpsPoint.rep_id == rep_id, GpsPoint.source == "gpx")
        )


def outbox(cache) -> list[tuple[str, str]]:
    with cache.session() as s:
        return [
            (o.status, o.error)
            for o in s.scalars(
                select(Outbox).where(Outbox.name == MUTATION).order_by(Outbox.mutation_id)
            )
        ]


def test_imported_track_reaches_the_server_and_another_desktop(server, tmp_path):
    n = CHUNK + 500  # two mutations
    da, db, dc = (
        synced(tmp_path, server, *x) for x in (("a", "mgr1"), ("b", "sup1"), ("c", "mgr3"))
    )
    a, b, c = da.cache, db.cache, dc.cache
    try:
        with a.session() as s:
            summary = import_gpx(s, REP, gpx_bytes(n), da.actor)
        assert (summary.inserted, summary.mutations) == (n, 2)
        assert local_points(a) == n and server_points(server) == 0
        with a.session() as s:  # A's own field map shows them before any sync
            assert len(load_field_day(s, 1, [REP], START.date()).gps[REP]) == n

        res = da.sync()
        assert (res.pushed, res.rejected, res.conflicts) == (2, 0, 0)
        assert server_points(server) == n
        assert [st for st, _e in outbox(a)] == ["sent", "sent"]

        pulled = db.sync()
        assert local_points(b) == n
        assert "gps_points" in pulled.pulled_tables  # B's screens are told what arrived
        with b.session() as s:  # what B's field map draws for that day
            raw = load_field_day(s, 1, [REP], START.date())
        assert len(raw.gps[REP]) == n
        assert int(raw.gps[REP].t_us[0]) == int(START.timestamp()) * 1_000_000

        dc.sync()  # a manager of another region's store never receives them
        assert local_points(c) == 0

        # B imports the same file: every point is already there, nothing is queued
        with b.session() as s:
            again = import_gpx(s, REP, gpx_bytes(n), db.actor)
        assert (again.inserted, again.skipped_existing, again.mutations) == (0, n, 0)
    finally:
        for d in (da, db, dc):
            d.close()


def test_server_refuses_a_rep_outside_scope_and_the_points_are_reconciled(server, tmp_path):
    """mgr3 (store S3) pushes points for rep P1 of store S1: refused, local points removed."""
    d = synced(tmp_path, server, "m3", "mgr3")
    cache = d.cache
    try:
        with cache.session() as s:
            assert s.get(Rep, REP) is None  # not in mgr3's replica at all
            # A stale replica (or a hostile client) that still has the rep locally.
            s.add(
                Rep(id=REP, region_id=1, store_id=None, code="P1", name="x", home_lat=0, home_lon=0)
            )
        admin_here = Actor(user_id=4, name="MGR3", role="admin", store_ids=frozenset())
        with cache.session() as s:
            import_gpx(s, REP, gpx_bytes(10), admin_here)
        assert local_points(cache) == 10
        res = d.sync()
        assert (res.pushed, res.rejected) == (0, 1)
        [(status, error)] = outbox(cache)
        assert status == "rejected" and "outside the scope" in error
        assert res.messages and "outside the scope" in res.messages[0]
        assert local_points(cache) == 0  # the server's truth: no such points
        assert server_points(server) == 0

        # a supervisor of another region is refused the same way
        d2 = synced(tmp_path, server, "s1", "sup1")
        cache2 = d2.cache
        with cache2.session() as s:
            s.add(
                Rep(id=99, region_id=2, store_id=None, code="PX", name="y", home_lat=0, home_lon=0)
            )
        with server.session() as s, s.begin():
            s.add(Rep(id=99, region_id=2, store_id=3, code="PX", name="y", home_lat=0, home_lon=0))
        with cache2.session() as s:
            import_gpx(s, 99, gpx_bytes(5), admin_here)
        res2 = d2.sync()
        assert res2.rejected == 1 and server_points(server, 99) == 0
        assert local_points(cache2, 99) == 0
        d2.close()
    finally:
        d.close()


def test_a_refused_import_is_repaired_with_one_rebase_per_push_answer(
    server, tmp_path, monkeypatch
):
    """Five refused chunks, two per push: the still-pending chunks are re-applied once per
    push answer (3 + 1 + 0), not once per 1000-key row request of every refused chunk
    (2 chunks x 2 requests x 3 pending + 2 x 2 x 1 = 16); the local state ends right."""
    from sync import local

    d = synced(tmp_path, server, "m3", "mgr3")
    cache = d.cache
    try:
        with cache.session() as s:  # a stale replica that still has rep P1 (store S1)
            s.add(
                Rep(id=REP, region_id=1, store_id=None, code="P1", name="x", home_lat=0, home_lon=0)
            )
        admin_here = Actor(user_id=4, name="MGR3", role="admin", store_ids=frozenset())
        n = 5 * CHUNK
        with cache.session() as s:
            assert import_gpx(s, REP, gpx_bytes(n, step_s=2), admin_here).mutations == 5
        one = max(
            len(json.dumps(i.args, separators=(",", ":"))) for i in local.pending_outbox(cache)
        )
        reapplied: list[str] = []
        real_get = local.get

        def counting_get(name: str):
            reapplied.append(name)
            return real_get(name)

        monkeypatch.setattr(local, "get", counting_get)
        res = d.sync(push_bytes=2 * one)  # two chunks per push
        assert (res.pushed, res.rejected) == (0, 5)
        assert reapplied.count(MUTATION) == 3 + 1
        assert [st for st, _e in outbox(cache)] == ["rejected"] * 5
        assert local_points(cache) == 0 and server_points(server) == 0
    finally:
        d.close()


def test_one_rebase_over_several_answers_keeps_pending_edits(tmp_path):
    """Server rows of two answers written at once, the pending import re-applied on top."""
    from core.cache import open_cache
    from core.models import Region
    from sync import local
    from sync.protocol import encode_datetime

    cache = open_cache(tmp_path / "r.db")
    admin = Actor(user_id=1, name="A", role="admin", store_ids=frozenset())
    with cache.session() as s:
        s.add(Region(id=1, code="R1", name="r"))
        s.flush()
        s.add(Rep(id=REP, region_id=1, code="P1", name="p", home_lat=0, home_lon=0))
        s.add(Rep(id=2, region_id=1, code="P2", name="q", home_lat=0, home_lon=0))
    with cache.session() as s:
        import_gpx(s, REP, gpx_bytes(10), admin)
        import_gpx(s, 2, gpx_bytes(4), admin)
    with cache.session() as s:  # rep 2's import was refused: only rep 1's is pending
        ob = s.scalars(select(Outbox).order_by(Outbox.mutation_id.desc())).first()
        ob.status = "rejected"
    cols = ["rep_id", "ts", "lat", "lon", "accuracy_m", "source"]
    keys = [
        [rep, encode_datetime(START + dt.timedelta(seconds=5 * i))]
        for rep in (REP, 2)
        for i in range(10 if rep == REP else 4)
    ]
    server_row = [2, encode_datetime(START), 1.0, 2.0, 5.0, "gps"]
    sets = [
        local.ServerRows("gps_points", cols, [], keys[:7]),
        local.ServerRows("gps_points", cols, [server_row], keys[7:]),
    ]
    local.apply_server_row_sets(cache, sets, admin, dt.datetime.now(dt.UTC))
    assert local_points(cache) == 10 and local_points(cache, 2) == 0
    with cache.session() as s:
        assert s.scalar(select(func.count()).select_from(GpsPoint).where(GpsPoint.rep_id == 2)) == 1
    cache.close()


def test_a_lost_reply_is_replayed_exactly_once(server, tmp_path):
    d = synced(tmp_path, server, "a", "mgr1")
    cache = d.cache
    try:
        with cache.session() as s:
            import_gpx(s, REP, gpx_bytes(300), d.actor)
        with server.session() as s:
            log_before = s.scalar(select(func.count()).select_from(ChangeLog))
        server.faults.add("/v1/sync/push", "drop_reply")  # the server commits, the reply is lost
        with pytest.raises(Exception):  # noqa: B017 - the transport error class is httpx's
            d.sync()
        assert server_points(server) == 300
        assert outbox(cache)[0][0] == "pending"
        res = d.sync()  # the same mutation again: replayed, nothing twice
        assert res.pushed == 1 and outbox(cache)[0][0] == "sent"
        assert server_points(server) == 300
        with server.session() as s:
            log_after = s.scalar(select(func.count()).select_from(ChangeLog))
        assert log_after - log_before == 300  # one change per point, once
        assert local_points(cache) == 300
    finally:
        d.close()


def _login(server, user: str) -> dict[str, str]:
    r = httpx.post(server.url + "/v1/auth/login", json={"username": user, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: str(PROTOCOL_VERSION)}


def _pt(ts: dt.datetime, lat: float = 31.2, lon: float = 121.4, acc: float = 10.0) -> list:
    return [ts.isoformat(), lat, lon, acc]


def test_server_refuses_bad_values_and_the_ids_still_advance(server):
    hdrs = _login(server, "sup1")
    now = dt.datetime.now(dt.UTC)
    too_many = [_pt(START + dt.timedelta(seconds=i)) for i in range(MAX_POINTS + 1)]
    cases = [
        ({"rep_id": REP, "points": [_pt(START, lat=95.0)]}, "bad_gps_points"),
        ({"rep_id": REP, "points": [_pt(now + dt.timedelta(hours=2))]}, "bad_gps_points"),
        ({"rep_id": REP, "points": [["2026-11-24 01:00", 31.2, 121.4, 10]]}, "bad_gps_points"),
        ({"rep_id": REP, "points": [_pt(START, acc=-1)]}, "bad_gps_points"),
        ({"rep_id": REP, "points": too_many}, "too_many_points"),
        ({"rep_id": 12345, "points": [_pt(START)]}, "unknown_rep"),
        ({"rep_id": 2, "points": [_pt(START)]}, "forbidden"),  # rep of region R2
        ({"rep_id": REP, "points": [_pt(START), _pt(START + dt.timedelta(seconds=1))]}, None),
    ]
    muts = [
        {"id": i, "name": MUTATION, "args": args, "base_version": None}
        for i, (args, _code) in enumerate(cases, start=1)
    ]
    r = httpx.post(
        server.url + "/v1/sync/push",
        json={"client_id": "rawclient01", "mutations": muts},
        headers=hdrs,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["last_mutation_id"] == len(cases)
    got = [(o["status"], o.get("reason_code")) for o in out["results"]]
    want = [("rejected", code) if code else ("applied", None) for _a, code in cases]
    assert got == want
    assert server_points(server) == 2  # only the good mutation wrote anything


def test_push_size_is_bounded_on_both_ends(server, tmp_path):
    d = synced(tmp_path, server, "a", "mgr1")
    cache = d.cache
    try:
        n = 12 * CHUNK  # twelve mutations of ~110 KB: 24,000 points
        with cache.session() as s:
            import_gpx(s, REP, gpx_bytes(n, step_s=2), d.actor)
        batch = _outbox_batch(cache, 100, PUSH_BYTES)
        sizes = [len(json.dumps(i.args, separators=(",", ":"))) for i in batch]
        assert 1 <= len(batch) < 12 and sum(sizes[:-1]) <= PUSH_BYTES
        assert len(_outbox_batch(cache, 100, 1)) == 1  # one big mutation still goes
        server.faults.seen.clear()
        res = d.sync()
        assert res.pushed == 12 and server_points(server) == n
        assert server.faults.seen.count("/v1/sync/push") >= 2
    finally:
        d.close()
    hdrs = _login(server, "mgr1")
    r = httpx.post(
        server.url + "/v1/sync/push",
        content=b" " * (MAX_PUSH_BYTES + 1),
        headers={**hdrs, "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413


def test_an_edit_too_large_for_the_server_is_refused_and_the_rest_flows(
    server, tmp_path, monkeypatch
):
    """A server (or proxy) limit below the push size: the batch is halved on 413; the one
    edit too large alone is refused on this computer with a readable reason, its points
    reconciled away, and the edits after it still reach the server (no gap, no stuck
    outbox)."""
    import central.app

    d = synced(tmp_path, server, "a", "mgr1")
    cache = d.cache
    try:
        later = START + dt.timedelta(hours=6)
        with cache.session() as s:
            import_gpx(s, REP, gpx_bytes(10), d.actor)
            assert import_gpx(s, REP, gpx_bytes(CHUNK, start=later), d.actor).mutations == 1
            import_gpx(s, REP, gpx_bytes(10, start=later + dt.timedelta(hours=6)), d.actor)
        assert local_points(cache) == CHUNK + 20
        monkeypatch.setattr(central.app, "MAX_PUSH_BYTES", 50_000)  # one chunk is ~110 KB
        server.faults.seen.clear()
        res = d.sync()
        assert (res.pushed, res.rejected) == (2, 1)
        assert server.faults.seen.count("/v1/sync/push") == 4  # 3 -> 1 ok, 1 too large, 1 ok
        assert [st for st, _e in outbox(cache)] == ["sent", "rejected", "sent"]
        assert "too large" in outbox(cache)[1][1] and "too large" in res.messages[0]
        assert server_points(server) == 20 and local_points(cache) == 20
        again = d.sync()  # nothing stuck, nothing sent twice
        assert (again.pushed, again.rejected) == (0, 0) and server_points(server) == 20
        with cache.session() as s:
            import_gpx(s, REP, gpx_bytes(5, start=START + dt.timedelta(hours=1)), d.actor)
        assert d.sync().pushed == 1 and server_points(server) == 25
    finally:
        d.close()


def test_through_the_storedesk_central_process(tmp_path):
    """The same round trip against ``storedesk-central`` run as a child process."""
    from types import SimpleNamespace

    from central.db import init_central_schema, make_central_engine
    from central.process import central_process
    from tests.sync.harness import build_world

    db_path = tmp_path / "central.db"
    eng = make_central_engine(f"sqlite:///{db_path}")
    init_central_schema(eng)
    build_world(eng)
    eng.dispose()
    n = CHUNK + 100
    with central_process(db_path, tmp_path / "central.log") as url:
        srv = SimpleNamespace(url=url)
        da, db = synced(tmp_path, srv, "a", "mgr1"), synced(tmp_path, srv, "b", "sup1")
        try:
            with da.cache.session() as s:
                import_gpx(s, REP, gpx_bytes(n), da.actor)
            res = da.sync()
            assert (res.pushed, res.rejected) == (2, 0)
            db.sync()
            assert local_points(db.cache) == n
        finally:
            da.close()
            db.close()


def test_pending_import_is_reapplied_over_server_rows(tmp_path):
    """Replicache's rebase: rows written by the server (here: the server has none of the
    points) replace the local ones, then the still-pending import goes back on top."""
    import datetime as dt

    from core.cache import open_cache
    from core.models import Region
    from sync import local
    from sync.protocol import encode_datetime

    cache = open_cache(tmp_path / "r.db")
    admin = Actor(user_id=1, name="A", role="admin", store_ids=frozenset())
    with cache.session() as s:
        s.add(Region(id=1, code="R1", name="r"))
        s.flush()
        s.add(Rep(id=REP, region_id=1, code="P1", name="p", home_lat=0, home_lon=0))
    with cache.session() as s:
        import_gpx(s, REP, gpx_bytes(CHUNK + 10), admin)
    keys = [[REP, encode_datetime(START + dt.timedelta(seconds=5 * i))] for i in range(CHUNK + 10)]
    cols = ["rep_id", "ts", "lat", "lon", "accuracy_m", "source"]
    local.apply_server_rows(cache, "gps_points", cols, [], keys, admin, dt.datetime.now(dt.UTC))
    assert local_points(cache) == CHUNK + 10  # deleted, then re-applied from the outbox
    local.apply_server_rows(cache, "gps_points", cols, [], keys, None, dt.datetime.now(dt.UTC))
    assert local_points(cache) == 0  # (without an actor nothing is re-applied: the check bites)
    cache.close()


def test_an_older_server_gets_the_edits_before_a_gps_import_and_still_syncs(
    server, tmp_path, monkeypatch
):
    """A protocol-2 server (updated after the desktops): the desktop speaks protocol 2 to
    it, pushes its edits in order up to the first gps.import/1 (that one and every edit
    after it wait), still pulls, and says why; once the server is updated the rest goes."""
    import central.app as central_app
    import sync.engine as se

    d = synced(tmp_path, server, "a", "mgr1")
    other = synced(tmp_path, server, "b", "sup1")
    monkeypatch.setattr(central_app, "PROTOCOL_VERSION", 2)  # the server before GPX sync
    r = httpx.get(server.url + "/v1/health", headers={PROTOCOL_HEADER: str(PROTOCOL_VERSION)})
    assert r.status_code == 426 and r.json()["protocol"] == 2

    def note(desk: Desktop, note_id: str) -> None:
        with desk.cache.session() as s:
            apply_local(
                s,
                desk.actor,
                "visit_note.add/1",
                {"id": note_id, "visit_id": "visitS1", "text": note_id},
            )

    def notes_on(session_cm) -> set[str]:
        with session_cm() as s:
            return set(s.scalars(select(VisitNote.id)))

    note(d, "before")
    with d.cache.session() as s:
        import_gpx(s, REP, gpx_bytes(10), d.actor)
    note(d, "after")
    note(other, "theirs")
    assert other.sync().pushed == 1  # nothing of protocol 3 queued: synchronised in full

    with pytest.raises(se.EditsHeld, match="older than this StoreDesk") as caught:
        d.sync()
    res = caught.value.result
    assert (res.pushed, res.rejected, res.held) == (1, 0, 2)
    assert "theirs" in notes_on(d.cache.session) and "visit_notes" in res.pulled_tables
    assert notes_on(server.session) == {"before", "theirs"} and server_points(server) == 0
    assert outbox(d.cache) == [("pending", "")] and local_points(d.cache) == 10

    monkeypatch.setattr(central_app, "PROTOCOL_VERSION", PROTOCOL_VERSION)  # updated
    res = d.sync()
    assert (res.pushed, res.rejected, res.held) == (2, 0, 0)
    assert notes_on(server.session) == {"before", "after", "theirs"}
    assert server_points(server) == 10 and outbox(d.cache) == [("sent", "")]
    d.close()
    other.close()


def test_sign_in_and_a_remembered_token_work_with_a_protocol_2_server(server, monkeypatch):
    """The desktop's sign-in and its start-up token check speak protocol 2 to such a server
    (before, a desktop updated first could not even get past its sign-in)."""
    import central.app as central_app
    from desktop.server_session import login, resume

    monkeypatch.setattr(central_app, "PROTOCOL_VERSION", 2)
    session = run(login(server.url, "mgr1", PASSWORD))
    assert session.user.username == "mgr1"
    again = run(resume(server.url, "mgr1", session.token))
    assert again.user.id == session.user.id
    with pytest.raises(AuthError):
        run(resume(server.url, "mgr1", "not-a-token"))


def test_a_push_built_for_protocol_3_is_not_resent_as_protocol_2(server, tmp_path, monkeypatch):
    """The server answers sign-in in protocol 3 and the push with 426 naming 2 (servers
    behind one address updated one at a time, or one rolled back): the push, built with
    the GPS import in it, is built again for protocol 2, not resent as it was under a
    protocol-2 header (a real protocol-2 server refuses gps.import/1 as unknown for good)."""
    import central.app as central_app
    import sync.engine as se

    d = synced(tmp_path, server, "a", "mgr1")
    with d.cache.session() as s:
        import_gpx(s, REP, gpx_bytes(10), d.actor)
    sign_in = se.SyncEngine._sign_in

    async def then_an_older_server(eng):
        await sign_in(eng)
        monkeypatch.setattr(central_app, "PROTOCOL_VERSION", 2)

    monkeypatch.setattr(se.SyncEngine, "_sign_in", then_an_older_server)
    with pytest.raises(se.EditsHeld) as caught:
        d.sync()
    assert (caught.value.result.pushed, caught.value.result.held) == (0, 1)
    assert server_points(server) == 0 and outbox(d.cache) == [("pending", "")]
    d.close()


def test_a_server_older_than_protocol_2_is_still_refused(server, tmp_path, monkeypatch):
    import central.app as central_app
    import sync.engine as se

    d = Desktop(tmp_path, server, "n", "mgr1")
    monkeypatch.setattr(central_app, "PROTOCOL_VERSION", 1)
    with pytest.raises(se.UpdateRequired, match="server is older than this StoreDesk"):
        d.sync()
    d.close()


def test_a_desktop_older_than_the_server_is_told_to_update(server, tmp_path, monkeypatch):
    """A desktop the server no longer serves is told to update itself (the other way round,
    a server too old for the desktop: test_a_server_older_than_protocol_2_is_still_refused)."""
    import sync.engine as se

    d = Desktop(tmp_path, server, "n", "mgr1")
    monkeypatch.setattr(se, "PROTOCOL_VERSION", 0)
    monkeypatch.setitem(se._HDRS, PROTOCOL_HEADER, "0")
    with pytest.raises(se.UpdateRequired, match="too old for the server"):
        d.sync()
    d.close()
