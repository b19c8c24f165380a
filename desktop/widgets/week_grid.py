"""A staff × days week grid with shift blocks, a per-day demand strip, mouse and keyboard.

Rows are people, columns the seven days; inside a day column the x axis is the time of day
(the same hour range for every day), so blocks line up with the demand bars above them.

Mouse: drag on an empty cell to create, drag a block to move it (to another day or person),
drag a block's left/right edge to resize; double-click edits. Keyboard on a selected block:
←/→ 30 minutes, Shift+←/→ one day, ↑/↓ the previous/next person, Alt+←/→ shorten/lengthen by
30 minutes, Delete removes, Enter edits, Tab/Shift+Tab select the next/previous block.

The grid never edits data itself: it emits ``sig_*_requested`` and the screen turns them
into mutations, then hands the grid the reloaded week.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHideEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QToolTip, QWidget

from core.i18n import _
from core.scheduling.rules import WEEKDAY_LABELS

NAME_W = 132
HEAD_H = 28
DEMAND_H = 46
ROW_H = 44
PAD = 4
SNAP_MIN = 30
EDGE_PX = 5

ROLE_COLOURS = {
    "manager": QColor("#8e44ad"),
    "keyholder": QColor("#2f6fdf"),
    "sales": QColor("#16a085"),
    "cashier": QColor("#d68910"),
    "stock": QColor("#7f8c8d"),
}


@dataclass(frozen=True)
class GridRow:
    staff_id: int
    name: str
    role_label: str


@dataclass(frozen=True)
class GridShift:
    """A shift as drawn: store-local naive times."""

    id: str
    staff_id: int
    role: str
    role_label: str
    start: dt.datetime
    end: dt.datetime
    status: str  # draft | published
    version: int
    severity: str | None = None  # hard | soft | None: the worst finding touching it


@dataclass(frozen=True)
class GridHour:
    day: dt.date
    hour: int
    forecast: float | None
    required: int
    scheduled: float

    @property
    def short(self) -> bool:
        return self.scheduled + 1e-6 < self.required


def _fmt_t(t: dt.datetime) -> str:
    return f"{t:%H:%M}"


def _fmt_short(t: dt.datetime) -> str:
    """'16' for 16:00, '16:30' otherwise: fits narrow blocks."""
    return f"{t:%H}" if t.minute == 0 else f"{t:%H:%M}"


class WeekGrid(QWidget):
    sig_create_requested = Signal(int, object, object)
    """(staff_id, start, end) local naive datetimes: the user dragged out a new shift."""

    sig_change_requested = Signal(str, int, object, object)
    """(shift_id, staff_id, start, end): the user moved or resized a shift."""

    sig_delete_requested = Signal(str)
    """(shift_id): the user pressed Delete on the selected shift."""

    sig_edit_requested = Signal(str)
    """(shift_id): the user pressed Enter or double-clicked a shift."""

    sig_selection_changed = Signal(object)
    """(shift_id or None)."""

    sig_drag_finished = Signal()
    """A mouse drag ended (after its create/change request, if any, was emitted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setObjectName("WeekGrid")
        self.week_start = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
        self.today: dt.date | None = None
        self.rows: list[GridRow] = []
        self.shifts: list[GridShift] = []
        self.hours: dict[dt.date, list[GridHour]] = {}
        self.h0, self.h1 = 7, 23
        self.selected_id: str | None = None
        self.read_only = False
        self._drag: dict | None = None
        self._ghost: tuple[int, dt.datetime, dt.datetime] | None = None

    # ------------------------------------------------------------------ data

    def set_week(
        self,
        week_start: dt.date,
        rows: list[GridRow],
        shifts: list[GridShift],
        hours: list[GridHour],
        *,
        h0: int,
        h1: int,
        today: dt.date | None = None,
    ) -> None:
        self.week_start = week_start
        self.rows = rows
        self.shifts = sorted(shifts, key=lambda s: (s.start, s.staff_id, s.id))
        self.hours = {}
        for h in hours:
            self.hours.setdefault(h.day, []).append(h)
        self.today = today
        self.h0, self.h1 = max(0, h0), min(24, max(h1, h0 + 1))
        if self.selected_id not in {s.id for s in self.shifts}:
            self.selected_id = None
        self._drag = None
        self._ghost = None
        self.updateGeometry()
        self.update()

    @property
    def dragging(self) -> bool:
        """A mouse drag (move, resize or draw) is in progress: ``set_week`` would drop it."""
        return self._drag is not None

    def shift(self, shift_id: str | None) -> GridShift | None:
        return next((s for s in self.shifts if s.id == shift_id), None)

    def put_shift(self, shift_id: str, shift: GridShift | None) -> None:
        """Show an edit's expected outcome before the reload (None removes the block)."""
        self.shifts = [s for s in self.shifts if s.id != shift_id]
        if shift is not None:
            self.shifts.append(shift)
            self.shifts.sort(key=lambda s: (s.start, s.staff_id, s.id))
        elif self.selected_id == shift_id:
            self.select(None)
        self.update()

    def select(self, shift_id: str | None) -> None:
        if shift_id != self.selected_id:
            self.selected_id = shift_id
            self.sig_selection_changed.emit(shift_id)
            self.update()

    # ------------------------------------------------------------------ geometry

    def sizeHint(self) -> QSize:
        return QSize(NAME_W + 7 * 150, HEAD_H + DEMAND_H + max(1, len(self.rows)) * ROW_H + 2)

    def minimumSizeHint(self) -> QSize:
        return QSize(NAME_W + 7 * 96, HEAD_H + DEMAND_H + max(1, len(self.rows)) * ROW_H + 2)

    def col_w(self) -> float:
        return max(40.0, (self.width() - NAME_W - 1) / 7.0)

    def col_x(self, col: int) -> float:
        return NAME_W + col * self.col_w()

    def row_y(self, row: int) -> float:
        return HEAD_H + DEMAND_H + row * ROW_H

    def _span_min(self) -> int:
        return (self.h1 - self.h0) * 60

    def x_of(self, col: int, minute: float) -> float:
        inner = self.col_w() - 2 * PAD
        return self.col_x(col) + PAD + (minute - self.h0 * 60) / self._span_min() * inner

    def minute_at(self, col: int, x: float) -> float:
        inner = self.col_w() - 2 * PAD
        m = self.h0 * 60 + (x - self.col_x(col) - PAD) / inner * self._span_min()
        return min(max(m, self.h0 * 60), self.h1 * 60)

    def col_at(self, x: float) -> int | None:
        if x < NAME_W:
            return None
        return min(6, max(0, int((x - NAME_W) // self.col_w())))

    def row_at(self, y: float) -> int | None:
        r = math.floor((y - HEAD_H - DEMAND_H) / ROW_H)
        return r if 0 <= r < len(self.rows) else None

    def _row_of(self, staff_id: int) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r.staff_id == staff_id), None)

    def day(self, col: int) -> dt.date:
        return self.week_start + dt.timedelta(days=col)

    def segments(
        self, staff_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[QRectF, bool, bool]]:
        """Screen rects of a shift, split at midnight: (rect, has_real_start, has_real_end)."""
        row = self._row_of(staff_id)
        if row is None:
            return []
        out = []
        cur = start
        while cur < end:
            day = cur.date()
            midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0))
            piece_end = min(end, midnight)
            col = (day - self.week_start).days
            if 0 <= col < 7:
                a = cur.hour * 60 + cur.minute
                b = 24 * 60 if piece_end == midnight else piece_end.hour * 60 + piece_end.minute
                xa = self.x_of(col, max(a, self.h0 * 60))
                xb = self.x_of(col, min(b, self.h1 * 60))
                if xb - xa < 3:
                    xb = xa + 3
                y = self.row_y(row)
                out.append((QRectF(xa, y + 3, xb - xa, ROW_H - 6), cur == start, piece_end == end))
            cur = piece_end
        return out

    def block_rects(self, shift_id: str) -> list[QRectF]:
        s = self.shift(shift_id)
        return [r for r, _a, _b in self.segments(s.staff_id, s.start, s.end)] if s else []

    def cell_point(self, staff_id: int, day: dt.date, hh: int, mm: int = 0) -> QPointF:
        """The screen point of a time in a person's row (tests and accessibility helpers)."""
        row = self._row_of(staff_id)
        assert row is not None
        col = (day - self.week_start).days
        return QPointF(self.x_of(col, hh * 60 + mm), self.row_y(row) + ROW_H / 2)

    def _hit(self, pos: QPointF) -> tuple[GridShift, str] | None:
        """The shift under ``pos`` and the part hit: 'left', 'right' or 'body'."""
        for s in reversed(self.shifts):
            for rect, real_start, real_end in self.segments(s.staff_id, s.start, s.end):
                if rect.adjusted(-2, 0, 2, 0).contains(pos):
                    if real_start and abs(pos.x() - rect.left()) <= EDGE_PX and rect.width() > 14:
                        return s, "left"
                    if real_end and abs(pos.x() - rect.right()) <= EDGE_PX and rect.width() > 14:
                        return s, "right"
                    return s, "body"
        return None

    @staticmethod
    def _snap(minute: float) -> int:
        return int(round(minute / SNAP_MIN) * SNAP_MIN)

    def _at(self, col: int, minute: int) -> dt.datetime:
        return dt.datetime.combine(self.day(col), dt.time(0)) + dt.timedelta(minutes=minute)

    # ------------------------------------------------------------------ mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        hit = self._hit(pos)
        if hit is not None:
            s, part = hit
            self.select(s.id)
            if self.read_only:
                return
            col = self.col_at(pos.x())
            grab = self._at(col, int(self.minute_at(col, pos.x()))) if col is not None else s.start
            self._drag = {
                "mode": part,
                "id": s.id,
                "grab": grab - s.start,
                "moved": False,
                "press": pos,
            }
            return
        self.select(None)
        row, col = self.row_at(pos.y()), self.col_at(pos.x())
        if row is None or col is None or self.read_only:
            return
        minute = self._snap(self.minute_at(col, pos.x()))
        self._drag = {
            "mode": "create",
            "row": row,
            "col": col,
            "from": minute,
            "moved": False,
            "press": pos,
        }

    def _drag_target(self, pos: QPointF) -> tuple[int, dt.datetime, dt.datetime] | None:
        d = self._drag
        if d is None:
            return None
        if d["mode"] == "create":
            col = d["col"]
            to = self._snap(self.minute_at(col, pos.x()))
            a, b = sorted((d["from"], to))
            if b - a < SNAP_MIN:
                return None
            return self.rows[d["row"]].staff_id, self._at(col, a), self._at(col, b)
        s = self.shift(d["id"])
        if s is None:
            return None
        col = self.col_at(pos.x())
        if col is None:
            col = 0
        minute = self._snap(self.minute_at(col, pos.x()))
        if d["mode"] == "body":
            row = self.row_at(pos.y())
            staff = self.rows[row].staff_id if row is not None else s.staff_id
            raw = self._at(col, int(self.minute_at(col, pos.x()))) - d["grab"]
            snapped = raw.replace(minute=0, second=0, microsecond=0) + dt.timedelta(
                minutes=self._snap(raw.minute)
            )
            return staff, snapped, snapped + (s.end - s.start)
        if d["mode"] == "left":
            start = dt.datetime.combine(s.start.date(), dt.time(0)) + dt.timedelta(minutes=minute)
            start = min(start, s.end - dt.timedelta(minutes=SNAP_MIN))
            return s.staff_id, start, s.end
        end_day = s.end.date() if s.end.time() != dt.time(0) else s.start.date()
        end = dt.datetime.combine(end_day, dt.time(0)) + dt.timedelta(minutes=minute)
        end = max(end, s.start + dt.timedelta(minutes=SNAP_MIN))
        return s.staff_id, s.start, end

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is None:
            hit = self._hit(pos)
            if hit is not None and hit[1] in ("left", "right") and not self.read_only:
                self.setCursor(Qt.CursorShape.SizeHorCursor)
            elif hit is not None and not self.read_only:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.unsetCursor()
            return
        self._drag["moved"] = True
        self._ghost = self._drag_target(pos)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        d, self._drag = self._drag, None
        if d is None:
            return
        try:
            self._finish_drag(d, event.position())
        finally:
            self.sig_drag_finished.emit()

    def _finish_drag(self, d: dict, pos: QPointF) -> None:
        if (pos - d["press"]).manhattanLength() > 3:
            d["moved"] = True
        target = self._drag_target_from(d, pos)
        self._ghost = None
        self.update()
        if not d["moved"] or target is None:
            return
        staff_id, start, end = target
        if d["mode"] == "create":
            self.sig_create_requested.emit(staff_id, start, end)
            return
        s = self.shift(d["id"])
        if s is not None and (staff_id, start, end) != (s.staff_id, s.start, s.end):
            self.sig_change_requested.emit(s.id, staff_id, start, end)

    def hideEvent(self, event: QHideEvent) -> None:
        """A hidden grid gets no release: drop the drag so a deferred reload is not held."""
        if self._drag is not None:
            self._drag, self._ghost = None, None
            self.sig_drag_finished.emit()
        super().hideEvent(event)

    def _drag_target_from(
        self, d: dict, pos: QPointF
    ) -> tuple[int, dt.datetime, dt.datetime] | None:
        saved, self._drag = self._drag, d
        try:
            return self._drag_target(pos)
        finally:
            self._drag = saved

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        hit = self._hit(event.position())
        if hit is not None:
            self.select(hit[0].id)
            self.sig_edit_requested.emit(hit[0].id)

    # ------------------------------------------------------------------ keyboard

    def focusNextPrevChild(self, forward: bool) -> bool:
        """Tab walks through the blocks; past the last one focus leaves the grid."""
        if not self.shifts:
            return super().focusNextPrevChild(forward)
        ids = [s.id for s in self.shifts]
        if self.selected_id not in ids:
            self.select(ids[0] if forward else ids[-1])
            return True
        i = ids.index(self.selected_id) + (1 if forward else -1)
        if 0 <= i < len(ids):
            self.select(ids[i])
            return True
        self.select(None)
        return super().focusNextPrevChild(forward)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        s = self.shift(self.selected_id)
        key, mods = event.key(), event.modifiers()
        if s is None:
            if key in (Qt.Key.Key_Right, Qt.Key.Key_Down) and self.shifts:
                self.select(self.shifts[0].id)
                return
            super().keyPressEvent(event)
            return
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            if not self.read_only:
                self.sig_delete_requested.emit(s.id)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.sig_edit_requested.emit(s.id)
            return
        if key == Qt.Key.Key_Escape:
            self.select(None)
            return
        if self.read_only:
            super().keyPressEvent(event)
            return
        step = dt.timedelta(minutes=SNAP_MIN)
        staff, start, end = s.staff_id, s.start, s.end
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            sign = -1 if key == Qt.Key.Key_Left else 1
            if mods & Qt.KeyboardModifier.AltModifier:
                end = max(start + step, end + sign * step)
            elif mods & Qt.KeyboardModifier.ShiftModifier:
                start, end = start + sign * dt.timedelta(days=1), end + sign * dt.timedelta(days=1)
            else:
                start, end = start + sign * step, end + sign * step
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            row = self._row_of(s.staff_id)
            new_row = (row or 0) + (-1 if key == Qt.Key.Key_Up else 1)
            if not 0 <= new_row < len(self.rows):
                return
            staff = self.rows[new_row].staff_id
        else:
            super().keyPressEvent(event)
            return
        self.sig_change_requested.emit(s.id, staff, start, end)

    # ------------------------------------------------------------------ tooltips

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            text = self.tooltip_at(e.position() if hasattr(e, "position") else QPointF(e.pos()))
            if text:
                QToolTip.showText(e.globalPos(), text, self)
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)

    def tooltip_at(self, pos: QPointF) -> str:
        hit = self._hit(pos)
        if hit is not None:
            s = hit[0]
            row = self._row_of(s.staff_id)
            name = self.rows[row].name if row is not None else ""
            status = _("Published") if s.status == "published" else _("Draft")
            return f"{name} · {s.role_label} · {_fmt_t(s.start)}–{_fmt_t(s.end)} · {status}"
        col = self.col_at(pos.x())
        if col is not None and HEAD_H <= pos.y() < HEAD_H + DEMAND_H:
            minute = self.minute_at(col, pos.x())
            hour = int(minute // 60)
            for h in self.hours.get(self.day(col), []):
                if h.hour == hour:
                    fc = "—" if h.forecast is None else f"{h.forecast:.0f}"
                    return _(
                        "{hour}:00–{next}:00 · forecast {forecast} visitors · needed {required}"
                        " · scheduled {scheduled}"
                    ).format(
                        hour=f"{h.hour:02d}",
                        next=f"{h.hour + 1:02d}",
                        forecast=fc,
                        required=h.required,
                        scheduled=f"{h.scheduled:.1f}".rstrip("0").rstrip("."),
                    )
        return ""

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#ffffff"))
        base = QFont(self.font())
        small = QFont(base)
        small.setPointSizeF(max(7.5, base.pointSizeF() - 1.5))
        bold = QFont(base)
        bold.setBold(True)
        grid_pen = QPen(QColor("#dfe3e8"))
        body_top = HEAD_H + DEMAND_H
        # rows
        for i, row in enumerate(self.rows):
            y = self.row_y(i)
            if i % 2:
                p.fillRect(QRectF(0, y, w, ROW_H), QColor("#f7f9fb"))
            p.setPen(QColor("#1f2d3d"))
            p.setFont(base)
            fm = QFontMetrics(base)
            p.drawText(
                QRectF(8, y + 3, NAME_W - 12, ROW_H / 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(row.name, Qt.TextElideMode.ElideRight, NAME_W - 12),
            )
            p.setFont(small)
            p.setPen(QColor("#6b7785"))
            p.drawText(
                QRectF(8, y + ROW_H / 2, NAME_W - 12, ROW_H / 2 - 3),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                row.role_label,
            )
        # columns, header, demand strip
        for c in range(7):
            x = self.col_x(c)
            day = self.day(c)
            if day == self.today:
                p.fillRect(QRectF(x, 0, self.col_w(), h), QColor(47, 111, 223, 18))
            p.setPen(QColor("#1f2d3d"))
            p.setFont(bold)
            p.drawText(
                QRectF(x, 0, self.col_w(), HEAD_H),
                Qt.AlignmentFlag.AlignCenter,
                f"{_(WEEKDAY_LABELS[day.weekday()])} {day:%m-%d}",
            )
            self._paint_demand(p, c, day)
            p.setPen(grid_pen)
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.setPen(grid_pen)
        p.drawLine(QPointF(0, HEAD_H), QPointF(w, HEAD_H))
        p.drawLine(QPointF(0, body_top), QPointF(w, body_top))
        for i in range(len(self.rows) + 1):
            y = self.row_y(i)
            p.drawLine(QPointF(0, y), QPointF(w, y))
        p.setFont(small)
        p.setPen(QColor("#6b7785"))
        p.drawText(
            QRectF(8, HEAD_H, NAME_W - 12, DEMAND_H),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap,
            _("Staff needed vs scheduled"),
        )
        # blocks
        dragging = self._drag["id"] if self._drag and self._drag.get("id") else None
        for s in self.shifts:
            faded = dragging == s.id and self._ghost is not None
            self._paint_block(p, s, small, faded=faded)
        if self._ghost is not None:
            staff_id, start, end = self._ghost
            for rect, _a, _b in self.segments(staff_id, start, end):
                p.setPen(QPen(QColor("#2f6fdf"), 1.5, Qt.PenStyle.DashLine))
                p.setBrush(QColor(47, 111, 223, 50))
                p.drawRoundedRect(rect, 4, 4)
                p.setPen(QColor("#1f2d3d"))
                p.setFont(small)
                p.drawText(
                    rect.adjusted(3, 0, -2, 0),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    f"{_fmt_t(start)}–{_fmt_t(end)}",
                )
        if not self.rows:
            p.setPen(QColor("#6b7785"))
            p.setFont(base)
            p.drawText(
                QRectF(0, body_top, w, ROW_H),
                Qt.AlignmentFlag.AlignCenter,
                _("No staff in this store."),
            )
        p.end()

    def _paint_demand(self, p: QPainter, col: int, day: dt.date) -> None:
        hours = self.hours.get(day, [])
        if not hours:
            return
        top, height = HEAD_H + 4, DEMAND_H - 8
        peak = max(max(h.required for h in hours), max(h.scheduled for h in hours), 1)
        green, red = QColor("#58b67a"), QColor("#e5735f")
        for h in hours:
            xa = self.x_of(col, max(h.hour * 60, self.h0 * 60))
            xb = self.x_of(col, min((h.hour + 1) * 60, self.h1 * 60))
            width = max(1.0, xb - xa - 1)
            need_y = top + height - height * h.required / peak
            have_y = top + height - height * min(h.scheduled, peak) / peak
            p.fillRect(QRectF(xa, have_y, width, top + height - have_y), green)
            if h.short:  # the missing people, stacked on what is scheduled
                p.fillRect(QRectF(xa, need_y, width, have_y - need_y), red)
            else:
                p.setPen(QPen(QColor("#1f2d3d"), 1.0))
                p.drawLine(QPointF(xa, need_y), QPointF(xa + width, need_y))
        p.setPen(QPen(QColor("#c3cad3"), 1.0))
        p.drawLine(
            QPointF(self.col_x(col) + PAD, top + height),
            QPointF(self.col_x(col) + self.col_w() - PAD, top + height),
        )

    def _paint_block(self, p: QPainter, s: GridShift, font: QFont, *, faded: bool) -> None:
        colour = ROLE_COLOURS.get(s.role, QColor("#7f8c8d"))
        published = s.status == "published"
        fm = QFontMetrics(font)
        for rect, _a, _b in self.segments(s.staff_id, s.start, s.end):
            if published:
                fill, text_col = QColor(colour), QColor("#ffffff")
                pen = QPen(colour.darker(130), 1.2)
            else:
                fill = QColor(
                    (colour.red() + 3 * 255) // 4,
                    (colour.green() + 3 * 255) // 4,
                    (colour.blue() + 3 * 255) // 4,
                )
                text_col = colour.darker(175)
                pen = QPen(colour, 1.4, Qt.PenStyle.DashLine)
            if faded:
                fill.setAlpha(70)
            if s.severity == "hard":
                pen = QPen(QColor("#c0392b"), 2.4)
            if s.id == self.selected_id:
                pen = QPen(QColor("#111111"), 2.6)
            p.setPen(pen)
            p.setBrush(fill)
            p.drawRoundedRect(rect, 4, 4)
            if s.severity in ("hard", "soft"):
                mark = QColor("#c0392b") if s.severity == "hard" else QColor("#f39c12")
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(mark)
                p.drawEllipse(QPointF(rect.right() - 5, rect.top() + 5), 3.2, 3.2)
            p.setPen(text_col)
            p.setFont(font)
            inner = rect.adjusted(4, 2, -6, -2)
            # Narrow blocks drop detail rather than show "…": full times, short times, then
            # start and end stacked (the role stays in the tooltip and the row's label).
            lines = [s.role_label, f"{_fmt_t(s.start)}–{_fmt_t(s.end)}"]
            if inner.width() < fm.horizontalAdvance(lines[1]):
                lines[1] = f"{_fmt_short(s.start)}–{_fmt_short(s.end)}"
            if inner.width() < max(fm.horizontalAdvance(line) for line in lines):
                lines = [f"{_fmt_short(s.start)}–", _fmt_short(s.end)]
            text = "\n".join(
                fm.elidedText(line, Qt.TextElideMode.ElideRight, int(inner.width()))
                for line in lines
            )
            p.drawText(inner, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
