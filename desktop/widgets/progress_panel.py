"""Progress and a Cancel button for one :class:`core.tasks.TaskState` job.

The job runs on a worker thread and reports through ``TaskState.progress``; this panel
turns those calls into a queued Qt signal so the bar is only touched on the UI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from core.i18n import _
from core.tasks import TaskState


class _Bridge(QObject):
    sig_progress = Signal(float, str)


class ProgressPanel(QWidget):
    """Shows what a long job is doing; Cancel asks the job to stop at its next check."""

    sig_cancelled = Signal()
    """The user pressed Cancel (the job stops at its next ``TaskState.check``)."""

    def __init__(self, parent=None, *, compact: bool = False) -> None:
        super().__init__(parent)
        self._state: TaskState | None = None
        self._bridge = _Bridge()
        self._bridge.sig_progress.connect(self._on_progress)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(120 if compact else 240)
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        self.hide()

    def new_state(self, text: str = "") -> TaskState:
        """A TaskState whose progress shows here (callable from any thread)."""
        state = TaskState(on_progress=lambda f, m: self._bridge.sig_progress.emit(f, m))
        self.start(state, text)
        return state

    def start(self, state: TaskState, text: str = "") -> None:
        self._state = state
        self.label.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.show()

    def set_busy(self, text: str) -> None:
        """An indeterminate bar, for steps that cannot tell how far they are."""
        self.label.setText(text)
        self.bar.setRange(0, 0)

    def _on_progress(self, fraction: float, message: str) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1000)
        self.bar.setValue(int(fraction * 1000))
        if message:
            self.label.setText(message)

    def cancel(self) -> None:
        if self._state is not None:
            self._state.cancel()
            self.cancel_button.setEnabled(False)
            self.label.setText(_("Cancelling…"))
            self.sig_cancelled.emit()

    def finish(self) -> None:
        self._state = None
        self.hide()

    @property
    def running(self) -> bool:
        return self._state is not None
