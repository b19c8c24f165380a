"""The engine's loop and status, the injectable run_db, cancellation, and the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.models import VisitNote
from core.mutations import apply_local
from core.tasks import Cancelled, TaskState
from sync.engine import AuthError, OfflineError, PasswordAuth, SyncEngine
from tests.sync.harness import PASSWORD, engine_for, new_client

ROOT = Path(__file__).resolve().parents[2]


def test_db_steps_run_on_the_injected_worker_and_status_is_reported(server, tmp_path):
    cache = new_client(tmp_path, "a")
    threads: set[str] = set()

    async def go():
        loop_thread = threading.current_thread().name

        async def run_db(fn, *args):  # what the desktop's single DB thread does
            def wrapped():
                threads.add(threading.current_thread().name)
                return fn(*args)

            return await asyncio.to_thread(wrapped)

        eng = engine_for(cache, server, "sup1", run_db=run_db)
        assert eng.status.online is None and eng.status.last_success is None
        events = []
        eng.listeners.append(events.append)
        await eng.sync_once()
        with cache.session() as s:
            apply_local(
                s,
                eng._actor(),
                "visit_note.add/1",
                {"id": "n1", "visit_id": "visitS1", "text": "x"},
            )
        st = await eng.refresh_status()
        assert st.pending == 1 and st.online is True and st.last_success is not None
        await eng.sync_once()
        assert eng.status.pending == 0 and eng.status.conflicts == 0
        await eng.aclose()
        return loop_thread, events

    loop_thread, events = asyncio.run(go())
    assert loop_thread not in threads  # no SQLAlchemy on the event loop's thread
    phases = [e.phase for e in events]
    assert "snapshot" in phases and "verify" in phases and phases[-1] == "done"
    cache.close()


def test_cancel_stops_at_a_page_boundary_and_resumes(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        eng = engine_for(cache, server, "admin", snapshot_limit=2)
        state = TaskState()
        eng.listeners.append(
            lambda ev: state.cancel() if ev.phase == "snapshot" and ev.fraction > 0.2 else None
        )
        with pytest.raises(Cancelled):
            await eng.sync_once(state)
        eng.listeners.clear()
        r = await eng.sync_once()
        await eng.aclose()
        return r

    r = asyncio.run(go())
    assert r.verified is True and r.snapshot_rows > 0
    cache.close()


def test_run_forever_syncs_on_poke_backs_off_offline_and_reconnects(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        eng = engine_for(cache, server, "sup1")
        task = asyncio.create_task(eng.run_forever(interval=60, backoff_base=0.05, backoff_cap=0.2))
        for _ in range(200):
            if eng.status.last_success is not None:
                break
            await asyncio.sleep(0.05)
        assert eng.status.online is True
        with cache.session() as s:
            apply_local(
                s,
                eng._actor(),
                "visit_note.add/1",
                {"id": "p1", "visit_id": "visitS1", "text": "poke"},
            )
        server.stop()  # the network goes away
        eng.poke()
        for _ in range(200):
            if eng.status.online is False:
                break
            await asyncio.sleep(0.05)
        assert eng.status.online is False and eng.status.pending == 1
        server.start()  # back: the health probe notices, the loop syncs by itself
        for _ in range(300):
            if eng.status.pending == 0 and eng.status.online:
                break
            await asyncio.sleep(0.05)
        eng.cancel()
        await asyncio.wait_for(task, 10)
        await eng.aclose()
        return eng.status

    st = asyncio.run(go())
    assert st.pending == 0 and st.online is True
    with server.session() as s:
        assert s.scalar(select(func.count()).select_from(VisitNote)) == 1
    cache.close()


def test_wrong_password_and_unreachable_server_are_clear_errors(server, tmp_path):
    cache = new_client(tmp_path, "a")

    async def go():
        bad = SyncEngine(cache, server.url, token_provider=PasswordAuth("sup1", "nope"))
        with pytest.raises(AuthError, match="Wrong user name or password"):
            await bad.sync_once()
        await bad.aclose()
        gone = SyncEngine(
            cache, "http://127.0.0.1:9", token_provider=PasswordAuth("sup1", PASSWORD)
        )
        with pytest.raises(OfflineError, match="Cannot reach the server"):
            await gone.sync_once()
        assert gone.status.online is False
        await gone.aclose()

    asyncio.run(go())
    cache.close()


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "desktop", *args], input=stdin, capture_output=True, text=True,
        cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_headless_sync_command(server, tmp_path):
    cache = str(tmp_path / "cli.db")
    ok = _cli(
        "--cache",
        cache,
        "sync",
        "--server",
        server.url,
        "--user",
        "sup1",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert ok.returncode == 0, ok.stderr
    assert "Synchronised:" in ok.stdout and "checksums match" in ok.stdout
    assert "100.0%" in ok.stderr  # the progress bar
    bad_pw = _cli(
        "--cache",
        cache,
        "sync",
        "--server",
        server.url,
        "--user",
        "sup1",
        "--password-stdin",
        stdin="x\n",
    )
    assert bad_pw.returncode == 1 and bad_pw.stderr.strip().splitlines()[-1].startswith(
        "Sync failed:"
    )
    bad_url = _cli(
        "--cache",
        cache,
        "sync",
        "--server",
        "ftp://x",
        "--user",
        "sup1",
        "--password-stdin",
        stdin="x\n",
    )
    assert bad_url.returncode == 2 and len(bad_url.stderr.strip().splitlines()) == 1
    missing = _cli("sync", "--user", "u")
    assert missing.returncode == 2


def test_central_command_line():
    r = subprocess.run(
        [sys.executable, "-m", "central.cli", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0 and "--demo" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "central.cli", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
