"""The traffic screen (客流分析): KPIs, day × hour heat grid, trend, power hours, peers, import.

Everything shown comes from :func:`core.traffic.analytics.traffic_overview` run on the DB
worker for ``ctx.selection`` (store + day); clicking a day in the heat grid loads that
day's hours. "Import CSV…" validates the whole file on the DB worker and either lists the
row-level errors (nothing imported) or queues the rows through the outbox so they sync.
With no store selected (a supervisor's whole region) the screen lists the region's stores;
double-clicking one selects it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.i18n import N_, _
from core.mutations import Changes
from core.traffic.analytics import (
    Basis,
    HourPoint,
    PeerRow,
    TrafficOverview,
    region_stores,
    store_day_hours,
    traffic_overview,
)
from core.traffic.importer import ImportResult, import_csv
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.heat_grid import HeatGrid
from desktop.widgets.kpi_card import KpiCard, format_change
from desktop.widgets.table import Column, DataTable
from desktop.widgets.timeseries_chart import TimeSeriesChart

WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def yuan(fen: int | float | None, decimals: int = 0) -> str:
    if fen is None:
        return "—"
    return f"¥{fen / 100:,.{decimals}f}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def num(x: float | None, decimals: int = 1) -> str:
    return "—" if x is None else f"{x:,.{decimals}f}"


def _shows_day(ov: TrafficOverview, day: dt.date) -> bool:
    """The heat grid or the trend of ``ov`` has ``day`` (where the user can drill from)."""
    return day in ov.grid.days or any(p.day == day for p in ov.trend.points)


def day_name(d: dt.date) -> str:
    return f"{_(WEEKDAYS[d.weekday()])} {d.isoformat()}"


class _HoursChart(QWidget):
    """One day's hours: visitors as bars (outage hours in red), transactions as a line."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.points: list[HourPoint] = []
        self.title = QLabel(" ")
        self.title.setObjectName("SectionTitle")
        self.hover_label = QLabel(" ")
        self.hover_label.setObjectName("Muted")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(200)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setPen(pg.mkPen("#9aa5b1"))
            ax.setTextPen(pg.mkPen("#52606d"))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#6baed6")
        self.bad_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#ef9a9a")
        self.plot.addItem(self.bars)
        self.plot.addItem(self.bad_bars)
        self.txn_line = self.plot.plot(
            [],
            [],
            pen=pg.mkPen("#d97706", width=2),
            symbol="o",
            symbolSize=5,
            symbolBrush="#d97706",
        )
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        lay.addWidget(self.hover_label)
        lay.addWidget(self.plot, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_day(self, day: dt.date, points: list[HourPoint]) -> None:
        self.day = day
        self.points = points
        self.title.setText(_("Hours of {day}").format(day=day_name(day)))
        good = [p for p in points if p.outage is None]
        bad = [p for p in points if p.outage is not None]
        self.bars.setOpts(x=[p.hour for p in good], height=[p.visitors for p in good])
        self.bad_bars.setOpts(x=[p.hour for p in bad], height=[max(p.visitors, 1) for p in bad])
        self.txn_line.setData([p.hour for p in points], [p.transactions for p in points])
        if points:
            self.plot.setXRange(points[0].hour - 0.6, points[-1].hour + 0.6, padding=0)
        self.hover_label.setText(
            _("Bars: visitors (red: counter outage) · line: transactions")
            if points
            else _("No data for this day")
        )

    def text_for_hour(self, hour: int) -> str:
        for p in self.points:
            if p.hour == hour:
                text = _(
                    "{hour:02d}:00 — {visitors} visitors, {transactions} transactions, "
                    "sales {sales}, conversion {conversion}, STAR {star}"
                ).format(
                    hour=p.hour,
                    visitors=p.visitors,
                    transactions=p.transactions,
                    sales=yuan(p.sales_fen),
                    conversion=pct(p.conversion),
                    star=num(p.star),
                )
                if p.outage is not None:
                    text += "  ⚠ " + p.outage.describe()
                return text
        return ""

    def _on_mouse_moved(self, pos) -> None:
        if not self.points or not self.plot.sceneBoundingRect().contains(pos):
            return
        x = self.plot.getPlotItem().vb.mapSceneToView(pos).x()
        text = self.text_for_hour(round(x))
        if text:
            self.hover_label.setText(text)


class ImportReportDialog(QDialog):
    """What an import did, or why the file was refused (row, column, problem)."""

    def __init__(self, result: ImportResult, file_name: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Import traffic CSV"))
        self.setMinimumSize(620, 360 if not result.ok else 160)
        lay = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        lay.addWidget(self.summary)
        self.errors = QTableWidget(0, 3)
        if result.ok:
            self.summary.setText(
                _(
                    "{file}: {rows} rows read — {inserted} new, {updated} changed, "
                    "{unchanged} already up to date. {mutations} change(s) queued for sync."
                ).format(
                    file=file_name,
                    rows=result.rows_in_file,
                    inserted=result.inserted,
                    updated=result.updated,
                    unchanged=result.unchanged,
                    mutations=result.mutations,
                )
            )
            self.errors.hide()
        else:
            self.summary.setObjectName("ErrorText")
            self.summary.setText(
                _(
                    "{file} was refused: {count} problem(s) found. Nothing was imported. "
                    "Fix the rows below and import the file again."
                ).format(file=file_name, count=len(result.errors))
            )
            self.errors.setHorizontalHeaderLabels([_("Row"), _("Column"), _("Problem")])
            self.errors.setRowCount(len(result.errors))
            for i, e in enumerate(result.errors):
                self.errors.setItem(i, 0, QTableWidgetItem(str(e.row)))
                self.errors.setItem(i, 1, QTableWidgetItem(e.column))
                self.errors.setItem(i, 2, QTableWidgetItem(e.message))
            self.errors.verticalHeader().hide()
            self.errors.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            self.errors.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
            self.errors.resizeColumnsToContents()
        lay.addWidget(self.errors, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay.addWidget(buttons)

    def error_rows(self) -> list[tuple[str, str, str]]:
        return [
            tuple(self.errors.item(i, c).text() for c in range(3))  # type: ignore[misc]
            for i in range(self.errors.rowCount())
        ]


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setObjectName("SectionTitle")
    return label


PEER_COLUMNS = [
    Column("code", N_("Store code")),
    Column("name", N_("Store")),
    Column("visitors_per_day", N_("Visitors / day"), fmt=lambda v: f"{v:,.0f}", numeric=True),
    Column("conversion", N_("Conversion"), fmt=pct, numeric=True),
    Column("atv_fen", N_("ATV"), fmt=lambda v: yuan(v, 2), numeric=True),
    Column("sales_per_day_fen", N_("Sales / day"), fmt=yuan, numeric=True),
    Column("star", N_("STAR"), fmt=num, numeric=True),
    Column("excluded_hours", N_("Excluded hours"), numeric=True),
]


POWER_COLUMNS = [
    Column("slot", N_("Hour"), value=lambda p: f"{_(WEEKDAYS[p.weekday])} {p.hour:02d}:00"),
    Column("avg_visitors", N_("Avg. visitors"), fmt=lambda v: f"{v:,.0f}", numeric=True),
    Column("conversion", N_("Conversion"), fmt=pct, numeric=True),
    Column("avg_sales_fen", N_("Avg. sales"), fmt=yuan, numeric=True),
    Column("share_of_visitors", N_("Share of week"), fmt=pct, numeric=True),
]

OUTAGE_COLUMNS = [
    Column("day", N_("Day"), fmt=day_name),
    Column("hour", N_("Hour"), fmt=lambda h: f"{h:02d}:00", numeric=True),
    Column("reason", N_("Why it is excluded"), value=lambda o: o.describe()),
]


class TrafficView(QWidget):
    sig_loaded = Signal()
    """The screen finished showing fresh data for the current selection."""

    sig_drilled = Signal(object)
    """The hours chart now shows this day (a ``datetime.date``)."""

    sig_import_done = Signal(object)
    """An import finished (an :class:`ImportResult`); the report dialog is open."""

    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.overview: TrafficOverview | None = None
        self.region_rows: list[PeerRow] = []
        self.import_dialog: ImportReportDialog | None = None
        self._request = 0
        # the day the user drilled into (the store's, until the selection changes): a
        # reload for new data keeps it while the period shown still has it
        self._drilled: dt.date | None = None

        # --- header
        self.title_label = QLabel(" ")
        self.title_label.setObjectName("SectionTitle")
        self.period_label = QLabel(" ")
        self.period_label.setObjectName("Muted")
        self.status_label = QLabel(" ")
        self.status_label.setObjectName("Muted")
        self.import_button = QPushButton(_("Import CSV…"))
        self.import_button.setObjectName("Primary")
        self.import_button.setToolTip(
            _("Import hourly counts exported by a door counter or POS (see the documented columns)")
        )
        self.import_button.clicked.connect(self._on_import_clicked)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(self.title_label)
        titles.addWidget(self.period_label)
        head.addLayout(titles, 1)
        head.addWidget(self.status_label)
        head.addWidget(self.import_button)

        # --- store page
        store_page = QWidget()
        sp = QVBoxLayout(store_page)
        sp.setContentsMargins(0, 0, 0, 0)
        sp.setSpacing(10)
        self.cards = {
            "visitors": KpiCard(_("Visitors")),
            "conversion": KpiCard(_("Conversion")),
            "atv": KpiCard(_("Avg. transaction value")),
            "upt": KpiCard(_("Units per transaction")),
            "star": KpiCard(_("STAR (visitors per staff-hour)")),
            "sales": KpiCard(_("Sales")),
        }
        self.cards["star"].setToolTip(
            _(
                "Shopper-to-associate ratio: visitors ÷ scheduled floor staff-hours "
                "(published shifts of sales, cashier, keyholder and manager) in hours with a "
                "trusted counter. Lower means more staff per shopper."
            )
        )
        cards = QHBoxLayout()
        cards.setSpacing(8)
        for c in self.cards.values():
            cards.addWidget(c)
        sp.addLayout(cards)
        self.reference_label = QLabel(" ")
        self.reference_label.setObjectName("Muted")
        self.reference_label.setWordWrap(True)
        self.quality_label = QLabel(" ")
        self.quality_label.setWordWrap(True)
        sp.addWidget(self.reference_label)
        sp.addWidget(self.quality_label)

        self.heat = HeatGrid()
        self.heat.sig_day_clicked.connect(self._on_day_clicked)
        self.hours_chart = _HoursChart()
        grid_row = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(_section(_("Visitors by day and hour (last 4 weeks) — click a day")))
        left.addWidget(self.heat, 1)
        grid_row.addLayout(left, 3)
        grid_row.addWidget(self.hours_chart, 2)
        sp.addLayout(grid_row)

        self.trend = TimeSeriesChart(x_format=self._trend_x_label)
        self.trend.setMinimumHeight(240)
        self.outage_markers = pg.ScatterPlotItem(
            symbol="t", size=11, pen=pg.mkPen("#c62828"), brush=pg.mkBrush("#ef9a9a")
        )
        self.trend.plot.addItem(self.outage_markers)
        self.trend.plot.scene().sigMouseClicked.connect(self._on_trend_clicked)
        self.holiday_lines: list[pg.InfiniteLine] = []
        self.holiday_regions: list[pg.LinearRegionItem] = []
        self.trend_title = _section(_("Daily visitors (last 6 weeks)"))
        sp.addWidget(self.trend_title)
        sp.addWidget(self.trend)

        bottom = QGridLayout()
        bottom.setHorizontalSpacing(12)
        self.power_table = DataTable(POWER_COLUMNS, cpu=ctx.cpu, title="power-hours")
        self.outage_table = DataTable(OUTAGE_COLUMNS, cpu=ctx.cpu, title="excluded-hours")
        for t in (self.power_table, self.outage_table):
            t.setMinimumHeight(210)
        self.peer_title = _section(_("Comparable stores"))
        self.peers = DataTable(PEER_COLUMNS, cpu=ctx.cpu, title="traffic-peers")
        self.peers.setMinimumHeight(220)
        self.power_by = QComboBox()
        self.power_by.addItem(_("by visitors"), "visitors")
        self.power_by.addItem(_("by sales"), "sales")
        self.power_by.currentIndexChanged.connect(self._on_power_by_changed)
        power_head = QHBoxLayout()
        power_head.addWidget(_section(_("Power hours (busiest, last 4 weeks)")))
        power_head.addStretch(1)
        power_head.addWidget(self.power_by)
        bottom.addLayout(power_head, 0, 0)
        bottom.addWidget(self.power_table, 1, 0)
        bottom.addWidget(_section(_("Excluded hours (counter outages)")), 0, 1)
        bottom.addWidget(self.outage_table, 1, 1)
        bottom.setColumnStretch(0, 1)
        bottom.setColumnStretch(1, 1)
        sp.addLayout(bottom)
        sp.addWidget(self.peer_title)
        sp.addWidget(self.peers)

        # --- region page
        region_page = QWidget()
        rp = QVBoxLayout(region_page)
        rp.setContentsMargins(0, 0, 0, 0)
        self.region_hint = QLabel(
            _("Choose a store in the toolbar, or double-click one below, to see its traffic.")
        )
        self.region_hint.setObjectName("Notice")
        self.region_table = DataTable(PEER_COLUMNS, cpu=ctx.cpu, title="traffic-region")
        self.region_table.sig_activated.connect(self._on_region_store_activated)
        rp.addWidget(self.region_hint)
        rp.addWidget(self.region_table, 1)

        self.pages = QStackedWidget()
        self.pages.addWidget(store_page)
        self.pages.addWidget(region_page)

        body = QWidget()
        body_lay = QVBoxLayout(body)
        body_lay.setContentsMargins(16, 12, 16, 16)
        body_lay.addLayout(head)
        body_lay.addWidget(self.pages, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        ctx.selection.sig_changed.connect(self._on_selection_changed)
        ctx.sig_data_changed.connect(self._on_data_changed)
        self.reload()

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        sel = self.ctx.selection
        self._request += 1
        token = self._request
        self.status_label.setText(_("Loading…"))
        if sel.store_id is not None:
            store_id, day, today = sel.store_id, sel.day, self.ctx.today
            drilled = self._drilled

            def work(
                session: Any,
            ) -> tuple[TrafficOverview, tuple[dt.date, list[HourPoint]] | None]:
                ov = traffic_overview(session, store_id, day, today)
                if drilled is None or drilled == ov.day or not _shows_day(ov, drilled):
                    return ov, None
                return ov, (drilled, store_day_hours(session, store_id, drilled))

            self.ctx.db.submit(
                work,
                on_result=lambda r: self._on_overview(token, *r),
                on_error=self._on_error,
            )
        elif sel.region_id is not None:
            day = min(sel.day, self.ctx.today)
            start = day - dt.timedelta(days=day.weekday())
            scope = None if self.ctx.actor.role == "admin" else sorted(self.ctx.actor.store_ids)
            self.ctx.db.submit(
                region_stores,
                sel.region_id,
                scope,
                start,
                day,
                on_result=lambda rows: self._on_region(token, rows, start, day),
                on_error=self._on_error,
            )
        else:
            self.status_label.setText(_("Choose a region or store."))

    def _on_error(self, exc: BaseException) -> None:
        self.status_label.setText(_("Could not load traffic: {error}").format(error=exc))

    def _on_selection_changed(self) -> None:
        self._drilled = None  # another store or day: its own default drill
        self.reload()

    def _on_data_changed(self, changes: Changes) -> None:
        if changes.touches("hourly_traffic", "shifts", "stores"):
            self.reload()

    def _on_region(self, token: int, rows: list[PeerRow], start: dt.date, end: dt.date) -> None:
        if token != self._request:
            return
        self.region_rows = rows
        self.overview = None
        self.pages.setCurrentIndex(1)
        self.title_label.setText(_("Stores of the region"))
        self.period_label.setText(
            _("{start} – {end}, averages per trading day").format(
                start=start.isoformat(), end=end.isoformat()
            )
        )
        self.region_table.set_rows(rows)
        self.status_label.setText(" ")
        self.sig_loaded.emit()

    def _on_region_store_activated(self, row: PeerRow) -> None:
        self.ctx.selection.set(store_id=row.store_id)

    def _on_overview(
        self,
        token: int,
        ov: TrafficOverview,
        drill: tuple[dt.date, list[HourPoint]] | None = None,
    ) -> None:
        """``drill``: the day the user drilled into and its hours, when still shown."""
        if token != self._request:
            return  # a newer selection is loading
        self.overview = ov
        self.pages.setCurrentIndex(0)
        self.status_label.setText(" ")
        wk = ov.week
        end = wk.week_start + dt.timedelta(days=wk.days - 1)
        self.title_label.setText(f"{ov.store.code} · {ov.store.name}")
        self.period_label.setText(
            _(
                "Week of {start} ({days} days to {end}), compared with the same days of the week before"
            ).format(start=wk.week_start.isoformat(), days=wk.days, end=end.isoformat())
        )
        self._show_cards(ov)
        self._show_grid(ov)
        if self._drilled is None or self._drilled == ov.day:
            self._show_drill(ov.day, ov.drill)
        elif drill is not None and drill[0] == self._drilled:
            self._show_drill(*drill)
        elif _shows_day(ov, self._drilled):
            self.heat.select_day(self._drilled)  # clicked during the read: its hours follow
        else:
            self._drilled = None  # no longer in the period shown
            self._show_drill(ov.day, ov.drill)
        self._show_trend(ov)
        self._show_power(ov)
        self._show_outages(ov)
        self._show_peers(ov)
        self.sig_loaded.emit()

    # ------------------------------------------------------------------ sections

    def _show_cards(self, ov: TrafficOverview) -> None:
        wk, k = ov.week, ov.week.current
        self.cards["visitors"].set_value(f"{k.visitors:,}", wk.wow("visitors"))
        self.cards["conversion"].set_value(pct(k.conversion), wk.wow("conversion"))
        self.cards["atv"].set_value(yuan(k.atv_fen, 2), wk.wow("atv_fen"))
        self.cards["upt"].set_value(num(k.upt, 2), wk.wow("upt"))
        # A falling STAR means more staff per shopper: neither good nor bad by itself, but
        # rising STAR (shoppers per associate) is what managers watch for under-staffing.
        self.cards["star"].set_value(num(k.star), wk.wow("star"), good_when_up=False)
        self.cards["sales"].set_value(yuan(k.sales_fen), wk.wow("sales_fen"))
        if wk.basis is Basis.NONE or wk.reference is None:
            self.reference_label.setText(wk.basis.label())
        else:
            self.reference_label.setText(
                _("{basis}: visitors {visitors}, conversion {conversion}, sales {sales}").format(
                    basis=wk.basis.label(),
                    visitors=format_change(wk.vs_reference("visitors")),
                    conversion=format_change(wk.vs_reference("conversion")),
                    sales=format_change(wk.vs_reference("sales_fen")),
                )
            )
        n = k.excluded_hours
        if n:
            self.quality_label.setObjectName("ErrorText")
            self.quality_label.setText(
                _(
                    "⚠ {n} hour(s) this week excluded from visitors, conversion and STAR "
                    "because the door counter was not plausible (see Excluded hours); the "
                    "changes leave the same hours out of the weeks compared."
                ).format(n=n)
            )
        else:
            self.quality_label.setObjectName("Muted")
            self.quality_label.setText(_("Counter data plausible for every hour this week."))
        self.quality_label.style().unpolish(self.quality_label)
        self.quality_label.style().polish(self.quality_label)

    def _show_grid(self, ov: TrafficOverview) -> None:
        g = ov.grid
        marked = [
            (g.days.index(d), g.hours.index(h))
            for (d, h) in g.outages
            if d in g.days and h in g.hours
        ]

        def describe(i: int, j: int) -> str:
            d, h = g.days[i], g.hours[j]
            v = g.visitors[i][j]
            if v is None:
                return _("{day} {hour:02d}:00 — no data").format(day=day_name(d), hour=h)
            t = g.transactions[i][j] or 0
            text = _(
                "{day} {hour:02d}:00 — {visitors} visitors, {transactions} transactions, sales {sales}"
            ).format(
                day=day_name(d), hour=h, visitors=v, transactions=t, sales=yuan(g.sales_fen[i][j])
            )
            o = g.outages.get((d, h))
            if o is not None:
                text += "  ⚠ " + o.describe()
            elif v:
                text += _(", conversion {conversion}").format(conversion=pct(t / v))
            return text

        self.heat.set_grid(
            g.days,
            g.hours,
            g.visitors,
            marked=marked,
            describe=describe,
            day_label=lambda d: f"{d.month}/{d.day} {_(WEEKDAYS[d.weekday()])}",
        )
        self.heat.select_day(ov.day)

    def _show_drill(self, day: dt.date, points: list[HourPoint]) -> None:
        self.hours_chart.set_day(day, points)
        self.heat.select_day(day)
        self.sig_drilled.emit(day)

    def _trend_x_label(self, x: float) -> str:
        if self.overview is None:
            return ""
        pts = self.overview.trend.points
        i = round(x)
        return day_name(pts[i].day) if 0 <= i < len(pts) else ""

    def _show_trend(self, ov: TrafficOverview) -> None:
        pts = ov.trend.points
        xs = list(range(len(pts)))
        self.trend.set_series(
            "visitors",
            xs,
            [p.kpis.visitors if p.kpis.hours else None for p in pts],
            name=_("Visitors"),
            color="#2f6fdf",
        )
        self.trend.set_series(
            "wow",
            xs,
            [p.wow_visitors for p in pts],
            name=_("Same day last week"),
            color="#9aa5b1",
            dashed=True,
        )
        ref_name = {
            Basis.YOY: _("Same day last year"),
            Basis.LAST_PERIOD: _("Same day last period (4 weeks earlier)"),
            Basis.NONE: _("No earlier period"),
        }[ov.trend.basis]
        self.trend.set_series(
            "ref", xs, [p.ref_visitors for p in pts], name=ref_name, color="#1a7f37", dashed=True
        )
        bad = [(i, p) for i, p in enumerate(pts) if p.outages]
        self.outage_markers.setData(
            [i for i, _p in bad],
            [p.kpis.visitors for _i, p in bad],
            data=[p.day for _i, p in bad],
            tip=None,
        )
        for item in self.holiday_lines + self.holiday_regions:
            self.trend.plot.removeItem(item)
        self.holiday_lines, self.holiday_regions = [], []
        for i, p in enumerate(pts):
            # One shaded band per holiday run (国庆节 lasts 7 days), named on its first day.
            if p.holiday and (i == 0 or pts[i - 1].holiday != p.holiday):
                j = i
                while j + 1 < len(pts) and pts[j + 1].holiday == p.holiday:
                    j += 1
                band = pg.LinearRegionItem(
                    values=(i - 0.5, j + 0.5),
                    movable=False,
                    brush=pg.mkBrush(217, 119, 6, 28),
                    pen=pg.mkPen(None),
                )
                band.setZValue(-10)
                line = pg.InfiniteLine(
                    pos=i - 0.5,
                    angle=90,
                    pen=pg.mkPen(None),
                    label=p.holiday,
                    labelOpts={"position": 0.95, "color": "#b45309", "anchors": [(0, 0), (0, 0)]},
                )
                for item in (band, line):
                    self.trend.plot.addItem(item)
                self.holiday_regions.append(band)
                self.holiday_lines.append(line)
        step = 7
        self.trend.plot.getAxis("bottom").setTicks(
            [
                [
                    (i, f"{p.day.month}/{p.day.day}")
                    for i, p in enumerate(pts)
                    if (len(pts) - 1 - i) % step == 0
                ]
            ]
        )
        self.trend_title.setText(
            _(
                "Daily visitors (last 6 weeks) — dashed: {basis}; red triangles: days with excluded hours"
            ).format(basis=ref_name)
        )

    def _show_power(self, ov: TrafficOverview) -> None:
        by_sales = self.power_by.currentData() == "sales"
        self.power_table.set_rows(ov.power_by_sales if by_sales else ov.power)

    def _on_power_by_changed(self, _index: int) -> None:
        if self.overview is not None:
            self._show_power(self.overview)

    def _show_outages(self, ov: TrafficOverview) -> None:
        self.outage_table.set_rows(list(reversed(ov.outages)))  # latest first

    def _show_peers(self, ov: TrafficOverview) -> None:
        p = ov.peers
        if p.widened:
            scope = _("whole region — cluster {cluster} has too few stores").format(
                cluster=p.cluster or "—"
            )
        else:
            scope = _("cluster {cluster}").format(cluster=p.cluster)
        self.peer_title.setText(
            _(
                "Comparable stores ({scope}, this week): rank {rank} of {n} by visitors; "
                "median {median} visitors/day, conversion {conversion}"
            ).format(
                scope=scope,
                rank=p.rank,
                n=len(p.rows),
                median=f"{p.median_visitors_per_day:,.0f}",
                conversion=pct(p.median_conversion),
            )
        )
        self.peers.set_rows(p.rows)
        for i in range(self.peers.model.rowCount()):
            row = self.peers.model.row(i)
            if row.is_self:
                self.peers.view.selectRow(i)
                self.peers.view.scrollTo(self.peers.model.index(i, 0))

    # ------------------------------------------------------------------ drill & import

    def _on_day_clicked(self, day: dt.date) -> None:
        sid = self.ctx.selection.store_id
        if sid is None:
            return
        token = self._request
        self._drilled = day  # a reload before the answer comes drills into it too

        def show(points: list[HourPoint]) -> None:
            if token == self._request:  # the store or day changed meanwhile: drop it
                self._show_drill(day, points)

        self.ctx.db.submit(store_day_hours, sid, day, on_result=show, on_error=self._on_error)

    def _on_trend_clicked(self, ev) -> None:
        """Clicking the trend drills into the nearest day, like the heat grid."""
        if self.overview is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        if not self.trend.plot.sceneBoundingRect().contains(ev.scenePos()):
            return
        x = self.trend.plot.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
        pts = self.overview.trend.points
        i = round(x)
        if 0 <= i < len(pts):
            self._on_day_clicked(pts[i].day)

    def _on_import_clicked(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, _("Import traffic CSV"), "", _("CSV files (*.csv *.txt);;All files (*)")
        )
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        """Validate and import on the DB worker; the result dialog opens when done."""
        actor, today, now = self.ctx.actor, self.ctx.today, self.ctx.now()
        self.import_button.setEnabled(False)
        self.status_label.setText(_("Importing {file}…").format(file=path.name))

        def work(session: Any) -> ImportResult:
            return import_csv(session, Path(path).read_bytes(), actor, today, now)

        def failed(exc: BaseException) -> None:
            self.import_button.setEnabled(True)
            self.status_label.setText(" ")
            msg = _("Could not read {file}: {error}").format(file=path.name, error=exc)
            self.ctx.sig_error.emit(msg)
            self.status_label.setText(msg)

        self.ctx.db.submit(work, on_result=lambda r: self._on_imported(path, r), on_error=failed)

    def _on_imported(self, path: Path, result: ImportResult) -> None:
        self.import_button.setEnabled(True)
        self.status_label.setText(" ")
        if result.ok and result.changes:
            self.ctx.sig_data_changed.emit(result.changes)
            engine = self.ctx.sync_engine
            if engine is not None and hasattr(engine, "poke"):
                engine.poke()
        self.import_dialog = ImportReportDialog(result, path.name, self)
        self.import_dialog.open()
        self.sig_import_done.emit(result)


register_screen(
    ScreenSpec(
        id="traffic",
        title=N_("Traffic"),
        factory=TrafficView,
        roles=frozenset({"store_manager", "supervisor", "admin"}),
        order=30,
        icon="traffic",
    )
)
