"""Sync & settings: sync status and controls, account, language, preferences, About."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.i18n import N_, _, current_language
from desktop.screens import ScreenSpec, register_screen

LANGUAGES = (("", N_("System language")), ("zh_CN", "简体中文"), ("en", "English"))


def about_text() -> str:
    from desktop.cli import app_version

    return _(
        "StoreDesk {version}\n\nA workstation for store managers and regional supervisors.\n\n"
        "Qt {qt} · PySide6 {pyside} · Python {python} · {system}"
    ).format(
        version=app_version(),
        qt=qVersion(),
        pyside=pyside_version,
        python=platform.python_version(),
        system=f"{platform.system()} {platform.machine()}",
    )


def show_about(parent) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle(_("About StoreDesk"))
    box.setText(about_text())
    box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    box.setModal(False)
    box.show()
    return box


class SyncSettingsView(QWidget):
    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx = ctx
        self.shell = ctx.shell
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(20, 16, 20, 16)
        lay.setSpacing(14)

        # --- sync
        sync_box = QGroupBox(_("Synchronisation"))
        sf = QFormLayout(sync_box)
        self.state_label = QLabel("")
        self.pending_label = QLabel("")
        self.last_label = QLabel("")
        self.conflicts_label = QLabel("")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setObjectName("ErrorText")
        sf.addRow(_("Status"), self.state_label)
        sf.addRow(_("Unsynced edits"), self.pending_label)
        sf.addRow(_("Last sync"), self.last_label)
        sf.addRow(_("Conflicts"), self.conflicts_label)
        sf.addRow(self.error_label)
        row = QHBoxLayout()
        self.sync_button = QPushButton(_("Sync now"))
        self.sync_button.setObjectName("Primary")
        self.sync_button.clicked.connect(self.shell.sync_now)
        self.offline_check = QCheckBox(_("Work offline"))
        self.offline_check.toggled.connect(self.shell.sync.set_working_offline)
        self.conflicts_button = QPushButton(_("Resolve conflicts…"))
        self.conflicts_button.clicked.connect(self.shell.open_conflicts)
        row.addWidget(self.sync_button)
        row.addWidget(self.offline_check)
        row.addWidget(self.conflicts_button)
        row.addStretch(1)
        sf.addRow(row)
        lay.addWidget(sync_box)

        # --- account
        acc_box = QGroupBox(_("Account"))
        af = QFormLayout(acc_box)
        s = self.shell.settings
        from desktop.main_window import role_title

        af.addRow(_("Signed in as"), QLabel(f"{ctx.actor.name} ({role_title(ctx.actor.role)})"))
        af.addRow(
            _("Data source"),
            QLabel(_("Embedded demo region (offline)") if ctx.demo else s.server_url),
        )
        af.addRow(_("Local data file"), _selectable(str(ctx.cache.path)))
        self.sign_out_button = QPushButton(_("Sign out / switch account"))
        self.sign_out_button.clicked.connect(self.shell.sign_out)
        af.addRow(self.sign_out_button)
        lay.addWidget(acc_box)

        # --- preferences
        pref_box = QGroupBox(_("Preferences"))
        pf = QFormLayout(pref_box)
        self.language_combo = QComboBox()
        for code, name in LANGUAGES:
            self.language_combo.addItem(_(name), code)
        i = self.language_combo.findData(s.language)
        self.language_combo.setCurrentIndex(max(i, 0))
        self.language_combo.activated.connect(self._on_language)
        pf.addRow(_("Language"), self.language_combo)
        self.interval_spin = QSpinBox()
        self.interval_spin.setRange(0, 240)
        self.interval_spin.setSuffix(" " + _("min"))
        self.interval_spin.setSpecialValueText(_("only on demand"))
        self.interval_spin.setValue(s.sync_interval_s // 60)
        self.interval_spin.valueChanged.connect(self._on_interval)
        pf.addRow(_("Sync automatically every"), self.interval_spin)
        self.auto_check = QCheckBox(_("Sign in automatically at start"))
        self.auto_check.setChecked(s.auto_sign_in)
        self.auto_check.toggled.connect(self._on_auto)
        pf.addRow(self.auto_check)
        lay.addWidget(pref_box)

        # --- help
        help_box = QGroupBox(_("Help"))
        hl = QHBoxLayout(help_box)
        about = QPushButton(_("About StoreDesk"))
        about.clicked.connect(lambda: show_about(self.window()))
        logs = QPushButton(_("Open the log folder"))
        logs.clicked.connect(self._open_logs)
        hl.addWidget(about)
        hl.addWidget(logs)
        hl.addStretch(1)
        lay.addWidget(help_box)
        lay.addStretch(1)

        self.shell.sync.sig_status.connect(self._on_status)
        self._on_status(self.shell.sync.status)

    def _on_status(self, st) -> None:
        if self.ctx.demo:
            state = _("Demo data: works offline, nothing to synchronise")
        elif st.running:
            state = _("Synchronising…")
        elif st.working_offline:
            state = _("Working offline")
        else:
            state = _("Online") if st.online else _("Offline")
        self.state_label.setText(state)
        self.pending_label.setText(str(st.pending))
        self.last_label.setText(st.last_sync_text())
        self.conflicts_label.setText(str(st.conflicts))
        self.error_label.setText(st.last_error)
        self.error_label.setVisible(bool(st.last_error))
        self.sync_button.setEnabled(not self.ctx.demo and not st.running and not st.working_offline)
        self.offline_check.setEnabled(not self.ctx.demo)
        self.conflicts_button.setEnabled(st.conflicts > 0)

    def _on_language(self, index: int) -> None:
        code = self.language_combo.itemData(index)
        if (code or "") == (self.shell.settings.language or "") and current_language() == (
            code or current_language()
        ):
            return
        self.shell.set_language(code or None, remember=True)

    def _on_interval(self, minutes: int) -> None:
        self.shell.settings.sync_interval_s = minutes * 60
        self.shell.sync.set_interval(minutes * 60)
        self.shell.save_settings()

    def _on_auto(self, on: bool) -> None:
        self.shell.settings.auto_sign_in = on
        self.shell.save_settings()

    def _open_logs(self) -> None:
        from desktop.logging_setup import default_log_dir

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(default_log_dir())))


def _selectable(text: str) -> QLabel:
    from PySide6.QtCore import Qt

    label = QLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


register_screen(
    ScreenSpec(
        id="sync_settings",
        title=N_("Sync & settings"),
        factory=SyncSettingsView,
        order=900,
        icon="sync_settings",
    )
)
