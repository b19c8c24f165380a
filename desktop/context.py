"""What every screen receives: the app's services, the shared selection, background work.

A view gets an :class:`AppContext` in its constructor (STYLE.md §2) and never opens a
session itself: it asks ``ctx.db`` to run a plain ``core`` function ``fn(session, ...)`` on
the single database worker thread, and gets the result back on the UI thread. Edits go
through :meth:`AppContext.edit`, which applies the mutation locally with its outbox row in
one transaction and then announces :class:`core.mutations.Changes` on
``sig_data_changed`` so each view decides whether to refresh (Anki's OpChanges).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal

from core.actor import Actor
from desktop.memory import release_free_memory_soon

if TYPE_CHECKING:
    from core.cache import Cache
    from core.mutations import Changes

log = logging.getLogger(__name__)

#: the first warm-up of this process has frozen the ORM's objects (see ``DbWorker._warm``)
_orm_frozen = False
_freeze_lock = threading.Lock()


class _Relay(QObject):
    """Carries a finished future's callbacks onto the thread this object lives in (the UI)."""

    sig_done = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        # Queued even when emitted on this thread (a job that finished before submit()
        # added its callback): a callback never runs inside submit(), so a caller may
        # submit before it has built what the callback touches (HomeView asks first).
        self.sig_done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    def _on_done(self, thunk: Callable[[], None]) -> None:
        try:
            thunk()
        except RuntimeError as e:
            # the view that asked was closed (sign-out, language switch) before the answer
            # came back: nothing to show it in, not an error
            if "already deleted" not in str(e):
                raise
            log.debug("result for a closed view dropped: %s", e)


class Worker:
    """A named executor whose callbacks arrive on the UI thread.

    ``Worker("db", 1)`` is the one database worker (writes never race); ``Worker("cpu", 2)``
    runs CPU-bound work (charts maths, map building) off the UI thread.
    """

    def __init__(self, name: str, threads: int = 1) -> None:
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"sd-{name}")
        self._relay = _Relay()
        self.errors: list[BaseException] = []
        self._closed = False

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any]:
        if self._closed:
            # a view's late timer after sign-out/close: nothing to run it on, nothing to do
            log.debug("%s worker closed; dropped %s", self.name, getattr(fn, "__name__", fn))
            dropped: Future[Any] = Future()
            dropped.cancel()
            return dropped
        fut = self._pool.submit(fn, *args)

        def done(f: Future[Any]) -> None:
            exc = f.exception() if not f.cancelled() else None
            if f.cancelled():
                return
            if exc is not None:
                log.error(
                    "%s task %s failed:\n%s",
                    self.name,
                    getattr(fn, "__name__", fn),
                    "".join(traceback.format_exception(exc)),
                )
                if on_error is not None:
                    self._relay.sig_done.emit(lambda: on_error(exc))
                else:
                    self.errors.append(exc)
            elif on_result is not None:
                result = f.result()
                self._relay.sig_done.emit(lambda: on_result(result))

        fut.add_done_callback(done)
        fut.add_done_callback(lambda _f: release_free_memory_soon())  # its data may be gone
        return fut

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Await ``fn(*args)`` on this worker (for qasync coroutines)."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class DbWorker(Worker):
    """The single database worker: runs ``fn(session, *args)`` in one transaction.

    :meth:`submit_read` runs ``fn(conn, *args)`` on a plain read-only sqlite3 connection
    instead (``core.quickread``: the reads the first window waits for, before SQLAlchemy
    is imported); :meth:`warm_up` then loads the ORM here, off the UI thread.
    """

    def __init__(self, cache: Cache) -> None:
        super().__init__("db", 1)
        self.cache = cache

    def _in_session(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.cache.ensure_usable()  # not behind a failed deferred integrity check
        with self.cache.session() as s:
            return fn(s, *args)

    def submit(  # type: ignore[override]
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any]:
        return super().submit(self._in_session, fn, *args, on_result=on_result, on_error=on_error)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await super().run(self._in_session, fn, *args)

    def submit_read(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any]:
        """Run ``fn(conn, *args)`` on a read-only sqlite3 connection (one read transaction)."""
        return Worker.submit(
            self, self._in_reader, fn, *args, on_result=on_result, on_error=on_error
        )

    def _in_reader(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.cache.ensure_usable()
        with self.cache.reader() as conn:
            return fn(conn, *args)

    def warm_up(self) -> Future[Any]:
        """Load SQLAlchemy's ORM and the data model and make the engine, on this thread.

        Queued by the shell after the first screen's reads: the first ORM job a later
        screen submits then starts at once instead of paying ≈0.2 s of imports and mapper
        set-up (nothing is read; a failure is logged and left to that job to report).
        """
        return Worker.submit(self, self._warm)

    def _warm(self) -> None:
        if self.cache.integrity_problem is not None:
            return  # damaged: the shell is moving it aside, nothing will query it
        from sqlalchemy.orm import configure_mappers

        import core.models  # noqa: F401

        configure_mappers()
        self.cache.engine  # noqa: B018 - made now (checks the tables against the models)
        # the ORM's long-lived objects join the start-up objects that the cyclic GC no
        # longer scans (desktop.app.tune_runtime), as when they were imported before it.
        # Once per process: a later warm-up (sign-in after sign-out) brings no new ORM
        # objects, and a freeze then would make whatever cyclic garbage exists at that
        # moment (the previous session's window and screens) uncollectable for good.
        global _orm_frozen
        with _freeze_lock:
            if not _orm_frozen:
                _orm_frozen = True
                gc.freeze()

    async def run_plain(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Await ``fn(*args)`` on the DB thread without opening a session for it.

        For functions that manage their own transactions (the sync engine's ``run_db``),
        so that every write to the cache still goes through this one thread.
        """
        return await Worker.run(self, self._plain, fn, *args)

    def _plain(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.cache.ensure_usable()
        return fn(*args)


class Selection(QObject):
    """The store / region / day every screen shares (pickers write it, views follow it)."""

    sig_changed = Signal()
    """Emitted after any of store_id, region_id or day changed."""

    def __init__(self, store_id: int | None, region_id: int | None, day: dt.date) -> None:
        super().__init__()
        self.store_id = store_id
        self.region_id = region_id
        self.day = day

    def set(self, **kw: Any) -> None:
        changed = False
        for key in ("store_id", "region_id", "day"):
            if key in kw and getattr(self, key) != kw[key]:
                setattr(self, key, kw[key])
                changed = True
        if changed:
            self.sig_changed.emit()

    @property
    def week_start(self) -> dt.date:
        return self.day - dt.timedelta(days=self.day.weekday())


class AppContext(QObject):
    """Services handed to every screen."""

    sig_data_changed = Signal(object)
    """Emitted with a :class:`Changes` after a local edit or a sync applied data."""

    sig_error = Signal(str)
    """A user-facing error message (already translated) for the shell to show."""

    sig_navigate = Signal(str, object)
    """(screen id, params dict): a view asks the main window to open another screen."""

    def __init__(
        self,
        cache: Cache,
        actor: Actor,
        today: dt.date,
        selection: Selection,
        *,
        demo: bool = True,
    ) -> None:
        super().__init__()
        self.cache = cache
        self.actor = actor
        self.today = today
        self.selection = selection
        self.demo = demo
        self.db = DbWorker(cache)
        self.cpu = Worker("cpu", 2)
        #: Set by the shell when a sync engine runs; views may read its status.
        self.sync_engine: Any = None
        #: The user's :class:`desktop.settings.Settings` (set by the shell); views keep
        #: their remembered filters with ``remember_filter`` / ``remembered_filter``.
        self.settings: Any = None
        #: The :class:`desktop.app.Shell` (set by the shell): sign-out, language, sync.
        self.shell: Any = None

    def now(self) -> dt.datetime:
        """'Now' in the data's timeline: the demo's last day keeps its own clock."""
        real = dt.datetime.now(dt.UTC)
        if self.demo:
            return dt.datetime.combine(self.today, real.time(), tzinfo=dt.UTC)
        return real

    def navigate(self, screen_id: str, **params: Any) -> None:
        """Open another screen (drill-down); params are for the target view to read."""
        self.sig_navigate.emit(screen_id, params)

    def remembered_filter(self, screen_id: str, name: str, default: Any = None) -> Any:
        """A filter value this screen saved earlier (``default`` without settings)."""
        if self.settings is None:
            return default
        return self.settings.screen_filter(screen_id, name, default)

    def remember_filter(self, screen_id: str, name: str, value: Any) -> None:
        """Remember a JSON-serialisable filter value for the next start."""
        if self.settings is not None:
            self.settings.set_screen_filter(screen_id, name, value)

    def edit(
        self,
        name: str,
        args: dict[str, Any],
        *,
        base_version: int | None = None,
        on_done: Callable[[Changes], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Future[Any]:
        """Apply a mutation locally (domain rows + outbox in one transaction), then announce it."""
        actor = self.actor
        now = self.now()

        def work(session: Any) -> Changes:
            from core.mutations import apply_local

            return apply_local(session, actor, name, args, base_version=base_version, now=now)

        def done(changes: Changes) -> None:
            self.sig_data_changed.emit(changes)
            if on_done is not None:
                on_done(changes)
            if self.sync_engine is not None and hasattr(self.sync_engine, "poke"):
                self.sync_engine.poke()

        def refused(exc: BaseException) -> None:
            # nobody else will tell the user: say it through the shell (translated)
            from core.i18n import _
            from core.mutations import MutationError

            if isinstance(exc, MutationError):
                self.sig_error.emit(
                    _("The change was not saved: {reason}").format(reason=exc.message)
                )
            else:
                self.sig_error.emit(
                    _("The change was not saved because of an unexpected error ({error}).").format(
                        error=type(exc).__name__
                    )
                )

        return self.db.submit(work, on_result=done, on_error=on_error or refused)

    def shutdown(self) -> None:
        self.db.shutdown()
        self.cpu.shutdown()
