"""Promotion approvals (促销审批): the queue, the decision, the history and the rules.

Three tabs over :mod:`core.promotions`:

* **Queue** — pending proposals of the selected store (or of the supervisor's stores in
  the selected region), filtered by urgency and value at risk; a detail pane shows the
  explanation, the maths and 28 days of sales; approve / adjust the discount (clamped to the
  rule's bounds) / reject with a reason, or approve several at once. A decision is applied
  locally at once through ``ctx.edit`` (outbox row in the same transaction): the row stays
  in the queue marked "not yet synced" until the sync acknowledges it, and a decision that
  lost the first-wins race comes back as a conflict naming who decided and when.
* **History** — decided proposals with forecast vs actual sell-through
  (:func:`core.promotions.outcome.promotion_outcomes`).
* **Rules** — the rule text with live parse errors (caret under the bad word) and a
  preview of what would trigger in the selected store now.

All database work runs on ``ctx.db``; the view holds plain dataclasses only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.i18n import N_, _, ngettext
from core.models import new_id
from core.mutations import MutationError
from core.promotions.engine import preview_rule
from core.promotions.explain import explain
from core.promotions.language import RuleSyntaxError, check_rule, parse_rule
from core.promotions.maths import recompute_for_discount
from core.promotions.mutations import REJECT_REASONS
from core.promotions.outcome import PromotionOutcome, promotion_outcomes
from core.promotions.queue import (
    ProposalDetail,
    ProposalRow,
    RuleInfo,
    list_rules,
    proposal_detail,
    queue_rows,
    scope_store_ids,
    store_label,
)
from core.timeutil import local_to_utc, to_local
from desktop.formatting import count, money, percent
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.table import Column, DataTable
from desktop.widgets.timeseries_chart import TimeSeriesChart

SCREEN_ID = "promotions"

TEMPLATE_NAMES = {"markdown": N_("Near-expiry markdown"), "clearance_gift": N_("Clearance + gift")}
DECISION_NAMES = {"approve": N_("Approved"), "reject": N_("Rejected")}
OUTCOME_STATUS = {
    "not_started": N_("Not started"),
    "running": N_("Running"),
    "finished": N_("Finished"),
}
URGENCY_FILTERS = ((0, N_("All urgencies")), (40, N_("Urgency ≥ 40")), (70, N_("Urgency ≥ 70")))

#: Tables whose change means the queue may look different.
WATCHED = (
    "promotion_proposals",
    "promotion_decisions",
    "promotion_rules",
    "outbox",
    "sync_conflicts",
    "sync",
)


def _when(instant: dt.datetime | str | None) -> str:
    if instant is None:
        return "—"
    if isinstance(instant, str):
        instant = dt.datetime.fromisoformat(instant)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=dt.UTC)
    return to_local(instant).strftime("%m-%d %H:%M")


def status_text(r: ProposalRow) -> str:
    """What the Status column says about a proposal and its local decision."""
    sync = r.sync
    if sync is not None and sync.state == "conflict":
        t = sync.theirs
        verb = _("approved") if t.get("decision") == "approve" else _("rejected")
        return _("Conflict: {name} already {verb} it at {when}").format(
            name=t.get("decided_by_name") or "?", verb=verb, when=_when(t.get("decided_at"))
        )
    if r.decision is None:
        return _("Waiting for decision")
    what = (
        _("Approved at {pct}%").format(pct=r.decided_discount)
        if r.decision == "approve"
        else _("Rejected")
    )
    if sync is not None and sync.state == "pending":
        return what + " · " + _("not yet synced")
    if sync is not None and sync.state == "rejected":
        return what + " · " + _("refused by the server: {msg}").format(msg=sync.message)
    return what


def load_queue(session, actor, store_id, region_id) -> list[ProposalRow]:
    return queue_rows(session, scope_store_ids(session, actor, store_id, region_id))


def load_history(session, actor, store_id, region_id, today: dt.date) -> list[PromotionOutcome]:
    ids = scope_store_ids(session, actor, store_id, region_id)
    return promotion_outcomes(session, ids, today - dt.timedelta(days=35), today)


def load_rules_and_store(
    session, actor, store_id, region_id
) -> tuple[list[RuleInfo], int | None, str]:
    """The rules, and the store the preview runs on (the selected one, else the first)."""
    ids = scope_store_ids(session, actor, store_id, region_id)
    first = ids[0] if ids else None
    return list_rules(session), first, store_label(session, first)


def data_now(ctx) -> dt.datetime:
    """The data's clock: the demo is complete "as of" 23:00 on its last day."""
    if ctx.demo:
        return local_to_utc(dt.datetime.combine(ctx.today, dt.time(23, 0)))
    return ctx.now()


def _mono() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, MutationError):
        return exc.message
    from desktop.errors import user_message

    return user_message(exc)[1]


# --------------------------------------------------------------------------- queue


class QueueTab(QWidget):
    sig_decided = Signal(str)
    """A local decision on the proposal id was recorded (before any sync)."""

    sig_loaded = Signal()
    """The queue rows were (re)loaded and shown."""

    sig_detail_shown = Signal(str)
    """The detail pane now shows the proposal id."""

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.rows: list[ProposalRow] = []
        self.detail: ProposalDetail | None = None
        self._request = 0
        self._detail_request = 0
        self._current_id: str | None = None

        self.urgency_combo = QComboBox()
        for value, label in URGENCY_FILTERS:
            self.urgency_combo.addItem(_(label), value)
        self.value_spin = QSpinBox()
        self.value_spin.setRange(0, 1_000_000)
        self.value_spin.setSingleStep(50)
        self.value_spin.setPrefix(_("Value at risk ≥ ¥"))
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        self.bulk_button = QPushButton(_("Approve selected"))
        self.bulk_button.setObjectName("Primary")
        self.bulk_button.setToolTip(_("Approve every selected proposal at its proposed discount"))
        saved_urgency = ctx.remembered_filter(SCREEN_ID, "min_urgency", 0)
        i = self.urgency_combo.findData(saved_urgency)
        self.urgency_combo.setCurrentIndex(max(i, 0))
        self.value_spin.setValue(int(ctx.remembered_filter(SCREEN_ID, "min_value_yuan", 0) or 0))
        self.urgency_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.value_spin.valueChanged.connect(self._on_filter_changed)
        self.bulk_button.clicked.connect(self.approve_selected)

        bar = QHBoxLayout()
        bar.addWidget(self.urgency_combo)
        bar.addWidget(self.value_spin)
        bar.addWidget(self.count_label, 1)
        bar.addWidget(self.bulk_button)

        self.table = DataTable(
            [
                Column("urgency", N_("Urgency"), numeric=True),
                Column("store_code", N_("Store")),
                Column("sku_name", N_("SKU")),
                Column("status", N_("Status"), value=status_text),
                Column("lot_code", N_("Lot")),
                Column("template", N_("Offer"), fmt=lambda t: _(TEMPLATE_NAMES.get(t, t))),
                Column("days_to_expiry", N_("Days to expiry"), numeric=True),
                Column("on_hand", N_("On hand"), numeric=True),
                Column("discount_pct", N_("Discount"), fmt=lambda v: f"{v}%", numeric=True),
                Column("value_at_risk_fen", N_("Value at risk"), fmt=money, numeric=True),
                Column("waste_avoided_fen", N_("Waste avoided"), fmt=money, numeric=True),
            ],
            cpu=ctx.cpu,
            title=_("Promotion approvals"),
        )
        self.table.view.setSelectionMode(self.table.view.SelectionMode.ExtendedSelection)
        self.table.view.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.model.modelReset.connect(self._reselect)

        self.detail_pane = self._build_detail()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.detail_pane)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 440])

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

    # ------------------------------------------------------------------ detail pane

    def _build_detail(self) -> QWidget:
        body = QFrame()
        body.setObjectName("Card")
        body.setMinimumWidth(420)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(14, 10, 14, 10)
        self.title_label = QLabel(_("Select a proposal to see its explanation and maths."))
        self.title_label.setWordWrap(True)
        self.title_label.setStyleSheet("font-size: 14px; font-weight: 600;")
        # A read-only text box, not a QLabel: wrapped labels in splitters get one line's height.
        self.explanation = QTextBrowser()
        self.explanation.setFrameShape(QFrame.Shape.NoFrame)
        self.explanation.setFixedHeight(96)
        self.explanation.setStyleSheet("background: transparent;")
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(3)
        self.maths_labels: dict[str, QLabel] = {}
        fields = (
            ("on_hand", N_("On hand")),
            ("days_to_expiry", N_("Days to expiry")),
            ("sales_7d", N_("Sales, 7 days")),
            ("sales_28d", N_("Sales, 28 days")),
            ("sell_through_without", N_("Sell-through without offer")),
            ("sell_through_with", N_("Sell-through with offer")),
            ("waste_avoided_fen", N_("Waste avoided")),
            ("margin_given_up_fen", N_("Margin given up")),
            ("value_at_risk_fen", N_("Value at risk")),
            ("offer", N_("Offer period")),
        )
        for i, (key, title) in enumerate(fields):
            name = QLabel(_(title))
            name.setObjectName("Muted")
            value = QLabel("—")
            value.setObjectName(f"maths_{key}")
            self.maths_labels[key] = value
            grid.addWidget(name, i // 2, (i % 2) * 2)
            grid.addWidget(value, i // 2, (i % 2) * 2 + 1)
        self.chart = TimeSeriesChart(
            x_is_time=True,
            x_format=lambda x: dt.datetime.fromtimestamp(x, dt.UTC).strftime("%m-%d"),
            y_format=lambda y: f"{y:,.0f}",
        )
        self.chart.setMinimumHeight(170)
        self.chart.setMaximumHeight(240)

        self.discount_spin = QSpinBox()
        self.discount_spin.setSuffix("%")
        self.discount_spin.valueChanged.connect(self._on_discount_changed)
        self.bounds_label = QLabel("")
        self.bounds_label.setObjectName("Muted")
        self.approve_button = QPushButton(_("Approve"))
        self.approve_button.setObjectName("Primary")
        self.approve_button.clicked.connect(self.approve_current)
        self.reason_combo = QComboBox()
        self.reason_combo.addItem(_("Reason for rejecting…"), None)
        for code, label in REJECT_REASONS.items():
            self.reason_combo.addItem(_(label), code)
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText(_("Comment (optional)"))
        self.reject_button = QPushButton(_("Reject"))
        self.reject_button.clicked.connect(self.reject_current)
        self.decision_status = QLabel("")
        self.decision_status.setWordWrap(True)
        self.decision_status.setObjectName("Notice")

        approve_row = QHBoxLayout()
        approve_row.addWidget(QLabel(_("Discount")))
        approve_row.addWidget(self.discount_spin)
        approve_row.addWidget(self.bounds_label, 1)
        approve_row.addWidget(self.approve_button)
        reject_row = QHBoxLayout()
        reject_row.addWidget(self.reason_combo)
        reject_row.addWidget(self.comment_edit, 1)
        reject_row.addWidget(self.reject_button)

        lay.addWidget(self.title_label)
        lay.addWidget(self.explanation)
        lay.addLayout(grid)
        chart_title = QLabel(_("Units sold per day, last 28 days"))
        chart_title.setObjectName("Muted")
        lay.addWidget(chart_title)
        lay.addWidget(self.chart)
        lay.addLayout(approve_row)
        lay.addLayout(reject_row)
        lay.addWidget(self.decision_status)
        lay.addStretch(1)
        self.decision_status.hide()
        self._set_decision_enabled(False)
        return body

    def _set_status(self, text: str) -> None:
        self.decision_status.setText(text)
        self.decision_status.setVisible(bool(text))

    def _set_decision_enabled(self, on: bool) -> None:
        for w in (
            self.discount_spin,
            self.approve_button,
            self.reason_combo,
            self.comment_edit,
            self.reject_button,
        ):
            w.setEnabled(on)

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        sel = self.ctx.selection
        self._request += 1
        req = self._request
        self.ctx.db.submit(
            load_queue,
            self.ctx.actor,
            sel.store_id,
            sel.region_id,
            on_result=lambda rows: self._show_rows(req, rows),
            on_error=self._failed,
        )

    def _failed(self, exc: BaseException) -> None:
        self.count_label.setText(_error_text(exc))

    def _show_rows(self, req: int, rows: list[ProposalRow]) -> None:
        if req != self._request:
            return
        self.rows = rows
        self._apply_filter()
        if self._current_id is not None:
            self._load_detail(self._current_id)
        self.sig_loaded.emit()

    def _on_filter_changed(self) -> None:
        self.ctx.remember_filter(SCREEN_ID, "min_urgency", self.urgency_combo.currentData())
        self.ctx.remember_filter(SCREEN_ID, "min_value_yuan", self.value_spin.value())
        self._apply_filter()

    def _apply_filter(self) -> None:
        min_urgency = int(self.urgency_combo.currentData() or 0)
        min_value = self.value_spin.value() * 100
        shown = [
            r
            for r in self.rows
            if r.decision is not None  # decided rows stay visible until synced
            or (r.urgency >= min_urgency and r.value_at_risk_fen >= min_value)
        ]
        self.table.set_rows(shown)
        pending = sum(1 for r in self.rows if r.decision is None)
        unsynced = sum(1 for r in self.rows if r.sync is not None and r.sync.state == "pending")
        conflicts = sum(1 for r in self.rows if r.sync is not None and r.sync.state == "conflict")
        text = _("{shown} shown · {pending} waiting for a decision").format(
            shown=len(shown), pending=pending
        )
        if unsynced:
            text += " · " + _("{n} not yet synced").format(n=unsynced)
        if conflicts:
            text += " · " + _("{n} conflicts").format(n=conflicts)
        self.count_label.setText(text)

    def _reselect(self) -> None:
        """Keep the selected proposal selected across reloads and re-sorts."""
        if self._current_id is None:
            return
        model = self.table.model
        for i in range(model.matching_rows):
            if model.row(i).id == self._current_id:
                while model.rowCount() <= i and model.canFetchMore():
                    model.fetchMore()
                self.table.view.selectRow(i)
                return

    def _on_current_changed(self, current, _previous) -> None:
        if not current.isValid():
            return
        row: ProposalRow = self.table.model.row(current.row())
        if row.id != self._current_id or self.detail is None:
            self._current_id = row.id
            self._load_detail(row.id)

    def select_proposal(self, proposal_id: str) -> None:
        self._current_id = proposal_id
        self._reselect()
        self._load_detail(proposal_id)

    def _load_detail(self, proposal_id: str) -> None:
        self._detail_request += 1
        req = self._detail_request
        self.ctx.db.submit(
            proposal_detail,
            proposal_id,
            on_result=lambda d: self._show_detail(req, d),
            on_error=self._failed,
        )

    def _show_detail(self, req: int, d: ProposalDetail | None) -> None:
        if req != self._detail_request:
            return
        self.detail = d
        if d is None:
            self.title_label.setText(_("This proposal no longer exists."))
            self._set_decision_enabled(False)
            return
        r = d.row
        lot = f" · {_('Lot')} {r.lot_code}" if r.lot_code else ""
        self.title_label.setText(
            f"{r.store_code} {r.store_name} · {r.sku_name}{lot} · "
            f"{_(TEMPLATE_NAMES.get(r.template, r.template))}"
        )
        self.explanation.setPlainText(explain(r.template, d.maths))
        self.discount_spin.blockSignals(True)
        self.discount_spin.setRange(r.min_pct, r.max_pct)
        self.discount_spin.setValue(
            r.decided_discount if r.decided_discount is not None else r.discount_pct
        )
        self.discount_spin.blockSignals(False)
        self.bounds_label.setText(
            _("rule allows {lo}%–{hi}%, proposed {pct}%").format(
                lo=r.min_pct, hi=r.max_pct, pct=r.discount_pct
            )
        )
        self._show_maths(d.maths)
        # noon UTC keeps each business day on its own date whatever the axis' zone
        xs = [dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC) for day, _u in d.sales]
        self.chart.set_series(
            "sku", xs, [u for _d, u in d.sales], name=r.sku_name[:18], color="#2f6fdf"
        )
        if d.gift_sales:
            self.chart.set_series(
                "gift",
                xs,
                [u for _d, u in d.gift_sales],
                name=_("Gift: {name}").format(name=r.gift_name[:14]),
                color="#d97706",
                dashed=True,
            )
        elif "gift" in self.chart.items:
            self.chart.set_series("gift", [], [], name=_("Gift"))
        self._set_decision_enabled(r.decision is None and r.status == "pending")
        self._set_status("" if r.decision is None and r.sync is None else status_text(r))
        self.sig_detail_shown.emit(r.id)

    def _show_maths(self, m: dict[str, Any]) -> None:
        L = self.maths_labels
        L["on_hand"].setText(count(m.get("on_hand")))
        days = m.get("days_to_expiry")
        L["days_to_expiry"].setText("—" if days is None else str(days))
        L["sales_7d"].setText(
            f"{count(m.get('sales_7d'))}  "
            + _("({rate:.1f}/day)").format(rate=m.get("daily_rate", 0))
        )
        L["sales_28d"].setText(count(m.get("sales_28d")))
        L["sell_through_without"].setText(
            f"{percent(m.get('sell_through_without'), 0)}  "
            f"({count(m.get('expected_units_without'))})"
        )
        L["sell_through_with"].setText(
            f"{percent(m.get('sell_through_with'), 0)}  ({count(m.get('expected_units_with'))})"
        )
        L["waste_avoided_fen"].setText(money(m.get("waste_avoided_fen"), decimals=2))
        L["margin_given_up_fen"].setText(money(m.get("margin_given_up_fen"), decimals=2))
        L["value_at_risk_fen"].setText(money(m.get("value_at_risk_fen"), decimals=2))
        days = int(m.get("offer_days", 0))
        L["offer"].setText(ngettext("{days} day", "{days} days", days).format(days=days))

    def _on_discount_changed(self, value: int) -> None:
        if self.detail is None:
            return
        m = dict(self.detail.maths) | recompute_for_discount(self.detail.maths, value).to_json()
        self._show_maths(m)
        self.explanation.setPlainText(explain(self.detail.row.template, m))

    # ------------------------------------------------------------------ decisions

    def _decide(self, row: ProposalRow, decision: str, pct: int | None, reason, comment) -> None:
        args = {
            "proposal_id": row.id,
            "decision_id": new_id(),
            "decision": decision,
            "discount_pct": pct,
            "reason_code": reason,
            "comment": comment,
        }
        self.ctx.edit(
            "promotion.decide/1",
            args,
            on_done=lambda _c: self.sig_decided.emit(row.id),
            on_error=self._on_decide_failed,
        )

    def _on_decide_failed(self, exc: BaseException) -> None:
        self._set_status(_error_text(exc))
        self.reload()

    def approve_current(self) -> None:
        if self.detail is None:
            return
        self._set_decision_enabled(False)
        self._set_status(_("Approved at {pct}%").format(pct=self.discount_spin.value()))
        self._decide(self.detail.row, "approve", self.discount_spin.value(), None, "")

    def reject_current(self) -> None:
        if self.detail is None:
            return
        reason = self.reason_combo.currentData()
        if reason is None:
            self._set_status(_("Choose a reason for rejecting."))
            self.reason_combo.setFocus()
            return
        self._set_decision_enabled(False)
        self._set_status(_("Rejected"))
        self._decide(self.detail.row, "reject", None, reason, self.comment_edit.text().strip())
        self.comment_edit.clear()
        self.reason_combo.setCurrentIndex(0)

    def selected_rows(self) -> list[ProposalRow]:
        sel = self.table.view.selectionModel().selectedRows()
        return [self.table.model.row(i.row()) for i in sel]

    def approve_selected(self) -> None:
        todo = [r for r in self.selected_rows() if r.decision is None and r.status == "pending"]
        if not todo:
            self.count_label.setText(_("Select one or more proposals waiting for a decision."))
            return
        for r in todo:
            self._decide(r, "approve", r.discount_pct, None, "")
        self.count_label.setText(_("Approved {n} proposals (not yet synced)").format(n=len(todo)))


# --------------------------------------------------------------------------- history


class HistoryTab(QWidget):
    sig_loaded = Signal()
    """The outcomes were (re)loaded and shown."""

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self._request = 0
        self.summary = QLabel("")
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        self.table = DataTable(
            [
                Column("decided_at", N_("Decided"), fmt=_when),
                Column("store_code", N_("Store")),
                Column("sku_name", N_("SKU")),
                Column("lot_code", N_("Lot")),
                Column("decision", N_("Decision"), fmt=lambda d: _(DECISION_NAMES.get(d, d))),
                Column(
                    "discount_pct",
                    N_("Discount"),
                    fmt=lambda v: f"{v}%",
                    numeric=True,
                ),
                Column("decided_by_name", N_("Decided by")),
                Column("status", N_("Outcome"), fmt=lambda s: _(OUTCOME_STATUS.get(s, s))),
                Column("days_run", N_("Days run"), numeric=True),
                Column(
                    "forecast_sell_through",
                    N_("Forecast sell-through"),
                    fmt=lambda v: percent(v, 0),
                    numeric=True,
                ),
                Column(
                    "actual_sell_through",
                    N_("Actual sell-through"),
                    fmt=lambda v: percent(v, 0),
                    numeric=True,
                ),
                Column(
                    "forecast_units_to_date",
                    N_("Forecast units to date"),
                    fmt=lambda v: f"{v:,.1f}",
                    numeric=True,
                ),
                Column("actual_units", N_("Actual units"), numeric=True),
            ],
            cpu=ctx.cpu,
            title=_("Promotion outcomes"),
        )
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)

    def reload(self) -> None:
        sel = self.ctx.selection
        self._request += 1
        req = self._request
        self.ctx.db.submit(
            load_history,
            self.ctx.actor,
            sel.store_id,
            sel.region_id,
            self.ctx.today,
            on_result=lambda rows: self._show(req, rows),
            on_error=lambda e: self.summary.setText(_error_text(e)),
        )

    def _show(self, req: int, rows: list[PromotionOutcome]) -> None:
        if req != self._request:
            return
        rows = sorted(rows, key=lambda o: o.decided_at, reverse=True)
        self.table.set_rows(rows)
        approved = [o for o in rows if o.decision == "approve" and o.days_run]
        if approved:
            fc = sum(o.forecast_units_to_date for o in approved)
            act = sum(o.actual_units for o in approved)
            self.summary.setText(
                _(
                    "{n} decisions in the last 5 weeks. Approved promotions that ran sold "
                    "{actual} units against {forecast} forecast ({ratio})."
                ).format(
                    n=len(rows),
                    actual=count(act),
                    forecast=count(fc),
                    ratio=percent(act / fc, 0) if fc else "—",
                )
            )
        else:
            self.summary.setText(_("{n} decisions in the last 5 weeks.").format(n=len(rows)))
        self.sig_loaded.emit()


# --------------------------------------------------------------------------- rules


class RulesTab(QWidget):
    sig_preview_shown = Signal(int)
    """The preview table now lists this many triggering SKUs/lots."""

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.rules: list[RuleInfo] = []
        self.current: RuleInfo | None = None
        self.preview_store: int | None = None
        self.preview_store_label = ""
        self._preview_request = 0
        self.can_edit = ctx.actor.role in ("supervisor", "admin")

        self.rule_list = QListWidget()
        self.rule_list.setMaximumWidth(260)
        self.rule_list.currentRowChanged.connect(self._on_pick)
        self.editor = QPlainTextEdit()
        self.editor.setFont(_mono())
        self.editor.setMaximumHeight(90)
        self.editor.textChanged.connect(self._on_text_changed)
        self.error_label = QLabel("")
        self.error_label.setFont(_mono())
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setWordWrap(False)
        self.error_label.setStyleSheet("color: #c62828;")
        self.zh_button = QPushButton(_("Write in Chinese"))
        self.en_button = QPushButton(_("Write in English"))
        self.zh_button.clicked.connect(lambda: self._render("zh_CN"))
        self.en_button.clicked.connect(lambda: self._render("en"))
        self.min_spin = QSpinBox()
        self.max_spin = QSpinBox()
        for s in (self.min_spin, self.max_spin):
            s.setRange(0, 90)
            s.setSuffix("%")
        self.enabled_check = QCheckBox(_("Enabled"))
        self.save_button = QPushButton(_("Save rule"))
        self.save_button.setObjectName("Primary")
        self.save_button.clicked.connect(self.save)
        self.save_status = QLabel("")
        self.save_status.setObjectName("Muted")
        if not self.can_edit:
            self.save_button.setEnabled(False)
            self.save_button.setToolTip(_("Only supervisors and administrators may save rules."))
        self.help_label = QLabel(
            _(
                "Write “当 <condition> 时 触发 <promotion>” or “WHEN <condition> THEN "
                "<promotion>”. Combine conditions with 且/AND, 或/OR, 非/NOT and brackets."
            )
        )
        self.help_label.setWordWrap(True)
        self.help_label.setObjectName("Muted")
        self.preview_label = QLabel("")
        self.preview = DataTable(
            [
                Column("sku_code", N_("SKU code")),
                Column("sku_name", N_("SKU")),
                Column("lot_code", N_("Lot")),
                Column("stock", N_("On hand"), numeric=True),
                Column("safety_stock", N_("Safety stock"), numeric=True),
                Column("sales_7d", N_("Sales, 7 days"), numeric=True),
                Column(
                    "sales_7d_wow",
                    N_("7-day change"),
                    fmt=lambda v: f"{v:+.1f}%",
                    numeric=True,
                ),
                Column("days_to_expiry", N_("Days to expiry"), numeric=True),
            ],
            cpu=ctx.cpu,
            title=_("Rule preview"),
        )
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(350)
        self._timer.timeout.connect(self.run_preview)

        tools = QHBoxLayout()
        tools.addWidget(self.zh_button)
        tools.addWidget(self.en_button)
        tools.addStretch(1)
        form = QFormLayout()
        bounds = QHBoxLayout()
        bounds.addWidget(self.min_spin)
        bounds.addWidget(QLabel("–"))
        bounds.addWidget(self.max_spin)
        bounds.addWidget(self.enabled_check)
        bounds.addStretch(1)
        form.addRow(_("Discount bounds"), bounds)
        save_row = QHBoxLayout()
        save_row.addWidget(self.save_button)
        save_row.addWidget(self.save_status, 1)
        right = QVBoxLayout()
        right.addWidget(self.help_label)
        right.addWidget(self.editor)
        right.addWidget(self.error_label)
        right.addLayout(tools)
        right.addLayout(form)
        right.addLayout(save_row)
        right.addWidget(self.preview_label)
        right.addWidget(self.preview, 1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        lay.addWidget(self.rule_list)
        lay.addLayout(right, 1)

    def reload(self) -> None:
        sel = self.ctx.selection
        self.ctx.db.submit(
            load_rules_and_store,
            self.ctx.actor,
            sel.store_id,
            sel.region_id,
            on_result=self._show_rules,
            on_error=lambda e: self.save_status.setText(_error_text(e)),
        )

    def _show_rules(self, result: tuple[list[RuleInfo], int | None, str]) -> None:
        self.rules, self.preview_store, self.preview_store_label = result
        keep = self.current.id if self.current else None
        self.rule_list.blockSignals(True)
        self.rule_list.clear()
        for r in self.rules:
            item = QListWidgetItem(r.name + ("" if r.enabled else f"  ({_('disabled')})"))
            self.rule_list.addItem(item)
        self.rule_list.blockSignals(False)
        idx = next((i for i, r in enumerate(self.rules) if r.id == keep), 0)
        if self.rules:
            self.rule_list.setCurrentRow(idx)
            if keep is not None:
                self._on_pick(idx)

    def _on_pick(self, i: int) -> None:
        if not 0 <= i < len(self.rules):
            return
        self.current = self.rules[i]
        self.editor.setPlainText(self.current.text)
        self.min_spin.setValue(self.current.min_pct)
        self.max_spin.setValue(self.current.max_pct)
        self.enabled_check.setChecked(self.current.enabled)

    def _on_text_changed(self) -> None:
        err = check_rule(self.editor.toPlainText())
        self.show_error(err)
        if err is None:
            self._timer.start()

    def show_error(self, err: RuleSyntaxError | None) -> None:
        if err is None:
            self.error_label.setText("✓ " + _("The rule is valid."))
            self.error_label.setStyleSheet("color: #1a7f37;")
        else:
            self.error_label.setText(err.pointer() + "\n" + err.message())
            self.error_label.setStyleSheet("color: #c62828;")

    def _render(self, lang: str) -> None:
        try:
            self.editor.setPlainText(parse_rule(self.editor.toPlainText()).render(lang))
        except RuleSyntaxError as e:
            self.show_error(e)

    def run_preview(self) -> None:
        if self.preview_store is None:
            self.preview_label.setText(_("Choose a store to preview the rule."))
            return
        text = self.editor.toPlainText()
        self._preview_request += 1
        req = self._preview_request
        store = self.preview_store
        self.ctx.db.submit(
            preview_rule,
            store,
            text,
            data_now(self.ctx),
            on_result=lambda rows: self._show_preview(req, rows),
            on_error=lambda e: self._preview_failed(req, e),
        )

    def _preview_failed(self, req: int, exc: BaseException) -> None:
        if req != self._preview_request:
            return
        if isinstance(exc, RuleSyntaxError):
            self.show_error(exc)
        else:
            self.preview_label.setText(_error_text(exc))

    def _show_preview(self, req: int, rows) -> None:
        if req != self._preview_request:
            return
        self.preview.set_rows(rows)
        self.sig_preview_shown.emit(len(rows))
        self.preview_label.setText(
            _("In store {store}, {n} SKUs/lots would trigger this rule today.").format(
                store=self.preview_store_label, n=len(rows)
            )
        )

    def save(self) -> None:
        if self.current is None:
            return
        err = check_rule(self.editor.toPlainText())
        if err is not None:
            self.show_error(err)
            return
        rule = self.current
        self.save_status.setText(_("Saving…"))
        self.ctx.edit(
            "promotion_rule.update/1",
            {
                "rule_id": rule.id,
                "text": self.editor.toPlainText().strip(),
                "min_discount_pct": self.min_spin.value(),
                "max_discount_pct": self.max_spin.value(),
                "enabled": self.enabled_check.isChecked(),
            },
            base_version=rule.version,
            on_done=lambda _c: self.save_status.setText(_("Saved (not yet synced).")),
            on_error=lambda e: self.save_status.setText(_error_text(e)),
        )


# --------------------------------------------------------------------------- screen


class PromotionsView(QWidget):
    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.tabs = QTabWidget()
        self.queue = QueueTab(ctx)
        self.history = HistoryTab(ctx)
        self.rules = RulesTab(ctx)
        self.tabs.addTab(self.queue, _("Approvals"))
        self.tabs.addTab(self.history, _("History and outcomes"))
        self.tabs.addTab(self.rules, _("Rules"))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 10, 16, 10)
        lay.addWidget(self.tabs)
        ctx.selection.sig_changed.connect(self.reload)
        ctx.sig_data_changed.connect(self._on_data_changed)
        self.reload()

    def reload(self) -> None:
        self.queue.reload()
        self.history.reload()
        self.rules.reload()

    def _on_data_changed(self, changes) -> None:
        if changes.touches(*WATCHED):
            self.queue.reload()
            if changes.touches("promotion_decisions", "sync"):
                self.history.reload()
            if changes.touches("promotion_rules", "sync"):
                self.rules.reload()


register_screen(
    ScreenSpec(
        id=SCREEN_ID,
        title=N_("Promotions"),
        factory=PromotionsView,
        roles=frozenset({"store_manager", "supervisor", "admin"}),
        order=40,
        icon="promotions",
    )
)
