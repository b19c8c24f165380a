"""The store / region / date pickers every screen shares, bound to ``ctx.selection``.

Scope-aware: the lists come from :mod:`core.directory` with the signed-in actor, so a
store manager only sees their store(s) and a supervisor the stores of their region(s).
For a supervisor "All stores" (store_id None) means the whole region.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QDate, QSignalBlocker
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QLabel, QWidget

from core.directory import RegionInfo, StoreInfo
from core.i18n import _
from core.quickread import regions_in_scope, stores_in_scope


class ScopePickers(QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._regions: list[RegionInfo] = []
        self._stores: list[StoreInfo] = []
        self.region_label = QLabel(_("Region"))
        self.region_combo = QComboBox()
        self.region_combo.setMinimumWidth(120)
        self.store_label = QLabel(_("Store"))
        self.store_combo = QComboBox()
        self.store_combo.setMinimumWidth(220)
        self.store_combo.setMaxVisibleItems(20)
        self.date_label = QLabel(_("Date"))
        self.date_edit = QDateEdit()
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        self.date_edit.setMaximumDate(_qdate(ctx.today))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        for w in (
            self.region_label,
            self.region_combo,
            self.store_label,
            self.store_combo,
            self.date_label,
            self.date_edit,
        ):
            lay.addWidget(w)
        self.region_combo.currentIndexChanged.connect(self._on_region_picked)
        self.store_combo.currentIndexChanged.connect(self._on_store_picked)
        self.date_edit.dateChanged.connect(self._on_date_picked)
        ctx.selection.sig_changed.connect(self._sync_from_selection)
        ctx.sig_data_changed.connect(self._on_data_changed)
        self._sync_date()
        self.reload()

    def reload(self) -> None:
        # driver-level reads (core.quickread): the pickers fill before SQLAlchemy loads
        self.ctx.db.submit_read(self._load, on_result=self._on_loaded)

    def _on_data_changed(self, changes) -> None:
        # a first sync brings the stores; later pulls may add some
        if changes.touches("pulled", "stores", "regions"):
            self.reload()

    def _load(self, conn) -> tuple[list[RegionInfo], list[StoreInfo]]:
        actor = self.ctx.actor
        return regions_in_scope(conn, actor), stores_in_scope(conn, actor)

    @property
    def is_manager(self) -> bool:
        return self.ctx.actor.role == "store_manager"

    def _on_loaded(self, result: tuple[list[RegionInfo], list[StoreInfo]]) -> None:
        self._regions, self._stores = result
        sel = self.ctx.selection
        with QSignalBlocker(self.region_combo):
            self.region_combo.clear()
            for r in self._regions:
                self.region_combo.addItem(r.name, r.id)
        one_region = len(self._regions) <= 1
        self.region_label.setVisible(not one_region)
        self.region_combo.setVisible(not one_region)
        if sel.region_id is None and self._regions:
            region = next(
                (s.region_id for s in self._stores if s.id == sel.store_id), self._regions[0].id
            )
            sel.set(region_id=region)
        if self.is_manager and sel.store_id is None and self._stores:
            sel.set(store_id=self._stores[0].id)
        self._fill_stores()
        self._sync_from_selection()

    def _fill_stores(self) -> None:
        sel = self.ctx.selection
        with QSignalBlocker(self.store_combo):
            self.store_combo.clear()
            if not self.is_manager:
                self.store_combo.addItem(_("All stores"), None)
            for s in self._stores:
                if self.is_manager or s.region_id == sel.region_id:
                    self.store_combo.addItem(f"{s.code}  {s.name}", s.id)
        self.store_combo.setEnabled(self.store_combo.count() > 1)

    def _sync_from_selection(self) -> None:
        sel = self.ctx.selection
        with QSignalBlocker(self.region_combo):
            i = self.region_combo.findData(sel.region_id)
            if i >= 0:
                self.region_combo.setCurrentIndex(i)
        if self.store_combo.count():
            with QSignalBlocker(self.store_combo):
                i = self.store_combo.findData(sel.store_id)
                if i < 0 and sel.store_id is not None:
                    self._fill_stores()
                    i = self.store_combo.findData(sel.store_id)
                self.store_combo.setCurrentIndex(max(i, 0))
        self._sync_date()

    def _sync_date(self) -> None:
        with QSignalBlocker(self.date_edit):
            self.date_edit.setDate(_qdate(self.ctx.selection.day))

    def _on_region_picked(self, index: int) -> None:
        region_id = self.region_combo.itemData(index)
        sel = self.ctx.selection
        if region_id == sel.region_id:
            return
        # a store of another region makes no sense any more: go to the whole region
        store_in = any(s.id == sel.store_id and s.region_id == region_id for s in self._stores)
        sel.region_id = region_id  # set both before one notification
        self._fill_stores()
        sel.set(store_id=sel.store_id if store_in else None)
        sel.sig_changed.emit()

    def _on_store_picked(self, index: int) -> None:
        self.ctx.selection.set(store_id=self.store_combo.itemData(index))

    def _on_date_picked(self, qdate: QDate) -> None:
        self.ctx.selection.set(day=dt.date(qdate.year(), qdate.month(), qdate.day()))

    def store_names(self) -> list[str]:
        """What the store list offers (for tests and the About box)."""
        return [self.store_combo.itemText(i) for i in range(self.store_combo.count())]


def _qdate(d: dt.date) -> QDate:
    return QDate(d.year, d.month, d.day)
