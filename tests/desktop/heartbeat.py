"""A 10 ms heartbeat on the UI thread: the longest gap between beats is the longest stall.

On a shared, loaded machine the OS alone delays a 10 ms timer now and then, so each
measurement also records the same heartbeat with nothing running (``baseline``) and
reports both; tests allow the app the 50 ms budget on top of that measured noise.
"""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer

BUDGET_MS = 50


class Heartbeat:
    def __init__(self) -> None:
        self.gaps: list[int] = []
        self.labels: list[str] = []
        self.phase = ""
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last = 0
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = self._clock.elapsed()
        self.gaps.append(now - self._last)
        self.labels.append(self.phase)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self.labels.clear()
        self._last = self._clock.elapsed()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def worst(self) -> int:
        return max(self.gaps[1:], default=0)

    def worst_where(self) -> list[tuple[int, str]]:
        pairs = sorted(zip(self.gaps[1:], self.labels[1:], strict=True), reverse=True)
        return pairs[:5]


def baseline(qtbot, ms: int = 1500) -> int:
    """The longest heartbeat gap with the app idle: this machine's scheduling noise."""
    hb = Heartbeat()
    hb.start()
    qtbot.wait(ms)
    hb.stop()
    return hb.worst


def allowed(noise_ms: int) -> int:
    """The budget plus whatever the idle machine itself showed beyond one beat."""
    return BUDGET_MS + max(0, noise_ms - 10)
