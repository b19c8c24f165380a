"""A KPI card: a title, a big value, and the week-over-week change as an arrow and colour."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout

from core.i18n import _


def format_change(change: float | None) -> str:
    """'▲ 4.2 %' / '▼ 1.0 %' / '— ' for no comparison."""
    if change is None:
        return "—"
    arrow = "▲" if change > 0.0005 else "▼" if change < -0.0005 else "▶"
    return f"{arrow} {abs(change) * 100:.1f} %"


class KpiCard(QFrame):
    """Value + change vs the previous period; green when the change is good news."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("Card")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(150)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(2)
        self.title_label = QLabel(title)
        self.title_label.setObjectName("CardTitle")
        self.value_label = QLabel("—")
        self.value_label.setObjectName("CardValue")
        self.change_label = QLabel("")
        self.change_label.setObjectName("ChangeFlat")
        self.change_label.setTextFormat(Qt.TextFormat.PlainText)
        for w in (self.title_label, self.value_label, self.change_label):
            lay.addWidget(w)

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)

    def set_value(
        self, text: str, change: float | None = None, *, good_when_up: bool = True
    ) -> None:
        self.value_label.setText(text)
        suffix = _("vs last week")
        self.change_label.setText(f"{format_change(change)}  {suffix}")
        if change is None or abs(change) < 0.0005:
            name = "ChangeFlat"
        else:
            name = "ChangeUp" if (change > 0) == good_when_up else "ChangeDown"
        if self.change_label.objectName() != name:
            self.change_label.setObjectName(name)
            self.change_label.style().unpolish(self.change_label)
            self.change_label.style().polish(self.change_label)

    @property
    def change_kind(self) -> str:
        """'ChangeUp' (good), 'ChangeDown' (bad) or 'ChangeFlat' - what the colour says."""
        return self.change_label.objectName()
