"""Shared test configuration: headless Qt, one demo dataset per run, isolated user dirs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge results, not speed: a GC pause or a busy CI core must not fail one
# (Hypothesis' default 200 ms deadline per example would).
settings.register_profile("storedesk", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("storedesk")

# Headless Qt and QtWebEngine, set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu --no-sandbox")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

#: Last day of history in the demo dataset used by tests (a Friday), fixed for determinism.
DEMO_TODAY = dt.date(2026, 11, 27)
DEMO_SEED = 20261127

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never touch the developer's real data, config or log folders."""
    home = tmp_path_factory.getbasetemp() / "userhome"
    for var, sub in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        monkeypatch.setenv(var, str(home / sub))


@pytest.fixture(autouse=True)
def _no_leaked_running_loop():
    """A qasync loop (desktop tests) must not stay marked as running for the next test.

    Qt may still deliver a queued qasync callback after a GUI test's loop was closed,
    which marks that loop as the running one again; a later ``asyncio.run()`` (sync and
    e2e tests) would then refuse to start.
    """
    yield
    import asyncio

    if asyncio._get_running_loop() is not None:
        asyncio.events._set_running_loop(None)


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo region ×1 generated once per test run (read it only; copy to write)."""
    from core.cache import open_cache
    from core.demo import generate

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    cache = open_cache(path)
    generate(cache.engine, scale=1, seed=DEMO_SEED, today=DEMO_TODAY)
    cache.close()
    return path


@pytest.fixture
def demo_db(demo_db_template: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the demo cache for one test."""
    target = tmp_path / "demo.db"
    shutil.copyfile(demo_db_template, target)
    return target


@pytest.fixture
def demo_cache(demo_db: Path):
    from core.cache import open_cache

    cache = open_cache(demo_db)
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and PDFs a person should look at (test-artifacts/, git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
