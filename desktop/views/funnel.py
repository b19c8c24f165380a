"""Funnel screen (销售漏斗): filters, the funnel chart, drill to opportunities and customers.

Follows the shared region/store/date selection (the period ends on the selected day).
Click a stage → the opportunities the funnel counts there → activate one → the customer
detail (visits with evidence, stage history, voice summaries). A second tab lists the
high-potential customers of the same scope. All queries run on the DB worker
(:mod:`core.funnel`, :mod:`core.customers`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.customers import CustomerRow, high_potential_tags, list_customers
from core.funnel import (
    STAGE_INDEX,
    FilterOption,
    FunnelMode,
    FunnelQuery,
    FunnelResult,
    OpportunityRow,
    PeriodBasis,
    compute_funnel,
    funnel_filter_options,
    opportunities_at_stage,
    period_of_days,
)
from core.i18n import N_, _
from core.models import STAGE_ORDER
from desktop.screens import ScreenSpec, register_screen
from desktop.views.customer_detail import STATUS_LABELS, CustomerDetailView, local_text
from desktop.widgets.funnel_chart import (
    FunnelChart,
    format_fen,
    format_hours,
    format_pct,
    stage_label,
)
from desktop.widgets.table import Column, DataTable

PERIODS = ((7, N_("Last 7 days")), (30, N_("Last 30 days")), (91, N_("Last 13 weeks")))
DEFAULT_PERIOD_DAYS = 30
DATA_TABLES = ("opportunities", "opportunity_stage_events", "visits", "visit_notes", "customers")


@dataclass(frozen=True)
class StageTableRow:
    stage: str
    count: int
    amount_fen: int
    next_conversion: float | None
    cumulative_conversion: float | None
    median_hours: float | None
    skipped: int
    previous: int | None


def _change(r: StageTableRow) -> str:
    if r.previous is None:
        return ""
    d = r.count - r.previous
    return f"{'+' if d >= 0 else ''}{d}"


STAGE_COLUMNS = [
    # sorted by position in the funnel, shown by name
    Column(
        "stage",
        N_("Stage"),
        value=lambda r: STAGE_INDEX[r.stage],
        fmt=lambda i: stage_label(STAGE_ORDER[i].value),
    ),
    Column("count", N_("Count"), numeric=True),
    Column("amount_fen", N_("Amount"), fmt=format_fen, numeric=True),
    Column("next_conversion", N_("From previous stage"), fmt=format_pct, numeric=True),
    Column("cumulative_conversion", N_("From lead"), fmt=format_pct, numeric=True),
    Column("median_hours", N_("Median time in stage"), fmt=format_hours, numeric=True),
    Column("skipped", N_("Skipped"), numeric=True),
    Column("previous", N_("Previous period"), numeric=True),
    Column("change", N_("Change"), value=_change),
]

OPP_COLUMNS = [
    Column("customer_name", N_("Customer")),
    Column("tier", N_("Tier")),
    Column("title", N_("Opportunity")),
    Column("rep_name", N_("Rep")),
    Column("store_name", N_("Store")),
    Column("amount_fen", N_("Amount"), fmt=format_fen, numeric=True),
    Column("entered_stage_at", N_("Entered stage"), fmt=local_text),
    Column("current_stage", N_("Now at"), fmt=stage_label),
    Column(
        "status",
        N_("Status"),
        fmt=lambda s: _(STATUS_LABELS.get(s, s)),
    ),
    Column("next_step_at", N_("Next step"), fmt=local_text),
    Column("reopened", N_("Reopened"), fmt=lambda b: _("yes") if b else ""),
]

CUSTOMER_COLUMNS = [
    Column("name", N_("Customer")),
    Column("tier", N_("Tier")),
    Column("segment", N_("Segment")),
    Column("store_name", N_("Store")),
    Column("rep_name", N_("Rep")),
    Column("last_visit_at", N_("Last visit"), fmt=local_text),
    Column("tag_text", N_("Tags")),
    Column("reasons", N_("Why"), value=lambda r: " ".join(t.reason for t in r.tags)),
]


class FunnelView(QWidget):
    sig_loaded = Signal(object)
    """The funnel is shown; carries the :class:`FunnelResult`."""

    sig_stage_loaded = Signal(str, int)
    """The opportunities of a stage are listed: (stage, number of rows)."""

    sig_customers_loaded = Signal(int)
    """The high-potential customer list is shown, with this many rows."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result: FunnelResult | None = None
        self.stage: str | None = None
        self._gen = 0
        self._options_region: object = object()

        # --- filters
        self.rep_combo = QComboBox()
        self.rep_combo.setMinimumWidth(140)
        self.rep_combo.addItem(_("All reps"), None)
        self.tier_combo = QComboBox()
        self.tier_combo.addItem(_("All tiers"), None)
        for t in "ABC":
            self.tier_combo.addItem(_("Tier {tier}").format(tier=t), t)
        self.period_combo = QComboBox()
        for days, label in PERIODS:
            self.period_combo.addItem(_(label), days)
        self.period_combo.setCurrentIndex([p[0] for p in PERIODS].index(DEFAULT_PERIOD_DAYS))
        self.basis_combo = QComboBox()
        self.basis_combo.addItem(_("Leads created in the period"), PeriodBasis.COHORT.value)
        self.basis_combo.addItem(_("Stage entries in the period"), PeriodBasis.ACTIVITY.value)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem(_("Ordered: every stage in turn"), FunnelMode.ORDERED.value)
        self.mode_combo.addItem(_("Any stage ever reached"), FunnelMode.ANY.value)
        self.compare_check = QCheckBox(_("Compare with previous period"))
        self.compare_check.setChecked(True)
        filters = QHBoxLayout()
        for label, w in (
            (_("Rep"), self.rep_combo),
            (_("Tier"), self.tier_combo),
            (_("Period"), self.period_combo),
            (_("Counted by"), self.basis_combo),
            (_("Mode"), self.mode_combo),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(w)
        filters.addWidget(self.compare_check)
        filters.addStretch(1)
        self._restore_filters()
        self.rep_combo.currentIndexChanged.connect(self.reload)
        for combo in (self.tier_combo, self.period_combo, self.basis_combo, self.mode_combo):
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.compare_check.toggled.connect(self._on_filter_changed)

        # --- left: chart + stage table
        self.summary = QLabel(" ")
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        self.chart = FunnelChart()
        self.chart.sig_stage_clicked.connect(self.open_stage)
        self.stage_table = DataTable(STAGE_COLUMNS, cpu=ctx.cpu, title=_("Sales funnel"))
        self.stage_table.sig_activated.connect(lambda r: self.open_stage(r.stage))
        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(self.summary)
        left_lay.addWidget(self.chart, 3)
        left_lay.addWidget(self.stage_table, 2)

        # --- right: lists, then customer detail
        self.stage_title = QLabel(_("Click a stage of the funnel to list its opportunities."))
        self.stage_title.setObjectName("SectionTitle")
        self.stage_title.setWordWrap(True)
        #: customer id -> high-potential tag labels, for the opportunities listed
        self._opp_tags: dict[int, str] = {}
        tags_column = Column(
            "tags", N_("High potential"), value=lambda r: self._opp_tags.get(r.customer_id)
        )
        self.opp_table = DataTable(
            [*OPP_COLUMNS[:2], tags_column, *OPP_COLUMNS[2:]], cpu=ctx.cpu, title=_("Opportunities")
        )
        self.opp_table.sig_activated.connect(self._on_opportunity_activated)
        self.opp_table.view.sortByColumn(7, Qt.SortOrder.DescendingOrder)  # newest entry first
        opp_page = QWidget()
        opp_lay = QVBoxLayout(opp_page)
        opp_lay.setContentsMargins(0, 4, 0, 0)
        opp_lay.addWidget(self.stage_title)
        opp_lay.addWidget(self.opp_table, 1)
        self.tag_combo = QComboBox()
        self.tag_combo.addItem(_("All high-potential"), None)
        self.tag_combo.addItem(_("Purchases up"), "purchases_up")
        self.tag_combo.addItem(_("Low stock turnover"), "low_turnover")
        self.tag_combo.currentIndexChanged.connect(self.reload_customers)
        self.customer_table = DataTable(
            CUSTOMER_COLUMNS, cpu=ctx.cpu, title=_("High-potential customers")
        )
        self.customer_table.sig_activated.connect(
            lambda r: self.open_customer(r.id) if isinstance(r, CustomerRow) else None
        )
        cust_page = QWidget()
        cust_lay = QVBoxLayout(cust_page)
        cust_lay.setContentsMargins(0, 4, 0, 0)
        tag_row = QHBoxLayout()
        tag_row.addWidget(QLabel(_("Tag")))
        tag_row.addWidget(self.tag_combo)
        tag_row.addStretch(1)
        cust_lay.addLayout(tag_row)
        cust_lay.addWidget(self.customer_table, 1)
        self.lists = QTabWidget()
        self.lists.addTab(opp_page, _("Opportunities at stage"))
        self.lists.addTab(cust_page, _("High-potential customers"))
        self.detail = CustomerDetailView(ctx)
        self.detail.sig_back.connect(lambda: self.right.setCurrentWidget(self.lists))
        self.right = QStackedWidget()
        self.right.addWidget(self.lists)
        self.right.addWidget(self.detail)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.right)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 6)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(filters)
        lay.addWidget(split, 1)

        ctx.selection.sig_changed.connect(self.reload)
        ctx.selection.sig_changed.connect(self.reload_customers)
        ctx.sig_data_changed.connect(self._on_data_changed)
        self.reload()
        self.reload_customers()

    # ------------------------------------------------------------------ filters

    def _combos(self) -> dict[str, QComboBox]:
        return {
            "tier": self.tier_combo,
            "period_days": self.period_combo,
            "basis": self.basis_combo,
            "mode": self.mode_combo,
        }

    def _restore_filters(self) -> None:
        for name, combo in self._combos().items():
            i = combo.findData(self.ctx.remembered_filter("funnel", name, combo.currentData()))
            if i >= 0:
                combo.setCurrentIndex(i)
        self.compare_check.setChecked(bool(self.ctx.remembered_filter("funnel", "compare", True)))

    def _on_filter_changed(self, *_args) -> None:
        for name, combo in self._combos().items():
            self.ctx.remember_filter("funnel", name, combo.currentData())
        self.ctx.remember_filter("funnel", "compare", self.compare_check.isChecked())
        self.reload()

    # ------------------------------------------------------------------ query

    def query(self) -> FunnelQuery:
        sel = self.ctx.selection
        start, end = period_of_days(sel.day, int(self.period_combo.currentData()))
        return FunnelQuery(
            start=start,
            end=end,
            mode=FunnelMode(self.mode_combo.currentData()),
            basis=PeriodBasis(self.basis_combo.currentData()),
            region_id=sel.region_id,
            store_id=sel.store_id,
            rep_id=self.rep_combo.currentData(),
            tier=self.tier_combo.currentData(),
        )

    def reload(self) -> None:
        self._gen += 1
        gen = self._gen
        query = self.query()
        compare = self.compare_check.isChecked()
        actor = self.ctx.actor
        region = self.ctx.selection.region_id
        want_options = region != self._options_region
        self._options_region = region

        def work(session):
            result = compute_funnel(session, query, actor=actor, compare_previous=compare)
            options = funnel_filter_options(session, region, actor)[1] if want_options else None
            return result, options

        self.summary.setText(_("Loading…"))
        self.ctx.db.submit(work, on_result=lambda r: self._on_loaded(gen, *r))
        if self.stage is not None:
            self.open_stage(self.stage)

    def _on_loaded(self, gen: int, result: FunnelResult, reps: list[FilterOption] | None) -> None:
        if gen != self._gen:
            return
        if reps is not None:
            self._set_reps(reps)
        self.result = result
        self.chart.set_result(result)
        prev = result.previous
        self.stage_table.set_rows(
            [
                StageTableRow(
                    s.stage,
                    s.count,
                    s.amount_fen,
                    s.next_conversion,
                    s.cumulative_conversion,
                    s.median_hours,
                    s.skipped,
                    prev.stages[k].count if prev else None,
                )
                for k, s in enumerate(result.stages)
            ]
        )
        q = result.query
        period = f"{local_text(q.start)[:10]} – {local_text(q.end - dt.timedelta(seconds=1))[:10]}"
        if result.is_empty:
            text = _("{period}: no opportunities match these filters.").format(period=period)
        else:
            text = _(
                "{period}: {n} opportunities, {reopened} reopened; {paid} paid ({amount})."
            ).format(
                period=period,
                n=result.opportunities,
                reopened=result.reopened,
                paid=result.stages[-1].count,
                amount=format_fen(result.stages[-1].amount_fen),
            )
        self.summary.setText(text)
        self.sig_loaded.emit(result)

    def _set_reps(self, reps: list[FilterOption]) -> None:
        current = self.rep_combo.currentData()
        self.rep_combo.blockSignals(True)
        self.rep_combo.clear()
        self.rep_combo.addItem(_("All reps"), None)
        for o in reps:
            self.rep_combo.addItem(o.label, o.id)
        i = self.rep_combo.findData(current)
        self.rep_combo.setCurrentIndex(max(0, i))
        self.rep_combo.blockSignals(False)

    # ------------------------------------------------------------------ drill-down

    def open_stage(self, stage: str) -> None:
        """List the opportunities counted at ``stage`` (what a click on its band does)."""
        self.stage = stage
        gen = self._gen
        query, actor, today = self.query(), self.ctx.actor, self.ctx.today
        self.stage_title.setText(_("Loading…"))
        self.right.setCurrentWidget(self.lists)
        self.lists.setCurrentIndex(0)

        def work(session) -> tuple[list[OpportunityRow], dict[int, str]]:
            rows = opportunities_at_stage(session, query, stage, actor=actor)
            tags = high_potential_tags(session, today, sorted({r.customer_id for r in rows}))
            return rows, {cid: ", ".join(t.label for t in ts) for cid, ts in tags.items()}

        self.ctx.db.submit(work, on_result=lambda res: self._on_stage_rows(gen, stage, *res))

    def _on_stage_rows(
        self, gen: int, stage: str, rows: list[OpportunityRow], tags: dict[int, str]
    ) -> None:
        if gen != self._gen or stage != self.stage:
            return
        self._opp_tags = tags
        self.opp_table.set_rows(rows)
        self.stage_title.setText(
            _("{stage}: {n} opportunities — double-click one to open its customer.").format(
                stage=stage_label(stage), n=len(rows)
            )
        )
        self.sig_stage_loaded.emit(stage, len(rows))

    def _on_opportunity_activated(self, row: OpportunityRow) -> None:
        self.open_customer(row.customer_id)

    def open_customer(self, customer_id: int) -> None:
        self.right.setCurrentWidget(self.detail)
        self.detail.show_customer(customer_id)

    def reload_customers(self) -> None:
        sel, actor, today = self.ctx.selection, self.ctx.actor, self.ctx.today
        tag = self.tag_combo.currentData()

        def work(session) -> list[CustomerRow]:
            return list_customers(
                session,
                today,
                actor=actor,
                region_id=sel.region_id,
                store_id=sel.store_id,
                tag=tag,
                high_potential_only=True,
            )

        def done(rows: list[CustomerRow]) -> None:
            self.customer_table.set_rows(rows)
            self.sig_customers_loaded.emit(len(rows))

        self.ctx.db.submit(work, on_result=done)

    def _on_data_changed(self, changes) -> None:
        if changes.touches(*DATA_TABLES):
            self.reload()
            self.reload_customers()


register_screen(
    ScreenSpec(
        id="funnel",
        title=N_("Funnel"),
        factory=FunnelView,
        roles=frozenset({"supervisor", "admin"}),
        order=60,
        icon="funnel",
    )
)
