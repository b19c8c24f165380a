"""Home: a store manager lands on their store's week, a supervisor on their region.

The figures come from :mod:`core.home` on the DB worker; this view only renders them and
links to the screens where the work is done (promotions, schedule, alerts). A supervisor
who picks one store in the top bar sees that store's week (drill-down).
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.home import Kpi, ManagerHome, SupervisorHome
from core.i18n import N_, _
from core.quickread import manager_home as quick_manager_home
from core.quickread import supervisor_home as quick_supervisor_home
from core.timeutil import week_label
from desktop.formatting import count, money, percent
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.kpi_card import KpiCard
from desktop.widgets.table import Column, DataTable

KPI_TITLES = {
    "sales": N_("Sales, week to date"),
    "visitors": N_("Visitors, week to date"),
    "conversion": N_("Conversion rate"),
    "basket": N_("Average basket"),
    "visits": N_("Rep visits yesterday"),
}

STAGE_NAMES = {
    "lead": N_("Lead"),
    "visit": N_("Visit"),
    "opportunity": N_("Opportunity"),
    "quote": N_("Quote"),
    "contract": N_("Contract"),
    "payment": N_("Payment"),
}

WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))

SEVERITY_NAMES = {"critical": N_("Critical"), "warning": N_("Warning"), "info": N_("Info")}


def _kpi_text(k: Kpi) -> str:
    if k.unit == "fen":
        return money(k.value)
    if k.unit == "ratio":
        return percent(k.value)
    return count(k.value)


def _card(title: str) -> tuple[QFrame, QVBoxLayout]:
    frame = QFrame()
    frame.setObjectName("Card")
    lay = QVBoxLayout(frame)
    lay.setContentsMargins(14, 10, 14, 12)
    head = QLabel(title)
    head.setObjectName("SectionTitle")
    lay.addWidget(head)
    return frame, lay


class HomeView(QWidget):
    sig_loaded = Signal()
    """The figures of the current selection are shown (after each load; start-up benchmark)."""

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.data: ManagerHome | SupervisorHome | None = None
        self._request = 0
        # Ask first: the DB worker computes the figures while the widgets are built (the
        # answer arrives through the event loop, so never before __init__ has finished).
        self.reload()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        self.lay = QVBoxLayout(body)
        self.lay.setContentsMargins(20, 16, 20, 16)
        self.lay.setSpacing(14)

        self.headline = QLabel(_("Loading…"))
        self.headline.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.subline = QLabel("")
        self.subline.setObjectName("Muted")
        self.lay.addWidget(self.headline)
        self.lay.addWidget(self.subline)

        self.kpi_row = QHBoxLayout()
        self.kpi_row.setSpacing(12)
        self.cards: dict[str, KpiCard] = {}
        for key in ("sales", "visitors", "conversion", "basket", "visits"):
            card = KpiCard(_(KPI_TITLES[key]))
            self.cards[key] = card
            self.kpi_row.addWidget(card)
        self.lay.addLayout(self.kpi_row)

        # --- store week (manager, or supervisor drilled into a store)
        self.store_panel = QWidget()
        sp = QGridLayout(self.store_panel)
        sp.setContentsMargins(0, 0, 0, 0)
        sp.setHorizontalSpacing(12)
        chart_card, chart_lay = _card(_("Today's traffic by hour"))
        self._chart_lay = chart_lay
        self.traffic_chart = None  # built with the store panel (pyqtgraph; see _ensure_chart)
        self.today_line = QLabel("")
        chart_lay.addWidget(self.today_line)
        todo_card, todo_lay = _card(_("To do this week"))
        self.approvals_label = QLabel("")
        self.approvals_button = QPushButton(_("Open promotion approvals"))
        self.approvals_button.clicked.connect(lambda: ctx.navigate("promotions"))
        self.gaps_label = QLabel("")
        self.gaps_label.setWordWrap(True)
        self.gaps_list = QLabel("")
        self.gaps_list.setObjectName("Muted")
        self.gaps_list.setWordWrap(True)
        self.gaps_button = QPushButton(_("Open the rota"))
        self.gaps_button.clicked.connect(lambda: ctx.navigate("schedule"))
        for w in (
            self.approvals_label,
            self.approvals_button,
            self.gaps_label,
            self.gaps_list,
            self.gaps_button,
        ):
            todo_lay.addWidget(w)
        todo_lay.addStretch(1)
        sp.addWidget(chart_card, 0, 0)
        sp.addWidget(todo_card, 0, 1)
        sp.setColumnStretch(0, 3)
        sp.setColumnStretch(1, 2)
        self.lay.addWidget(self.store_panel)

        # --- region (supervisor)
        self.region_panel = QWidget()
        rp = QGridLayout(self.region_panel)
        rp.setContentsMargins(0, 0, 0, 0)
        rp.setHorizontalSpacing(12)
        rp.setVerticalSpacing(12)
        rank_card, rank_lay = _card(_("Store ranking, sales week to date"))
        self.ranking = DataTable(
            [
                Column("rank", N_("#"), numeric=True),
                Column("code", N_("Store code")),
                Column("name", N_("Store")),
                Column("sales_fen", N_("Sales"), fmt=money, numeric=True),
                Column("change", N_("vs last week"), fmt=percent, numeric=True),
                Column("conversion", N_("Conversion rate"), fmt=percent, numeric=True),
            ],
            cpu=ctx.cpu,
            title=_("Store ranking"),
        )
        self.ranking.setMinimumHeight(320)
        self.ranking.sig_activated.connect(lambda r: ctx.selection.set(store_id=r["store_id"]))
        rank_lay.addWidget(self.ranking)
        alerts_card, alerts_lay = _card(_("Open alerts"))
        self.alerts_label = QLabel("")
        # never let long alert lines widen the column: they are elided to fit instead
        self.alerts_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._alert_lines: list[str] = []
        self._alert_count = 0
        self.alerts_label.setTextFormat(Qt.TextFormat.PlainText)
        self.alerts_button = QPushButton(_("Open alerts"))
        self.alerts_button.clicked.connect(lambda: ctx.navigate("alerts"))
        alerts_lay.addWidget(self.alerts_label)
        alerts_lay.addWidget(self.alerts_button)
        alerts_lay.addStretch(1)
        funnel_card, funnel_lay = _card(_("Sales funnel, last 4 weeks"))
        self.funnel_label = QLabel("")
        self.funnel_label.setTextFormat(Qt.TextFormat.PlainText)
        funnel_lay.addWidget(self.funnel_label)
        funnel_lay.addStretch(1)
        visits_card, visits_lay = _card(_("Yesterday's visits"))
        self.visits_label = QLabel("")
        self.visits_label.setWordWrap(True)
        self.visits_label.setTextFormat(Qt.TextFormat.PlainText)
        self.visits_button = QPushButton(_("Open the field map"))
        self.visits_button.clicked.connect(lambda: ctx.navigate("field_map"))
        visits_lay.addWidget(self.visits_label)
        visits_lay.addWidget(self.visits_button)
        visits_lay.addStretch(1)
        rp.addWidget(rank_card, 0, 0, 3, 1)
        rp.addWidget(alerts_card, 0, 1)
        rp.addWidget(funnel_card, 1, 1)
        rp.addWidget(visits_card, 2, 1)
        rp.setColumnStretch(0, 3)
        rp.setColumnStretch(1, 2)
        self.lay.addWidget(self.region_panel)
        self.lay.addStretch(1)
        self.store_panel.hide()
        self.region_panel.hide()

        ctx.selection.sig_changed.connect(self.reload)
        ctx.sig_data_changed.connect(self._on_data_changed)
        if ctx.selection.store_id is not None:
            self._ensure_chart()  # a store's week is coming: build it while the query runs

    def _ensure_chart(self):
        """The hourly traffic chart, created the first time a store's week is shown.

        A supervisor lands on the region, which has no chart: pyqtgraph (and numpy) are
        then imported when they first drill into a store, not at start-up.
        """
        if self.traffic_chart is None:
            from desktop.widgets.timeseries_chart import TimeSeriesChart

            self.traffic_chart = TimeSeriesChart(x_format=lambda x: f"{int(x):02d}:00")
            self.traffic_chart.setFixedHeight(280)
            self._chart_lay.insertWidget(1, self.traffic_chart)  # under the card's title
        return self.traffic_chart

    # ------------------------------------------------------------------ loading

    def _on_data_changed(self, changes) -> None:
        if changes.touches(
            "hourly_traffic",
            "shifts",
            "promotion_proposals",
            "promotion_decisions",
            "alerts",
            "visits",
            "opportunities",
            "sync",
        ):
            self.reload()

    def reload(self) -> None:
        sel = self.ctx.selection
        self._request += 1
        req = self._request
        # read with the sqlite3 driver (equal to core.home.manager_home/supervisor_home):
        # the home is everyone's first screen and must not wait for the ORM to load
        if sel.store_id is not None:
            self.ctx.db.submit_read(
                quick_manager_home,
                sel.store_id,
                sel.day,
                on_result=lambda d: self._show(req, d),
                on_error=self._failed,
            )
        elif sel.region_id is not None:
            self.ctx.db.submit_read(
                quick_supervisor_home,
                sel.region_id,
                sel.day,
                self.ctx.actor,
                on_result=lambda d: self._show(req, d),
                on_error=self._failed,
            )

    def _render_alerts(self) -> None:
        """One line per alert, elided to the card's width (the alerts screen has details)."""
        if not self._alert_lines:
            self.alerts_label.setText(_("No open alerts."))
            return
        fm = self.alerts_label.fontMetrics()
        width = max(200, self.alerts_label.width() - 4)
        lines = [fm.elidedText(t, Qt.TextElideMode.ElideRight, width) for t in self._alert_lines]
        self.alerts_label.setText(
            _("{n} open alerts").format(n=self._alert_count) + "\n" + "\n".join(lines)
        )

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._alert_lines:
            self._render_alerts()

    def _failed(self, exc: BaseException) -> None:
        from desktop.errors import user_message

        if isinstance(exc, LookupError):  # signed in, first sync still downloading
            self.headline.setText(_("Your data is being downloaded from the server…"))
            self.subline.setText(_("This page fills in as soon as the first sync is done."))
            return
        self.headline.setText(user_message(exc)[1])

    def _show(self, req: int, data) -> None:
        if req != self._request:
            return  # an older answer after the selection moved on
        self.data = data
        if isinstance(data, ManagerHome):
            self._show_store(data)
        else:
            self._show_region(data)
        self.sig_loaded.emit()

    def _set_kpis(self, kpis: list[Kpi]) -> None:
        shown = {k.key for k in kpis}
        for key, card in self.cards.items():
            card.setVisible(key in shown)
        for k in kpis:
            self.cards[k.key].set_value(_kpi_text(k), k.change)

    def _show_store(self, d: ManagerHome) -> None:
        self.headline.setText(f"{d.store_code}  {d.store_name}")
        self.subline.setText(
            _("Week {week} · {day} · compared with the same days last week").format(
                week=week_label(d.week_start), day=d.day.isoformat()
            )
        )
        self._set_kpis(d.kpis)
        hours = [h for h, _t, _l in d.hourly]
        chart = self._ensure_chart()
        chart.set_series(
            "today", hours, [t for _h, t, _l in d.hourly], name=_("Today"), color="#2f6fdf"
        )
        chart.set_series(
            "last_week",
            hours,
            [lw for _h, _t, lw in d.hourly],
            name=_("Same day last week"),
            color="#9aa5b1",
            dashed=True,
        )
        self.today_line.setText(
            _("Today: {visitors} visitors, {transactions} transactions, {sales} sales").format(
                visitors=count(d.today_visitors),
                transactions=count(d.today_transactions),
                sales=money(d.today_sales_fen),
            )
        )
        self.approvals_label.setText(
            _("Promotion approvals waiting: {n}").format(n=d.pending_approvals)
        )
        self.gaps_label.setText(
            _("Rota gaps this week: {n} open hours below minimum staffing").format(
                n=len(d.rota_gaps)
            )
        )
        by_day: dict[dt.date, list[int]] = {}
        for g in d.rota_gaps:
            by_day.setdefault(g.day, []).append(g.hour)
        lines = [
            f"{day.strftime('%m-%d')} {_(WEEKDAYS[day.weekday()])}: "
            + ", ".join(f"{h:02d}:00" for h in hours_[:6])
            + (" …" if len(hours_) > 6 else "")
            for day, hours_ in sorted(by_day.items())[:5]
        ]
        self.gaps_list.setText("\n".join(lines))
        self.region_panel.hide()
        self.store_panel.show()

    def _show_region(self, d: SupervisorHome) -> None:
        self.headline.setText(d.region_name)
        self.subline.setText(
            _("Week {week} · {day} · compared with the same days last week").format(
                week=week_label(d.week_start), day=d.day.isoformat()
            )
        )
        self._set_kpis(d.kpis)
        rows = [
            {
                "rank": i,
                "store_id": r.store_id,
                "code": r.code,
                "name": r.name,
                "sales_fen": r.sales_fen,
                "change": r.change,
                "conversion": r.conversion,
            }
            for i, r in enumerate(d.ranking, start=1)
        ]
        self.ranking.set_rows(rows)
        self._alert_lines = [
            f"{_(SEVERITY_NAMES.get(a.severity, a.severity))} · {_(a.title)} · {a.subject}"
            for a in d.alerts[:5]
        ]
        self._alert_count = d.open_alerts
        self._render_alerts()
        self.funnel_label.setText(
            "\n".join(
                f"{_(STAGE_NAMES.get(stage, stage))}: {n}  ({money(amount)})"
                for stage, n, amount in d.funnel
            )
        )
        top = ", ".join(f"{name} {n}" for name, n in d.visits_by_rep[:5])
        self.visits_label.setText(
            _("{visits} visits by {reps} reps on {day}.").format(
                visits=d.yesterday_visits, reps=d.yesterday_reps, day=d.yesterday.isoformat()
            )
            + (("\n" + _("Most visits: {reps}").format(reps=top)) if top else "")
        )
        self.store_panel.hide()
        self.region_panel.show()


register_screen(ScreenSpec(id="home", title=N_("Home"), factory=HomeView, order=0, icon="home"))
