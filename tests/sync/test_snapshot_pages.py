"""Protocol 2 snapshot pages (SQLite page files) and the checks around them.

A hostile or broken page file applies nothing (page files are opened with an untrusted
schema); a page whose rows would not be stored exactly as received (a value converted by
type affinity, a row replaced within the page) is refused, so the checksum terms kept
while loading, which the verify that ends a snapshot uses, are those of the stored rows
(and the verify still notices a row lost on load); after a pulled change it reads
everything again; the non-unique indexes dropped for the load are back once the snapshot
is finished, and as soon as a load stops unfinished; the server's scope checksums follow
its head, and a verify never waits behind another client's background checksum job.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import httpx
import pytest
from sqlalchemy import func, select

from core.models import Base, VisitNote
from core.tasks import Cancelled, TaskState
from sync import local
from sync.engine import OfflineError, ProtocolError, VerificationFailed
from sync.protocol import (
    PAGE_TABLE,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    SYNCED_TABLE_NAMES,
    SnapshotPageInfo,
    decode_page,
    encode_page,
    page_from_rows,
    row_checksum_terms,
    table_checksum,
    wire_columns,
)
from sync.protocol import table as synced_table
from tests.sync.harness import PASSWORD, engine_for, new_client, run


def _headers(srv, user: str = "admin") -> dict[str, str]:
    r = httpx.post(srv.url + "/v1/auth/login", json={"username": user, "password": PASSWORD})
    return {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: str(PROTOCOL_VERSION)}


def _count(cache, name: str) -> int:
    with cache.engine.connect() as conn:
        raw = conn.connection.driver_connection
        return raw.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]


def _indexes(cache) -> set[str]:
    with cache.engine.connect() as conn:
        raw = conn.connection.driver_connection
        return {
            r[0]
            for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not r[0].startswith("sqlite_autoindex")
        }


def test_hostile_snapshot_pages_apply_nothing(server, tmp_path):
    cache = new_client(tmp_path, "a")
    h = _headers(server)
    token = httpx.get(server.url + "/v1/sync/snapshot/start", headers=h).json()["token"]
    first = SYNCED_TABLE_NAMES[0]
    cols = wire_columns(synced_table(first))
    good = httpx.get(
        server.url + "/v1/sync/snapshot", params={"token": token, "table": first}, headers=h
    ).json()["rows"]
    assert good

    def page(con: sqlite3.Connection, count: int | None = None) -> bytes:
        n = con.execute(f"SELECT count(*) FROM {PAGE_TABLE}").fetchone()[0]
        info = SnapshotPageInfo(
            token=token, table=first, columns=cols, count=n if count is None else count,
            next_after=None,
        )  # fmt: skip
        return encode_page(info, con)

    with_view = page_from_rows(cols, good)
    with_view.execute(f"CREATE VIEW v AS SELECT * FROM {PAGE_TABLE}")
    with_trigger = page_from_rows(cols, good)
    with_trigger.execute(f"CREATE TRIGGER t AFTER INSERT ON {PAGE_TABLE} BEGIN SELECT 1; END")
    blob_row = [bytes(8) if i == len(cols) - 1 else v for i, v in enumerate(good[0])]
    generated = sqlite3.connect(":memory:")
    generated.execute(f"CREATE TABLE {PAGE_TABLE} ({', '.join(cols[:-1])}, {cols[-1]} AS (1))")
    damaged = bytearray(page(page_from_rows(cols, good)))
    damaged[-2000:] = b"\xff" * 2000
    cases = [
        b"{not json",
        page(with_view),
        page(with_trigger),
        page(page_from_rows(cols, [blob_row])),
        page(page_from_rows(cols[:-1], [r[:-1] for r in good])),  # a column missing
        page(page_from_rows(cols, good), count=len(good) + 1),  # envelope disagrees
        page(generated),
        bytes(damaged),
    ]

    async def go():
        eng = engine_for(cache, server, "admin")
        for body in cases:
            server.faults.add("/v1/sync/snapshot", "garbage", body)
            with pytest.raises(ProtocolError):
                await eng.sync_once()
            st = local.read_state(cache)
            assert st.snapshot_done == 0 and st.snapshot_table_index == 0
            assert _count(cache, first) == 0
        r = await eng.sync_once()  # and clean pages load normally
        await eng.aclose()
        return r

    r = run(go())
    assert r.verified is True and _count(cache, first) == len(good)
    cache.close()


def test_verify_uses_the_sums_kept_while_loading_and_reads_all_after_a_change(
    server, tmp_path, monkeypatch
):
    reads: list[int] = []
    full = local.local_checksums

    def counting(cache, tables):
        reads.append(1)
        return full(cache, tables)

    monkeypatch.setattr(local, "local_checksums", counting)
    quiet = new_client(tmp_path, "quiet")

    async def clean():
        eng = engine_for(quiet, server, "admin", snapshot_limit=3)
        r = await eng.sync_once()
        await eng.aclose()
        return r

    r = run(clean())
    assert r.verified is True and r.snapshot_rows > 0 and reads == []
    with quiet.engine.connect() as conn:  # only the verify that ends a snapshot uses them
        raw = conn.connection.driver_connection
        assert local._get_raw(raw, local.K_SNAP_SUMS) is None

    # A change committed while the pages are downloaded is pulled afterwards: the sums
    # no longer describe the cache, so the verify reads every row again.
    busy = new_client(tmp_path, "busy")

    def change(ev):
        if ev.phase == "snapshot" and ev.fraction > 0.2 and not added:
            with server.app.state.session_factory() as s, s.begin():
                s.add(
                    VisitNote(
                        id="during-snapshot",
                        visit_id=server.world.visits["S1"],
                        author_id=1,
                        text="written while a desktop downloads",
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
            added.append(1)

    added: list[int] = []

    async def changing():
        eng = engine_for(busy, server, "admin", snapshot_limit=3)
        eng.listeners.append(change)
        r = await eng.sync_once()
        await eng.aclose()
        return r

    r = run(changing())
    assert added and r.pulled >= 1 and r.verified is True and len(reads) == 1
    with busy.session() as s:
        assert s.get(VisitNote, "during-snapshot") is not None
    quiet.close()
    busy.close()


def test_a_row_lost_on_load_fails_the_verification(server, tmp_path):
    cache = new_client(tmp_path, "a")

    def lose_one(ev):
        if ev.phase == "verify":
            with cache.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM shifts WHERE id = (SELECT min(id) FROM shifts)")

    async def go():
        eng = engine_for(cache, server, "admin")
        eng.listeners.append(lose_one)
        with pytest.raises(VerificationFailed):
            await eng.sync_once()
        await eng.aclose()

    run(go())
    assert local.read_state(cache).cursor is None  # the next sync downloads everything again
    cache.close()


def _deferred(table: str | None = None) -> set[str]:
    return {
        str(ix.name)
        for name in SYNCED_TABLE_NAMES
        for ix in Base.metadata.tables[name].indexes
        if not ix.unique and table in (None, name)
    }


def test_indexes_dropped_for_the_load_are_back_when_the_load_stops_or_ends(server, tmp_path):
    """The non-unique indexes are dropped while pages load; a sync cancelled in the middle
    of the snapshot leaves the partial cache with all of them (what the user works with
    offline); the resumed load drops those of the tables it still has to load and the
    finished snapshot has them all."""
    cache = new_client(tmp_path, "a")
    expected = {
        str(ix.name) for name in SYNCED_TABLE_NAMES for ix in Base.metadata.tables[name].indexes
    }
    assert expected <= _indexes(cache)
    seen: dict[str, tuple[set[str], set[str]]] = {}

    def look(key: str):
        def listener(ev):  # between two pages: (indexes missing, those of the tables to load)
            if ev.phase == "snapshot" and ev.fraction > 0.3 and key not in seen:
                st = local.read_state(cache)
                todo = set().union(
                    *(_deferred(t) for t, _c in st.snapshot_tables[st.snapshot_table_index :])
                )
                seen[key] = (expected - _indexes(cache), todo)
                if key == "first":
                    state.cancel()

        return listener

    state = TaskState()

    async def go():
        eng = engine_for(cache, server, "admin", snapshot_limit=2)
        eng.listeners.append(look("first"))
        with pytest.raises(Cancelled):
            await eng.sync_once(state)
        stopped = local.read_state(cache)
        after_cancel = expected - _indexes(cache)
        eng.listeners[:] = [look("resumed")]
        r = await eng.sync_once()
        await eng.aclose()
        return stopped, after_cancel, r

    stopped, after_cancel, r = run(go())
    missing, todo = seen["first"]
    assert missing and missing == todo  # only the tables still to load lack them
    assert stopped.snapshot_token is not None and stopped.snapshot_done > 0
    assert after_cancel == set()  # cancelled mid-snapshot: the partial cache has them all
    missing, todo = seen["resumed"]
    assert missing and missing == todo  # dropped again for the rest of the load
    assert r.verified is True and r.snapshot_rows < stopped.snapshot_total  # resumed
    assert expected <= _indexes(cache)
    cache.close()


def test_a_snapshot_left_by_a_killed_app_gets_its_indexes_on_the_next_sync_even_offline(
    server, tmp_path
):
    """A killed app leaves a snapshot in progress with its indexes dropped. The next sync,
    here with the server down (offline), cannot resume it, but leaves the partial cache
    indexed: a query over the table being loaded uses its index. The snapshot is still
    resumed afterwards, not restarted."""
    cache = new_client(tmp_path, "a")
    state = TaskState()

    async def cancelled():
        eng = engine_for(cache, server, "admin", snapshot_limit=2)
        eng.listeners.append(
            lambda ev: state.cancel() if ev.phase == "snapshot" and ev.fraction > 0.5 else None
        )
        with pytest.raises(Cancelled):
            await eng.sync_once(state)
        await eng.aclose()

    run(cancelled())
    st = local.read_state(cache)
    with cache.engine.begin() as conn:  # what a kill leaves: the load's indexes dropped
        for name in _deferred():
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    assert not (_deferred() & _indexes(cache))
    shifts_ix = next(ix for ix in Base.metadata.tables["shifts"].indexes if not ix.unique)
    column = next(iter(shifts_ix.columns)).name
    server.stop()

    async def offline():
        eng = engine_for(cache, server, "admin")
        with pytest.raises(OfflineError):
            await eng.sync_once()
        await eng.aclose()

    run(offline())
    assert _deferred() <= _indexes(cache)
    with cache.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f'EXPLAIN QUERY PLAN SELECT * FROM shifts WHERE "{column}" = 1'
        ).fetchall()
    assert any(str(shifts_ix.name) in str(row) for row in plan)
    assert local.read_state(cache) == st  # still the same snapshot, at the same page

    server.start()

    async def resumed():
        eng = engine_for(cache, server, "admin")
        r = await eng.sync_once()
        await eng.aclose()
        return r

    r = run(resumed())
    assert r.verified is True and 0 < r.snapshot_rows < st.snapshot_total
    cache.close()


def test_server_scope_checksums_follow_the_head(server):
    h = _headers(server)

    def verify():
        return httpx.get(server.url + "/v1/sync/verify", headers=h).json()

    a = verify()
    assert verify() == a  # same head: the same sums (computed once)
    with server.app.state.session_factory() as s, s.begin():
        s.add(
            VisitNote(
                id="after-verify",
                visit_id=server.world.visits["S1"],
                author_id=1,
                text="t",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    b = verify()
    assert b["seq"] > a["seq"]
    assert b["tables"]["visit_notes"]["count"] == a["tables"]["visit_notes"]["count"] + 1
    with server.session() as s:
        assert b["tables"]["visit_notes"]["count"] == s.scalar(
            select(func.count()).select_from(VisitNote)
        )


def test_precomputed_sums_serve_one_verify_only(server):
    """The sums a snapshot start computes serve that snapshot's verify, and nothing after:
    a later verify at the same head reads the data again (here: a row written without
    the change log, which the head does not show)."""
    h = _headers(server)
    httpx.get(server.url + "/v1/sync/snapshot/start", headers=h)
    a = httpx.get(server.url + "/v1/sync/verify", headers=h).json()
    with server.session() as s, s.begin():  # a plain session: no change-log capture
        s.add(
            VisitNote(
                id="no-change-log",
                visit_id=server.world.visits["S1"],
                author_id=1,
                text="t",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    b = httpx.get(server.url + "/v1/sync/verify", headers=h).json()
    assert b["seq"] == a["seq"]
    assert b["tables"]["visit_notes"]["count"] == a["tables"]["visit_notes"]["count"] + 1


def _rebuilt_page(body: bytes, change) -> tuple[bytes, list[list]]:
    """The server's page with its rows passed through ``change`` (untyped page columns, so
    the values are kept exactly as given); returns the new page and its rows."""
    info, data = decode_page(body)
    con = sqlite3.connect(":memory:")
    con.deserialize(data)
    rows = [change(list(r)) for r in con.execute(f"SELECT * FROM {PAGE_TABLE}")]
    con.close()
    return encode_page(info, page_from_rows(info.columns, rows)), rows


def test_a_value_stored_converted_refuses_the_page_even_when_the_sums_agree(server, tmp_path):
    """Text '10' for an INTEGER column is stored as integer 10: the rows received are not
    the rows stored. Even with a verify answer that agrees with the rows sent (as a server
    whose own sums describe what it sent would), such a page is refused when it is loaded
    and nothing of it is kept; the next clean sync loads and verifies."""
    cache = new_client(tmp_path, "a")
    name = "hourly_traffic"
    col = wire_columns(synced_table(name)).index("visitors")
    sent: list[list] = []

    def as_text(body: bytes) -> bytes:
        page, rows = _rebuilt_page(body, lambda r: [*r[:col], str(r[col]), *r[col + 1 :]])
        sent.extend(rows)
        return page

    def agree(body: dict) -> dict:
        n, crc = row_checksum_terms(sent)
        body["tables"][name]["checksum"] = table_checksum(n, crc)
        return body

    server.faults.add(f"/v1/sync/snapshot?table={name}", "rewrite", as_text)
    server.faults.add("/v1/sync/verify", "replace", agree, times=3)

    async def go():
        eng = engine_for(cache, server, "admin")
        with pytest.raises(ProtocolError, match="visitors"):
            await eng.sync_once()
        server.faults.rules.clear()
        r = await eng.sync_once()
        await eng.aclose()
        return r

    index = SYNCED_TABLE_NAMES.index(name)
    calls: list[tuple[int, int]] = []
    orig = local.apply_snapshot_page

    def spy(cache_, token, table_index, *rest):
        if table_index == index and not calls:  # the refused page: nothing of it kept
            try:
                return orig(cache_, token, table_index, *rest)
            finally:
                calls.append((_count(cache_, name), local.read_state(cache_).snapshot_table_index))
        return orig(cache_, token, table_index, *rest)

    local.apply_snapshot_page, saved = spy, local.apply_snapshot_page
    try:
        r = run(go())
    finally:
        local.apply_snapshot_page = saved
    assert sent and calls == [(0, index)]
    assert r.verified is True
    with cache.engine.connect() as conn:
        raw = conn.connection.driver_connection
        types = {t for (t,) in raw.execute(f"SELECT typeof(visitors) FROM {name}")}
    assert types == {"integer"} and _count(cache, name) == len(sent)
    cache.close()


def test_a_row_replaced_within_its_page_refuses_the_page(tmp_path):
    """Two rows with one key in one page: INSERT OR REPLACE keeps the last, so the first
    row received is not stored; the page is refused, not counted."""
    from core.cache import open_cache

    cache = open_cache(tmp_path / "c.db")
    name = "holidays"
    cols = wire_columns(synced_table(name))
    rows = [["2026-10-01", "国庆节"], ["2026-10-01", "国庆"]]
    local.begin_snapshot(cache, 1, [(name, cols)])
    data = page_from_rows(cols, rows).serialize()
    sums = local.page_checksum(data, cols)
    with pytest.raises(ValueError, match="holidays"):
        local.apply_snapshot_page(cache, 1, 0, cols, data, sums, None)
    assert _count(cache, name) == 0 and local.read_state(cache).snapshot_done == 0
    cache.close()


def _page_with_check(cols: list[str], rows: list[list]) -> sqlite3.Connection:
    """A page database whose table has a CHECK constraint calling json(), a function
    SQLite marks unsafe for use in a schema it has not been told to trust."""
    con = sqlite3.connect(":memory:")
    decl = ", ".join(f'"{c}"' for c in cols)
    con.execute(f"CREATE TABLE {PAGE_TABLE} ({decl}, CHECK (json('1') IS NOT NULL))")
    con.executemany(f"INSERT INTO {PAGE_TABLE} VALUES ({', '.join('?' * len(cols))})", rows)
    return con


def test_page_files_are_opened_with_an_untrusted_schema(server, tmp_path):
    cache = new_client(tmp_path, "a")
    name = SYNCED_TABLE_NAMES[0]
    cols = wire_columns(synced_table(name))
    rows = [["2026-10-01", "国庆节"]]
    data = _page_with_check(cols, rows).serialize()
    # the checking thread's connection and the DB worker's both refuse it
    with pytest.raises(ValueError, match="unsafe use of json"):
        local.page_checksum(data, cols)
    local.begin_snapshot(cache, 1, [(name, cols)])
    n, crc = row_checksum_terms(rows)
    with pytest.raises(ValueError, match="unsafe use of json"):
        local.apply_snapshot_page(cache, 1, 0, cols, data, local.PageSums(n, crc), None)
    assert _count(cache, name) == 0
    with cache.engine.connect() as conn:  # the cache's own connection is left as it was
        raw = conn.connection.driver_connection
        assert raw.execute("PRAGMA trusted_schema").fetchone() == (1,)
    local.forget_cursor(cache)

    # over the wire: the server's rows in such a file are refused, nothing is applied
    def with_check(body: bytes) -> bytes:
        info, data = decode_page(body)
        con = sqlite3.connect(":memory:")
        con.deserialize(data)
        rows = [list(r) for r in con.execute(f"SELECT * FROM {PAGE_TABLE}")]
        return encode_page(info, _page_with_check(info.columns, rows))

    server.faults.add(f"/v1/sync/snapshot?table={name}", "rewrite", with_check)

    async def go():
        eng = engine_for(cache, server, "admin")
        with pytest.raises(ProtocolError):
            await eng.sync_once()
        await eng.aclose()

    run(go())
    assert _count(cache, name) == 0
    cache.close()


def _note(server, note_id: str) -> None:
    """A change through the change log (the head moves)."""
    with server.app.state.session_factory() as s, s.begin():
        s.add(
            VisitNote(
                id=note_id,
                visit_id=server.world.visits["S1"],
                author_id=1,
                text="t",
                created_at=dt.datetime.now(dt.UTC),
            )
        )


def test_a_verify_never_waits_behind_another_clients_checksum_job(server):
    """Two clients start snapshots: the admin's background sums are computing (held here,
    as a large scope would be), the supervisor's are queued behind them. The supervisor's
    verify answers at once, with the right sums, instead of waiting for the admin's job;
    the admin's verify then takes its own precomputed sums."""
    sums = server.app.state.scope_sums
    real = sums._compute
    gate, held = threading.Event(), threading.Event()
    background: list[int] = []

    def slow(actor, form, *rest):
        if threading.current_thread().name.startswith("scope-sums"):
            background.append(actor.user_id)
            if actor.user_id == 1:  # admin
                held.set()
                gate.wait(60)
        return real(actor, form, *rest)

    sums._compute = slow
    admin, sup = _headers(server, "admin"), _headers(server, "sup1")
    start, verify = server.url + "/v1/sync/snapshot/start", server.url + "/v1/sync/verify"
    try:
        httpx.get(start, headers=admin)
        assert held.wait(10)
        httpx.get(start, headers=sup)
        b = httpx.get(verify, headers=sup, timeout=15).json()
        assert not gate.is_set() and background == [1]  # answered while admin's job runs
        gate.set()
        a = httpx.get(verify, headers=admin, timeout=15).json()
    finally:
        gate.set()
        sums._compute = real
    assert background == [1]  # the supervisor's queued job was cancelled, never run
    assert httpx.get(verify, headers=sup).json() == b  # a fresh computation agrees
    assert httpx.get(verify, headers=admin).json() == a
    assert b["tables"]["stores"]["count"] == 2 and a["tables"]["stores"]["count"] == 3


def test_each_user_keeps_at_most_two_background_checksum_jobs(server):
    """A user who starts snapshot after snapshot (the head moving in between) leaves at
    most two jobs queued; the older ones are dropped before they run."""
    sums = server.app.state.scope_sums
    real = sums._compute
    gate, held = threading.Event(), threading.Event()
    background: list[int] = []

    def slow(actor, form, *rest):
        if threading.current_thread().name.startswith("scope-sums"):
            background.append(actor.user_id)
            if actor.user_id == 2:  # sup1 holds the worker while admin queues jobs
                held.set()
                gate.wait(60)
        return real(actor, form, *rest)

    sums._compute = slow
    admin, sup = _headers(server, "admin"), _headers(server, "sup1")
    start = server.url + "/v1/sync/snapshot/start"
    try:
        httpx.get(start, headers=sup)
        assert held.wait(10)
        for i in range(4):
            _note(server, f"restart-{i}")
            httpx.get(start, headers=admin)
        gate.set()
        deadline = time.monotonic() + 10
        while background.count(1) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # (a dropped job would have run by now)
        assert background == [2, 1, 1]
        a = httpx.get(server.url + "/v1/sync/verify", headers=admin, timeout=15).json()
    finally:
        gate.set()
        sums._compute = real
    assert background == [2, 1, 1]  # nothing more ran for the verify
    assert a["tables"]["visit_notes"]["count"] == 4


def test_a_pulled_row_that_cannot_be_stored_is_a_clear_error_and_changes_nothing(server, tmp_path):
    """A NULL where the table allows none (visit_notes.text) in a pull page: the sync
    fails with the readable ProtocolError, and neither the page nor the cursor is kept."""
    cache = new_client(tmp_path, "a")

    async def first():
        eng = engine_for(cache, server, "admin")
        await eng.sync_once()
        await eng.aclose()

    run(first())
    cursor = local.read_state(cache).cursor
    _note(server, "pulled-null")
    _note(server, "pulled-fine")

    def null_text(body: dict) -> dict:
        col = body["columns"]["visit_notes"].index("text")
        for ch in body["changes"]:
            if ch["table"] == "visit_notes" and ch["pk"] == ["pulled-null"]:
                ch["row"][col] = None
        return body

    server.faults.add("/v1/sync/pull", "replace", null_text)

    async def broken():
        eng = engine_for(cache, server, "admin")
        with pytest.raises(ProtocolError, match="visit_notes"):
            await eng.sync_once()
        await eng.aclose()

    run(broken())
    assert local.read_state(cache).cursor == cursor
    with cache.session() as s:
        assert s.get(VisitNote, "pulled-fine") is None
    cache.close()
