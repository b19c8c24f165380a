"""Alerts screen (超时预警): overdue milestones, snooze with a reason, digest by rep and store.

Opening the screen (and "Check again") runs :func:`core.alerts.evaluate_alerts` for the
signed-in user's scope on the DB worker, and so does a local edit of what the alerts
watch; changing a filter or a sync's pull only re-reads the rows.
Severity is a colour: escalated alerts red, due ones amber, snoozed ones grey. Snoozing
goes through the ``alert.snooze/1`` mutation (outbox + sync), refused reasons are shown
in the dialog in the user's language. Double-clicking an alert about a customer or an
opportunity opens the customer detail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.alerts import (
    KIND_LABELS,
    AlertRow,
    AlertThresholds,
    DigestGroup,
    alert_digest,
    evaluate_alerts,
    list_alerts,
)
from core.i18n import N_, _
from core.mutations import MutationError, Rejected, ScopeDenied
from core.timeutil import to_local
from desktop.screens import ScreenSpec, register_screen
from desktop.views.customer_detail import CustomerDetailView, local_text
from desktop.widgets.table import Column, DataTable

#: (background, text) per display state; escalated = critical.
COLOURS = {
    "critical": ("#fde2e1", "#9b1c1c"),
    "warning": ("#fff4d6", "#7c4a03"),
    "snoozed": ("#f1f3f5", "#7b8794"),
    "resolved": ("#e8f5e9", "#52606d"),
}
SEVERITY_LABELS = {
    "critical": N_("Escalated"),
    "warning": N_("Overdue"),
    "snoozed": N_("Snoozed"),
    "resolved": N_("Resolved"),
}
DATA_TABLES = ("alerts", "opportunities", "opportunity_stage_events", "visits",
               "promotion_proposals", "promotion_decisions")  # fmt: skip

REFUSALS = {
    "reason_required": N_("Write why this alert can wait."),
    "reason_too_long": N_("The reason is too long (500 characters at most)."),
    "until_in_past": N_("Choose a time in the future."),
    "snooze_too_long": N_("An alert can be snoozed for 30 days at most."),
    "bad_until": N_("Choose a valid date and time."),
    "resolved": N_("This alert is already resolved."),
    "not_found": N_("This alert no longer exists; check again."),
}


def display_state(r: AlertRow) -> str:
    return r.state if r.state != "active" else r.severity


def kind_label(kind: str) -> str:
    return _(KIND_LABELS.get(kind, kind))


def overdue_text(hours: float) -> str:
    if hours >= 48:
        return _("{n} days").format(n=f"{hours / 24:.0f}")
    return _("{n} h").format(n=f"{hours:.0f}")


ALERT_COLUMNS = [
    Column(
        "state", N_("Severity"), value=display_state, fmt=lambda s: _(SEVERITY_LABELS.get(s, s))
    ),
    Column("kind", N_("Alert"), fmt=kind_label),
    Column("subject_label", N_("About")),
    Column("rep_name", N_("Rep")),
    Column("store_name", N_("Store")),
    Column("due_at", N_("Due since"), fmt=local_text),
    Column("overdue_hours", N_("Overdue by"), fmt=overdue_text, numeric=True),
    Column("escalated_at", N_("Escalated"), fmt=local_text),
    Column(
        "snooze",
        N_("Snoozed until / reason"),
        value=lambda r: (
            f"{local_text(r.snoozed_until)} — {r.snooze_reason}" if r.snoozed_until else None
        ),
    ),
]


class SeverityDelegate(QStyledItemDelegate):
    """Paints each row in its severity colour (the model stays a plain row table)."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        row = index.data(Qt.ItemDataRole.UserRole)
        if isinstance(row, AlertRow):
            bg, fg = COLOURS.get(display_state(row), ("#ffffff", "#323f4b"))
            option.backgroundBrush = QBrush(QColor(bg))
            option.palette.setColor(option.palette.ColorRole.Text, QColor(fg))


class SnoozeDialog(QDialog):
    """Until when and why; applies ``alert.snooze/1`` and shows a refusal in place."""

    PRESETS = ((1, N_("1 day")), (3, N_("3 days")), (7, N_("1 week")), (0, N_("Until…")))

    def __init__(self, ctx, alert: AlertRow, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.alert = alert
        self.setWindowTitle(_("Snooze alert"))
        self.subject = QLabel(f"{kind_label(alert.kind)}: {alert.subject_label}")
        self.subject.setWordWrap(True)
        self.preset = QComboBox()
        for days, label in self.PRESETS:
            self.preset.addItem(_(label), days)
        self.until = QDateTimeEdit()
        self.until.setCalendarPopup(True)
        self.until.setDisplayFormat("yyyy-MM-dd HH:mm")
        now_local = to_local(ctx.now())
        self.until.setMinimumDateTime(QDateTime(now_local.replace(tzinfo=None)))
        self.until.setMaximumDateTime(
            QDateTime((now_local + dt.timedelta(days=30)).replace(tzinfo=None))
        )
        self.reason = QPlainTextEdit()
        self.reason.setPlaceholderText(_("Why can it wait? e.g. the customer pays at month end"))
        self.reason.setFixedHeight(70)
        self.error = QLabel("")
        self.error.setObjectName("ErrorText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(_("Snooze"))
        self.ok_button.setEnabled(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(_("Cancel"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(
            lambda: self.ok_button.setEnabled(bool(self.reason.toPlainText().strip()))
        )
        self.preset.currentIndexChanged.connect(self._on_preset)
        form = QFormLayout()
        form.addRow(self.subject)
        form.addRow(_("Snooze for"), self.preset)
        form.addRow(_("Until"), self.until)
        form.addRow(_("Reason"), self.reason)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self._on_preset()

    def _on_preset(self) -> None:
        days = self.preset.currentData()
        self.until.setEnabled(days == 0)
        if days:
            target = to_local(self.ctx.now()) + dt.timedelta(days=days)
            self.until.setDateTime(QDateTime(target.replace(tzinfo=None, second=0, microsecond=0)))

    def until_utc(self) -> dt.datetime:
        local = self.until.dateTime().toPython()
        return local.replace(tzinfo=to_local(self.ctx.now()).tzinfo).astimezone(dt.UTC)

    def submit(self) -> None:
        self.ok_button.setEnabled(False)
        self.error.setText("")
        args = {
            "alert_id": self.alert.id,
            "until": self.until_utc().isoformat(),
            "reason": self.reason.toPlainText().strip(),
        }
        self.ctx.edit(
            "alert.snooze/1", args, on_done=lambda _c: self.accept(), on_error=self._failed
        )

    def _failed(self, exc: BaseException) -> None:
        self.ok_button.setEnabled(True)
        if isinstance(exc, Rejected):
            self.error.setText(_(REFUSALS.get(exc.reason_code, exc.message)))
        elif isinstance(exc, ScopeDenied):
            self.error.setText(_("This alert belongs to a store outside your scope."))
        elif isinstance(exc, MutationError):
            self.error.setText(exc.message)
        else:
            self.error.setText(
                _("The snooze could not be saved ({error}). Try again.").format(error=exc)
            )


THRESHOLD_FIELDS = (
    ("no_quote_hours", N_("Quote due after an opportunity opens (hours)"), 1, 720),
    ("payment_days", N_("Payment due after a contract (days)"), 1, 180),
    ("a_tier_unvisited_days", N_("Visit every A-tier customer within (days)"), 1, 180),
    ("promotion_pending_hours", N_("Promotion decision due within (hours)"), 1, 720),
    ("escalate_after_hours", N_("Escalate to the supervisor after a further (hours)"), 1, 720),
)


def thresholds_from_saved(saved: object) -> AlertThresholds:
    """The remembered thresholds (a dict in the settings file), ignoring unknown/bad values."""
    base = AlertThresholds()
    if not isinstance(saved, dict):
        return base
    values = {}
    for key, _label, lo, hi in THRESHOLD_FIELDS:
        v = saved.get(key)
        if isinstance(v, (int, float)) and lo <= v <= hi:
            values[key] = float(v)
    return dataclasses.replace(base, **values)


class ThresholdsDialog(QDialog):
    """The alert delays, one spin box each; the screen re-checks with them on OK."""

    def __init__(self, thresholds: AlertThresholds, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Alert thresholds"))
        form = QFormLayout()
        self.spins: dict[str, QSpinBox] = {}
        for key, label, lo, hi in THRESHOLD_FIELDS:
            spin = QSpinBox()
            spin.setRange(lo, hi)
            spin.setValue(round(getattr(thresholds, key)))
            self.spins[key] = spin
            form.addRow(_(label), spin)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(_("Cancel"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def thresholds(self) -> AlertThresholds:
        return dataclasses.replace(
            AlertThresholds(), **{k: float(s.value()) for k, s in self.spins.items()}
        )


class AlertsView(QWidget):
    sig_loaded = Signal(int)
    """The alert list is shown, with this many rows."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.thresholds = thresholds_from_saved(ctx.remembered_filter("alerts", "thresholds"))
        self.rows: list[AlertRow] = []
        self._gen = 0
        self.kind_combo = QComboBox()
        self.kind_combo.addItem(_("All alerts"), None)
        for kind, label in KIND_LABELS.items():
            self.kind_combo.addItem(_(label), str(kind))
        self.severity_combo = QComboBox()
        self.severity_combo.addItem(_("Any severity"), None)
        self.severity_combo.addItem(_("Escalated only"), "critical")
        self.severity_combo.addItem(_("Not escalated"), "warning")
        self.snoozed_check = QCheckBox(_("Show snoozed"))
        self.snoozed_check.setChecked(True)
        self.resolved_check = QCheckBox(_("Show resolved"))
        self.recheck_button = QPushButton(_("Check again"))
        self.thresholds_button = QPushButton(_("Thresholds…"))
        self.thresholds_button.setVisible(ctx.actor.role in ("supervisor", "admin"))
        self.snooze_button = QPushButton(_("Snooze…"))
        self.snooze_button.setObjectName("Primary")
        self.snooze_button.setEnabled(False)
        self.summary = QLabel(" ")
        self.summary.setObjectName("Muted")
        bar = QHBoxLayout()
        for w in (self.kind_combo, self.severity_combo, self.snoozed_check, self.resolved_check):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.thresholds_button)
        bar.addWidget(self.recheck_button)
        bar.addWidget(self.snooze_button)
        self.table = DataTable(ALERT_COLUMNS, cpu=ctx.cpu, title=_("Alerts"))
        self.table.view.setItemDelegate(SeverityDelegate(self.table.view))
        self.table.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.model.modelReset.connect(self._on_selection)
        self.table.sig_activated.connect(self._on_activated)
        self.by_rep = self._digest_tree(_("Rep"))
        self.by_store = self._digest_tree(_("Store"))
        digest = QSplitter(Qt.Orientation.Horizontal)
        for title, tree in ((_("By rep"), self.by_rep), (_("By store"), self.by_store)):
            box = QWidget()
            box_lay = QVBoxLayout(box)
            box_lay.setContentsMargins(0, 0, 0, 0)
            head = QLabel(title)
            head.setObjectName("SectionTitle")
            box_lay.addWidget(head)
            box_lay.addWidget(tree, 1)
            digest.addWidget(box)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, _("Alerts"))
        self.tabs.addTab(digest, _("Digest"))
        self.detail = CustomerDetailView(ctx)
        self.detail.sig_back.connect(lambda: self.stack.setCurrentWidget(self.tabs))
        self.stack = QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.detail)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(bar)
        lay.addWidget(self.summary)
        lay.addWidget(self.stack, 1)

        self._restore_filters()
        for combo in (self.kind_combo, self.severity_combo):
            combo.currentIndexChanged.connect(self._on_filter_changed)
        for check in (self.snoozed_check, self.resolved_check):
            check.toggled.connect(self._on_filter_changed)
        self.recheck_button.clicked.connect(lambda: self.reload(evaluate=True))
        self.thresholds_button.clicked.connect(self.open_thresholds)
        self.snooze_button.clicked.connect(self.open_snooze)
        ctx.selection.sig_changed.connect(lambda: self.reload(evaluate=False))
        ctx.sig_data_changed.connect(self._on_data_changed)
        self.reload(evaluate=True)

    def _restore_filters(self) -> None:
        remembered = self.ctx.remembered_filter
        for name, combo in (("kind", self.kind_combo), ("severity", self.severity_combo)):
            i = combo.findData(remembered("alerts", name))
            combo.setCurrentIndex(max(0, i))
        self.snoozed_check.setChecked(bool(remembered("alerts", "show_snoozed", True)))
        self.resolved_check.setChecked(bool(remembered("alerts", "show_resolved", False)))

    def _on_filter_changed(self, *_args) -> None:
        remember = self.ctx.remember_filter
        remember("alerts", "kind", self.kind_combo.currentData())
        remember("alerts", "severity", self.severity_combo.currentData())
        remember("alerts", "show_snoozed", self.snoozed_check.isChecked())
        remember("alerts", "show_resolved", self.resolved_check.isChecked())
        self.reload(evaluate=False)

    def open_thresholds(self) -> ThresholdsDialog:
        dlg = ThresholdsDialog(self.thresholds, self)
        dlg.accepted.connect(lambda: self.set_thresholds(dlg.thresholds()))
        dlg.open()
        return dlg

    def set_thresholds(self, thresholds: AlertThresholds) -> None:
        """Use new delays (remembered for the next start) and check again with them."""
        self.thresholds = thresholds
        self.ctx.remember_filter("alerts", "thresholds", dataclasses.asdict(thresholds))
        self.reload(evaluate=True)

    @staticmethod
    def _digest_tree(first: str) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setHeaderLabels([first, _("Open"), _("Escalated"), _("Alerts")])
        tree.setAlternatingRowColors(True)
        return tree

    # ------------------------------------------------------------------ loading

    def reload(self, evaluate: bool = False) -> None:
        self._gen += 1
        gen = self._gen
        actor, now, thr = self.ctx.actor, self.ctx.now(), self.thresholds
        sel = self.ctx.selection
        kinds = [self.kind_combo.currentData()] if self.kind_combo.currentData() else None
        severity = self.severity_combo.currentData()
        snoozed, resolved = self.snoozed_check.isChecked(), self.resolved_check.isChecked()

        def work(session) -> tuple[list[AlertRow], list[AlertRow]]:
            if evaluate:
                evaluate_alerts(session, now, thr, actor)
            every = list_alerts(
                session, now, actor=actor, region_id=sel.region_id, store_id=sel.store_id
            )
            rows = list_alerts(
                session, now, actor=actor, kinds=kinds, region_id=sel.region_id,
                store_id=sel.store_id, include_snoozed=snoozed, include_resolved=resolved,
            )  # fmt: skip
            if severity:
                rows = [r for r in rows if r.severity == severity]
            return rows, every

        self.summary.setText(_("Checking…") if evaluate else _("Loading…"))
        self.ctx.db.submit(work, on_result=lambda res: self._on_loaded(gen, *res))

    def _on_loaded(self, gen: int, rows: list[AlertRow], every: list[AlertRow]) -> None:
        if gen != self._gen:
            return
        self.rows = rows
        self.table.set_rows(rows)
        active = [r for r in every if r.state == "active"]
        self.summary.setText(
            _("{active} open alerts, {escalated} escalated, {snoozed} snoozed.").format(
                active=len(active),
                escalated=sum(1 for r in active if r.escalated_at is not None),
                snoozed=sum(1 for r in every if r.state == "snoozed"),
            )
        )
        self._fill_digest(self.by_rep, alert_digest(every, "rep"))
        self._fill_digest(self.by_store, alert_digest(every, "store"))
        self.sig_loaded.emit(len(rows))

    def _fill_digest(self, tree: QTreeWidget, groups: list[DigestGroup]) -> None:
        tree.clear()
        for g in groups:
            kinds = ", ".join(f"{kind_label(k)} {n}" for k, n in sorted(g.by_kind.items()))
            top = QTreeWidgetItem([g.label, str(g.total), str(g.escalated), kinds])
            if g.escalated:
                top.setForeground(2, QBrush(QColor(COLOURS["critical"][1])))
            for r in g.alerts:
                child = QTreeWidgetItem(
                    [r.subject_label, "", _("yes") if r.escalated_at else "",
                     f"{kind_label(r.kind)} · {overdue_text(r.overdue_hours)}"]
                )  # fmt: skip
                bg, fg = COLOURS[display_state(r)]
                for c in range(4):
                    child.setBackground(c, QBrush(QColor(bg)))
                    child.setForeground(c, QBrush(QColor(fg)))
                top.addChild(child)
            tree.addTopLevelItem(top)
        for c in range(4):
            tree.resizeColumnToContents(c)
        tree.setColumnWidth(0, max(tree.columnWidth(0) + 24, 140))  # room for the arrow

    # ------------------------------------------------------------------ actions

    def selected_alert(self) -> AlertRow | None:
        rows = self.table.view.selectionModel().selectedRows()
        return self.table.model.row(rows[0].row()) if rows else None

    def _on_selection(self, *_args) -> None:
        a = self.selected_alert()
        self.snooze_button.setEnabled(a is not None and a.state != "resolved")

    def open_snooze(self) -> SnoozeDialog | None:
        alert = self.selected_alert()
        if alert is None:
            return None
        dlg = SnoozeDialog(self.ctx, alert, self)
        dlg.setModal(True)
        dlg.open()
        return dlg

    def _on_activated(self, row: AlertRow) -> None:
        if row.customer_id is not None:
            self.stack.setCurrentWidget(self.detail)
            self.detail.show_customer(row.customer_id)

    def _on_data_changed(self, changes) -> None:
        """A local edit re-evaluates (offline and demo, nothing else raises or resolves the
        alerts it causes); a sync only re-reads: the server evaluates and ships the alerts,
        and rows written here would be unsynced copies of its work."""
        if changes.touches("sync", "pulled"):
            if changes.touches(*DATA_TABLES):
                self.reload(evaluate=False)
        elif changes.touches("alerts"):
            self.reload(evaluate=False)
        elif changes.touches(*DATA_TABLES):
            self.reload(evaluate=True)


register_screen(
    ScreenSpec(
        id="alerts",
        title=N_("Alerts"),
        factory=AlertsView,
        roles=frozenset({"supervisor", "admin", "store_manager"}),
        order=70,
        icon="alerts",
    )
)
