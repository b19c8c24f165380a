"""Give freed heap memory back to the system after big jobs and screen changes.

glibc's allocator keeps memory that was freed in the middle of its heaps (and in the
arenas of worker threads) for later reuse, so a query's rows, a map's data or a closed
preview go on counting as the app's resident memory long after they are gone
(measured: ≈ 10 MiB of the main process's peak over a tour of the screens).
``malloc_trim(0)`` hands those free pages back. It runs on a background thread (ctypes
releases the GIL), so the UI never waits for it, and :func:`release_free_memory_soon`
folds a burst of requests (every finished worker job asks) into one trim once things
are quiet. Elsewhere (macOS, Windows, musl) both are no-ops.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable

#: a trim waits this long after the last request (a sync finishes hundreds of jobs)
QUIET_S = 0.5


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here, not at app start

    try:
        fn = ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def release_free_memory() -> threading.Thread | None:
    """Start returning free heap pages to the system now; the thread doing it, or None."""
    fn = _malloc_trim()
    if fn is None:
        return None
    t = threading.Thread(target=fn, args=(0,), name="storedesk-malloc-trim", daemon=True)
    t.start()
    return t


class _QuietTrimmer:
    """One daemon thread that trims ``delay`` after the last request.

    The thread ends after its trim when nothing was asked meanwhile (the next request
    starts another), so no thread lingers for the life of the app or outlives a test.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None
        self.trims = 0

    def request(self, delay: float) -> None:
        with self._cv:
            due = time.monotonic() + delay
            self._due = due if self._due is None else max(self._due, due)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="storedesk-malloc-trim", daemon=True
                )
                self._thread.start()
            self._cv.notify()

    def _run(self) -> None:
        fn = _malloc_trim()
        assert fn is not None
        while True:
            with self._cv:
                while (left := self._due - time.monotonic()) > 0:  # type: ignore[operator]
                    self._cv.wait(left)
                self._due = None
            fn(0)
            self.trims += 1
            with self._cv:
                if self._due is None:  # nothing asked during the trim: this thread is done
                    self._thread = None
                    return


_trimmer = _QuietTrimmer()


def release_free_memory_soon(delay: float = QUIET_S) -> None:
    """Trim once nothing has asked for ``delay`` seconds (thread-safe, never blocks)."""
    if _malloc_trim() is not None:
        _trimmer.request(delay)
