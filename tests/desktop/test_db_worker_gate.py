"""The DB worker runs nothing on a cache whose deferred integrity check failed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.cache import CacheDamaged, open_cache
from desktop.context import DbWorker


def test_jobs_behind_a_failed_check_do_not_run(tmp_path: Path, monkeypatch) -> None:
    cache = open_cache(tmp_path / "c.db", defer_integrity_check=True)
    worker = DbWorker(cache)
    ran: list[str] = []
    try:
        monkeypatch.setattr("core.cache._quick_check", lambda _conn: "damaged database (x)")
        check = worker.submit(lambda _s: cache.check_integrity())
        queued = worker.submit(lambda _s: ran.append("session job"))
        assert check.result(10) == "damaged database (x)"
        with pytest.raises(CacheDamaged):
            queued.result(10)
        with pytest.raises(CacheDamaged):
            asyncio.run(worker.run_plain(lambda: ran.append("sync write")))
        assert ran == []
    finally:
        worker.shutdown()
        cache.close()


def test_the_check_itself_can_run_again_behind_the_gate(tmp_path: Path, monkeypatch) -> None:
    """A check asked again (its first verdict was lost with a closed session) still runs and
    reports, so the shell can move the file aside (Shell._verify_cache submits it so)."""
    from desktop.context import Worker

    cache = open_cache(tmp_path / "c.db", defer_integrity_check=True)
    monkeypatch.setattr("core.cache._quick_check", lambda _conn: "damaged database (x)")
    cache.check_integrity()
    worker = DbWorker(cache)
    try:
        again = Worker.submit(worker, cache.check_integrity)
        assert again.result(10) == "damaged database (x)"
    finally:
        worker.shutdown()
        cache.close()
