"""A day × hour heat grid (pyqtgraph): colour = a count, hover names the cell, click picks a day.

Columns are days, rows are hours (earliest at the top, as on a rota). Cells can be marked
(e.g. counter outages) with a red cross; the clicked day gets an outline. The widget knows
nothing about traffic: the owner gives values and a ``describe(day_index, hour_index)``
callback for the hover text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

#: White → StoreDesk blue; empty cells (no data) are drawn light grey underneath.
_COLORS = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]


class HeatGrid(QWidget):
    sig_day_clicked = Signal(object)
    """A day column was clicked; carries the ``datetime.date``."""

    sig_hovered = Signal(str)
    """The hover text changed (empty when the pointer left the grid)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.days: list[dt.date] = []
        self.hours: list[int] = []
        self._describe: Callable[[int, int], str] = lambda i, j: ""
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(220)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setPen(pg.mkPen("#9aa5b1"))
            ax.setTextPen(pg.mkPen("#52606d"))
        self.background = QGraphicsRectItem()
        self.background.setBrush(QColor("#eef1f4"))
        self.background.setPen(QPen(Qt.PenStyle.NoPen))
        self.plot.addItem(self.background)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setLookupTable(
            pg.ColorMap(np.linspace(0, 1, len(_COLORS)), _COLORS).getLookupTable(nPts=256)
        )
        self.plot.addItem(self.image)
        self.marks = pg.ScatterPlotItem(
            symbol="x", size=9, pen=pg.mkPen("#c62828", width=2), brush=None
        )
        self.plot.addItem(self.marks)
        self.selection = QGraphicsRectItem()
        self.selection.setPen(pg.mkPen("#d97706", width=2.5))
        self.selection.setVisible(False)
        self.plot.addItem(self.selection)
        self.hover_label = QLabel(" ")
        self.hover_label.setObjectName("Muted")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.hover_label)
        lay.addWidget(self.plot, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    def set_grid(
        self,
        days: Sequence[dt.date],
        hours: Sequence[int],
        values: Sequence[Sequence[float | None]],
        *,
        marked: Sequence[tuple[int, int]] = (),
        describe: Callable[[int, int], str] | None = None,
        day_label: Callable[[dt.date], str] | None = None,
    ) -> None:
        """``values[day_index][hour_index]``; None is "no data" (grey)."""
        self.days, self.hours = list(days), list(hours)
        self._describe = describe or (lambda i, j: "")
        arr = np.array(
            [[np.nan if v is None else float(v) for v in row] for row in values], dtype=float
        ).reshape(len(self.days), len(self.hours))
        top = float(np.nanmax(arr)) if np.isfinite(arr).any() else 1.0
        self.image.setImage(arr, levels=(0.0, max(top, 1.0)), autoLevels=False)
        self.image.setRect(QRectF(0, 0, len(self.days), len(self.hours)))
        self.background.setRect(QRectF(0, 0, len(self.days), len(self.hours)))
        self.marks.setData([i + 0.5 for i, _ in marked], [j + 0.5 for _, j in marked])
        label = day_label or (lambda d: d.strftime("%m-%d"))
        # Long ranges label each Monday (weeks read at a glance); short ones every day.
        shown = [
            (i + 0.5, label(d))
            for i, d in enumerate(self.days)
            if len(self.days) <= 10 or d.weekday() == 0 or i == len(self.days) - 1
        ]
        self.plot.getAxis("bottom").setTicks([shown])
        self.plot.getAxis("left").setTicks(
            [[(j + 0.5, f"{h:02d}:00") for j, h in enumerate(self.hours)]]
        )
        self.plot.setXRange(0, max(1, len(self.days)), padding=0)
        self.plot.setYRange(0, max(1, len(self.hours)), padding=0)
        self.select_day(None)

    def select_day(self, day: dt.date | None) -> None:
        if day is None or day not in self.days:
            self.selection.setVisible(False)
            return
        i = self.days.index(day)
        self.selection.setRect(QRectF(i, 0, 1, len(self.hours)))
        self.selection.setVisible(True)

    def cell_at_scene(self, pos) -> tuple[int, int] | None:
        """(day index, hour index) under a scene position, or None outside the grid."""
        if not self.days or not self.plot.sceneBoundingRect().contains(pos):
            return None
        p = self.plot.getPlotItem().vb.mapSceneToView(pos)
        i, j = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= i < len(self.days) and 0 <= j < len(self.hours):
            return i, j
        return None

    def cell_center_in_view(self, day_index: int, hour_index: int):
        """Widget (viewport) coordinates of a cell's centre — for tests that move the mouse."""
        vb = self.plot.getPlotItem().vb
        scene = vb.mapViewToScene(pg.Point(day_index + 0.5, hour_index + 0.5))
        return self.plot.mapFromScene(scene)

    def _on_mouse_moved(self, pos) -> None:
        cell = self.cell_at_scene(pos)
        text = self._describe(*cell) if cell is not None else ""
        self.hover_label.setText(text or " ")
        self.plot.setToolTip(text)
        self.sig_hovered.emit(text)

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at_scene(ev.scenePos())
        if cell is not None:
            day = self.days[cell[0]]
            self.select_day(day)
            self.sig_day_clicked.emit(day)
