"""Draw packs in a child process, so the app's own process never holds reportlab.

reportlab, its modules and the parsed CJK font (a ``TTFont`` of WenQuanYi Micro Hei is
≈ 21 MiB of Python objects that reportlab keeps for the life of the process) cost the app
≈ 50–80 MiB that it never gave back after the first pack. A :class:`RenderWorker` runs
:func:`core.reports.render.render_pack` in a ``spawn`` child instead (no ``fork`` of a
process that runs Qt threads); the child warms up (imports reportlab, registers the font)
as soon as it starts, so starting it when the reports screen opens hides that cost, and
stopping it gives all of that memory back at once.

Progress and cancellation cross the process boundary: the child reports through the
caller's :class:`~core.tasks.TaskState` and stops at its next page when the caller
cancels; a cancelled or failed build leaves no file (``render_pack`` writes to a
temporary name; if the child dies, the caller removes it). The frozen app calls
``multiprocessing.freeze_support()`` first thing (``installers/storedesk_main.py``), which
is what a ``spawn`` child of a PyInstaller bundle needs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.reports.model import PackData
from core.tasks import Cancelled, TaskState

#: How long :meth:`RenderWorker.stop` waits for the child to leave before killing it.
STOP_TIMEOUT_S = 3.0
#: How often the caller's thread looks at the pipe and at its TaskState while waiting.
POLL_S = 0.05


class RenderWorkerDied(RuntimeError):
    """The child process ended without an answer (crash, killed, out of memory)."""


class RenderChildError(RuntimeError):
    """Drawing failed in the child with an exception that cannot be rebuilt here.

    Some exceptions do not survive the pipe: one holding something unpicklable, or one
    whose constructor needs other arguments than its ``args`` (unpickling it raises
    ``TypeError``). This carries what the child knew instead: the exception's type
    (``module.QualName``), its message and the child's traceback text.
    """

    def __init__(self, type_name: str, message: str, child_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.child_traceback = child_traceback
        self.add_note(f"Traceback in the render child process:\n{child_traceback}")


class RenderWorker:
    """One child process that draws packs on request (see the module docstring).

    :meth:`render` blocks its calling (worker) thread and serialises builds; :meth:`start`
    and :meth:`stop` never wait for a build or for the child, so the UI thread may call
    them (a stop asked for during a build takes effect when the build ends).
    """

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # one build at a time; guards _proc/_conn
        self._proc: Any = None
        self._conn: Connection | None = None
        self._cancel: Any = None
        self._stop_requested = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (None before the first start/after stop)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> None:
        """Start the child now so it warms up before the first build; no-op if running."""
        self._stop_requested = False
        if not self._lock.acquire(blocking=False):
            return  # a build is running: so is the child
        try:
            self._ensure_started()
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Let the child leave, giving back all its memory (after the build, if one runs)."""
        if not self._lock.acquire(blocking=False):
            self._stop_requested = True
            return
        try:
            self._release()
        finally:
            self._lock.release()

    def render(
        self,
        data: PackData,
        out: str | os.PathLike[str],
        *,
        lang: str = "zh_CN",
        state: TaskState | None = None,
    ) -> int:
        """Like :func:`core.reports.render.render_pack`, drawn by the child; returns pages.

        Raises :class:`~core.tasks.Cancelled` when ``state`` is cancelled (no file is
        written), the child's own exception when drawing fails (with the child's
        traceback as a note), :class:`RenderChildError` when that exception cannot be
        rebuilt here, and :class:`RenderWorkerDied` if the child goes away mid-build.
        """
        state = state or TaskState()
        out = Path(out)
        with self._lock:
            try:
                state.check()
                self._ensure_started()
                assert self._conn is not None
                self._cancel.clear()
                self._conn.send(("render", data, str(out), lang))
                return self._wait(state)
            except (EOFError, OSError) as e:
                self._kill()
                raise RenderWorkerDied(str(e) or type(e).__name__) from e
            except RenderWorkerDied:
                self._kill()
                raise
            finally:
                _remove_partial(out)
                if self._stop_requested:
                    self._release()

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self._kill()
        parent, child = self._ctx.Pipe()
        self._cancel = self._ctx.Event()
        proc = self._ctx.Process(
            target=serve, args=(child, self._cancel), name="storedesk-render", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _wait(self, state: TaskState) -> int:
        conn, proc = self._conn, self._proc
        assert conn is not None
        while True:
            if state.cancelled:
                self._cancel.set()
            if not conn.poll(POLL_S):
                if not proc.is_alive():
                    raise RenderWorkerDied(f"exit code {proc.exitcode}")
                continue
            kind, *rest = conn.recv()
            if kind == "progress":
                try:
                    state.progress(rest[0], rest[1])
                except Cancelled:  # tell the child; it answers "cancelled" at its next page
                    self._cancel.set()
            elif kind == "done":
                return int(rest[0])
            elif kind == "cancelled":
                raise Cancelled()
            elif kind == "error":
                raise _rebuilt(*rest)

    def _release(self) -> None:
        """Ask the child to leave and reap it on a daemon thread (never blocks)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._stop_requested = False
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            conn.close()
        if proc is not None:
            threading.Thread(
                target=_reap, args=(proc,), name="storedesk-render-reaper", daemon=True
            ).start()

    def _kill(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            _reap(proc, timeout=0)


def _error_message(e: BaseException) -> tuple[bytes | None, str, str, str]:
    """What the child sends about a failure: the pickled exception (None if it cannot be
    pickled), its type's ``module.QualName``, its message and the traceback text. The
    exception travels as bytes inside the message, so a failure to rebuild it in the
    parent is the parent's to handle (:func:`_rebuilt`), never an error of ``recv``."""
    try:
        blob: bytes | None = pickle.dumps(e)
    except Exception:
        blob = None
    kind = type(e)
    try:
        message = str(e)
    except Exception:
        message = f"<{kind.__name__}: its message could not be read>"
    return (
        blob,
        f"{kind.__module__}.{kind.__qualname__}",
        message,
        "".join(traceback.format_exception(e)),
    )


def _rebuilt(blob: bytes | None, type_name: str, message: str, tb: str) -> BaseException:
    """The child's exception as the parent raises it (see :func:`_error_message`)."""
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            exc.add_note(f"Traceback in the render child process:\n{tb}")
            return exc
    return RenderChildError(type_name, message, tb)


def _reap(proc: Any, timeout: float = STOP_TIMEOUT_S) -> None:
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join(STOP_TIMEOUT_S)


def _remove_partial(out: Path) -> None:
    """The temporary file ``render_pack`` writes to (left behind only if the child died;
    after a finished build it is already gone)."""
    part = out.with_name(f".{out.name}.part")
    for _ in range(3):
        try:
            part.unlink(missing_ok=True)
            return
        except PermissionError:  # Windows: the dying child may still hold it for a moment
            time.sleep(0.1)


class _ChildState(TaskState):
    """The child's view of the caller's TaskState: progress goes up the pipe, cancel comes
    down as a shared event."""

    def __init__(self, conn: Connection, cancel: Any) -> None:
        super().__init__(on_progress=lambda f, m: conn.send(("progress", f, m)))
        self._remote_cancel = cancel

    def check(self) -> None:
        if self._remote_cancel.is_set():
            self.cancel()
        super().check()


def serve(conn: Connection, cancel: Any) -> None:
    """The child's loop: warm up, then draw each requested pack until told to stop."""
    from core.reports.fonts import register_fonts
    from core.reports.render import render_pack

    register_fonts()  # the costly part of a first build, done while the user picks options
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the app went away
            return
        if msg[0] != "render":
            return
        _kind, data, out, lang = msg
        state = _ChildState(conn, cancel)
        try:
            pages = render_pack(data, out, lang=lang, state=state)
        except Cancelled:
            conn.send(("cancelled",))
        except Exception as e:  # the caller re-raises it
            conn.send(("error", *_error_message(e)))
        else:
            conn.send(("done", pages))
