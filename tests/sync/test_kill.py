"""A desktop process killed (SIGKILL) in the middle of an initial sync or a pull.

The headless ``storedesk sync`` runs as a real subprocess against the live server; the
test reads its progress bar and kills it at ~30 % and ~95 % of the snapshot, and in the
middle of a long pull. After each kill the cache must be consistent (rows match the stored
position exactly), and the next run resumes — not restarts — and ends with checksums equal
to the server's.

The server serves the pages that take the client to the kill point and then parks the next
page request (:class:`tests.sync.harness.Hold`): the client cannot finish before the kill
lands, however slow the machine (at 95 % only ~2 pages are left, which the client used to
download and store within ~0.2 s of printing 95 %).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from central.models import ChangeLog
from core.cache import open_cache
from core.models import Shift, VisitNote
from sync import local
from sync.protocol import PROTOCOL_HEADER, SYNCED_TABLE_NAMES, decode_page
from tests.sync.conftest import start_server
from tests.sync.harness import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def _cli(cache: Path, srv, user: str, env_extra: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "desktop", "--cache", str(cache), "sync",
         "--server", srv.url, "--user", user, "--password-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write((PASSWORD + "\n").encode())
    proc.stdin.close()
    return proc


def run_and_kill(cache: Path, srv, user: str, should_kill, env_extra: dict[str, str]) -> str:
    """Run the CLI; SIGKILL it as soon as ``should_kill(progress_text)`` says so."""
    proc = _cli(cache, srv, user, env_extra)
    seen: list[str] = []

    def reader():
        assert proc.stderr is not None
        while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
            seen.append(chunk.decode(errors="replace"))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        text = "".join(seen)
        if should_kill(text):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    if not killed and proc.poll() is None:  # never reached the kill point: don't leave it
        proc.kill()
    proc.wait(20)
    t.join(5)
    assert killed and proc.returncode == -signal.SIGKILL, (
        "not killed at the kill point",
        proc.returncode,
        "".join(seen)[-500:],
    )
    return "".join(seen)


def run_to_end(cache: Path, srv, user: str, env_extra: dict[str, str]) -> str:
    proc = _cli(cache, srv, user, env_extra)
    proc.stdin = None  # already written and closed
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


def last_pct(text: str) -> float:
    found = re.findall(r"(\d+\.\d)% ", text)
    return float(found[-1]) if found else 0.0


def page_rows(body: bytes) -> int:
    """Rows in one snapshot page (the SQLite page format the CLI asks for)."""
    return decode_page(body)[0].count


def pull_rows(body: bytes) -> int:
    return len(json.loads(body)["changes"])


def snapshot_total(srv) -> int:
    """Rows in admin's snapshot: every row of every synced table."""
    with srv.session() as s:
        return sum(
            s.scalar(select(func.count()).select_from(Shift.metadata.tables[name])) or 0
            for name in SYNCED_TABLE_NAMES
        )


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("kill"), extra_shifts=1500)
    yield srv
    srv.stop()


def check_snapshot_position_consistent(cache_path: Path, srv) -> tuple[int, int]:
    cache = open_cache(cache_path)
    try:
        st = local.read_state(cache)
        assert st.snapshot_token is not None and st.cursor is None
        names = [n for n, _c in st.snapshot_tables]
        loaded = 0
        with cache.session() as s, srv.session() as ss:
            for i, name in enumerate(names):
                n_local = s.execute(
                    select(func.count()).select_from(Shift.metadata.tables[name])
                ).scalar()
                loaded += n_local
                if name != "shifts":
                    continue
                if i < st.snapshot_table_index:  # finished table: complete
                    assert n_local == ss.scalar(select(func.count()).select_from(Shift))
                elif i == st.snapshot_table_index and st.snapshot_after is not None:
                    after = st.snapshot_after[0]
                    assert s.scalar(select(func.max(Shift.id))) == after
                    assert n_local == ss.scalar(
                        select(func.count()).select_from(Shift).where(Shift.id <= after)
                    )
                else:
                    assert n_local == 0
        return loaded, st.snapshot_table_index
    finally:
        cache.close()


def test_initial_sync_killed_at_30_and_95_percent_resumes_and_checksums_match(big_server, tmp_path):
    srv = big_server
    env = {"STOREDESK_SYNC_PAGE_ROWS": "150"}
    cache = tmp_path / "desk.db"
    total = snapshot_total(srv)
    loaded_before = 0
    for kill_at in (30.0, 95.0):
        # This run gets the pages up to kill_at % of the snapshot, then waits for the next
        # one for ever: it is killed at kill_at %, not somewhere after it.
        budget = math.ceil(total * kill_at / 100) - loaded_before
        with srv.faults.holding("/v1/sync/snapshot", budget, page_rows) as hold:
            text = run_and_kill(
                cache, srv, "admin", lambda t, k=kill_at, h=hold: last_pct(t) >= k and h.parked, env
            )
        assert hold.served < total - loaded_before  # pages were left to download
        assert kill_at <= last_pct(text) < 100.0
        loaded, _index = check_snapshot_position_consistent(cache, srv)
        c = open_cache(cache)
        assert local.read_state(c).snapshot_total == total  # the budget's arithmetic holds
        c.close()
        assert loaded > loaded_before  # the second run continued from the first one's rows
        assert loaded >= total * kill_at / 100
        loaded_before = loaded
    out = run_to_end(cache, srv, "admin", env)
    assert "checksums match" in out, out
    rows_last_run = int(re.search(r"([\d,]+) rows downloaded", out).group(1).replace(",", ""))
    c = open_cache(cache)
    with c.session() as s:
        total = s.scalar(select(func.count()).select_from(Shift))
    c.close()
    assert total == 3 * 1502
    assert rows_last_run <= total * 0.1  # resumed near the end, did not start over


def test_client_killed_mid_pull_keeps_rows_and_cursor_consistent(big_server, tmp_path):
    srv = big_server
    cache = tmp_path / "desk.db"
    run_to_end(cache, srv, "sup1", {})
    # 1,200 new notes on the server, by another client
    tok = httpx.post(
        srv.url + "/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    ).json()["token"]
    h = {"Authorization": f"Bearer {tok}", PROTOCOL_HEADER: "1"}
    for b in range(3):
        muts = [{"id": b * 400 + i + 1, "name": "visit_note.add/1",
                 "args": {"id": f"k{b}-{i}", "visit_id": "visitS1", "text": f"n{i}"}} for i in range(400)]  # fmt: skip
        r = httpx.post(
            srv.url + "/v1/sync/push",
            json={"client_id": "admin-kill", "mutations": muts},
            headers=h,
            timeout=60,
        )
        assert r.status_code == 200

    def received(t: str) -> int:
        counts = re.findall(r"Receiving changes… ([\d,]+)", t)
        return int(counts[-1].replace(",", "")) if counts else 0

    # 500 changes are served, then the next pull page is parked: killed mid-pull for sure.
    with srv.faults.holding("/v1/sync/pull", 500, pull_rows) as hold:
        run_and_kill(
            cache,
            srv,
            "sup1",
            lambda t: received(t) >= 500 and hold.parked,
            {"STOREDESK_SYNC_PULL_ROWS": "50"},
        )
    c = open_cache(cache)
    try:
        st = local.read_state(c)
        with c.session() as s:
            have = set(s.scalars(select(VisitNote.id)))
        with srv.session() as s:
            expected = {
                json.loads(pk)[0]
                for pk in s.scalars(
                    select(ChangeLog.pk).where(
                        ChangeLog.table_name == "visit_notes", ChangeLog.seq <= st.cursor
                    )
                )
            }
        assert have == expected and 500 <= len(have) < 1200
    finally:
        c.close()
    run_to_end(cache, srv, "sup1", {})
    c = open_cache(cache)
    with c.session() as s:
        assert s.scalar(select(func.count()).select_from(VisitNote)) == 1200
    c.close()
