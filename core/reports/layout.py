"""Page layout of the weekly review pack: styles, page frame, header/footer, TOC hooks.

Every page carries the scope, the ISO week, the data's "as of" time and "page N of M"
(DESIGN.md §5). "of M" needs the page count, so pages are drawn by :class:`NumberedCanvas`,
which defers page output until the total is known (the reportlab-recommended pattern).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph, TableStyle
from reportlab.platypus.tableofcontents import TableOfContents

from core.reports.fonts import register_fonts

INK = colors.HexColor("#1F2A37")
MUTED = colors.HexColor("#6B7280")
ACCENT = colors.HexColor("#1D4ED8")
GOOD = colors.HexColor("#15803D")
BAD = colors.HexColor("#B91C1C")
RULE = colors.HexColor("#D1D5DB")
ZEBRA = colors.HexColor("#F3F4F6")
HEAD_BG = colors.HexColor("#E5EAF3")

PAGE = A4
MARGIN = 16 * mm


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    kpi_value: ParagraphStyle
    kpi_label: ParagraphStyle
    toc1: ParagraphStyle


def make_styles() -> Styles:
    font = register_fonts()
    base = {"fontName": font, "textColor": INK, "wordWrap": "CJK"}
    return Styles(
        title=ParagraphStyle("title", fontSize=26, leading=34, spaceAfter=8, **base),
        subtitle=ParagraphStyle(
            "subtitle", fontSize=13, leading=19, textColor=MUTED, fontName=font, wordWrap="CJK"
        ),
        h1=ParagraphStyle(
            "h1",
            fontSize=16,
            leading=22,
            spaceBefore=4,
            spaceAfter=8,
            textColor=ACCENT,
            fontName=font,
            wordWrap="CJK",
        ),
        h2=ParagraphStyle("h2", fontSize=12, leading=17, spaceBefore=8, spaceAfter=4, **base),
        body=ParagraphStyle("body", fontSize=10, leading=15, spaceAfter=4, **base),
        small=ParagraphStyle(
            "small", fontSize=8, leading=11, textColor=MUTED, fontName=font, wordWrap="CJK"
        ),
        cell=ParagraphStyle("cell", fontSize=8.5, leading=11, **base),
        cell_right=ParagraphStyle("cell_r", fontSize=8.5, leading=11, alignment=2, **base),
        kpi_value=ParagraphStyle("kpi_v", fontSize=17, leading=22, alignment=TA_CENTER, **base),
        kpi_label=ParagraphStyle(
            "kpi_l",
            fontSize=8.5,
            leading=11,
            alignment=TA_CENTER,
            textColor=MUTED,
            fontName=font,
            wordWrap="CJK",
        ),
        toc1=ParagraphStyle("toc1", fontSize=11, leading=18, leftIndent=6, **base),
    )


def table_style(numeric_from_col: int = 1) -> TableStyle:
    """Header band, zebra rows, thin rules, right-aligned numbers."""
    font = register_fonts()
    return TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), font),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("LEADING", (0, 0), (-1, -1), 11),
            ("TEXTCOLOR", (0, 0), (-1, -1), INK),
            ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
            ("LINEBELOW", (0, -1), (-1, -1), 0.5, RULE),
            ("ALIGN", (numeric_from_col, 1), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
    )


class NumberedCanvas(pdfcanvas.Canvas):
    """Defers pages so the footer can say "page N of M"."""

    footer_text: str = ""
    header_text: str = ""
    page_label: str = "{page} / {pages}"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Otherwise every page references (unembedded) Helvetica as its initial font.
        if not kwargs.get("initialFontName"):
            kwargs["initialFontName"] = register_fonts()
        super().__init__(*args, **kwargs)
        self._saved: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._saved.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved)
        for state in self._saved:
            self.__dict__.update(state)
            self._draw_frame_text(total)
            super().showPage()
        super().save()

    def _draw_frame_text(self, total: int) -> None:
        font = register_fonts()
        w, h = PAGE
        self.saveState()
        self.setFont(font, 7.5)
        self.setFillColor(MUTED)
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        if self._pageNumber > 1:
            self.drawString(MARGIN, h - 10 * mm, self.header_text)
            self.line(MARGIN, h - 11.5 * mm, w - MARGIN, h - 11.5 * mm)
        self.line(MARGIN, 11.5 * mm, w - MARGIN, 11.5 * mm)
        self.drawString(MARGIN, 8 * mm, self.footer_text)
        self.drawRightString(
            w - MARGIN, 8 * mm, self.page_label.format(page=self._pageNumber, pages=total)
        )
        self.restoreState()


def canvas_class(header: str, footer: str, page_label: str) -> type[NumberedCanvas]:
    """A NumberedCanvas subclass carrying this pack's header/footer texts."""
    return type(
        "PackCanvas",
        (NumberedCanvas,),
        {"header_text": header, "footer_text": footer, "page_label": page_label},
    )


class PackDocTemplate(BaseDocTemplate):
    """One frame per page; headings notify the table of contents."""

    def __init__(self, filename: str, **kw: Any) -> None:
        super().__init__(
            filename,
            pagesize=PAGE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN + 2 * mm,
            bottomMargin=MARGIN,
            **kw,
        )
        frame = Frame(self.leftMargin, self.bottomMargin, self.width, self.height, id="body")
        self.addPageTemplates([PageTemplate(id="page", frames=[frame])])

    def afterFlowable(self, flowable: Any) -> None:
        if isinstance(flowable, Paragraph) and flowable.style.name == "h1":
            text = flowable.getPlainText()
            key = f"sec-{self.seq.nextf('sec')}"
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(text, key, level=0)
            self.notify("TOCEntry", (0, text, self.page, key))


def make_toc(styles: Styles) -> TableOfContents:
    style = TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), register_fonts()),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ]
    )
    return TableOfContents(levelStyles=[styles.toc1], tableStyle=style, dotsMinLevel=0)
