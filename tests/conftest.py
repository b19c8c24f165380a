"""Shared test configuration: headless Qt, one demo dataset per run, isolated user dirs."""

from __future__ import annotations

import datetime as dt
import faulthandler
import os
import shutil
import sys
import tempfile
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

#: Free space a run needs where its temporary folders go: the session's demo caches and
#: central databases plus the running test's files (under 2 GB at the peak, measured).
NEEDED_FREE_GIB = 3.0

#: Seconds a test may outlive its pytest-timeout before the watchdog ends the run.
WATCHDOG_GRACE = float(os.environ.get("STOREDESK_TEST_WATCHDOG_GRACE", "60"))
_WATCHDOG_FD = pytest.StashKey[int]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to start on a nearly full disk, saying so, instead of failing at random.

    A full disk does not fail one test: SQLite syncs fail, exports fail, and a failed
    export's error box then waits for a click (CI once sat 77 minutes on that).
    """
    folder = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir())
    free = shutil.disk_usage(folder).free / 2**30
    if free < NEEDED_FREE_GIB:
        pytest.exit(
            f"only {free:.1f} GiB free in {folder}; the tests need about {NEEDED_FREE_GIB:.0f} "
            "GiB there. Free some space (old pytest-of-* folders are safe to delete) or point "
            "TMPDIR at a disk with room.",
            returncode=3,
        )


def pytest_configure(config: pytest.Config) -> None:
    # The real stderr, taken before pytest captures it for the tests, for the watchdog.
    config.stash[_WATCHDOG_FD] = os.dup(sys.stderr.fileno())


def pytest_unconfigure(config: pytest.Config) -> None:
    fd = config.stash.get(_WATCHDOG_FD, None)
    if fd is not None:
        os.close(fd)


def _test_timeout(item: pytest.Item) -> float:
    """The pytest-timeout limit of this test (its marker, else --timeout, else the ini)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout", 0)
    else:
        value = item.config.getoption("timeout", None) or item.config.getini("timeout") or 0
    return float(value) or 1800.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """End the run, with every thread's stack, when a test outlives its timeout.

    pytest-timeout's signal cannot interrupt a test blocked inside Qt (a modal dialog's
    event loop) or the kernel; the run then hangs until CI's own limit and says nothing.
    faulthandler's watchdog is a C thread: it prints the stacks and exits regardless.
    """
    faulthandler.dump_traceback_later(
        _test_timeout(item) + WATCHDOG_GRACE, exit=True, file=item.config.stash[_WATCHDOG_FD]
    )
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


#: Qt's blocking dialogs, by class: each runs a nested event loop until a person clicks.
_MODAL_CALLS = {
    "QMessageBox": ("about", "critical", "information", "question", "warning"),
    "QFileDialog": (
        "getExistingDirectory",
        "getOpenFileName",
        "getOpenFileNames",
        "getSaveFileName",
    ),
    "QInputDialog": ("getDouble", "getInt", "getItem", "getText"),
}


class UnexpectedModalDialog(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_blocking_dialogs(monkeypatch: pytest.MonkeyPatch):
    """A modal dialog in a headless test waits forever for a click: fail the test instead.

    Tests that expect a dialog replace the call themselves (their ``monkeypatch`` wins).
    """
    from PySide6 import QtWidgets  # loaded by pytest-qt at start anyway

    def blocked(cls: str, name: str):
        def call(*args, **kwargs):
            texts = [a for a in args if isinstance(a, str)]
            raise UnexpectedModalDialog(
                f"{cls}.{name} would wait for a click that never comes in a headless test: {texts}"
            )

        return call

    for cls, names in _MODAL_CALLS.items():
        for name in names:
            monkeypatch.setattr(getattr(QtWidgets, cls), name, blocked(cls, name))


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
