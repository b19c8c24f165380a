"""Every error a user can meet, as a message in their language saying what to do.

:func:`user_message` maps an exception (network, HTTP status, disk, cache) to a
translated (title, text) pair; :func:`install_excepthook` makes an unexpected exception
get logged and shown in a dialog while the app keeps running.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from core.cache import CacheError, CacheTooNew
from core.i18n import _

log = logging.getLogger(__name__)


def _status_code(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        v = getattr(exc, attr, None)
        if isinstance(v, int):
            return v
    resp = getattr(exc, "response", None)
    v = getattr(resp, "status_code", None)
    return v if isinstance(v, int) else None


def _is_network_error(exc: BaseException) -> bool:
    try:
        from sync.engine import OfflineError

        if isinstance(exc, OfflineError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a dependency
        return isinstance(exc, ConnectionError)
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def user_message(exc: BaseException) -> tuple[str, str]:
    """(title, text) for showing ``exc`` to a user; both already translated."""
    sync_msg = _sync_message(exc)
    if sync_msg is not None:
        return sync_msg
    code = _status_code(exc)
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain if e):
        return _("Disk full"), _(
            "The disk is full, so StoreDesk could not save your data. Free some space "
            "(empty the recycle bin, delete old downloads) and try again; nothing was lost."
        )
    if isinstance(exc, CacheTooNew):
        return _("Data file from a newer StoreDesk"), str(exc)
    if isinstance(exc, CacheError):
        return _("Local data problem"), str(exc)
    if isinstance(exc, sqlite3.DatabaseError) or "malformed" in str(exc):
        return _("Local data damaged"), _(
            "The local data file is damaged. Restart StoreDesk: it will move the damaged "
            "file aside and download your data again."
        )
    if code == 401:
        return _("Sign-in failed"), _(
            "The user name or password is wrong, or your session has expired. Check them "
            "and sign in again (passwords are case-sensitive)."
        )
    if code == 403:
        return _("Not allowed"), _(
            "Your account may not see or change this store or region. Ask your "
            "administrator to extend your access if you need it."
        )
    if code == 426:
        return _("Update needed"), _(
            "The server needs a newer StoreDesk. Please install the latest version."
        )
    if code is not None and code >= 500:
        return _("Server error"), _(
            "The server had a problem (HTTP {code}). Your edits are kept on this computer "
            "and will be sent at the next sync; try again in a few minutes."
        ).format(code=code)
    if _is_network_error(exc):
        return _("Server unreachable"), _(
            "StoreDesk could not reach the server. Check the network connection and the "
            "server address; you can keep working offline and your edits will be sent "
            "when the connection is back."
        )
    if isinstance(exc, PermissionError):
        return _("No permission"), _(
            "StoreDesk may not write {path}. Check the folder's permissions or choose "
            "another folder."
        ).format(path=getattr(exc, "filename", "") or "")
    return _("Unexpected error"), _(
        "Something went wrong that StoreDesk did not expect ({error}). Your data is safe; "
        "the details were written to the log file. You can keep working; if it happens "
        "again, send the log file to support."
    ).format(error=type(exc).__name__)


def _sync_message(exc: BaseException) -> tuple[str, str] | None:
    """The sync engine's errors carry a translated sentence; add what to do."""
    try:
        from sync import engine as se
    except ImportError:  # pragma: no cover - sync is part of the app
        return None
    if not isinstance(exc, se.SyncError):
        return None
    what = str(exc)
    if isinstance(exc, se.AuthError):
        return _("Sign-in failed"), what + " " + _(
            "Check the user name and password (they are case-sensitive) and sign in again."
        )
    if isinstance(exc, se.OfflineError):
        return _("Server unreachable"), what + " " + _(
            "Check the network connection and the server address; you can keep working "
            "offline and your edits will be sent when the connection is back."
        )
    if isinstance(exc, se.ScopeError):
        return _("Not allowed"), what + " " + _(
            "Your account may not see or change this store or region. Ask your "
            "administrator to extend your access if you need it."
        )
    if isinstance(exc, se.UpdateRequired):
        return _("Update needed"), what
    if isinstance(exc, se.ServerError):
        return _("Server error"), what + " " + _(
            "Your edits are kept on this computer and will be sent at the next sync."
        )
    return _("Synchronisation problem"), what + " " + _(
        "Your edits are kept on this computer. Try again later; if it keeps happening, "
        "send the log file to support."
    )


def install_excepthook(show: Callable[[str, str], None]) -> Callable[[], None]:
    """Log and show unexpected exceptions (UI thread and worker threads); returns undo."""
    previous_sys, previous_thread = sys.excepthook, threading.excepthook

    def hook(tp: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(tp, KeyboardInterrupt):
            previous_sys(tp, exc, tb)
            return
        log.error("unexpected exception:\n%s", "".join(traceback.format_exception(tp, exc, tb)))
        try:
            title, text = user_message(exc)
            show(title, text)
        except Exception:  # showing must never raise from inside the hook
            log.exception("could not show the error dialog")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.error(
                "unexpected exception in thread %s:\n%s",
                args.thread.name if args.thread else "?",
                "".join(
                    traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
                ),
            )

    sys.excepthook = hook
    threading.excepthook = thread_hook

    def undo() -> None:
        sys.excepthook, threading.excepthook = previous_sys, previous_thread

    return undo
