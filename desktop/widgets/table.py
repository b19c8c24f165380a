"""One table model + view for every list in the app: batched display, sort, filter, export.

:class:`RowTableModel` holds plain rows (dataclasses, dicts or tuples produced by a ``core``
query on the DB worker) and exposes them to the view in batches of ``batch`` rows through
``canFetchMore``/``fetchMore`` (Spyder's DataFrameModel, Anki's browser model), so a table
of 100 000 visits opens instantly. Sorting and filtering work on the whole row list; the
exports write every filtered row, not just the fetched ones.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.i18n import _

Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column:
    """How one column gets, shows and sorts its value."""

    key: str
    title: str  # English source text; translated at display time
    value: Callable[[Any], Any] | None = None  # default: attribute / key / index `key`
    fmt: Callable[[Any], str] | None = None  # default: str(); None shows as ""
    numeric: bool = False  # right-aligned, sorted as a number

    def get(self, row: Any) -> Any:
        if self.value is not None:
            return self.value(row)
        if isinstance(row, dict):
            return row.get(self.key)
        if isinstance(row, (tuple, list)) and self.key.isdigit():
            return row[int(self.key)]
        return getattr(row, self.key, None)

    def text(self, row: Any) -> str:
        v = self.get(row)
        if v is None:
            return ""
        return self.fmt(v) if self.fmt is not None else str(v)


def _sort_key(v: Any) -> tuple[int, Any]:
    # None last, numbers as numbers, everything else as text
    if v is None:
        return (2, 0)
    if isinstance(v, (int, float)):
        return (0, v)
    if isinstance(v, (dt.date, dt.datetime)):
        return (0, v.isoformat())
    return (1, str(v))


class RowTableModel(QAbstractTableModel):
    sig_filtered = Signal(int)
    """Emitted with the number of rows matching the filter after a filter/row change."""

    def __init__(self, columns: Sequence[Column], *, batch: int = 500, parent=None) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.batch = batch
        self._rows: list[Any] = []
        self._view: list[int] = []  # indexes into _rows after filter + sort
        self._fetched = 0
        self._filter = ""
        self._sort: tuple[int, Qt.SortOrder] | None = None

    # ------------------------------------------------------------------ data in

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._rebuild()
        self.endResetModel()
        self.sig_filtered.emit(len(self._view))

    def row(self, view_row: int) -> Any:
        return self._rows[self._view[view_row]]

    @property
    def total_rows(self) -> int:
        return len(self._rows)

    @property
    def matching_rows(self) -> int:
        return len(self._view)

    def visible_rows(self) -> list[Any]:
        """Every row that matches the filter, in display order (fetched or not)."""
        return [self._rows[i] for i in self._view]

    def _rebuild(self) -> None:
        needle = self._filter.casefold()
        idx = range(len(self._rows))
        if needle:
            idx = [
                i
                for i in idx
                if any(needle in c.text(self._rows[i]).casefold() for c in self.columns)
            ]
        view = list(idx)
        if self._sort is not None:
            col, order = self._sort
            c = self.columns[col]
            blanks = [i for i in view if c.get(self._rows[i]) is None]
            view = [i for i in view if c.get(self._rows[i]) is not None]
            view.sort(
                key=lambda i: _sort_key(c.get(self._rows[i])),
                reverse=order == Qt.SortOrder.DescendingOrder,
            )
            view += blanks  # empty cells last in both directions
        self._view = view
        self._fetched = min(self.batch, len(view))

    def set_filter(self, text: str) -> None:
        self.beginResetModel()
        self._filter = text.strip()
        self._rebuild()
        self.endResetModel()
        self.sig_filtered.emit(len(self._view))

    # ------------------------------------------------------------------ Qt model

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._fetched

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._fetched < len(self._view)

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        n = min(self.batch, len(self._view) - self._fetched)
        if n <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._fetched, self._fetched + n - 1)
        self._fetched += n
        self.endInsertRows()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        c = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return c.text(self.row(index.row()))
        if role == Qt.ItemDataRole.TextAlignmentRole and c.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return self.row(index.row())
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return _(self.columns[section].title)
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        self.layoutAboutToBeChanged.emit()
        self._sort = (column, order)
        self._rebuild()
        self.layoutChanged.emit()
        # the number of fetched rows may have changed with the rebuild
        self.beginResetModel()
        self.endResetModel()

    # ------------------------------------------------------------------ export

    def export_table(self) -> tuple[list[str], list[list[Any]]]:
        """Headers and the filtered rows as cell values (numbers stay numbers)."""
        headers = [_(c.title) for c in self.columns]
        rows = []
        for r in self.visible_rows():
            out = []
            for c in self.columns:
                v = c.get(r)
                out.append(v if c.numeric and isinstance(v, (int, float)) else c.text(r))
            rows.append(out)
        return headers, rows


def write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> None:
    """UTF-8 with BOM so Excel on a Chinese Windows opens it without mojibake."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(headers)
        w.writerows(rows)


def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]], title: str = "") -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = (title or "StoreDesk")[:31]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append(r)
    for i, h in enumerate(headers, start=1):
        width = max([len(str(h))] + [len(str(r[i - 1])) for r in rows[:200]]) + 2
        ws.column_dimensions[ws.cell(1, i).column_letter].width = min(width * 1.3, 60)
    ws.freeze_panes = "A2"
    wb.save(path)


class DataTable(QWidget):
    """Filter box + export buttons + a sortable table view over a :class:`RowTableModel`.

    Exports run on ``cpu`` (a :class:`desktop.context.Worker`) when given, so a large
    Excel file never freezes the window.
    """

    sig_activated = Signal(object)
    """A row was double-clicked / activated; carries the row object."""

    def __init__(
        self, columns: Sequence[Column], *, cpu=None, title: str = "", parent=None
    ) -> None:
        super().__init__(parent)
        self.title = title
        self._cpu = cpu
        self.model = RowTableModel(columns, parent=self)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(_("Filter…"))
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.model.set_filter)
        self.csv_button = QPushButton(_("Export CSV"))
        self.xlsx_button = QPushButton(_("Export Excel"))
        self.csv_button.clicked.connect(lambda: self._ask_export("csv"))
        self.xlsx_button.clicked.connect(lambda: self._ask_export("xlsx"))
        self.view = QTableView()
        self.view.setModel(self.model)
        # no sort until the user clicks a header (Qt would sort column 0 descending)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.activated.connect(lambda i: self.sig_activated.emit(self.model.row(i.row())))
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.csv_button)
        top.addWidget(self.xlsx_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)

    def set_rows(self, rows: Sequence[Any], *, keep: Callable[[Any], Any] | None = None) -> None:
        """Show ``rows``. ``keep`` (a row's identity) marks a refresh of the same list: the
        rows selected and current before stay so where they still are, the scroll position
        and the column widths the user set stay too."""
        if keep is None:
            self.model.set_rows(rows)
            self.view.resizeColumnsToContents()
            return
        view, m = self.view, self.model
        chosen = view.selectionModel()
        selected = {keep(m.row(i.row())) for i in chosen.selectedRows()}
        cur = view.currentIndex()
        current = (keep(m.row(cur.row())), cur.column()) if cur.isValid() else None
        bars = (view.verticalScrollBar(), view.horizontalScrollBar())
        scrolled = [b.value() for b in bars]
        m.set_rows(rows)
        wanted = selected | ({current[0]} if current else set())
        where = {k: i for i, r in enumerate(m.visible_rows()) if (k := keep(r)) in wanted}
        while m.rowCount() <= max(where.values(), default=-1) and m.canFetchMore():
            m.fetchMore()
        if current and current[0] in where:
            chosen.setCurrentIndex(
                m.index(where[current[0]], current[1]), QItemSelectionModel.SelectionFlag.NoUpdate
            )
        picked = QItemSelection()
        for k in selected & where.keys():
            picked.select(m.index(where[k], 0), m.index(where[k], m.columnCount() - 1))
        chosen.select(picked, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        view.updateGeometries()  # the scroll ranges of the new rows, before restoring
        for bar, value in zip(bars, scrolled, strict=True):
            bar.setValue(value)

    def _ask_export(self, kind: str) -> None:
        filt = _("CSV files (*.csv)") if kind == "csv" else _("Excel workbooks (*.xlsx)")
        path, _sel = QFileDialog.getSaveFileName(
            self, _("Export"), f"{self.title or 'table'}.{kind}", filt
        )
        if path:
            self.export(Path(path), kind)

    def export(self, path: Path, kind: str, on_done: Callable[[Path], None] | None = None) -> None:
        """Write the filtered rows to ``path`` (csv|xlsx); errors are shown, never raised."""
        headers, rows = self.model.export_table()
        writer = write_csv if kind == "csv" else write_xlsx

        def work() -> Path:
            if kind == "csv":
                writer(path, headers, rows)
            else:
                writer(path, headers, rows, self.title)
            return path

        def failed(exc: BaseException) -> None:
            QMessageBox.warning(
                self,
                _("Export failed"),
                _(
                    "The file {path} could not be written ({error}). Check that the folder "
                    "exists, the disk is not full and the file is not open in another program."
                ).format(path=path, error=exc),
            )

        if self._cpu is None:
            try:
                work()
            except OSError as e:
                failed(e)
                return
            if on_done:
                on_done(path)
        else:
            self._cpu.submit(work, on_result=on_done, on_error=failed)
