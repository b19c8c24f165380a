"""The sign-in dialog: the embedded demo (offline) or a StoreDesk central server account.

The dialog only collects the choice and shows progress/errors; the :class:`desktop.app.Shell`
does the work (preparing the demo data, logging in, the first sync) off the UI thread and
answers with :meth:`SignInDialog.show_error` or by closing the dialog.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.directory import DemoChoices
from core.i18n import _
from desktop.theme import icon
from desktop.widgets.progress_panel import ProgressPanel


class SignInDialog(QDialog):
    sig_demo_requested = Signal(str, str)
    """(role, store or region code): sign in to the embedded demo as that person."""

    sig_server_requested = Signal(str, str, str)
    """(server url, username, password): sign in to a central server."""

    def __init__(self, settings, *, keyring_ok: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Sign in to StoreDesk"))
        self.setWindowIcon(icon("app"))
        self.setMinimumWidth(520)
        self._choices: DemoChoices | None = None

        head = QLabel(_("StoreDesk"))
        head.setStyleSheet("font-size: 20px; font-weight: 600;")
        sub = QLabel(_("Store shifts, traffic, promotions, field visits and funnels."))
        sub.setObjectName("Muted")

        self.demo_radio = QRadioButton(_("Demo (offline, embedded demo region)"))
        self.server_radio = QRadioButton(_("Server account"))
        mode = QButtonGroup(self)
        mode.addButton(self.demo_radio)
        mode.addButton(self.server_radio)

        # --- demo
        self.demo_box = QGroupBox()
        self.manager_radio = QRadioButton(_("Demo store manager of"))
        self.supervisor_radio = QRadioButton(_("Demo supervisor of"))
        roles = QButtonGroup(self)
        roles.addButton(self.manager_radio)
        roles.addButton(self.supervisor_radio)
        self.store_combo = QComboBox()
        self.store_combo.setMinimumWidth(300)
        self.region_combo = QComboBox()
        self.demo_progress = ProgressPanel()
        demo_form = QFormLayout(self.demo_box)
        demo_form.addRow(self.manager_radio, self.store_combo)
        demo_form.addRow(self.supervisor_radio, self.region_combo)
        demo_form.addRow(self.demo_progress)

        # --- server
        self.server_box = QGroupBox()
        self.url_edit = QLineEdit(settings.server_url)
        self.url_edit.setPlaceholderText("https://storedesk.example.com")
        self.user_edit = QLineEdit(settings.username)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        keyring_note = QLabel(
            _("Your sign-in is remembered in the system's secure password store.")
            if keyring_ok
            else _(
                "This computer has no secure password store: your sign-in is kept only "
                "until StoreDesk closes, and you will be asked for the password next time."
            )
        )
        keyring_note.setWordWrap(True)
        keyring_note.setObjectName("Muted")
        self.keyring_note = keyring_note
        form = QFormLayout(self.server_box)
        form.addRow(_("Server address"), self.url_edit)
        form.addRow(_("User name"), self.user_edit)
        form.addRow(_("Password"), self.password_edit)
        form.addRow(keyring_note)

        self.error_label = QLabel("")
        self.error_label.setObjectName("ErrorText")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.busy = ProgressPanel()
        self.sign_in_button = QPushButton(_("Sign in"))
        self.sign_in_button.setObjectName("Primary")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self._on_sign_in)
        self.quit_button = QPushButton(_("Cancel"))
        self.quit_button.clicked.connect(self.reject)

        buttons = QHBoxLayout()
        buttons.addWidget(self.busy, 1)
        buttons.addStretch(0)
        buttons.addWidget(self.quit_button)
        buttons.addWidget(self.sign_in_button)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(sub)
        lay.addSpacing(8)
        lay.addWidget(self.demo_radio)
        lay.addWidget(self.demo_box)
        lay.addWidget(self.server_radio)
        lay.addWidget(self.server_box)
        lay.addWidget(self.error_label)
        lay.addLayout(buttons)

        self.demo_radio.toggled.connect(self._on_mode)
        self.manager_radio.toggled.connect(self._on_role)
        (self.server_radio if settings.mode == "server" else self.demo_radio).setChecked(True)
        (
            self.supervisor_radio if settings.demo_role == "supervisor" else self.manager_radio
        ).setChecked(True)
        self._settings = settings
        self._on_mode()
        self._on_role()

    # ------------------------------------------------------------------ demo choices

    def set_demo_choices(self, choices: DemoChoices) -> None:
        self._choices = choices
        self.demo_progress.finish()
        self.store_combo.clear()
        for code, label in choices.stores:
            self.store_combo.addItem(label, code)
        self.region_combo.clear()
        for code, label in choices.regions:
            self.region_combo.addItem(label, code)
        for combo, code in (
            (self.store_combo, self._settings.demo_store_code),
            (self.region_combo, self._settings.demo_region_code),
        ):
            i = combo.findData(code)
            if i >= 0:
                combo.setCurrentIndex(i)
        self._on_role()

    def _on_mode(self) -> None:
        demo = self.demo_radio.isChecked()
        self.demo_box.setEnabled(demo)
        self.server_box.setEnabled(not demo)
        self.error_label.hide()
        self._update_button()

    def _on_role(self) -> None:
        self.store_combo.setEnabled(self.manager_radio.isChecked())
        self.region_combo.setEnabled(self.supervisor_radio.isChecked())
        self._update_button()

    def _update_button(self) -> None:
        ok = not self.busy.running and (
            not self.demo_radio.isChecked() or self._choices is not None
        )
        self.sign_in_button.setEnabled(ok)

    # ------------------------------------------------------------------ actions

    def _on_sign_in(self) -> None:
        self.error_label.hide()
        if self.demo_radio.isChecked():
            if self.manager_radio.isChecked():
                self.sig_demo_requested.emit("store_manager", self.store_combo.currentData() or "")
            else:
                self.sig_demo_requested.emit("supervisor", self.region_combo.currentData() or "")
            return
        url = self.url_edit.text().strip()
        user = self.user_edit.text().strip()
        password = self.password_edit.text()
        if not url.startswith(("http://", "https://")):
            self.show_error(
                _(
                    "Enter the server address, starting with https:// (or http:// on a local network)."
                )
            )
            return
        if not user or not password:
            self.show_error(_("Enter your user name and password."))
            return
        self.sig_server_requested.emit(url, user, password)

    def set_busy(self, text: str | None) -> None:
        """Show an indeterminate 'working' line (None: done)."""
        if text is None:
            self.busy.finish()
        else:
            self.busy.start(_dummy_state(), text)
            self.busy.set_busy(text)
            self.busy.cancel_button.hide()
        self._update_button()

    def show_error(self, text: str) -> None:
        self.set_busy(None)
        self.error_label.setText(text)
        self.error_label.show()

    def demo_progress_panel(self) -> ProgressPanel:
        return self.demo_progress

    def server_widget(self) -> QWidget:
        return self.server_box


def _dummy_state():
    from core.tasks import TaskState

    return TaskState()
