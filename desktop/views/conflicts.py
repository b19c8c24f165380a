"""Sync conflicts: the user sees their edit beside the server's version and chooses.

Opened from the status bar's "Conflicts: n". Choosing is :func:`core.conflicts.resolve_conflict`
on the DB worker ("keep mine" re-queues the edit on top of the server's version, which the
server re-validates on the next push; "use the server's" closes the conflict).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from core.conflicts import ConflictInfo, open_conflicts, resolve_conflict
from core.i18n import N_, _
from core.timeutil import to_local

ENTITY_NAMES = {
    "shift": N_("Shift"),
    "promotion_decision": N_("Promotion decision"),
    "promotion_proposal": N_("Promotion decision"),
    "visit_note": N_("Visit note"),
}

HIDDEN_FIELDS = frozenset({"_mutation"})


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


class ConflictsDialog(QDialog):
    sig_resolved = Signal(int, str)
    """(conflict id, 'mine' | 'theirs') after the choice was saved."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle(_("Sync conflicts"))
        self.resize(820, 480)
        self.conflicts: list[ConflictInfo] = []
        intro = QLabel(
            _(
                "Someone else changed these records on the server before your edit arrived. "
                "Compare your version with the server's and choose which one to keep."
            )
        )
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setMaximumWidth(260)
        self.list.currentRowChanged.connect(self._on_pick)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setObjectName("Notice")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([_("Field"), _("Your version"), _("Server's version")])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.mine_button = QPushButton(_("Keep my version"))
        self.theirs_button = QPushButton(_("Use the server's version"))
        self.theirs_button.setObjectName("Primary")
        self.mine_button.clicked.connect(lambda: self.resolve("mine"))
        self.theirs_button.clicked.connect(lambda: self.resolve("theirs"))
        self.empty = QLabel(_("No conflicts to resolve."))
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        close = QPushButton(_("Close"))
        close.clicked.connect(self.accept)

        right = QVBoxLayout()
        right.addWidget(self.message)
        right.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.mine_button)
        buttons.addWidget(self.theirs_button)
        right.addLayout(buttons)
        body = QHBoxLayout()
        body.addWidget(self.list)
        body.addLayout(right, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(body, 1)
        lay.addWidget(self.empty)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        lay.addLayout(bottom)
        self.reload()

    def reload(self) -> None:
        self.ctx.db.submit(open_conflicts, on_result=self._on_loaded)

    def _on_loaded(self, conflicts: list[ConflictInfo]) -> None:
        self.conflicts = conflicts
        self.list.clear()
        for c in conflicts:
            when = to_local(c.created_at).strftime("%m-%d %H:%M")
            item = QListWidgetItem(f"{_(ENTITY_NAMES.get(c.entity, c.entity))} · {when}")
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.list.addItem(item)
        has = bool(conflicts)
        self.empty.setVisible(not has)
        for w in (self.table, self.message, self.mine_button, self.theirs_button):
            w.setVisible(has)
        if has:
            self.list.setCurrentRow(0)

    def current(self) -> ConflictInfo | None:
        row = self.list.currentRow()
        return self.conflicts[row] if 0 <= row < len(self.conflicts) else None

    def _on_pick(self, row: int) -> None:
        c = self.current()
        if c is None:
            return
        self.message.setText(c.message or _("The server refused this edit as a conflict."))
        mine = c.mine.get("args", c.mine) if isinstance(c.mine.get("args"), dict) else c.mine
        keys = [k for k in dict.fromkeys([*mine, *c.theirs]) if k not in HIDDEN_FIELDS]
        self.table.setRowCount(len(keys))
        for i, k in enumerate(keys):
            a, b = mine.get(k), c.theirs.get(k)
            cells = (k, _show(a), _show(b))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j and k in mine and k in c.theirs and a != b:
                    item.setBackground(Qt.GlobalColor.yellow if j == 2 else Qt.GlobalColor.white)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.mine_button.setEnabled(c.can_keep_mine)
        self.mine_button.setToolTip(
            "" if c.can_keep_mine else _("The first decision wins: this one cannot be overridden.")
        )

    def resolve(self, choice: str) -> None:
        c = self.current()
        if c is None:
            return
        actor, now = self.ctx.actor, self.ctx.now()
        self.mine_button.setEnabled(False)
        self.theirs_button.setEnabled(False)

        def done(changes) -> None:
            self.theirs_button.setEnabled(True)
            self.ctx.sig_data_changed.emit(changes)
            if self.ctx.sync_engine is not None and choice == "mine":
                self.ctx.sync_engine.poke()
            self.sig_resolved.emit(c.id, choice)
            self.reload()

        def failed(exc: BaseException) -> None:
            from desktop.errors import user_message

            self.theirs_button.setEnabled(True)
            msg = getattr(exc, "message", None) or user_message(exc)[1]
            self.message.setText(_("This choice could not be saved: {reason}").format(reason=msg))

        self.ctx.db.submit(
            resolve_conflict, c.id, choice, actor, now, on_result=done, on_error=failed
        )
