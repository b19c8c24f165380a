"""Progress and cancellation for long jobs, without Qt (Orange's TaskState, simplified).

A long job (report build, tile download, initial sync, demo generation) is a plain
function taking a :class:`TaskState`; it reports progress and calls :meth:`check` at
safe points, where a cancelled task raises :class:`Cancelled`. Widgets only start and
cancel; the function is tested without any widget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """The user cancelled; whatever the job was doing has been rolled back."""


class TaskState:
    def __init__(self, on_progress: Callable[[float, str], None] | None = None) -> None:
        self._cancel = threading.Event()
        self._on_progress = on_progress
        self.fraction = 0.0
        self.message = ""

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1] (and check for cancellation)."""
        self.fraction = max(0.0, min(1.0, fraction))
        if message:
            self.message = message
        if self._on_progress is not None:
            self._on_progress(self.fraction, self.message)
        self.check()


#: A state that is never cancelled and reports nowhere (for callers that do not care).
def quiet() -> TaskState:
    return TaskState()
