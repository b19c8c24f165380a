"""The reports screen (周经营复盘): build a weekly review pack, preview, print, save.

The pack is gathered on the DB worker (one session, :func:`core.reports.gather.gather_pack`)
and drawn by reportlab in a child process (:class:`core.reports.worker.RenderWorker`,
waited on from the CPU worker); both steps report to one :class:`TaskState` shown in a
progress panel with Cancel. The finished PDF is previewed with QtPdf, printed through the
system print dialog (pages rendered by QtPdf onto the printer) and saved with "Save as…".

Memory: the child starts (and warms up) when the screen is shown and leaves when it is
hidden, so reportlab and the parsed CJK font never live in the app's process; the preview
document is closed while the screen is hidden and opened again when it is shown.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QSize, Signal
from PySide6.QtGui import QPageLayout, QPainter
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.directory import stores_in_scope
from core.i18n import N_, _, current_language
from core.reports.gather import gather_pack
from core.reports.worker import RenderWorker
from core.tasks import Cancelled, TaskState
from core.timeutil import week_label
from desktop.memory import release_free_memory_soon
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.progress_panel import ProgressPanel

if TYPE_CHECKING:
    from PySide6.QtPrintSupport import QPrinter

WEEKS_BACK = 13


class ReportsView(QWidget):
    """Choose scope, week and language; build; preview; print or save."""

    sig_pack_ready = Signal(str)
    """A pack finished building; the argument is the PDF path shown in the preview."""

    sig_build_failed = Signal(str)
    """A build failed or was cancelled; the argument is the message shown."""

    def __init__(self, ctx: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.pdf_path: Path | None = None
        self._state: TaskState | None = None
        self._tmpdir = Path(tempfile.mkdtemp(prefix="storedesk-packs-"))
        self.renderer = RenderWorker()
        tmpdir, renderer = self._tmpdir, self.renderer
        self.destroyed.connect(lambda *_: renderer.stop())
        self.destroyed.connect(lambda *_: shutil.rmtree(tmpdir, ignore_errors=True))

        self.title = QLabel()
        self.title.setObjectName("screenTitle")
        self.scope_store = QRadioButton()
        self.scope_region = QRadioButton()
        self._scope_group = QButtonGroup(self)
        self._scope_group.addButton(self.scope_store)
        self._scope_group.addButton(self.scope_region)
        is_manager = ctx.actor.role == "store_manager"
        self.scope_region.setVisible(not is_manager)
        (self.scope_store if is_manager else self.scope_region).setChecked(True)
        self.week_box = QComboBox()
        self.lang_box = QComboBox()
        self.lang_box.addItem("中文", "zh_CN")
        self.lang_box.addItem("English", "en")
        self.lang_box.setCurrentIndex(0 if current_language() == "zh_CN" else 1)
        self.build_button = QPushButton()
        self.build_button.setDefault(True)
        self.build_button.clicked.connect(self.build)
        self.print_button = QPushButton()
        self.print_button.clicked.connect(self.print_pack)
        self.save_button = QPushButton()
        self.save_button.clicked.connect(self.save_as)
        for b in (self.print_button, self.save_button):
            b.setEnabled(False)
        self.progress = ProgressPanel()
        self.status = QLabel()
        self.status.setWordWrap(True)

        from PySide6.QtPdf import QPdfDocument  # QtPdf loads when the screen opens, not at start
        from PySide6.QtPdfWidgets import QPdfView

        self.document = QPdfDocument(self)
        self.preview = QPdfView()
        self.preview.setDocument(self.document)
        self.preview.setPageMode(QPdfView.PageMode.MultiPage)
        self.preview.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.preview.setMinimumHeight(360)

        controls = QHBoxLayout()
        self._scope_label = QLabel()
        self._week_label = QLabel()
        self._lang_label = QLabel()
        for w in (
            self._scope_label,
            self.scope_store,
            self.scope_region,
            self._week_label,
            self.week_box,
            self._lang_label,
            self.lang_box,
        ):
            controls.addWidget(w)
        controls.addStretch(1)
        for w in (self.build_button, self.print_button, self.save_button):
            controls.addWidget(w)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(controls)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.preview, 1)

        self._store_names: dict[int, str] = {}
        self._fill_weeks()
        self.retranslate()
        self._load_store_names()
        ctx.selection.sig_changed.connect(self.retranslate)

    # ------------------------------------------------------------------ texts

    def retranslate(self) -> None:
        self.title.setText(_("Weekly business review"))
        self._scope_label.setText(_("Scope:"))
        self._week_label.setText(_("Week:"))
        self._lang_label.setText(_("Language:"))
        self.scope_store.setText(
            _("Store: {name}").format(
                name=self._store_names.get(self.ctx.selection.store_id) or _("no store selected")
            )
        )
        self.scope_region.setText(_("Whole region"))
        self.build_button.setText(_("Build pack"))
        self.print_button.setText(_("Print…"))
        self.save_button.setText(_("Save as…"))

    def _load_store_names(self) -> None:
        actor = self.ctx.actor

        def names(session: Any) -> dict[int, str]:
            return {st.id: st.name for st in stores_in_scope(session, actor)}

        def done(result: dict[int, str]) -> None:
            self._store_names = result
            self.retranslate()

        self.ctx.db.submit(names, on_result=done)

    def _fill_weeks(self) -> None:
        """The last 13 ISO weeks; the last complete week is the default (Monday review)."""
        today = self.ctx.today
        this_monday = today - dt.timedelta(days=today.weekday())
        self.week_box.clear()
        for i in range(WEEKS_BACK + 1):
            monday = this_monday - dt.timedelta(weeks=i)
            sunday = monday + dt.timedelta(days=6)
            suffix = _(" (in progress)") if i == 0 else ""
            self.week_box.addItem(
                f"{week_label(monday)}  {monday:%m-%d} – {sunday:%m-%d}{suffix}", week_label(monday)
            )
        self.week_box.setCurrentIndex(1)

    # ------------------------------------------------------------------ build

    def build(self) -> None:
        if self._state is not None:
            return
        week = self.week_box.currentData()
        lang = self.lang_box.currentData()
        store = region = None
        if self.scope_region.isChecked():
            if self.ctx.selection.region_id is None:
                self._fail(_("Choose a region first."))
                return
            region = str(self.ctx.selection.region_id)
        else:
            if self.ctx.selection.store_id is None:
                self._fail(_("Choose a store first."))
                return
            store = str(self.ctx.selection.store_id)
        role = self.ctx.actor.role
        state = self.progress.new_state(_("Gathering the week's figures…"))
        self._state = state
        self.build_button.setEnabled(False)
        self.status.setText("")
        out = self._tmpdir / f"pack-{week}-{'region' if region else 'store'}-{lang}.pdf"

        def gather(session: Any) -> Any:
            return gather_pack(
                session,
                store=store,
                region=region,
                week=week,
                author_role=role,
                lang=lang,
                state=state,
            )

        def draw(data: Any) -> None:
            self.ctx.cpu.submit(
                partial(self.renderer.render, data, out, lang=lang, state=state),
                on_result=lambda pages: self._on_built(out, pages),
                on_error=self._on_error,
            )

        self.ctx.db.submit(gather, on_result=draw, on_error=self._on_error)

    def cancel(self) -> None:
        self.progress.cancel()

    # ------------------------------------------------------------------ memory

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.renderer.start()  # warms up (reportlab, the font) while the user picks options
        if self.pdf_path is not None and self.document.pageCount() == 0:
            self.document.load(str(self.pdf_path))

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        if event.spontaneous():
            return  # the window was minimised, the screen is still the current one
        self.renderer.stop()  # a build still running finishes first
        self.document.close()  # the preview's pages and PDFium's copy of the file

    # ------------------------------------------------------------------ results

    def _on_built(self, path: Path, pages: int) -> None:
        self._done()
        self.document.close()
        self.pdf_path = path
        if self.isVisible():  # otherwise showEvent loads it
            self.document.load(str(path))
        release_free_memory_soon()  # the pack's gathered data is gone
        self.print_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self.status.setText(_("{pages} pages ready.").format(pages=pages))
        self.sig_pack_ready.emit(str(path))

    def _on_error(self, exc: BaseException) -> None:
        self._done()
        if isinstance(exc, Cancelled):
            self._fail(_("Cancelled. Nothing was written."))
        else:
            self._fail(_("The pack could not be built: {error}").format(error=exc))

    def _done(self) -> None:
        self._state = None
        self.progress.finish()
        self.build_button.setEnabled(True)

    def _fail(self, message: str) -> None:
        self.status.setText(message)
        self.sig_build_failed.emit(message)

    # ------------------------------------------------------------------ output

    def save_as(self) -> None:
        if self.pdf_path is None:
            return
        target, _filter = QFileDialog.getSaveFileName(
            self, _("Save the pack"), self.pdf_path.name, _("PDF files (*.pdf)")
        )
        if not target:
            return
        try:
            shutil.copyfile(self.pdf_path, target)
        except OSError as e:
            QMessageBox.warning(
                self,
                _("Save as…"),
                _("Could not save {path}: {error}").format(path=target, error=e.strerror),
            )
            return
        self.status.setText(_("Saved to {path}.").format(path=target))

    def print_pack(self) -> None:
        if self.pdf_path is None:
            return
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter

        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        dialog = QPrintDialog(printer, self)
        dialog.setWindowTitle(_("Print the pack"))
        if dialog.exec() != QPrintDialog.DialogCode.Accepted:
            return
        self.print_to(printer)

    def print_to(self, printer: QPrinter) -> int:
        """Render every page of the preview's document onto ``printer``; returns pages."""
        printer.setFullPage(True)
        printer.setPageOrientation(QPageLayout.Orientation.Portrait)
        painter = QPainter()
        if not painter.begin(printer):
            self._fail(_("The printer could not be opened."))
            return 0
        from PySide6.QtPrintSupport import QPrinter

        rect = printer.pageRect(QPrinter.Unit.DevicePixel).toRect()
        n = self.document.pageCount()
        try:
            for i in range(n):
                if i:
                    printer.newPage()
                image = self.document.render(i, QSize(rect.width(), rect.height()))
                painter.drawImage(QPointF(0, 0), image)
        finally:
            painter.end()
        self.status.setText(_("Sent {pages} pages to the printer.").format(pages=n))
        return n


register_screen(
    ScreenSpec(
        id="reports",
        title=N_("Reports"),
        factory=ReportsView,
        roles=frozenset({"store_manager", "supervisor", "admin"}),
        order=80,
        icon="reports",
    )
)
