"""Background sync in the UI: status for the status bar, progress, cancel, timer, poke.

The sync engine (``sync.engine``, plain asyncio + httpx) runs as a qasync task on the UI
thread's event loop — it only awaits network I/O and hands its SQLite work to the single
DB worker, so the window never stalls. This controller starts it (button, timer, after
an edit, on reconnect), shows its progress, cancels it, and keeps the counters (unsynced
edits, conflicts, last sync) that the status bar shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from core.i18n import _
from core.quickread import LocalSyncStatus, local_sync_status
from core.tasks import Cancelled, TaskState
from core.timeutil import to_local

log = logging.getLogger(__name__)


#: While the server is unreachable, ask /v1/health this often and sync as soon as it answers.
RECONNECT_PROBE_MS = 15_000


@dataclass(frozen=True)
class SyncStatus:
    online: bool = False
    working_offline: bool = False
    running: bool = False
    pending: int = 0
    conflicts: int = 0
    last_sync_at: dt.datetime | None = None
    last_error: str = ""

    def last_sync_text(self) -> str:
        if self.last_sync_at is None:
            return _("never")
        return to_local(self.last_sync_at).strftime("%Y-%m-%d %H:%M")


class SyncController(QObject):
    sig_status = Signal(object)
    """A new :class:`SyncStatus` (counters, online state, running)."""

    sig_finished = Signal(object)
    """A sync ended: None on success, else the exception (already shown/logged)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status = SyncStatus()
        self.ctx: Any = None
        self.engine: Any = None
        self.progress_panel: Any = None
        self._task: asyncio.Task | None = None
        self._state: TaskState | None = None
        self._again = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sync_now)
        self._poke_timer = QTimer(self)
        self._poke_timer.setSingleShot(True)
        self._poke_timer.setInterval(1500)
        self._poke_timer.timeout.connect(self.sync_now)
        self._reconnect_timer = QTimer(self)
        self._reconnect_timer.setInterval(RECONNECT_PROBE_MS)
        self._reconnect_timer.timeout.connect(self._probe)
        self._probing: asyncio.Task | None = None
        self.on_error = None  # callable(exc) set by the shell

    # ------------------------------------------------------------------ wiring

    def attach(self, ctx: Any, engine: Any = None, *, interval_s: int = 0) -> None:
        self.ctx = ctx
        self.engine = engine
        ctx.sync_engine = self if engine is not None else None
        ctx.sig_data_changed.connect(lambda _c: self.refresh())
        self._set(online=engine is not None, working_offline=False, running=False, last_error="")
        if engine is not None and interval_s > 0:
            self._timer.start(interval_s * 1000)
        self.refresh()

    def set_interval(self, seconds: int) -> None:
        """Change the automatic sync interval (0 = only on demand)."""
        self._timer.stop()
        if self.engine is not None and seconds > 0:
            self._timer.start(seconds * 1000)

    def _probe(self) -> None:
        """Offline: is the server back? Then sync at once (on reconnect)."""
        if self.engine is None or self.status.working_offline or self.running:
            return
        if self._probing is not None and not self._probing.done():
            return

        async def probe() -> None:
            try:
                ok = await self.engine.health()
            except Exception:
                return
            if ok:
                log.info("server reachable again: syncing")
                self._reconnect_timer.stop()
                self.sync_now()

        self._probing = asyncio.ensure_future(probe())

    def detach(self) -> None:
        self._timer.stop()
        self._poke_timer.stop()
        self._reconnect_timer.stop()
        self.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        if self.engine is not None and hasattr(self.engine, "aclose"):
            with contextlib.suppress(RuntimeError):  # no event loop any more (app quitting)
                self._closing = asyncio.ensure_future(self.engine.aclose())
        self.ctx = None
        self.engine = None
        self.status = SyncStatus()

    def _set(self, **kw: Any) -> None:
        self.status = replace(self.status, **kw)
        self.sig_status.emit(self.status)

    def refresh(self) -> None:
        """Re-read the counters from the cache (on the DB worker)."""
        if self.ctx is None:
            return
        # (driver-level: the first refresh comes before the first window, see core.quickread)
        self.ctx.db.submit_read(local_sync_status, on_result=self._on_counts)

    def _on_counts(self, st: LocalSyncStatus) -> None:
        self._set(pending=st.pending, conflicts=st.conflicts, last_sync_at=st.last_sync_at)

    # ------------------------------------------------------------------ running

    def poke(self) -> None:
        """An edit was made: sync soon (debounced) if we are online."""
        if self.engine is not None and not self.status.working_offline:
            self._poke_timer.start()

    def set_working_offline(self, offline: bool) -> None:
        """The user's 'Work offline' switch: no network until switched back."""
        if offline:
            self.cancel()
        self._set(working_offline=offline, online=not offline and self.engine is not None)
        if not offline:
            self.sync_now()

    def sync_now(self) -> None:
        if self.engine is None or self.status.working_offline:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._state = (
            self.progress_panel.new_state(_("Synchronising…"))
            if self.progress_panel is not None
            else TaskState()
        )
        self._set(running=True)
        self._task = asyncio.ensure_future(self._run(self._state))

    def cancel(self) -> None:
        if self._state is not None:
            self._state.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self, state: TaskState) -> None:
        error: BaseException | None = None
        result = None
        try:
            result = await self.engine.sync(state)
            self._reconnect_timer.stop()
            self._set(online=True, last_error="")
        except Cancelled:
            log.info("sync cancelled by the user")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            error = e
            from sync.engine import EditsHeld

            if isinstance(e, EditsHeld):  # all but the held edits synchronised: pulled
                result = e.result
            from desktop.errors import _is_network_error, user_message

            log.warning("sync failed: %s: %s", type(e).__name__, e)
            offline = _is_network_error(e)
            self._set(online=not offline, last_error=user_message(e)[1])
            if offline and hasattr(self.engine, "health"):
                self._reconnect_timer.start()
            if self.on_error is not None:
                self.on_error(e)
        finally:
            if self.progress_panel is not None:
                self.progress_panel.finish()
            self._state = None
            self._set(running=False)
            if self.ctx is not None:
                from core.mutations import Changes

                changes = Changes().add("sync")
                if result is not None and (
                    getattr(result, "pulled", 0) or getattr(result, "snapshot", False)
                ):
                    changes.add("pulled")
                    for table in getattr(result, "pulled_tables", ()):
                        changes.add(table)
                self.ctx.sig_data_changed.emit(changes)
                self.refresh()
        self.sig_finished.emit(error)
        if self._again and error is None:
            self._again = False
            QTimer.singleShot(0, self.sync_now)
