"""The start path reads without SQLAlchemy, and the ORM is loaded behind the first screen."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from core.cache import open_cache
from desktop import context
from desktop.context import DbWorker

ROOT = Path(__file__).resolve().parents[2]


def _sqlalchemy_loaded_by(code: str) -> str:
    """Run *code* in a fresh interpreter; the SQLAlchemy modules (and core.models) it loaded."""
    code += (
        "import sys\n"
        "print(','.join(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] == 'sqlalchemy' or m == 'core.models')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_start_path_imports_no_sqlalchemy() -> None:
    """What a remembered sign-in imports before its first paint loads no SQLAlchemy."""
    loaded = _sqlalchemy_loaded_by(
        "import desktop.app, desktop.cli, desktop.main_window, desktop.views.home\n"
        "import desktop.widgets.pickers, desktop.demo_data, desktop.sync_controller\n"
        "import core.quickread, core.home, core.directory\n"
    )
    assert loaded == "", f"imported at start: {loaded}"


def test_both_homes_are_read_without_sqlalchemy(demo_db) -> None:
    """A store manager's and a supervisor's first screen, read as the app reads them,
    load no SQLAlchemy (the scheduling, forecast and outage code they run included)."""
    loaded = _sqlalchemy_loaded_by(
        "import datetime as dt\n"
        "from core.cache import open_cache\n"
        "from core import quickread\n"
        f"cache = open_cache({str(demo_db)!r}, defer_integrity_check=True)\n"
        "with cache.reader() as conn:\n"
        "    store = quickread.manager_home(conn, 1, dt.date(2026, 11, 27))\n"
        "    region = quickread.supervisor_home(conn, 1, dt.date(2026, 11, 27))\n"
        "assert store.hourly and store.rota_gaps and region.ranking\n"
    )
    assert loaded == "", f"imported by the homes: {loaded}"


def test_opening_an_up_to_date_cache_makes_no_engine_until_used(demo_db) -> None:
    cache = open_cache(demo_db, defer_integrity_check=True)
    try:
        assert cache._engine is None
        with cache.reader() as conn:
            assert conn.execute("SELECT count(*) FROM stores").fetchone()[0] > 0
        assert cache._engine is None
        with cache.session() as s:  # made on first use
            assert s.connection() is not None
        assert cache._engine is not None
    finally:
        cache.close()


@pytest.mark.gui
def test_warm_up_makes_the_engine_on_the_db_worker(demo_db, qtbot, monkeypatch) -> None:
    monkeypatch.setattr(context, "_orm_frozen", False)  # as in a fresh process
    cache = open_cache(demo_db, defer_integrity_check=True)
    worker = DbWorker(cache)
    try:
        gc.unfreeze()
        worker.warm_up().result(timeout=60)
        assert cache._engine is not None
        assert worker.errors == []
        assert gc.get_freeze_count() > 0  # the ORM's objects are left out of GC scans
    finally:
        worker.shutdown()
        cache.close()


class _Window:
    """Stands for a closed session's window: a reference cycle only the cyclic GC frees."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.gui
def test_a_second_sign_in_does_not_freeze_the_last_sessions_garbage(
    demo_db, qtbot, monkeypatch
) -> None:
    """Sign in, sign out, sign in again: the first session's leftovers are still collected."""
    monkeypatch.setattr(context, "_orm_frozen", False)  # as in a fresh process
    cache = open_cache(demo_db, defer_integrity_check=True)
    was_enabled = gc.isenabled()
    gc.disable()  # (no automatic collection between the steps)
    try:
        gc.unfreeze()
        first = DbWorker(cache)
        first.warm_up().result(timeout=60)
        first.shutdown()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        window = _Window()  # signed out: the window is garbage, not yet collected
        gone = weakref.ref(window)
        del window
        second = DbWorker(cache)
        second.warm_up().result(timeout=60)
        second.shutdown()
        gc.collect()
        assert gone() is None  # a second freeze would have kept the window
        # Nothing was added to the frozen set. It may shrink: a frozen object whose
        # last reference goes (another thread's, say) is freed and leaves the set.
        assert gc.get_freeze_count() <= frozen
    finally:
        if was_enabled:
            gc.enable()
        cache.close()


@pytest.mark.gui
def test_warm_up_leaves_a_damaged_cache_alone(demo_db, qtbot) -> None:
    cache = open_cache(demo_db, defer_integrity_check=True)
    cache.integrity_problem = "damaged database (test)"
    worker = DbWorker(cache)
    try:
        worker.warm_up().result(timeout=60)
        assert cache._engine is None
        with pytest.raises(Exception, match="damaged"):
            worker.submit_read(lambda conn: 1).result(timeout=60)
    finally:
        worker.shutdown()
        cache.close()


def test_the_reader_never_creates_a_missing_file(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "a name with spaces.db"
    cache = open_cache(path)
    try:
        with cache.reader() as conn:
            assert conn.execute("SELECT value FROM meta WHERE key = 'app_id'").fetchone()
        cache.move_aside("test")
        with pytest.raises(sqlite3.OperationalError), cache.reader():
            pass
        assert not path.exists()
    finally:
        cache.close()
