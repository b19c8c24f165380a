"""Protocol 2 snapshot pages (SQLite page files) and the checks around them.

A hostile or broken page file applies nothing; the verify that ends a snapshot uses the
checksum terms kept while loading (and still notices a row lost on load); after a pulled
change it reads everything again; the non-unique indexes dropped for the load are back
once the snapshot is finished; the server's scope checksums follow its head.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import httpx
import pytest
from sqlalchemy import func, select

from core.models import Base, VisitNote
from core.tasks import Cancelled, TaskState
from sync import local
from sync.engine import ProtocolError, VerificationFailed
from sync.protocol import (
    PAGE_TABLE,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    SYNCED_TABLE_NAMES,
    SnapshotPageInfo,
    encode_page,
    page_from_rows,
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


def test_indexes_dropped_for_the_load_are_built_when_the_snapshot_ends(server, tmp_path):
    cache = new_client(tmp_path, "a")
    expected = {
        str(ix.name) for name in SYNCED_TABLE_NAMES for ix in Base.metadata.tables[name].indexes
    }
    assert expected <= _indexes(cache)

    async def go():
        eng = engine_for(cache, server, "admin", snapshot_limit=2)
        state = TaskState()
        eng.listeners.append(
            lambda ev: state.cancel() if ev.phase == "snapshot" and ev.fraction > 0.3 else None
        )
        with pytest.raises(Cancelled):
            await eng.sync_once(state)
        missing = expected - _indexes(cache)
        eng.listeners.clear()
        r = await eng.sync_once()
        await eng.aclose()
        return missing, r

    missing, r = run(go())
    assert missing
    assert r.verified is True and expected <= _indexes(cache)
    unique = {
        str(ix.name)
        for name in SYNCED_TABLE_NAMES
        for ix in Base.metadata.tables[name].indexes
        if ix.unique
    }
    assert not (missing & unique)  # INSERT OR REPLACE needs them during the load
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
