"""The Schedule screen (排班): a store's week of shifts against demand, and the rota rules.

Data comes from :func:`core.scheduling.week.load_week` on the DB worker; every edit is a
``shift.*`` mutation through ``ctx.edit`` (local transaction + outbox, re-validated by the
server on push). A hard-rule refusal arrives as :class:`core.mutations.Rejected` and is
shown as the rule's explanation; nothing changes. A stale edit rejected by the server
becomes a sync conflict that the shell's conflict screen resolves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QDate, Qt, QTime, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from core.i18n import N_, _
from core.models import StaffRole, new_id
from core.mutations import Changes, Conflict, MutationError, Rejected
from core.scheduling.mutations import CopyPlan, plan_copy_previous
from core.scheduling.rules import WEEKDAY_LABELS, ShiftSpan, role_label
from core.scheduling.solver import Proposal, propose_rota
from core.scheduling.week import WeekSchedule, load_week
from core.timeutil import tz, week_label
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.week_grid import GridHour, GridRow, GridShift, WeekGrid


def _local(instant: dt.datetime, zone: str) -> dt.datetime:
    return instant.astimezone(tz(zone)).replace(tzinfo=None)


def _instant(local: dt.datetime, zone: str) -> str:
    """A store-local wall time as an ISO instant with its offset (mutation args)."""
    return local.replace(tzinfo=tz(zone)).isoformat()


def visible_hours(week: WeekSchedule, shifts: list[GridShift]) -> tuple[int, int]:
    """The hour range every day column shows: opening hours plus an hour either side,
    widened to the whole day when a shift runs past midnight (night stock takes)."""
    store = week.store
    h0 = store.opens_at.hour - 1
    h1 = store.closes_at.hour + (1 if store.closes_at.minute else 0) + 1
    for s in shifts:
        if s.end.date() != s.start.date():
            if s.end.time() != dt.time(0):
                return 0, 24
            h1 = 24
        else:
            h1 = max(h1, s.end.hour + (1 if s.end.minute else 0))
        h0 = min(h0, s.start.hour)
    return max(0, h0), min(24, h1)


class ShiftDialog(QDialog):
    """Edit one shift's person, role, day, times and note (Enter on a block)."""

    def __init__(self, week: WeekSchedule, shift: ShiftSpan, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Edit shift"))
        zone = week.store.timezone
        start, end = _local(shift.start, zone), _local(shift.end, zone)
        self.staff = QComboBox()
        for p in week.staff:
            self.staff.addItem(p.name, p.id)
        self.staff.setCurrentIndex(max(0, self.staff.findData(shift.staff_id)))
        self.role = QComboBox()
        for r in StaffRole:
            self.role.addItem(role_label(r.value), r.value)
        self.role.setCurrentIndex(max(0, self.role.findData(shift.role)))
        self.day = QDateEdit(QDate(start.year, start.month, start.day))
        self.day.setDisplayFormat("yyyy-MM-dd")
        self.start = QTimeEdit(QTime(start.hour, start.minute))
        self.end = QTimeEdit(QTime(end.hour, end.minute))
        for t in (self.start, self.end):
            t.setDisplayFormat("HH:mm")
        self.note = QLineEdit(shift.note)
        form = QFormLayout(self)
        form.addRow(_("Staff"), self.staff)
        form.addRow(_("Role"), self.role)
        form.addRow(_("Day"), self.day)
        form.addRow(_("Start"), self.start)
        form.addRow(_("End"), self.end)
        form.addRow(_("Note"), self.note)
        buttons = QDialogButtonBox()
        buttons.addButton(_("Save"), QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(_("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[int, str, dt.datetime, dt.datetime, str]:
        """(staff_id, role, start, end, note); an end at/before the start means next day."""
        d = self.day.date().toPython()
        start = dt.datetime.combine(d, self.start.time().toPython())
        end = dt.datetime.combine(d, self.end.time().toPython())
        if end <= start:
            end += dt.timedelta(days=1)
        return self.staff.currentData(), self.role.currentData(), start, end, self.note.text()


class ProposalDialog(QDialog):
    """The proposed drafts, each with a check box, and the needs left open."""

    def __init__(self, week: WeekSchedule, proposal: Proposal, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Proposed rota"))
        self.resize(620, 520)
        self.proposal = proposal
        names = {p.id: p.name for p in week.staff}
        zone = week.store.timezone
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                _(
                    "{n} draft shifts ({hours} h) for the open needs of {week}. Untick any you "
                    "do not want, then save them as drafts; nothing is published."
                ).format(
                    n=len(proposal.shifts),
                    hours=f"{proposal.staff_hours_after - proposal.staff_hours_before:.0f}",
                    week=week_label(proposal.week_start),
                )
            )
        )
        self.list = QListWidget()
        for s in proposal.shifts:
            a, b = _local(s.start, zone), _local(s.end, zone)
            item = QListWidgetItem(
                f"{_(WEEKDAY_LABELS[a.weekday()])} {a:%m-%d}  {a:%H:%M}–{b:%H:%M}  "
                f"{names.get(s.staff_id, s.staff_id)} · {role_label(s.role)}"
            )
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            self.list.addItem(item)
        lay.addWidget(self.list, 3)
        if proposal.remaining:
            lay.addWidget(QLabel(_("Still open after this proposal:")))
            left = QListWidget()
            for v in proposal.remaining:
                left.addItem(v.message())
            left.setWordWrap(True)
            lay.addWidget(left, 2)
        buttons = QDialogButtonBox()
        buttons.addButton(_("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        self.save = buttons.addButton(_("Save as drafts"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.save.setEnabled(bool(proposal.shifts))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def chosen(self) -> list[ShiftSpan]:
        keep = {
            self.list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        }
        return [s for s in self.proposal.shifts if s.id in keep]


class ScheduleView(QWidget):
    sig_loaded = Signal()
    """The week on screen was (re)loaded."""

    sig_message = Signal(str)
    """A message was shown in the banner (already translated)."""

    def __init__(self, ctx: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.week_start = ctx.selection.week_start
        self.week: WeekSchedule | None = None
        self._request = 0
        self.proposal_dialog: ProposalDialog | None = None
        self.edit_dialog: ShiftDialog | None = None
        self.last_copy: CopyPlan | None = None
        self._inflight: dict[str, int] = {}  # shift id -> edits queued, not yet applied
        self._failed: set[str] = set()  # shifts whose queued edits hit a refusal
        self._reload_after_drag = False  # a read arrived during a drag and was set aside

        self.prev_button = QPushButton("◀ " + _("Previous week"))
        self.next_button = QPushButton(_("Next week") + " ▶")
        self.week_label = QLabel()
        self.week_label.setObjectName("ScheduleWeek")
        self.week_label.setStyleSheet("font-weight: 600; padding: 0 8px;")
        self.state_label = QLabel()
        self.copy_button = QPushButton(_("Copy last week"))
        self.propose_button = QPushButton(_("Propose rota"))
        self.publish_button = QPushButton(_("Publish"))
        self.publish_button.setObjectName("Primary")
        self.prev_button.clicked.connect(lambda: self._go(-7))
        self.next_button.clicked.connect(lambda: self._go(7))
        self.copy_button.clicked.connect(self._on_copy)
        self.propose_button.clicked.connect(self._on_propose)
        self.publish_button.clicked.connect(self._on_publish)
        bar = QHBoxLayout()
        for w in (self.prev_button, self.week_label, self.next_button):
            bar.addWidget(w)
        bar.addSpacing(12)
        bar.addWidget(self.state_label)
        bar.addStretch(1)
        for w in (self.copy_button, self.propose_button, self.publish_button):
            bar.addWidget(w)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        self.grid = WeekGrid()
        self.grid.sig_create_requested.connect(self._on_create)
        self.grid.sig_change_requested.connect(self._on_change)
        self.grid.sig_delete_requested.connect(self._on_delete)
        self.grid.sig_edit_requested.connect(self._on_edit)
        self.grid.sig_drag_finished.connect(self._on_drag_finished)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        self.rules_title = QLabel(_("Rule checks"))
        self.rules_title.setStyleSheet("font-weight: 600;")
        self.rules = QListWidget()
        self.rules.setWordWrap(True)
        self.rules.itemClicked.connect(self._on_rule_clicked)
        self.legend = QLabel(
            _(
                "Solid block: published · dashed: draft. Demand bars: green scheduled, red "
                "missing, line needed. Drag on an empty cell to add a shift, "
                "drag a block to move it, drag its edges to resize. Keys: ←/→ 30 min, "
                "Shift+←/→ one day, ↑/↓ another person, Alt+←/→ length, Delete, Enter to edit, "
                "Tab to select."
            )
        )
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color: #6b7785;")
        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        side_lay.addWidget(self.rules_title)
        side_lay.addWidget(self.rules, 1)
        side_lay.addWidget(self.legend)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([1000, 280])

        self.placeholder = QLabel(_("Pick a store to see its schedule."))
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.hide()

        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.message)
        lay.addWidget(self.placeholder)
        lay.addWidget(split, 1)
        self.split = split

        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(30)
        self._reload_timer.timeout.connect(self.reload)
        ctx.selection.sig_changed.connect(self._on_selection_changed)
        ctx.sig_data_changed.connect(self._on_data_changed)
        self.reload()

    # ------------------------------------------------------------------ loading

    @property
    def store_id(self) -> int | None:
        return self.ctx.selection.store_id

    def _on_selection_changed(self) -> None:
        self.week_start = self.ctx.selection.week_start
        self.reload()

    def _on_data_changed(self, changes: Changes) -> None:
        if changes.touches("shifts", "staff", "stores", "hourly_traffic"):
            self._reload_timer.start()

    def _on_drag_finished(self) -> None:
        if self._reload_after_drag:
            self._reload_after_drag = False
            self.reload()

    def _go(self, days: int) -> None:
        self.week_start += dt.timedelta(days=days)
        self.show_message("")
        self.reload()

    def reload(self) -> None:
        self._request += 1
        request = self._request
        store_id = self.store_id
        end = self.week_start + dt.timedelta(days=6)
        self.week_label.setText(
            f"{week_label(self.week_start)} · {self.week_start:%m-%d} – {end:%m-%d}"
        )
        has_store = store_id is not None
        self.placeholder.setVisible(not has_store)
        self.split.setVisible(has_store)
        for b in (self.copy_button, self.propose_button, self.publish_button):
            b.setEnabled(has_store)
        if not has_store:
            self.week = None
            return

        def done(week: WeekSchedule | None) -> None:
            # While edits are queued the grid shows their outcome already; a read taken
            # between them would step back. The last edit to settle reloads again.
            if request != self._request or self._inflight:
                return
            # A read landing mid-drag (a sync pulled shifts) would drop the drag and the
            # user's edit with it: read again once the drag has sent its edit.
            if self.grid.dragging:
                self._reload_after_drag = True
                return
            self._show(week)

        self.ctx.db.submit(
            load_week, store_id, self.week_start, on_result=done, on_error=self._on_error
        )

    def _show(self, week: WeekSchedule | None) -> None:
        self.week = week
        if week is None:
            self.grid.set_week(self.week_start, [], [], [], h0=8, h1=22)
            self.sig_loaded.emit()
            return
        zone = week.store.timezone
        worst: dict[str, str] = {}
        for v in week.violations:
            for sid in v.shift_ids:
                if worst.get(sid) != "hard":
                    worst[sid] = v.severity
        shifts = [
            GridShift(
                s.id,
                s.staff_id,
                s.role,
                role_label(s.role),
                _local(s.start, zone),
                _local(s.end, zone),
                s.status,
                s.version,
                worst.get(s.id),
            )
            for s in week.shifts
        ]
        rows = [GridRow(p.id, p.name, role_label(p.role)) for p in week.staff]
        hours = [
            GridHour(h.day, h.hour, h.forecast, h.required, h.scheduled)
            for d in week.demand.days
            for h in d.hours
        ]
        h0, h1 = visible_hours(week, shifts)
        self.grid.set_week(week.week_start, rows, shifts, hours, h0=h0, h1=h1, today=self.ctx.today)
        self._show_rules(week)
        self.state_label.setText(
            _("{drafts} draft · {published} published").format(
                drafts=week.draft_count, published=week.published_count
            )
            + (
                ""
                if week.demand.forecast_available
                else " · " + _("no traffic forecast: minimum staffing used")
            )
        )
        self.publish_button.setEnabled(week.draft_count > 0)
        self.sig_loaded.emit()

    def _show_rules(self, week: WeekSchedule) -> None:
        self.rules.clear()
        ordered = sorted(week.violations, key=lambda v: (not v.hard, v.day or dt.date.min, v.rule))
        if not ordered:
            item = QListWidgetItem("✓ " + _("No rule is broken this week."))
            item.setForeground(QColor("#1e8449"))
            self.rules.addItem(item)
        for v in ordered:
            prefix = "⛔ " if v.hard else "⚠ "
            item = QListWidgetItem(prefix + v.message())
            item.setForeground(QColor("#c0392b") if v.hard else QColor("#9a6400"))
            item.setData(Qt.ItemDataRole.UserRole, v.shift_ids[0] if v.shift_ids else None)
            item.setToolTip(v.message())
            self.rules.addItem(item)
        hard = sum(1 for v in week.violations if v.hard)
        soft = len(week.violations) - hard
        self.rules_title.setText(
            _("Rule checks: {hard} blocking, {soft} warnings").format(hard=hard, soft=soft)
        )

    def _on_rule_clicked(self, item: QListWidgetItem) -> None:
        shift_id = item.data(Qt.ItemDataRole.UserRole)
        if shift_id:
            self.grid.select(shift_id)
            self.grid.setFocus()

    # ------------------------------------------------------------------ messages

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        colour = "#c0392b" if error else "#1f5f3a"
        background = "#fdecea" if error else "#e9f7ef"
        self.message.setStyleSheet(
            f"color: {colour}; background: {background}; border-radius: 4px; padding: 6px 10px;"
        )
        if text:
            self.sig_message.emit(text)

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, Conflict):
            self.show_message(exc.message + " " + _("The schedule was reloaded."), error=True)
            self.reload()
        elif isinstance(exc, Rejected):
            self.show_message(_("Not saved: {why}").format(why=exc.message), error=True)
        elif isinstance(exc, MutationError):
            self.show_message(exc.message, error=True)
        else:
            from desktop.errors import user_message

            title, text = user_message(exc)
            self.show_message(f"{title}: {text}", error=True)

    # ------------------------------------------------------------------ edits

    def _zone(self) -> str:
        return self.week.store.timezone if self.week else "Asia/Shanghai"

    def _on_create(self, staff_id: int, start: dt.datetime, end: dt.datetime) -> None:
        if self.store_id is None:
            return
        role = next(
            (p.role for p in (self.week.staff if self.week else ()) if p.id == staff_id), "sales"
        )
        zone = self._zone()
        args = {
            "id": new_id(),
            "store_id": self.store_id,
            "staff_id": staff_id,
            "role": role,
            "start_at": _instant(start, zone),
            "end_at": _instant(end, zone),
            "note": "",
        }
        self.ctx.edit(
            "shift.create/1", args, on_done=self._on_saved(args["id"]), on_error=self._on_error
        )

    def _on_saved(self, shift_id: str | None):
        def done(_changes: Changes) -> None:
            self.show_message("")
            if shift_id:
                self.grid.selected_id = shift_id

        return done

    def _on_change(
        self, shift_id: str, staff_id: int, start: dt.datetime, end: dt.datetime
    ) -> None:
        s = self.grid.shift(shift_id)
        if s is None:
            return
        zone = self._zone()
        args: dict[str, Any] = {"id": shift_id}
        if staff_id != s.staff_id:
            args["staff_id"] = staff_id
        if start != s.start:
            args["start_at"] = _instant(start, zone)
        if end != s.end:
            args["end_at"] = _instant(end, zone)
        if len(args) == 1:
            return
        moved = replace(
            s, staff_id=staff_id, start=start, end=end, status="draft", version=s.version + 1
        )
        self._submit_shift_edit("shift.update/1", args, s.version, moved)

    def _on_delete(self, shift_id: str) -> None:
        s = self.grid.shift(shift_id)
        if s is None:
            return
        self._submit_shift_edit("shift.delete/1", {"id": shift_id}, s.version, None)

    def _submit_shift_edit(
        self, name: str, args: dict[str, Any], base_version: int, optimistic: GridShift | None
    ) -> None:
        """Queue an edit of one shift and show its result at once (optimistic), so quick
        repeated keys chain their base versions instead of conflicting with each other.

        The DB worker applies edits in order; if one is refused, the ones queued behind it
        fail too (their base version never came to be): only the first reason is shown,
        and the week is reloaded from the database once nothing is in flight."""
        shift_id = str(args["id"])
        self._inflight[shift_id] = self._inflight.get(shift_id, 0) + 1

        def settle() -> None:
            self._inflight[shift_id] -= 1
            if not self._inflight[shift_id]:
                del self._inflight[shift_id]
                self._failed.discard(shift_id)
            if not self._inflight:
                self._reload_timer.start()

        def ok(changes: Changes) -> None:
            settle()
            self._on_saved(shift_id if optimistic else None)(changes)

        def bad(exc: BaseException) -> None:
            first = shift_id not in self._failed
            self._failed.add(shift_id)
            settle()
            if first:
                self._on_error(exc)

        self.ctx.edit(name, args, base_version=base_version, on_done=ok, on_error=bad)
        self.grid.put_shift(shift_id, optimistic)

    def _on_edit(self, shift_id: str) -> None:
        if self.week is None:
            return
        span = next((s for s in self.week.shifts if s.id == shift_id), None)
        if span is None:
            return
        dialog = ShiftDialog(self.week, span, self)
        self.edit_dialog = dialog

        def accepted() -> None:
            staff_id, role, start, end, note = dialog.values()
            zone = self._zone()
            args: dict[str, Any] = {"id": shift_id}
            if staff_id != span.staff_id:
                args["staff_id"] = staff_id
            if role != span.role:
                args["role"] = role
            if start != _local(span.start, zone):
                args["start_at"] = _instant(start, zone)
            if end != _local(span.end, zone):
                args["end_at"] = _instant(end, zone)
            if note != span.note:
                args["note"] = note
            if len(args) > 1:
                self.ctx.edit(
                    "shift.update/1",
                    args,
                    base_version=span.version,
                    on_done=self._on_saved(shift_id),
                    on_error=self._on_error,
                )

        dialog.accepted.connect(accepted)
        dialog.open()

    def _on_publish(self) -> None:
        if self.store_id is None:
            return
        week = self.week_start

        def done(_changes: Changes) -> None:
            self.show_message(_("Week {week} published.").format(week=week_label(week)))

        self.ctx.edit(
            "shift.publish/1",
            {"store_id": self.store_id, "week_start": week.isoformat()},
            on_done=done,
            on_error=self._on_error,
        )

    def _on_copy(self) -> None:
        store_id, week = self.store_id, self.week_start
        if store_id is None:
            return
        self.copy_button.setEnabled(False)

        def planned(plan: CopyPlan) -> None:
            self.copy_button.setEnabled(True)
            self.last_copy = plan
            if not plan.items:
                self.show_message(_("Last week has no shifts to copy."), error=True)
                return
            if not plan.created:
                self.show_message(self._copy_summary(plan), error=True)
                return
            args = {
                "store_id": store_id,
                "source_week": plan.source_week.isoformat(),
                "target_week": plan.target_week.isoformat(),
                "new_ids": {i.source_id: i.span.id for i in plan.items},
            }
            self.ctx.edit(
                "shift.copy_week/1",
                args,
                on_done=lambda _c: self.show_message(
                    self._copy_summary(plan), error=bool(plan.skipped)
                ),
                on_error=self._on_error,
            )

        def failed(exc: BaseException) -> None:
            self.copy_button.setEnabled(True)
            self._on_error(exc)

        self.ctx.db.submit(plan_copy_previous, store_id, week, on_result=planned, on_error=failed)

    def _copy_summary(self, plan: CopyPlan) -> str:
        text = _("Copied {n} shifts from last week as drafts.").format(n=len(plan.created))
        if plan.skipped:
            reasons = "\n".join("• " + i.problems[0].message() for i in plan.skipped)
            text += " " + _("Skipped {n} that would break a rule:").format(n=len(plan.skipped))
            text += "\n" + reasons
        return text

    def _on_propose(self) -> None:
        store_id, week = self.store_id, self.week_start
        if store_id is None or self.week is None:
            return
        self.propose_button.setEnabled(False)
        self.show_message(_("Working out a rota…"))

        def proposed(proposal: Proposal | None) -> None:
            self.propose_button.setEnabled(True)
            self.show_message("")
            if proposal is None or self.week is None:
                return
            if not proposal.shifts:
                self.show_message(
                    _(
                        "Nothing to propose: no available person can fill the open needs without "
                        "breaking a rule."
                    ),
                    error=True,
                )
                return
            dialog = ProposalDialog(self.week, proposal, self)
            self.proposal_dialog = dialog
            dialog.accepted.connect(lambda: self._save_proposal(dialog.chosen()))
            dialog.open()

        def failed(exc: BaseException) -> None:
            self.propose_button.setEnabled(True)
            self._on_error(exc)

        self.ctx.db.submit(propose_rota, store_id, week, on_result=proposed, on_error=failed)

    def _save_proposal(self, shifts: list[ShiftSpan]) -> None:
        store_id = self.store_id
        if store_id is None or not shifts:
            return
        zone = self._zone()
        results = {"ok": 0, "errors": []}

        def tally() -> None:
            if results["ok"] + len(results["errors"]) == len(shifts):
                text = _("Saved {n} proposed shifts as drafts.").format(n=results["ok"])
                if results["errors"]:
                    text += "\n" + "\n".join(results["errors"])
                self.show_message(text, error=bool(results["errors"]))

        def ok(_c: Changes) -> None:
            results["ok"] += 1
            tally()

        def bad(exc: BaseException) -> None:
            results["errors"].append(getattr(exc, "message", str(exc)))
            tally()

        for s in shifts:
            args = {
                "id": s.id,
                "store_id": store_id,
                "staff_id": s.staff_id,
                "role": s.role,
                "start_at": _instant(_local(s.start, zone), zone),
                "end_at": _instant(_local(s.end, zone), zone),
                "note": "",
            }
            self.ctx.edit("shift.create/1", args, on_done=ok, on_error=bad)


register_screen(
    ScreenSpec(
        id="schedule",
        title=N_("Schedule"),
        factory=ScheduleView,
        roles=frozenset({"store_manager", "supervisor", "admin"}),
        order=20,
        icon="schedule",
    )
)
