"""A pyqtgraph line chart with one ``PlotDataItem`` per series and values on hover.

Series are created once and updated with ``setData`` (STYLE.md §11); x values are either
numbers (hours of the day, day indexes) or aware datetimes (shown on a date axis).
Hovering shows every series' value at the nearest x in a label above the plot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

PALETTE = ("#2f6fdf", "#9aa5b1", "#1a7f37", "#d97706", "#7c3aed", "#c62828")


class TimeSeriesChart(QWidget):
    def __init__(
        self,
        *,
        x_is_time: bool = False,
        x_format: Callable[[float], str] | None = None,
        y_format: Callable[[float], str] | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self._x_is_time = x_is_time
        self._x_format = x_format or (
            (lambda x: dt.datetime.fromtimestamp(x).strftime("%m-%d %H:%M"))
            if x_is_time
            else (lambda x: f"{x:g}")
        )
        self._y_format = y_format or (lambda y: f"{y:,.0f}")
        axis = {"bottom": pg.DateAxisItem()} if x_is_time else {}
        self.plot = pg.PlotWidget(background="w", axisItems=axis)
        self.plot.setMinimumHeight(160)
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setPen(pg.mkPen("#9aa5b1"))
            ax.setTextPen(pg.mkPen("#52606d"))
        self.legend = self.plot.addLegend(
            offset=(-10, 6), labelTextColor="#323f4b", brush=pg.mkBrush(255, 255, 255, 235)
        )
        self.hover_label = QLabel(" ")
        self.hover_label.setObjectName("Muted")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.items: dict[str, pg.PlotDataItem] = {}
        self._names: dict[str, str] = {}
        self._data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.hover_label)
        lay.addWidget(self.plot, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_series(
        self,
        key: str,
        xs: Sequence[float] | Sequence[dt.datetime],
        ys: Sequence[float | None],
        *,
        name: str = "",
        color: str | None = None,
        dashed: bool = False,
    ) -> pg.PlotDataItem:
        """Create the series on first call, then only ``setData`` it."""
        x = np.array(
            [v.timestamp() if isinstance(v, dt.datetime) else float(v) for v in xs], dtype=float
        )
        y = np.array([np.nan if v is None else float(v) for v in ys], dtype=float)
        item = self.items.get(key)
        if item is None:
            color = color or PALETTE[len(self.items) % len(PALETTE)]
            pen = pg.mkPen(
                color, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            )
            item = self.plot.plot(x, y, pen=pen, name=name or key, connect="finite")
            self.items[key] = item
        else:
            item.setData(x, y, connect="finite")
            if name and name != self._names.get(key):
                self.legend.removeItem(item)
                self.legend.addItem(item, name)
        self._names[key] = name or self._names.get(key, key)
        self._data[key] = (x, y)
        return item

    def set_series_name(self, key: str, name: str) -> None:
        item = self.items.get(key)
        if item is not None and name != self._names.get(key):
            self.legend.removeItem(item)
            self.legend.addItem(item, name)
            self._names[key] = name

    def clear_series(self) -> None:
        for item in self.items.values():
            item.setData([], [])
        self._data = {k: (np.array([]), np.array([])) for k in self._data}

    def hover_text_at(self, x: float) -> str:
        """The hover text for data x (nearest point of each series)."""
        parts = []
        x_shown = None
        for key, (xs, ys) in self._data.items():
            if len(xs) == 0:
                continue
            i = int(np.nanargmin(np.abs(xs - x)))
            x_shown = xs[i] if x_shown is None else x_shown
            y = ys[i]
            parts.append(f"{self._names[key]}: {'—' if np.isnan(y) else self._y_format(y)}")
        if x_shown is None:
            return " "
        return f"{self._x_format(x_shown)}   " + "   ".join(parts)

    def _on_mouse_moved(self, pos) -> None:
        vb = self.plot.getPlotItem().vb
        if not self.plot.sceneBoundingRect().contains(pos):
            return
        x = vb.mapSceneToView(pos).x()
        self.hover_label.setText(self.hover_text_at(x))
