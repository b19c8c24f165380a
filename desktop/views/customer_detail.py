"""Customer detail (客户详情): tags, visits with their GPS evidence, stage history, notes.

Not a screen of its own: the funnel and alerts screens embed it as the end of their
drill-down. It loads :func:`core.customers.customer_detail` on the DB worker; the visit
evidence is the trajectory engine's score (:mod:`core.trajectory.evidence`).
"""

from __future__ import annotations

import datetime as dt
import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyledItemDelegate,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.customers import CustomerDetail, NoteRow, VisitRow, customer_detail
from core.i18n import N_, _
from core.timeutil import to_local
from core.trajectory.evidence import format_distance
from desktop.widgets.funnel_chart import format_fen, stage_label
from desktop.widgets.table import Column, DataTable

STATUS_LABELS = {"open": N_("Open"), "won": N_("Won"), "lost": N_("Lost")}


def local_text(instant: dt.datetime | None) -> str:
    return "" if instant is None else to_local(instant).strftime("%Y-%m-%d %H:%M")


def _evidence_text(v: VisitRow) -> str:
    ev = v.evidence
    # ⚠ contradicted by the trace, ✓ backed by it, ○ nothing to compare (no trace that day)
    mark = "⚠ " if ev.flagged else "✓ " if ev.has_trace else "○ "
    return mark + (ev.explanation or _("Consistent with the GPS trace."))


VISIT_COLUMNS = [
    Column("check_in_at", N_("Check-in"), fmt=local_text),
    Column("rep_name", N_("Rep")),
    Column("score", N_("Evidence score"), value=lambda v: v.evidence.score, numeric=True),
    Column(
        "distance",
        N_("Check-in distance"),
        value=lambda v: v.evidence.checkin_distance_m,
        fmt=format_distance,
        numeric=True,
    ),
    Column("dwell_minutes", N_("Minutes"), fmt=lambda m: f"{m:.0f}", numeric=True),
    Column("evidence", N_("Evidence"), value=_evidence_text),
    Column("purpose", N_("Purpose")),
    Column("voice_summary", N_("Voice summary")),
]

NOTE_COLUMNS = [
    Column("at", N_("When"), fmt=local_text),
    Column(
        "kind", N_("Kind"), fmt=lambda k: _("Voice summary") if k == "voice_summary" else _("Note")
    ),
    Column("author", N_("By")),
    Column("text", N_("Text")),
]


class FlaggedVisitDelegate(QStyledItemDelegate):
    """Visits whose GPS evidence is flagged are painted red, the rest stay plain."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        row = index.data(Qt.ItemDataRole.UserRole)
        if isinstance(row, VisitRow) and row.evidence.flagged:
            option.backgroundBrush = QBrush(QColor("#fde2e1"))
            option.palette.setColor(option.palette.ColorRole.Text, QColor("#9b1c1c"))


#: Tables the detail shows (``core.customers.customer_detail``); a change to one (an edit,
#: or a sync that received rows of it) reloads the customer shown.
SHOWN_TABLES = (
    "customers",
    "stores",
    "reps",
    "visits",
    "visit_notes",
    "opportunities",
    "opportunity_stage_events",
    "customer_monthly_stats",
)
#: GPS points only feed the evidence of the visits shown (the rep's trace that day). Reps
#: send points all day, so nearly every sync pulls some: they reload the detail only while
#: it shows a visit of today, whose trace is still coming in.
TRACE_TABLE = "gps_points"
#: Changes arriving within this time of each other are one reload.
DATA_RELOAD_MS = 300


class CustomerDetailView(QWidget):
    sig_loaded = Signal(object)
    """The detail of a customer is shown; carries the :class:`CustomerDetail`."""

    sig_back = Signal()
    """The user asked to go back to the list they came from."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.detail: CustomerDetail | None = None
        self._wanted: int | None = None
        self.back_button = QPushButton(_("← Back"))
        self.back_button.setObjectName("LinkButton")
        self.back_button.clicked.connect(self.sig_back.emit)
        self.title = QLabel("")
        self.title.setObjectName("SectionTitle")
        self.info = QLabel("")
        self.info.setObjectName("Muted")
        self.info.setWordWrap(True)
        self.tags_label = QLabel("")
        self.tags_label.setTextFormat(Qt.TextFormat.RichText)
        self.tags_label.setWordWrap(True)
        self.visits = DataTable(VISIT_COLUMNS, cpu=ctx.cpu, title=_("Visits"))
        self.visits.view.setItemDelegate(FlaggedVisitDelegate(self.visits.view))
        self.history = QTreeWidget()
        self.history.setHeaderLabels([_("Opportunity / stage"), _("When"), _("Amount"), _("Note")])
        self.history.setRootIsDecorated(True)
        self.notes = DataTable(NOTE_COLUMNS, cpu=ctx.cpu, title=_("Notes"))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.visits, _("Visits"))
        self.tabs.addTab(self.history, _("Stage history"))
        self.tabs.addTab(self.notes, _("Voice summaries and notes"))
        head = QHBoxLayout()
        head.addWidget(self.back_button)
        head.addWidget(self.title, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(head)
        lay.addWidget(self.info)
        lay.addWidget(self.tags_label)
        lay.addWidget(self.tabs, 1)
        #: changes to the shown tables arrived while hidden: reload when shown
        self._stale = False
        self._data_timer = QTimer(self)
        self._data_timer.setSingleShot(True)
        self._data_timer.setInterval(DATA_RELOAD_MS)
        self._data_timer.timeout.connect(self._on_data_timer)
        ctx.sig_data_changed.connect(self._on_data_changed)

    def show_customer(self, customer_id: int) -> None:
        """Load and show one customer (asynchronously; ``sig_loaded`` when shown)."""
        self.title.setText(_("Loading…"))
        self._load(customer_id)

    def _load(self, customer_id: int) -> None:
        self._wanted = customer_id
        self._stale = False
        self._data_timer.stop()  # this load reads the changed rows too
        actor, today = self.ctx.actor, self.ctx.today

        def load(session) -> CustomerDetail | None:
            return customer_detail(session, customer_id, today, actor=actor)

        self.ctx.db.submit(load, on_result=lambda d: self._on_loaded(customer_id, d))

    def _on_data_changed(self, changes) -> None:
        """A sync or an edit changed what this customer's detail may show: reload it."""
        if self._wanted is None:
            return
        if changes.touches(*SHOWN_TABLES) or (
            changes.touches(TRACE_TABLE) and self._shows_visit_of_today()
        ):
            self._data_timer.start()  # a burst of changes (a sync's pages) reloads once

    def _shows_visit_of_today(self) -> bool:
        d = self.detail
        if d is None or d.id != self._wanted:
            return False
        return any(to_local(v.check_in_at).date() == self.ctx.today for v in d.visits)

    def _on_data_timer(self) -> None:
        if self._wanted is None:
            return
        if self.isVisible():
            self._load(self._wanted)  # in place: the title stays, the tab shown too
        else:
            self._stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:  # (next turn: the caller may be about to show another customer)
            QTimer.singleShot(0, self, self._reload_if_stale)

    def _reload_if_stale(self) -> None:
        if self._stale and self._wanted is not None:
            self._load(self._wanted)

    def _on_loaded(self, customer_id: int, detail: CustomerDetail | None) -> None:
        if customer_id != self._wanted:
            return  # the user already asked for another customer
        # the same customer again (new data): the user's selection, scroll and open
        # branches stay; another customer starts fresh
        same = detail is not None and self.detail is not None and self.detail.id == detail.id
        self.detail = detail
        if detail is None:
            self.title.setText(_("This customer is not in your data."))
            self.info.setText("")
            self.tags_label.setText("")
            self.visits.set_rows([])
            self.notes.set_rows([])
            self.history.clear()
            return
        self.title.setText(f"{detail.name}  ·  {_('Tier {tier}').format(tier=detail.tier)}")
        bits = [
            detail.segment,
            detail.store_name,
            _("Rep: {name}").format(name=detail.rep_name) if detail.rep_name else "",
            detail.contact,
            detail.address,
        ]
        self.info.setText("  ·  ".join(b for b in bits if b))
        if detail.tags:
            self.tags_label.setText(
                "<br>".join(
                    f"<b style='color:#b45309'>★ {html.escape(t.label)}</b> — {html.escape(t.reason)}"
                    for t in detail.tags
                )
            )
        else:
            self.tags_label.setText(html.escape(_("No high-potential tag.")))
        self.visits.set_rows(detail.visits, keep=_visit_key if same else None)
        self.notes.set_rows(detail.notes, keep=_note_key if same else None)
        self._show_history(detail, keep=same)
        self.sig_loaded.emit(detail)

    def _show_history(self, detail: CustomerDetail, *, keep: bool) -> None:
        """The opportunity tree; ``keep``: branches the user closed stay closed, the current
        item and the scroll position stay."""
        tree = self.history
        closed: set[int] = set()
        current = None
        bar = tree.verticalScrollBar()
        scrolled = bar.value()
        if keep:
            for i in range(tree.topLevelItemCount()):
                top = tree.topLevelItem(i)
                if not top.isExpanded():
                    closed.add(top.data(0, Qt.ItemDataRole.UserRole))
            item = tree.currentItem()
            if item is not None:
                current = (item.data(0, Qt.ItemDataRole.UserRole), tree.currentColumn())
        tree.clear()
        for o in detail.opportunities:
            status = _(STATUS_LABELS.get(o.status, o.status))
            top = QTreeWidgetItem(
                [
                    f"{o.title} — {stage_label(o.stage)} ({status})",
                    local_text(o.opened_at),
                    format_fen(o.amount_fen),
                    _("next step {step} {at}").format(
                        step=o.next_step, at=local_text(o.next_step_at)
                    )
                    if o.next_step_at
                    else "",
                ]
            )
            for i, st in enumerate(o.steps):
                note = _("back to an earlier stage (reopened)") if st.backward else ""
                step = QTreeWidgetItem(
                    [
                        stage_label(st.stage),
                        local_text(st.entered_at),
                        format_fen(st.amount_fen),
                        note,
                    ]
                )
                if st.backward:
                    step.setForeground(3, QBrush(QColor("#b45309")))
                step.setData(0, Qt.ItemDataRole.UserRole, (o.id, i))
                top.addChild(step)
            top.setData(0, Qt.ItemDataRole.UserRole, o.id)
            tree.addTopLevelItem(top)
            top.setExpanded(o.id not in closed)
            if current is not None:
                for item in (top, *(top.child(j) for j in range(top.childCount()))):
                    if item.data(0, Qt.ItemDataRole.UserRole) == current[0]:
                        tree.setCurrentItem(item, current[1])
        if keep:
            tree.updateGeometries()  # the scroll range of the new items, before restoring
            bar.setValue(scrolled)
        else:
            for c in range(4):
                tree.resizeColumnToContents(c)


def _visit_key(v: VisitRow) -> str:
    return v.id


def _note_key(n: NoteRow) -> tuple:
    return (n.visit_id, n.kind, n.at, n.text)
