"""Desktop test fixtures: a qasync loop on the test's QApplication, and a shell factory.

``make_shell`` builds the real :class:`desktop.app.Shell` (settings in a temp folder, the
demo cache copied from the session's generated demo region, English unless asked), and
cleans up after the test: windows closed, workers shut down, and the test FAILS if any
thread it started is still running afterwards (napari's leftover-QThread check).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import DEMO_TODAY


@pytest.fixture(scope="session")
def _qasync_loop(qapp):
    """One qasync event loop for the session, driven by the Qt loop that qtbot spins.

    Session-scoped on purpose: closing and recreating qasync loops on one QApplication
    leaves Qt timers of the dead loop behind.
    """
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)  # marked running only inside tests that use it
    yield loop
    for t in [t for t in asyncio.all_tasks(loop) if not t.done()]:
        t.cancel()
    # The loop's default executor runs QThreads (asyncio.to_thread); Qt aborts the process
    # ("QThread: Destroyed while thread is still running", exit 134) if they outlive it.
    executor = loop._QEventLoop__default_executor
    if executor is not None:
        executor.shutdown(wait=True)


@pytest.fixture
def qloop(_qasync_loop):
    """The session's qasync loop, marked as the running loop for this test only (the root
    conftest clears the mark after every test so that later ``asyncio.run()`` works)."""
    asyncio.set_event_loop(_qasync_loop)
    asyncio.events._set_running_loop(_qasync_loop)
    yield _qasync_loop
    asyncio.events._set_running_loop(None)


def _our_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()}


@pytest.fixture
def make_shell(qapp, qtbot, qloop, tmp_path: Path, request):
    """Factory: ``make_shell(role=..., code=..., language=..., demo=True)`` -> signed-in Shell.

    The shell owns its windows and dialogs (it replaces them on sign-out and language
    switch); this fixture's teardown closes them through ``Shell.shutdown``.
    """
    from core import i18n
    from desktop.app import Shell, create_application
    from desktop.settings import SettingsStore

    before = _our_threads()
    shells: list[Shell] = []
    create_application()

    def factory(
        *,
        sign_in: str | None = "demo",
        role: str = "store_manager",
        code: str = "",
        language: str = "en",
        demo_db: Path | None = None,
        settings=None,
    ) -> Shell:
        demo_path = tmp_path / f"demo-{len(shells)}.db"
        if demo_db is None:
            demo_db = request.getfixturevalue("demo_db_template")
        shutil.copyfile(demo_db, demo_path)
        store = SettingsStore(tmp_path / f"settings-{len(shells)}.json")
        if settings is not None:
            store.save(settings)
        shell = Shell(
            qapp,
            settings_store=store,
            cache_path=tmp_path / f"server-{len(shells)}.db",
            demo_path=demo_path,
            demo_today=DEMO_TODAY,
            language=language,
        )
        shells.append(shell)
        if sign_in == "demo":
            with qtbot.waitSignal(shell.sig_signed_in, timeout=60_000):
                shell.sign_in_demo(role, code)
        return shell

    yield factory

    for shell in shells:
        shell.shutdown()
    from PySide6.QtWidgets import QApplication, QMessageBox

    # A box left open after the shell is gone covers later tests' windows and eats their
    # mouse events (a hover test failed that way); the shell must close what it showed.
    boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)]
    assert not [b.text()[:80] for b in boxes if b.isVisible()], "message boxes left open"
    # let the shells' last coroutines (closing HTTP clients) finish, cancel what remains
    qtbot.wait(50)
    for t in [t for t in asyncio.all_tasks(qloop) if not t.done()]:
        t.cancel()
    qtbot.wait(10)
    i18n.set_language("en")
    qtbot.wait(10)
    leftover = {t for t in _our_threads() - before if t.is_alive()}
    # give finishing threads a moment to end before declaring them leaked
    for t in leftover:
        t.join(timeout=5)
    leftover = {t.name for t in leftover if t.is_alive()}
    assert not leftover, f"threads left running after the test: {sorted(leftover)}"
