"""Exactly-once push, resumable pull, conflicts: the reliability list of issue 3.

Every test talks to the real central server over a loopback socket; network trouble is
injected by the harness' ASGI fault layer (the server does its work, the reply is lost).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from central import changelog
from core.models import (
    Outbox,
    PromotionDecision,
    PromotionProposal,
    Shift,
    SyncConflict,
    Visit,
    VisitNote,
)
from core.mutations import apply_local
from sync import local
from sync.engine import CursorExpired, OfflineError, ProtocolError, ServerError, SyncEngine
from sync.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION
from tests.sync.harness import PASSWORD, engine_for, new_client, run


def server_count(srv, model, *where) -> int:
    with srv.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def local_count(cache, model, *where) -> int:
    with cache.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def add_note(cache, eng: SyncEngine, visit_id: str, text: str, note_id: str | None = None) -> str:
    nid = note_id or uuid.uuid4().hex
    with cache.session() as s:
        apply_local(
            s, eng._actor(), "visit_note.add/1", {"id": nid, "visit_id": visit_id, "text": text}
        )
    return nid


async def synced(cache, srv, user="sup1", **kw) -> SyncEngine:
    eng = engine_for(cache, srv, user, **kw)
    await eng.sync_once()
    return eng


def test_edit_survives_a_kill_before_push_and_is_applied_once(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def first():
        eng = await synced(cache, server)
        add_note(cache, eng, server.world.visits["S1"], "客户要求下周再访")
        await eng.aclose()  # the process dies here: committed locally, never pushed

    run(first())
    cache.close()
    assert server_count(server, VisitNote) == 0
    cache = new_client(tmp_path, "a")  # restart

    async def second():
        eng = engine_for(cache, server, "sup1")
        r = await eng.sync_once()
        r2 = await eng.sync_once()
        await eng.aclose()
        return r, r2

    r, r2 = run(second())
    assert (r.pushed, r2.pushed) == (1, 0)
    assert server_count(server, VisitNote) == 1
    assert local_count(cache, Outbox, Outbox.status == "pending") == 0
    cache.close()


def test_lost_reply_and_5xx_after_commit_are_not_applied_twice(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        eng = await synced(cache, server)
        visit = server.world.visits["S1"]
        add_note(cache, eng, visit, "one")
        server.faults.add("/v1/sync/push", "drop_reply")
        with pytest.raises(OfflineError):
            await eng.sync_once()
        assert server_count(server, VisitNote) == 1  # the server did commit
        add_note(cache, eng, visit, "two")
        server.faults.add("/v1/sync/push", "error_after", 502)
        with pytest.raises(ServerError):
            await eng.sync_once()
        assert server_count(server, VisitNote) == 2
        r = await eng.sync_once()  # retries both: the server says "already done"
        await eng.aclose()
        return r

    r = run(go())
    assert r.pushed == 2 and r.rejected == 0
    assert server_count(server, VisitNote) == 2
    with cache.session() as s:
        assert [o.status for o in s.scalars(select(Outbox).order_by(Outbox.mutation_id))] == [
            "sent",
            "sent",
        ]
        assert sorted(n.text for n in s.scalars(select(VisitNote))) == ["one", "two"]
    cache.close()


def test_timeout_after_commit_is_not_applied_twice(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        eng = await synced(cache, server)
        add_note(cache, eng, server.world.visits["S1"], "slow network")
        patient = eng.client
        eng.client = httpx.AsyncClient(timeout=httpx.Timeout(0.5))
        server.faults.add("/v1/sync/push", "slow_reply", 1.5)
        with pytest.raises(OfflineError):
            await eng.sync_once()
        # the server committed the push; its answer comes after the client gave up
        assert server_count(server, VisitNote) == 1
        pending = Outbox.status == "pending"
        assert local_count(cache, Outbox, pending) == 1  # not known applied: sent again
        await eng.client.aclose()
        eng.client = patient
        r = await eng.sync_once()
        await eng.aclose()
        return r

    run(go())
    assert server_count(server, VisitNote) == 1
    assert local_count(cache, Outbox, Outbox.status == "pending") == 0
    cache.close()


async def _login(client: httpx.AsyncClient, url: str, user: str) -> dict[str, str]:
    r = await client.post(url + "/v1/auth/login", json={"username": user, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: "1"}


def _notes(visit: str, ids: range) -> list[dict]:
    return [
        {
            "id": i,
            "name": "visit_note.add/1",
            "args": {"id": f"n{i}", "visit_id": visit, "text": f"t{i}"},
        }
        for i in ids
    ]


def test_same_push_twice_or_concurrently_has_one_effect_and_gaps_are_refused(server):
    url = server.url
    visit = server.world.visits["S1"]

    async def go():
        async with httpx.AsyncClient(timeout=20) as c:
            h = await _login(c, url, "sup1")
            body = {"client_id": "client-aaaa", "mutations": _notes(visit, range(1, 6))}
            rs = await asyncio.gather(
                *[c.post(url + "/v1/sync/push", json=body, headers=h) for _ in range(3)]
            )
            again = await c.post(url + "/v1/sync/push", json=body, headers=h)
            gap = await c.post(
                url + "/v1/sync/push",
                json={"client_id": "client-aaaa", "mutations": _notes(visit, range(8, 9))},
                headers=h,
            )
            other = await _login(c, url, "mgr1")
            stolen = await c.post(url + "/v1/sync/push", json=body, headers=other)
            return rs, again, gap, stolen

    rs, again, gap, stolen = run(go())
    assert all(r.status_code == 200 for r in rs)
    assert all([x["status"] for x in r.json()["results"]] == ["applied"] * 5 for r in rs)
    assert sum(not x["replayed"] for r in rs for x in r.json()["results"]) == 5
    assert all(x["replayed"] for x in again.json()["results"])
    assert gap.status_code == 409 and gap.json()["expected"] == 6
    assert stolen.status_code == 403
    assert server_count(server, VisitNote) == 5


def test_rejection_mid_batch_does_not_block_and_ghost_rows_are_removed(server, tmp_path):
    cache = new_client(tmp_path, "a")
    w = server.world

    async def go():
        with server.app.state.session_factory() as s, s.begin():
            s.add(
                Visit(
                    id="gone",
                    rep_id=1,
                    customer_id=1,
                    check_in_at=dt.datetime(2026, 11, 24, tzinfo=dt.UTC),
                )
            )
        eng = await synced(cache, server)
        # The visit disappears on the server while this desktop is offline...
        with server.app.state.session_factory() as s, s.begin():
            s.delete(s.get(Visit, "gone"))
        a = add_note(cache, eng, w.visits["S1"], "before")
        b = add_note(cache, eng, "gone", "on a deleted visit")  # ...the desktop still shows it
        c = add_note(cache, eng, w.visits["S1"], "after")
        r = await eng.sync_once()
        await eng.aclose()
        return r, a, b, c

    r, _a, b, c = run(go())
    assert (r.pushed, r.rejected) == (2, 1)
    assert "does not exist" in r.messages[0]
    with cache.session() as s:
        statuses = {o.args["id"]: (o.status, o.error) for o in s.scalars(select(Outbox))}
        assert statuses[b][0] == "rejected" and "does not exist" in statuses[b][1]
        assert statuses[c][0] == "sent"
        assert s.get(VisitNote, b) is None  # the optimistic row was repaired away
        assert s.get(Visit, "gone") is None  # and the tombstone removed the visit
    assert server_count(server, VisitNote) == 2
    cache.close()


def test_pull_stops_at_the_last_applied_change_when_the_server_dies(server, tmp_path):
    writer, reader = new_client(tmp_path, "w"), new_client(tmp_path, "r")

    async def go():
        rd = await synced(reader, server, "mgr1", pull_limit=10)
        wr = await synced(writer, server, "sup1")
        for i in range(45):
            add_note(writer, wr, server.world.visits["S1"], f"note {i}")
        await wr.sync_once()
        pages = []

        def on_event(ev):
            if ev.phase == "pull":
                pages.append(ev)
                if len(pages) == 2:
                    server.stop()  # the server dies between two pages

        rd.listeners.append(on_event)
        with pytest.raises(OfflineError):
            await rd.sync_once()
        st = local.read_state(reader)
        with reader.session() as s:
            have = set(s.scalars(select(VisitNote.id)))
        server.start()  # same database, same port
        with server.session() as s:
            from central.models import ChangeLog

            upto = set(
                __import__("json").loads(pk)[0]
                for pk in s.scalars(
                    select(ChangeLog.pk).where(
                        ChangeLog.table_name == "visit_notes", ChangeLog.seq <= st.cursor
                    )
                )
            )
        assert have == upto and len(have) == 20  # exactly the two applied pages, nothing more
        rd.listeners.clear()
        await rd.sync_once()
        await rd.aclose()
        await wr.aclose()

    run(go())
    assert local_count(reader, VisitNote) == 45
    reader.close()
    writer.close()


def test_two_offline_managers_decide_the_same_proposal(server, tmp_path):
    a, b = new_client(tmp_path, "a"), new_client(tmp_path, "b")
    pid = server.world.proposals["S1"]

    def decide(cache, eng, decision):
        with cache.session() as s:
            args = {
                "proposal_id": pid,
                "decision_id": uuid.uuid4().hex,
                "decision": decision,
                "discount_pct": 20,
                "reason_code": "other",
                "comment": "",
            }
            apply_local(s, eng._actor(), "promotion.decide/1", args)

    async def go():
        ea = await synced(a, server, "mgr1")
        eb = await synced(b, server, "mgr1b")
        decide(a, ea, "approve")  # both offline, both decide
        decide(b, eb, "reject")
        ra = await ea.sync_once()
        rb = await eb.sync_once()
        await ea.aclose()
        await eb.aclose()
        return ra, rb

    ra, rb = run(go())
    assert (ra.pushed, ra.conflicts) == (1, 0)
    assert (rb.pushed, rb.conflicts) == (0, 1)
    with b.session() as s:
        c = s.scalars(select(SyncConflict)).one()
        assert c.theirs["decided_by_name"] == "MGR1" and c.theirs["decided_at"]
        assert "MGR1" in c.message
        # b's cache now shows the winner's decision, not its own
        d = s.scalars(select(PromotionDecision)).one()
        assert d.decision == "approve" and d.decided_by_name == "MGR1"
        assert s.get(PromotionProposal, pid).status == "approved"
    assert server_count(server, PromotionDecision) == 1
    a.close()
    b.close()


def test_stale_shift_edit_conflicts_and_different_shifts_merge(server, tmp_path):
    a, b = new_client(tmp_path, "a"), new_client(tmp_path, "b")
    s0, s1 = server.world.shifts["S1-0"], server.world.shifts["S1-1"]

    def edit(cache, eng, sid, note):
        with cache.session() as s:
            v = s.get(Shift, sid).version
            apply_local(
                s, eng._actor(), "shift.update/1", {"id": sid, "note": note}, base_version=v
            )

    async def go():
        ea = await synced(a, server, "mgr1")
        eb = await synced(b, server, "mgr1b")
        edit(a, ea, s0, "A on shift 0")
        edit(b, eb, s1, "B on shift 1")  # different shift: merges
        edit(b, eb, s0, "B on shift 0")  # same shift, same base: loses to A
        ra = await ea.sync_once()
        rb = await eb.sync_once()
        await ea.sync_once()
        await ea.aclose()
        await eb.aclose()
        return ra, rb

    ra, rb = run(go())
    assert (ra.pushed, rb.pushed, rb.conflicts) == (1, 1, 1)
    with server.session() as s:
        assert s.get(Shift, s0).note == "A on shift 0"
        assert s.get(Shift, s1).note == "B on shift 1"
    for cache in (a, b):
        with cache.session() as s:
            assert s.get(Shift, s0).note == "A on shift 0"
            assert s.get(Shift, s1).note == "B on shift 1"
    with b.session() as s:
        c = s.scalars(select(SyncConflict)).one()
        assert c.entity == "shift" and c.entity_id == s0 and c.theirs["note"] == "A on shift 0"
    a.close()
    b.close()


def test_client_clock_off_by_a_day_changes_nothing(server, tmp_path):
    cache = new_client(tmp_path, "a")
    skew = dt.timedelta(days=1)

    async def go():
        eng = engine_for(cache, server, "sup1")
        eng.now = lambda: dt.datetime.now(dt.UTC) + skew
        await eng.sync_once()
        nid = uuid.uuid4().hex
        with cache.session() as s:
            apply_local(
                s,
                eng._actor(),
                "visit_note.add/1",
                {"id": nid, "visit_id": server.world.visits["S1"], "text": "x"},
                now=dt.datetime.now(dt.UTC) + skew,
            )
        r = await eng.sync_once()
        await eng.aclose()
        return nid, r

    before = dt.datetime.now(dt.UTC)
    nid, r = run(go())
    with server.session() as s:
        server_note = s.get(VisitNote, nid)
        assert before - dt.timedelta(seconds=5) < server_note.created_at < dt.datetime.now(dt.UTC)
    with cache.session() as s:
        assert s.get(VisitNote, nid).created_at == server_note.created_at  # server time wins
    assert r.pushed == 1 and r.pulled >= 1
    cache.close()


def test_too_old_cursor_resnapshots_without_losing_the_outbox(server, tmp_path):
    a, other = new_client(tmp_path, "a"), new_client(tmp_path, "o")

    async def go():
        ea = await synced(a, server)
        eo = await synced(other, server, "admin")
        mine = add_note(a, ea, server.world.visits["S1"], "written offline")
        add_note(other, eo, server.world.visits["S1"], "someone else")
        await eo.sync_once()
        with server.session() as s, s.begin():
            changelog.prune(s, changelog.head_and_floor(s)[0])  # retention passed
        events = []
        ea.listeners.append(lambda ev: events.append(ev.phase))
        r = await ea.sync_once()
        await ea.aclose()
        await eo.aclose()
        return mine, r, events

    _mine, r, events = run(go())
    assert r.pushed == 1 and r.snapshot and r.verified is True
    assert events.index("push") < events.index("snapshot")
    with a.session() as s:
        assert {n.text for n in s.scalars(select(VisitNote))} == {"written offline", "someone else"}
        assert s.get(Outbox, 1).status == "sent"
    assert server_count(server, VisitNote) == 2
    a.close()
    other.close()


def test_stale_cursor_raises_cursor_expired_on_raw_pull(server):
    async def go():
        async with httpx.AsyncClient() as c:
            h = await _login(c, server.url, "sup1")
            return await c.get(server.url + "/v1/sync/pull", params={"cursor": 99999}, headers=h)

    assert run(go()).status_code == 410
    assert CursorExpired  # the engine's name for this answer


def test_hostile_replies_abort_the_step_and_apply_nothing(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        eng = await synced(cache, server, "admin")
        with server.app.state.session_factory() as s, s.begin():
            s.add(
                VisitNote(
                    id="srv1",
                    visit_id=server.world.visits["S1"],
                    author_id=1,
                    text="t",
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
        before = local.read_state(cache).cursor
        cases = [
            ("garbage", b"{not json"),
            (
                "garbage",
                b'{"cursor": "x", "next_cursor": 1, "has_more": false, "columns": {}, "changes": []}',
            ),
            ("replace", lambda d: {**d, "changes": [{**d["changes"][0], "table": "outbox"}]}),
            ("replace", lambda d: {**d, "changes": [{**d["changes"][0], "row": [1, 2]}]}),
            ("replace", lambda d: {**d, "next_cursor": d["cursor"] - 1}),
            ("garbage", b'{"cursor": 0, "changes": [' + b"1," * 70_000 + b"1]}"),
        ]
        errors = []
        for kind, arg in cases:
            server.faults.add("/v1/sync/pull", kind, arg)
            with pytest.raises(ProtocolError) as e:
                await eng.sync_once()
            errors.append(str(e.value))
            assert local.read_state(cache).cursor == before
            assert local_count(cache, VisitNote) == 0
        # an absurd size: the cap stops reading
        server.faults.add("/v1/sync/pull", "garbage", b"[" + b"0," * 5000 + b"0]")
        eng.max_response_bytes = 2000
        with pytest.raises(ProtocolError, match="too large"):
            await eng.sync_once()
        eng.max_response_bytes = 64 * 1024 * 1024
        r = await eng.sync_once()  # and a clean reply applies normally
        await eng.aclose()
        return errors, r

    errors, _r = run(go())
    assert all("invalid reply" in e or "cannot apply" in e for e in errors), errors
    assert local_count(cache, VisitNote) == 1
    cache.close()


def test_old_client_gets_426_with_update_message(server):
    r = httpx.get(server.url + "/v1/health", headers={PROTOCOL_HEADER: "0"})
    assert r.status_code == 426 and "please update StoreDesk" in r.json()["detail"]
    # protocol 1 (JSON snapshot pages) is still served; the server says which it speaks
    ok = httpx.get(server.url + "/v1/health", headers={PROTOCOL_HEADER: "1"})
    assert ok.status_code == 200 and ok.headers[PROTOCOL_HEADER] == str(PROTOCOL_VERSION)
    newer = httpx.get(
        server.url + "/v1/health", headers={PROTOCOL_HEADER: str(PROTOCOL_VERSION + 1)}
    )
    assert newer.status_code == 426 and "older than your StoreDesk" in newer.json()["detail"]


def test_pending_local_edits_are_reapplied_over_pulled_rows(server, tmp_path):
    """Server rows overwrite optimistic ones, then pending edits are rebased on top."""
    a = new_client(tmp_path, "a")
    s0, s1 = server.world.shifts["S1-0"], server.world.shifts["S1-1"]

    async def go():
        from sync.engine import SyncResult

        ea = await synced(a, server, "mgr1")
        with a.session() as s:
            apply_local(
                s,
                ea._actor(),
                "shift.update/1",
                {"id": s0, "note": "mine, pending"},
                base_version=1,
            )
            apply_local(
                s,
                ea._actor(),
                "shift.update/1",
                {"id": s1, "note": "stale, pending"},
                base_version=1,
            )
        factory = server.app.state.session_factory
        with factory() as s, s.begin():
            s.get(Shift, s0).end_at = s.get(Shift, s0).end_at + dt.timedelta(hours=1)  # back office
            sh1 = s.get(Shift, s1)
            sh1.note, sh1.version = "theirs", sh1.version + 1  # someone else's edit
        await ea._sign_in()
        await ea._pull(SyncResult())  # a pull while edits are still pending
        with a.session() as s:
            got0, got1 = s.get(Shift, s0), s.get(Shift, s1)
            seen = (got0.note, got0.end_at, got1.note)
        r = await ea.sync_once()
        await ea.aclose()
        return seen, r

    (note0, end0, note1), r = run(go())
    with server.session() as s:
        server_end0 = s.get(Shift, s0).end_at
    assert note0 == "mine, pending" and end0 == server_end0  # server row + my edit on top
    assert note1 == "theirs"  # my stale edit no longer applies: the server's row shows
    assert (r.pushed, r.conflicts) == (1, 1)
    with a.session() as s:
        assert s.get(Shift, s0).note == "mine, pending" and s.get(Shift, s1).note == "theirs"
    a.close()


def test_another_user_on_the_same_cache_never_sends_the_previous_users_edits(server, tmp_path):
    cache = new_client(tmp_path, "shared")

    async def go():
        e1 = await synced(cache, server, "sup1")
        add_note(cache, e1, "visitS1", "sup1's unsent note")
        await e1.aclose()
        e2 = engine_for(cache, server, "mgr3")  # someone else signs in on this PC
        r = await e2.sync_once()
        add_note(cache, e2, "visitS3", "mgr3's note")
        r2 = await e2.sync_once()
        await e2.aclose()
        return r, r2

    r, r2 = run(go())
    assert r.snapshot and r.verified is True and r2.pushed == 1
    with server.session() as s:
        assert [n.text for n in s.scalars(select(VisitNote))] == ["mgr3's note"]
    with cache.session() as s:
        first = s.get(Outbox, 1)
        assert first.status == "rejected" and "another user" in first.error
        assert s.get(Outbox, 2).status == "sent"  # ids keep counting; the server accepts
    cache.close()


def test_a_customer_moving_to_another_store_leaves_the_old_managers_cache(server, tmp_path):
    from core.models import Customer

    m1, m3 = new_client(tmp_path, "m1"), new_client(tmp_path, "m3")

    async def go():
        e1 = await synced(m1, server, "mgr1")
        e3 = await synced(m3, server, "mgr3")
        with m1.session() as s:
            assert s.get(Customer, 1) is not None
        with server.app.state.session_factory() as s, s.begin():
            c = s.get(Customer, 1)
            c.store_id, c.region_id, c.name = 3, 2, "搬到了S3"
        await e1.sync_once()
        await e3.sync_once()
        await e1.aclose()
        await e3.aclose()

    run(go())
    with m1.session() as s:
        assert s.get(Customer, 1) is None
    with m3.session() as s:
        assert s.get(Customer, 1).name == "搬到了S3"
    m1.close()
    m3.close()


def test_a_manager_given_another_store_downloads_it(server, tmp_path):
    from core.models import Store, UserScope

    cache = new_client(tmp_path, "m1")

    async def go():
        e = await synced(cache, server, "mgr1")
        with server.app.state.session_factory() as s, s.begin():
            s.add(UserScope(user_id=3, store_id=3))
        r = await e.sync_once()
        await e.aclose()
        return r

    r = run(go())
    assert r.snapshot and r.verified is True
    with cache.session() as s:
        assert set(s.scalars(select(Store.id))) == {1, 3}
        assert local_count(cache, Shift, Shift.store_id == 3) == 2
    cache.close()


def test_traffic_import_travels_through_push_and_pull(server, tmp_path):
    from core.models import HourlyTraffic

    m1, sup = new_client(tmp_path, "m1"), new_client(tmp_path, "sup")
    hour = "2026-11-24T02:00:00+00:00"
    args = {
        "store_id": 1,
        "rows": [
            {"hour_start": hour, "visitors": 77, "transactions": 9, "sales_fen": 990, "units": 12}
        ],
    }

    async def go():
        e1 = await synced(m1, server, "mgr1")
        es = await synced(sup, server, "sup1")
        with m1.session() as s:
            apply_local(s, e1._actor(), "traffic.import/1", args)
        r = await e1.sync_once()
        rs = await es.sync_once()
        await e1.aclose()
        await es.aclose()
        return r, rs

    r, rs = run(go())
    assert r.pushed == 1 and rs.pulled >= 1
    key = (1, dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC))
    for cache in (m1, sup):
        with cache.session() as s:
            row = s.get(HourlyTraffic, key)
            assert (row.visitors, row.transactions, row.sales_fen, row.units) == (77, 9, 990, 12)
    m1.close()
    sup.close()
