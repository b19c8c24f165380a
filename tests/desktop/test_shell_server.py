"""The shell against a real ``storedesk-central --demo`` on loopback: sign in, sync, offline
edits draining, a real conflict resolved by the user, and the UI heartbeat during a sync."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from central.process import central_process, free_port
from core.models import Shift, Store

pytestmark = [pytest.mark.gui, pytest.mark.slow]

PASSWORD = "demo"


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """``storedesk-central --demo`` as a real process on 127.0.0.1 (stopped after the module)."""
    folder = tmp_path_factory.mktemp("central")
    env = {**os.environ, "XDG_DATA_HOME": str(folder / "data")}
    with central_process(
        folder / "central.db",
        folder / "central.log",
        demo=True,
        env=env,
        extra_args=("--generate-every", "0"),
    ) as url:
        yield url


def _sign_in(qtbot, shell, url: str, user: str, password: str = PASSWORD):
    dlg = shell.show_sign_in()
    dlg.server_radio.setChecked(True)
    dlg.url_edit.setText("")
    qtbot.keyClicks(dlg.url_edit, url)
    dlg.user_edit.setText("")
    qtbot.keyClicks(dlg.user_edit, user)
    qtbot.keyClicks(dlg.password_edit, password)
    qtbot.mouseClick(dlg.sign_in_button, Qt.MouseButton.LeftButton)
    return dlg


def _signed_in(qtbot, shell, url: str, user: str):
    with qtbot.waitSignal(shell.sig_signed_in, timeout=30_000):
        _sign_in(qtbot, shell, url, user)
    # the first sync (snapshot of the user's scope) runs in the background
    qtbot.waitUntil(
        lambda: shell.sync.status.last_sync_at is not None and not shell.sync.running,
        timeout=180_000,
    )
    return shell.window


def _status(shell) -> str:
    w = shell.window
    return " | ".join(
        x.text() for x in (w.online_label, w.pending_label, w.last_sync_label, w.conflicts_button)
    )


def test_wrong_password_is_explained(make_shell, qtbot, central) -> None:
    shell = make_shell(sign_in=None)
    dlg = _sign_in(qtbot, shell, central, "mgr_sh001", "not-the-password")
    qtbot.waitUntil(lambda: dlg.error_label.isVisible(), timeout=20_000)
    assert "Wrong user name or password" in dlg.error_label.text()
    assert "case-sensitive" in dlg.error_label.text()
    assert shell.window is None


def test_unreachable_server_is_explained(make_shell, qtbot) -> None:
    shell = make_shell(sign_in=None)
    dlg = _sign_in(qtbot, shell, f"http://127.0.0.1:{free_port()}", "mgr_sh001")
    qtbot.waitUntil(lambda: dlg.error_label.isVisible(), timeout=30_000)
    assert "Cannot reach the server" in dlg.error_label.text()
    assert "keep working offline" in dlg.error_label.text()


def test_sign_in_sync_offline_edit_drains(make_shell, qtbot, central) -> None:
    shell = make_shell(sign_in=None)
    win = _signed_in(qtbot, shell, central, "mgr_sh001")
    assert "● Online" in _status(shell)
    assert "Last sync: never" not in _status(shell)
    assert shell.settings_store.load().server_url == central
    assert "token" not in shell.settings_store.path.read_text().lower()
    home = win.widgets["home"]
    qtbot.waitUntil(lambda: home.headline.text().startswith("SH001"), timeout=20_000)
    qtbot.waitUntil(
        lambda: (
            bool(win.pickers.store_names()[:1]) and win.pickers.store_names()[0].startswith("SH001")
        ),
        timeout=20_000,
    )
    # go offline (the user's switch), edit a shift, see it counted
    win.show_screen("sync_settings")
    view = win.widgets["sync_settings"]
    view.offline_check.setChecked(True)
    assert "Working offline" in _status(shell)
    ctx = shell.ctx

    def a_shift(session):
        sid = session.scalar(select(Store.id).where(Store.code == "SH001"))
        sh = session.scalars(
            select(Shift).where(Shift.store_id == sid).order_by(Shift.start_at.desc())
        ).first()
        return sh.id, sh.version

    shift_id, version = ctx.db.submit(a_shift).result(timeout=20)
    ctx.edit("shift.update/1", {"id": shift_id, "note": "离线时改的"}, base_version=version)
    qtbot.waitUntil(lambda: "Unsynced edits: 1" in _status(shell), timeout=10_000)
    qtbot.wait(2000)  # the poke must not sync while offline
    assert "Unsynced edits: 1" in _status(shell)
    # back online: it drains
    view.offline_check.setChecked(False)
    qtbot.waitUntil(
        lambda: "Unsynced edits: 0" in _status(shell) and not shell.sync.running, timeout=60_000
    )
    assert "● Online" in _status(shell)
    # the server has it: a fresh login sees the new version
    r = httpx.post(
        central + "/v1/auth/login",
        json={"username": "mgr_sh001", "password": PASSWORD},
        headers={"X-StoreDesk-Protocol": "1"},
    )
    assert r.status_code == 200
    local_version = ctx.db.submit(lambda s: s.get(Shift, shift_id).version).result(timeout=10)
    assert local_version == version + 1
    # sign-out forgets the token
    shell.sign_out()
    assert shell.tokens.load(central, "mgr_sh001") is None


def test_real_conflict_is_resolved_by_the_user(make_shell, qtbot, central, tmp_path) -> None:
    from core.cache import open_cache
    from core.mutations import apply_local
    from sync.engine import PasswordAuth, SyncEngine

    shell = make_shell(sign_in=None)
    win = _signed_in(qtbot, shell, central, "mgr_sh001")
    ctx = shell.ctx

    def a_shift(session):
        sid = session.scalar(select(Store.id).where(Store.code == "SH001"))
        sh = session.scalars(
            select(Shift).where(Shift.store_id == sid).order_by(Shift.start_at)
        ).first()
        return sh.id, sh.version

    shift_id, version = ctx.db.submit(a_shift).result(timeout=20)
    win.show_screen("sync_settings")
    win.widgets["sync_settings"].offline_check.setChecked(True)
    ctx.edit("shift.update/1", {"id": shift_id, "note": "我这边的备注"}, base_version=version)
    qtbot.waitUntil(lambda: "Unsynced edits: 1" in _status(shell), timeout=10_000)

    # meanwhile the same manager edits the same shift on another computer, and syncs first
    other = open_cache(tmp_path / "other-pc.db")
    eng = SyncEngine(other, central, token_provider=PasswordAuth("mgr_sh001", PASSWORD))
    done: list = []

    async def other_pc():
        await eng.sync_once()
        with other.session() as s:
            apply_local(
                s,
                ctx.actor,
                "shift.update/1",
                {"id": shift_id, "note": "另一台电脑的备注"},
                base_version=version,
                now=ctx.now(),
            )
        await eng.sync_once()
        await eng.aclose()
        done.append(True)

    task = asyncio.ensure_future(other_pc())
    qtbot.waitUntil(lambda: task.done(), timeout=120_000)
    task.result()
    other.close()

    win.widgets["sync_settings"].offline_check.setChecked(False)
    qtbot.waitUntil(
        lambda: "Conflicts: 1" in _status(shell) and not shell.sync.running, timeout=60_000
    )
    qtbot.mouseClick(win.conflicts_button, Qt.MouseButton.LeftButton)
    dlg = shell.conflicts_dialog
    qtbot.waitUntil(lambda: dlg.list.count() == 1, timeout=10_000)
    cells = {
        dlg.table.item(r, 0).text(): (dlg.table.item(r, 1).text(), dlg.table.item(r, 2).text())
        for r in range(dlg.table.rowCount())
    }
    assert cells["note"] == ("我这边的备注", "另一台电脑的备注")
    with qtbot.waitSignal(dlg.sig_resolved, timeout=10_000):
        qtbot.mouseClick(dlg.theirs_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Conflicts: 0" in _status(shell), timeout=10_000)
    note = ctx.db.submit(lambda s: s.get(Shift, shift_id).note).result(timeout=10)
    assert note == "另一台电脑的备注"
    assert "Unsynced edits: 0" in _status(shell)


def test_ui_never_stalls_during_a_sync(make_shell, qtbot, central) -> None:
    """10 ms heartbeat while a supervisor's first sync (snapshot of a region) runs."""
    from tests.desktop.heartbeat import Heartbeat, assert_no_stall, baseline

    shell = make_shell(sign_in=None)
    with qtbot.waitSignal(shell.sig_signed_in, timeout=30_000):
        _sign_in(qtbot, shell, central, "sup_sh")
    qtbot.wait(500)  # first paint of the window is not the sync
    noise = baseline(qtbot)
    hb = Heartbeat()
    panel = shell.sync.progress_panel
    hb.start()
    t0 = time.perf_counter()

    def done() -> bool:
        hb.phase = panel.label.text()
        return shell.sync.status.last_sync_at is not None and not shell.sync.running

    qtbot.waitUntil(done, timeout=300_000)
    took = time.perf_counter() - t0
    hb.stop()
    print(
        f"sync of a region: {took:.1f}s, {len(hb.gaps)} beats, longest UI gap {hb.worst} ms "
        f"(idle machine noise {noise} ms); worst at {hb.worst_where()}"
    )
    assert shell.sync.status.last_error == ""
    assert_no_stall(hb, noise, "the sync")


def test_background_sync_can_be_cancelled_and_resumed(make_shell, qtbot, central) -> None:
    shell = make_shell(sign_in=None)
    with qtbot.waitSignal(shell.sig_signed_in, timeout=30_000):
        _sign_in(qtbot, shell, central, "sup_js")
    win = shell.window
    panel = win.sync_progress
    qtbot.waitUntil(lambda: panel.isVisible() and panel.bar.value() > 0, timeout=60_000)
    assert not win.sync_button.isEnabled()  # one sync at a time
    with qtbot.waitSignal(shell.sync.sig_finished, timeout=60_000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.isVisible()
    assert shell.sync.status.last_sync_at is None  # it did not finish
    assert shell.errors_shown == []  # cancelling is not an error
    # the next sync resumes and completes
    qtbot.mouseClick(win.sync_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: shell.sync.status.last_sync_at is not None and not shell.sync.running,
        timeout=180_000,
    )
    assert "● Online" in _status(shell)
    home = win.widgets["home"]
    qtbot.waitUntil(lambda: home.headline.text() == "江苏区", timeout=30_000)
