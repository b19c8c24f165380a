"""Draw a :class:`PackData` as a PDF with reportlab (no Qt).

Sections: cover; table of contents (region packs); KPI summary with week-over-week change
and commentary; traffic and conversion; power hours; schedule vs demand; promotions and
expiry waste; for a region also store ranking, funnel, rep activity and a static map.
Long tables split across pages and repeat their header row. The file is written to a
temporary name and renamed when complete, so a cancelled or failed build leaves no file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
)

from core.i18n import N_, translate_in
from core.reports.commentary import commentary, format_change, format_number, format_value
from core.reports.fonts import register_fonts
from core.reports.layout import (
    ACCENT,
    BAD,
    GOOD,
    MUTED,
    RULE,
    PackDocTemplate,
    Styles,
    canvas_class,
    make_styles,
    make_toc,
    table_style,
)
from core.reports.model import PackData
from core.tasks import TaskState

SERIES = (colors.HexColor("#1D4ED8"), colors.HexColor("#9CA3AF"), colors.HexColor("#F59E0B"))
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
STAGES = {
    "lead": N_("Lead"),
    "visit": N_("Visit"),
    "opportunity": N_("Opportunity"),
    "quote": N_("Quote"),
    "contract": N_("Contract"),
    "payment": N_("Payment"),
}
ROLES = {
    "store_manager": N_("Store manager"),
    "supervisor": N_("Regional supervisor"),
    "admin": N_("Administrator"),
}


class _Renderer:
    def __init__(self, data: PackData, lang: str) -> None:
        self.d = data
        self.lang = lang
        self.s: Styles = make_styles()
        self.font = register_fonts()

    def t(self, s: str) -> str:
        return translate_in(self.lang, s)

    def p(self, text: str, style: str = "body") -> Paragraph:
        return Paragraph(_escape(text), getattr(self.s, style))

    def money(self, fen: float | None) -> str:
        return format_number(fen, "money_fen", self.lang)

    def pct(self, x: float | None) -> str:
        return format_number(x, "pct", self.lang)

    # ------------------------------------------------------------------ sections

    def cover(self) -> list[Flowable]:
        d, t = self.d, self.t
        kind = t(N_("Store")) if d.scope_kind == "store" else t(N_("Region"))
        as_of = (
            d.as_of.astimezone(_shanghai()).strftime("%Y-%m-%d %H:%M")
            if d.as_of is not None
            else t(N_("never synced"))
        )
        rows = [
            [t(N_("Scope")), f"{kind} · {d.scope_name} ({d.scope_code})"],
            [t(N_("Week")), f"{d.week_label} · {d.week_start:%Y-%m-%d} – {d.week_end:%Y-%m-%d}"],
            [t(N_("Data as of")), as_of],
            [t(N_("Prepared for")), t(ROLES.get(d.author_role, d.author_role))],
        ]
        table = Table(
            [[self.p(a, "small"), self.p(b)] for a, b in rows],
            colWidths=[32 * mm, 120 * mm],
            hAlign="LEFT",
        )
        table.setStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), self.font),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
        return [
            Spacer(1, 50 * mm),
            self.p("StoreDesk · " + t(N_("Weekly business review")), "subtitle"),
            Spacer(1, 4 * mm),
            self.p(f"{d.scope_name} {d.week_label}", "title"),
            self.p(t(N_("Weekly business review")), "h2"),
            Spacer(1, 12 * mm),
            table,
            PageBreak(),
        ]

    def toc(self) -> list[Flowable]:
        return [self.p(self.t(N_("Contents")), "h2"), make_toc(self.s), PageBreak()]

    def kpi_summary(self) -> list[Flowable]:
        t = self.t
        out: list[Flowable] = [self.p(t(N_("Summary")), "h1")]
        cards = []
        for k in self.d.kpis:
            change = k.change
            color = MUTED
            if change is not None and change != 0:
                color = GOOD if (change > 0) == k.higher_is_better else BAD
            cards.append(
                [
                    Paragraph(_escape(format_value(k, self.lang)), self.s.kpi_value),
                    Paragraph(_escape(t(k.label)), self.s.kpi_label),
                    Paragraph(
                        f'<font color="#{color.hexval()[2:]}">'
                        f"{_escape(format_change(change))}</font> "
                        f"<font color='#6B7280'>{_escape(t(N_('vs last week')))}</font>",
                        self.s.kpi_label,
                    ),
                ]
            )
        per_row = 4
        grid = []
        for i in range(0, len(cards), per_row):
            row = cards[i : i + per_row]
            row += [[Spacer(1, 1)]] * (per_row - len(row))
            grid.append(row)
        if grid:
            tbl = Table(grid, colWidths=[44 * mm] * per_row, hAlign="LEFT")
            tbl.setStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),
                    ("BOX", (0, 0), (-1, -1), 0.4, RULE),
                    ("INNERGRID", (0, 0), (-1, -1), 0.4, RULE),
                    ("TOPPADDING", (0, 0), (-1, -1), 6),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ]
            )
            out.append(tbl)
        out += [Spacer(1, 5 * mm), self.p(t(N_("Commentary")), "h2")]
        out += [self.p("• " + line) for line in commentary(self.d, self.lang)]
        if self.d.excluded_hours:
            out.append(
                self.p(
                    t(N_("Counter hours excluded from the KPIs: {items}")).format(
                        items="; ".join(self.d.excluded_hours[:12])
                        + (" …" if len(self.d.excluded_hours) > 12 else "")
                    ),
                    "small",
                )
            )
        return out

    def traffic(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.days:
            return [self.p(t(N_("Traffic and conversion")), "h1"), self.p(t(N_("No data.")))]
        labels = [f"{t(WEEKDAYS[r.day.weekday()])} {r.day:%m-%d}" for r in d.days]
        this_v = [r.visitors for r in d.days]
        prev_v = [r.prev_visitors or 0 for r in d.days]
        bars = _bar_chart(
            [this_v, prev_v],
            labels,
            self.font,
            [t(N_("This week")), t(N_("Previous week"))],
            t(N_("Visitors per day")),
        )
        conv = [
            [(r.conversion or 0) * 100 for r in d.days],
            [(r.prev_conversion or 0) * 100 for r in d.days],
        ]
        line = _line_chart(
            conv,
            labels,
            self.font,
            [t(N_("This week")), t(N_("Previous week"))],
            t(N_("Conversion rate (%)")),
        )
        header = [
            t(N_("Day")),
            t(N_("Visitors")),
            t(N_("Transactions")),
            t(N_("Sales")),
            t(N_("Conversion")),
            t(N_("Visitors last week")),
        ]
        rows = [
            [
                lbl,
                f"{r.visitors:,}",
                f"{r.transactions:,}",
                self.money(r.sales_fen),
                self.pct(r.conversion),
                "—" if r.prev_visitors is None else f"{r.prev_visitors:,}",
            ]
            for lbl, r in zip(labels, d.days, strict=True)
        ]
        return [
            self.p(t(N_("Traffic and conversion")), "h1"),
            bars,
            Spacer(1, 3 * mm),
            line,
            Spacer(1, 3 * mm),
            self._table(header, rows, [34, 26, 28, 32, 26, 32]),
        ]

    def power_hours(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.hours:
            return []
        top = sorted(d.hours, key=lambda h: -h.visitors)[:3]
        chart = _bar_chart(
            [[h.visitors for h in d.hours]],
            [f"{h.hour:02d}" for h in d.hours],
            self.font,
            [t(N_("Average visitors"))],
            t(N_("Average visitors by hour of day")),
            highlight={d.hours.index(h) for h in top},
        )
        text = t(N_("Power hours: {hours}.")).format(
            hours=t(N_(", ")).join(
                f"{h.hour:02d}:00–{h.hour + 1:02d}:00 ({h.visitors:,.0f})" for h in top
            )
        )
        return [CondPageBreak(90 * mm), self.p(t(N_("Power hours")), "h1"), chart, self.p(text)]

    def staffing(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.staffing:
            return []
        labels = [f"{t(WEEKDAYS[r.day.weekday()])} {r.day:%m-%d}" for r in d.staffing]
        chart = _bar_chart(
            [[r.scheduled_hours for r in d.staffing], [r.required_hours for r in d.staffing]],
            labels,
            self.font,
            [t(N_("Scheduled hours")), t(N_("Required hours"))],
            t(N_("Scheduled vs required staff-hours")),
        )
        header = [
            t(N_("Day")),
            t(N_("Scheduled hours")),
            t(N_("Required hours")),
            t(N_("Understaffed hours")),
        ]
        rows = [
            [
                lbl,
                f"{r.scheduled_hours:.1f}",
                f"{r.required_hours:.1f}",
                f"{r.understaffed_hours:.0f}",
            ]
            for lbl, r in zip(labels, d.staffing, strict=True)
        ]
        total_s = sum(r.scheduled_hours for r in d.staffing)
        total_r = sum(r.required_hours for r in d.staffing)
        fit = t(
            N_("Scheduled {s:.0f} h against {r:.0f} h required by forecast demand ({ratio:.0%}).")
        ).format(s=total_s, r=total_r, ratio=(total_s / total_r) if total_r else 0)
        return [
            CondPageBreak(110 * mm),
            self.p(t(N_("Schedule vs demand")), "h1"),
            chart,
            self.p(fit),
            self._table(header, rows, [40, 36, 36, 36]),
        ]

    def promotions(self) -> list[Flowable]:
        t, d = self.t, self.d
        out: list[Flowable] = [CondPageBreak(60 * mm), self.p(t(N_("Promotions and expiry")), "h1")]
        out.append(
            self.p(
                t(
                    N_(
                        "Expiry waste avoided: {avoided}; expiry waste incurred: {incurred}; "
                        "proposals still pending: {pending}."
                    )
                ).format(
                    avoided=self.money(d.waste_avoided_fen),
                    incurred=self.money(d.waste_incurred_fen),
                    pending=d.pending_promotions,
                )
            )
        )
        if not d.promotions:
            out.append(self.p(t(N_("No promotion was decided this week."))))
            return out
        header = [
            t(N_("Store")),
            t(N_("Product")),
            t(N_("Decision")),
            t(N_("Discount")),
            t(N_("Decided by")),
            t(N_("Expected units")),
            t(N_("Actual units")),
            t(N_("Waste avoided")),
        ]
        rows = [
            [
                r.store,
                r.sku,
                t(N_("Approved")) if r.decision == "approved" else t(N_("Rejected")),
                "—" if r.discount_pct is None else f"{r.discount_pct}%",
                r.decided_by,
                "—" if r.expected_units is None else f"{r.expected_units:.0f}",
                "—" if r.actual_units is None else f"{r.actual_units:.0f}",
                self.money(r.waste_avoided_fen),
            ]
            for r in d.promotions
        ]
        out.append(self._table(header, rows, [30, 34, 18, 15, 20, 19, 19, 23], numeric_from=3))
        return out

    def ranking(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.ranking:
            return []
        header = [
            "#",
            t(N_("Store")),
            t(N_("Visitors")),
            t(N_("Conversion")),
            t(N_("Sales")),
            t(N_("Sales vs last week")),
        ]
        rows = [
            [
                str(i),
                r.store,
                f"{r.visitors:,}",
                self.pct(r.conversion),
                self.money(r.sales_fen),
                format_change(r.sales_change),
            ]
            for i, r in enumerate(d.ranking, 1)
        ]
        return [
            PageBreak(),
            self.p(t(N_("Store ranking")), "h1"),
            self._table(header, rows, [10, 62, 24, 22, 28, 32], numeric_from=2),
        ]

    def funnel(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.funnel:
            return []
        drawing = _funnel_drawing(d.funnel, self.font, self.t)
        header = [
            t(N_("Stage")),
            t(N_("Opportunities")),
            t(N_("Amount")),
            t(N_("Next-step conversion")),
            t(N_("Cumulative conversion")),
        ]
        rows = [
            [
                t(STAGES.get(r.stage, r.stage)),
                f"{r.count:,}",
                self.money(r.amount_fen),
                self.pct(r.next_conversion),
                self.pct(r.cumulative_conversion),
            ]
            for r in d.funnel
        ]
        return [
            CondPageBreak(120 * mm),
            self.p(t(N_("Sales funnel")), "h1"),
            drawing,
            self._table(header, rows, [36, 30, 36, 36, 36]),
        ]

    def reps(self) -> list[Flowable]:
        t, d = self.t, self.d
        if not d.reps:
            return []
        header = [
            t(N_("Rep")),
            t(N_("Visits")),
            t(N_("Effective visits")),
            t(N_("Flagged evidence")),
            t(N_("Customers visited")),
        ]
        rows = [
            [r.rep, str(r.visits), str(r.effective_visits), str(r.flagged), str(r.customers)]
            for r in d.reps
        ]
        return [
            PageBreak(),
            self.p(t(N_("Rep activity")), "h1"),
            self._table(header, rows, [50, 30, 34, 34, 34]),
        ]

    def visit_map(self) -> list[Flowable]:
        t, d = self.t, self.d
        png = d.map_png
        if png is None and d.map_visits:
            from core.maps.static_map import StaticVisit, render_visits_png

            visits = [StaticVisit(lat, lon, flagged) for lat, lon, flagged in d.map_visits]
            png = render_visits_png(visits, size=(1400, 1000))
        if not png:
            return []
        img = Image(io.BytesIO(png))
        ratio = img.imageHeight / img.imageWidth
        width = 178 * mm
        img.drawWidth, img.drawHeight = width, min(width * ratio, 200 * mm)
        return [
            PageBreak(),
            self.p(t(N_("Visits of the week")), "h1"),
            img,
            self.p(d.map_caption, "small"),
        ]

    # ------------------------------------------------------------------ helpers

    def _table(
        self,
        header: list[str],
        rows: list[list[str]],
        widths_mm: list[float],
        numeric_from: int = 1,
    ) -> Table:
        data = [[Paragraph(_escape(h), self.s.cell) for h in header]]
        for row in rows:
            data.append(
                [
                    Paragraph(_escape(c), self.s.cell if i < numeric_from else self.s.cell_right)
                    for i, c in enumerate(row)
                ]
            )
        tbl = Table(data, colWidths=[w * mm for w in widths_mm], repeatRows=1, hAlign="LEFT")
        tbl.setStyle(table_style(numeric_from))
        return tbl

    def story(self) -> list[Flowable]:
        out = self.cover()
        if self.d.scope_kind == "region":
            out += self.toc()
        out += self.kpi_summary()
        out += [CondPageBreak(150 * mm), *self.traffic()]
        out += self.power_hours()
        out += self.staffing()
        out += self.promotions()
        if self.d.scope_kind == "region":
            out += self.ranking() + self.funnel() + self.reps() + self.visit_map()
        return out


def render_pack(
    data: PackData,
    out: str | os.PathLike[str],
    *,
    lang: str = "zh_CN",
    state: TaskState | None = None,
) -> int:
    """Write the pack to ``out`` (atomically) and return its page count."""
    state = state or TaskState()
    r = _Renderer(data, lang)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part")
    t = r.t
    header = f"StoreDesk · {data.scope_name} · {data.week_label}"
    as_of = (
        data.as_of.astimezone(_shanghai()).strftime("%Y-%m-%d %H:%M")
        if data.as_of
        else t(N_("never synced"))
    )
    footer = t(N_("Data as of {as_of} (Asia/Shanghai) · Weekly business review")).format(
        as_of=as_of
    )
    canvasmaker = canvas_class(header, footer, t(N_("Page {page} of {pages}")))
    story = r.story()
    state.progress(0.4, t(N_("Laying out pages")))
    doc = PackDocTemplate(
        str(tmp),
        title=f"{data.scope_name} {data.week_label}",
        author="StoreDesk",
        subject=t(N_("Weekly business review")),
        creator="StoreDesk",
    )
    pages = {"n": 0}

    def on_page(canvas, _doc) -> None:
        pages["n"] = canvas.getPageNumber()
        state.check()

    for template in doc.pageTemplates:
        template.onPage = on_page
    try:
        if data.scope_kind == "region":
            doc.multiBuild(story, canvasmaker=canvasmaker)
        else:
            doc.build(story, canvasmaker=canvasmaker)
        state.check()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    state.progress(1.0)
    return pages["n"]


# ---------------------------------------------------------------------- charts


def _legend(
    drawing: Drawing, names: list[str], font: str, x: float, y: float, palette: tuple = SERIES
) -> None:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.fontName, legend.fontSize = font, 7.5
    legend.alignment = "right"
    legend.boxAnchor = "nw"
    legend.columnMaximum = 1
    legend.deltax = 70
    legend.colorNamePairs = list(zip(palette, names, strict=False))
    legend.dx, legend.dy = 7, 7
    drawing.add(legend)


def _bar_chart(
    series: list[list[float]],
    labels: list[str],
    font: str,
    names: list[str],
    title: str,
    highlight: set[int] | None = None,
) -> Drawing:
    drawing = Drawing(178 * mm, 62 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y = 36, 26
    chart.width, chart.height = 178 * mm - 60, 62 * mm - 56
    chart.data = [list(s) for s in series]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.gridStrokeColor = RULE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.strokeColor = RULE
    chart.categoryAxis.strokeColor = RULE
    chart.barSpacing = 1
    chart.groupSpacing = 6
    for i in range(len(series)):
        chart.bars[i].fillColor = SERIES[i % len(SERIES)]
        chart.bars[i].strokeColor = None
    if highlight:
        for idx in highlight:
            chart.bars[(0, idx)].fillColor = SERIES[2]
    drawing.add(chart)
    drawing.add(String(36, 62 * mm - 12, title, fontName=font, fontSize=9, fillColor=ACCENT))
    if len(series) > 1:
        _legend(drawing, names, font, 178 * mm - 170, 62 * mm - 8)
    return drawing


def _line_chart(
    series: list[list[float]], labels: list[str], font: str, names: list[str], title: str
) -> Drawing:
    drawing = Drawing(178 * mm, 56 * mm)
    chart = HorizontalLineChart()
    chart.x, chart.y = 36, 22
    chart.width, chart.height = 178 * mm - 60, 56 * mm - 48
    chart.data = [list(s) for s in series]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.gridStrokeColor = RULE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.strokeColor = RULE
    chart.categoryAxis.strokeColor = RULE
    lo = min((v for s in series for v in s), default=0)
    hi = max((v for s in series for v in s), default=1)
    chart.valueAxis.valueMin = max(0, lo - (hi - lo) * 0.3 - 1)
    chart.valueAxis.valueMax = hi + (hi - lo) * 0.2 + 1
    for i in range(len(series)):
        chart.lines[i].strokeColor = SERIES[i % len(SERIES)]
        chart.lines[i].strokeWidth = 2 if i == 0 else 1.2
    chart.lines[1].strokeDashArray = (3, 2)
    drawing.add(chart)
    drawing.add(String(36, 56 * mm - 12, title, fontName=font, fontSize=9, fillColor=ACCENT))
    _legend(drawing, names, font, 178 * mm - 170, 56 * mm - 8)
    return drawing


def _funnel_drawing(rows: list, font: str, t: Callable[[str], str]) -> Drawing:
    height = 14 * len(rows) + 16
    width = 178 * mm
    drawing = Drawing(width, height * 1.0 + 8)
    top = max(r.count for r in rows) or 1
    band_h = 12
    for i, r in enumerate(rows):
        w = max(6.0, (width - 160) * r.count / top)
        x = 90 + ((width - 160) - w) / 2
        y = height - (i + 1) * 14
        drawing.add(
            Rect(x, y, w, band_h, fillColor=SERIES[0], strokeColor=None, fillOpacity=1 - i * 0.1)
        )
        drawing.add(
            String(
                4,
                y + 3,
                t(STAGES.get(r.stage, r.stage)),
                fontName=font,
                fontSize=8,
                fillColor=colors.black,
            )
        )
        conv = "" if r.next_conversion is None else f"  → {r.next_conversion * 100:.0f}%"
        drawing.add(
            String(
                width - 66,
                y + 3,
                f"{r.count:,}{conv}",
                fontName=font,
                fontSize=8,
                fillColor=colors.black,
            )
        )
    return drawing


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shanghai():
    from core.timeutil import tz

    return tz()
