"""A pyqtgraph funnel: one centred band per stage, width proportional to its count.

One ``BarGraphItem`` holds the bands and another the previous period's outlines; both are
updated with ``setOpts`` (STYLE.md §11). The stage name sits left of each band and the
count with its conversion right of it; hovering a band shows all its figures above the
plot; clicking a band emits :attr:`FunnelChart.sig_stage_clicked` with the stage id.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.funnel import FunnelResult, StageFigures
from core.i18n import N_, _, current_language
from core.models import STAGE_ORDER

STAGE_LABELS: dict[str, str] = {
    "lead": N_("Lead"),
    "visit": N_("Visit"),
    "opportunity": N_("Opportunity"),
    "quote": N_("Quote"),
    "contract": N_("Contract"),
    "payment": N_("Payment"),
}
BAND_COLORS = ("#1d4ed8", "#2563eb", "#3b82f6", "#60a5fa", "#0f9d58", "#137333")
BAND_HEIGHT = 0.78
MIN_BAND = 0.02  # a stage with a few opportunities is still visible and clickable


def stage_label(stage: str) -> str:
    return _(STAGE_LABELS.get(stage, stage))


def format_fen(fen: int) -> str:
    """Compact yuan: 万 in Chinese (as sales reports write it), k / M in English."""
    yuan = fen / 100
    if abs(yuan) < 10_000:
        return f"¥{yuan:,.0f}"
    if current_language() == "zh_CN":
        return f"¥{yuan / 10_000:,.1f}万"
    if abs(yuan) >= 1_000_000:
        return f"¥{yuan / 1_000_000:,.1f}M"
    return f"¥{yuan / 1_000:,.0f}k"


def format_pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def format_hours(h: float | None) -> str:
    if h is None:
        return "—"
    if h >= 48:
        return _("{n} days").format(n=f"{h / 24:.1f}")
    return _("{n} h").format(n=f"{h:.0f}")


def hover_text(fig: StageFigures, prev: StageFigures | None) -> str:
    parts = [
        f"{stage_label(fig.stage)}: {fig.count}",
        _("amount {amount}").format(amount=format_fen(fig.amount_fen)),
        _("from previous stage {pct}").format(pct=format_pct(fig.next_conversion)),
        _("from lead {pct}").format(pct=format_pct(fig.cumulative_conversion)),
        _("median time in stage {t}").format(t=format_hours(fig.median_hours)),
    ]
    if fig.skipped:
        parts.append(_("{n} skipped this stage").format(n=fig.skipped))
    if prev is not None:
        parts.append(_("previous period {n}").format(n=prev.count))
    return " · ".join(parts)


class FunnelChart(QWidget):
    sig_stage_clicked = Signal(str)
    """A stage band was clicked; carries the stage id ("lead" … "payment")."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.result: FunnelResult | None = None
        self.hover_label = QLabel(" ")
        self.hover_label.setObjectName("Muted")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.hover_label.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumSize(420, 300)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        n = len(STAGE_ORDER)
        self.plot.setXRange(-1.05, 1.75, padding=0)
        self.plot.setYRange(-n + 0.4, 0.6, padding=0)
        ys = [-k for k in range(n)]
        self.bands = pg.BarGraphItem(
            x0=[0.0] * n,
            y=ys,
            width=[0.0] * n,
            height=BAND_HEIGHT,
            brushes=list(BAND_COLORS),
            pens=[pg.mkPen(None)] * n,
        )
        self.previous = pg.BarGraphItem(
            x0=[0.0] * n,
            y=ys,
            width=[0.0] * n,
            height=BAND_HEIGHT + 0.1,
            brush=pg.mkBrush(0, 0, 0, 0),
            pen=pg.mkPen("#d97706", width=1.5, style=Qt.PenStyle.DashLine),
        )
        self.plot.addItem(self.previous)
        self.plot.addItem(self.bands)
        self.name_items: list[pg.TextItem] = []
        self.value_items: list[pg.TextItem] = []
        for k in range(n):
            name = pg.TextItem("", color="#323f4b", anchor=(1, 0.5))
            name.setPos(-0.56, -k)
            value = pg.TextItem("", color="#323f4b", anchor=(0, 0.5))
            value.setPos(0.56, -k)
            self.plot.addItem(name)
            self.plot.addItem(value)
            self.name_items.append(name)
            self.value_items.append(value)
        self.empty_item = pg.TextItem("", color="#7b8794", anchor=(0.5, 0.5))
        self.empty_item.setPos(0, -(n - 1) / 2)
        self.plot.addItem(self.empty_item)
        self._hovered: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.hover_label)
        lay.addWidget(self.plot, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # ------------------------------------------------------------------ data

    def set_result(self, result: FunnelResult) -> None:
        self.result = result
        counts = [s.count for s in result.stages]
        prev_counts = [s.count for s in result.previous.stages] if result.previous else []
        top = max([*counts, *prev_counts, 1])
        widths = [self._width(c, top) for c in counts]
        self.bands.setOpts(x0=[-w / 2 for w in widths], width=widths)
        pw = [self._width(c, top) for c in prev_counts] or [0.0] * len(counts)
        outline = pg.mkPen("#d97706", width=1.5, style=Qt.PenStyle.DashLine)
        self.previous.setOpts(
            x0=[-w / 2 for w in pw],
            width=pw,
            # a zero-width outline would draw as a stray vertical line
            pens=[outline if w > 0 else pg.mkPen(None) for w in pw],
        )
        self.previous.setVisible(bool(prev_counts))
        for k, fig in enumerate(result.stages):
            self.name_items[k].setText(stage_label(fig.stage))
            parts = [str(fig.count), format_fen(fig.amount_fen)]
            if k > 0:
                parts.append(_("{pct} of previous").format(pct=format_pct(fig.next_conversion)))
            text = "  ·  ".join(parts)
            if result.previous is not None:
                change = fig.count - result.previous.stages[k].count
                text += f"  ({'+' if change >= 0 else ''}{change})"
            self.value_items[k].setText(text)
        self.empty_item.setText(_("No opportunities in this period") if result.is_empty else "")
        self.hover_label.setText(self._idle_text())

    def _idle_text(self) -> str:
        hint = _("Point at a stage for its figures; click it to list its opportunities.")
        if self.result is not None and self.result.previous is not None:
            hint += " " + _("Dashed outline and (±n): the previous period.")
        return hint

    @staticmethod
    def _width(count: int, top: int) -> float:
        return 0.0 if count <= 0 else max(MIN_BAND, count / top)

    # ------------------------------------------------------------------ mouse

    def stage_at(self, x: float, y: float) -> int | None:
        """Index of the band under data point (x, y), or None."""
        if self.result is None:
            return None
        k = round(-y)
        if not 0 <= k < len(self.result.stages) or abs(-y - k) > BAND_HEIGHT / 2:
            return None
        half = self._width(self.result.stages[k].count, self._top()) / 2
        # the labels beside a band count as the band too: small bands stay easy to hit
        return k if abs(x) <= max(half, 1.2) else None

    def _top(self) -> int:
        assert self.result is not None
        prev = [s.count for s in self.result.previous.stages] if self.result.previous else []
        return max([*(s.count for s in self.result.stages), *prev, 1])

    def stage_pos(self, stage: str) -> QPoint:
        """Widget coordinates of the centre of a stage's band (for tests and tooltips)."""
        k = [s.value for s in STAGE_ORDER].index(stage)
        vb = self.plot.getPlotItem().vb
        scene = vb.mapViewToScene(QPointF(0.0, float(-k)))
        view_pt = self.plot.mapFromScene(scene)
        return self.plot.mapTo(self, view_pt)

    def _on_mouse_moved(self, pos) -> None:
        if self.result is None:
            return
        p = self.plot.getPlotItem().vb.mapSceneToView(pos)
        k = self.stage_at(p.x(), p.y())
        if k == self._hovered:
            return
        self._hovered = k
        self.bands.setOpts(
            brushes=[
                QColor(c).lighter(125) if i == k else QColor(c) for i, c in enumerate(BAND_COLORS)
            ]
        )
        if k is None:
            self.hover_label.setText(self._idle_text())
            self.setCursor(Qt.CursorShape.ArrowCursor)
            return
        prev = self.result.previous.stages[k] if self.result.previous else None
        self.hover_label.setText(hover_text(self.result.stages[k], prev))
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def _on_mouse_clicked(self, event) -> None:
        if self.result is None or event.button() != Qt.MouseButton.LeftButton:
            return
        p = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())
        k = self.stage_at(p.x(), p.y())
        if k is not None and not math.isnan(p.x()):
            self.sig_stage_clicked.emit(self.result.stages[k].stage)
