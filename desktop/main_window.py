"""The main window: navigation from the screen registry, shared pickers, sync status bar.

Nothing here names a concrete screen: the left navigation lists
``desktop.screens.screens_for_role(role)``, and a screen's widget is built the first time
it is opened (a screen that fails to build shows its error in place and the rest of the
app keeps working). Language switches rebuild the window (``Shell.rebuild_window``), which
is simpler and more robust than retranslating every label of every screen.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core.i18n import N_, _
from desktop.memory import release_free_memory_soon
from desktop.screens import ScreenSpec, screens_for_role
from desktop.theme import icon
from desktop.widgets.pickers import ScopePickers
from desktop.widgets.progress_panel import ProgressPanel

log = logging.getLogger(__name__)

#: after a screen change, freed heap memory is handed back to the system (desktop.memory)
RELEASE_AFTER_SWITCH_S = 1.0

ROLE_NAMES = {
    "store_manager": N_("Store manager"),
    "supervisor": N_("Regional supervisor"),
    "admin": N_("Administrator"),
}


def role_title(role: str) -> str:
    return _(ROLE_NAMES.get(role, role))


class ScreenError(QWidget):
    """Shown in place of a screen whose factory raised: the app stays usable."""

    def __init__(self, spec: ScreenSpec, error: BaseException) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        msg = QLabel(
            _(
                "The screen “{title}” could not be opened because of an internal error "
                "({error}). The rest of StoreDesk works normally; the details are in the log "
                "file. Please report it to support."
            ).format(title=_(spec.title), error=type(error).__name__)
        )
        msg.setWordWrap(True)
        msg.setObjectName("Notice")
        lay.addWidget(msg)
        lay.addStretch(1)


class MainWindow(QMainWindow):
    sig_screen_changed = Signal(str)
    """The screen with this id is now shown."""

    def __init__(self, ctx, shell, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.shell = shell
        self.settings = shell.settings
        self.setWindowTitle(_("StoreDesk"))
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(QSize(1024, 640))
        self.specs: list[ScreenSpec] = screens_for_role(ctx.actor.role)
        self.widgets: dict[str, QWidget] = {}
        # The screen the window opens on is built first, so its data query is the first job
        # of the DB worker and runs while the rest of the window is put together.
        start = self.settings.last_screen if self._index_of(self.settings.last_screen) >= 0 else ""
        start = start or (self.specs[0].id if self.specs else "")
        self._prebuilt: dict[str, QWidget] = {}
        if start:
            self._prebuilt[start] = self._build_screen(self.specs[self._index_of(start)])

        # --- left navigation
        nav = QFrame()
        nav.setObjectName("NavPanel")
        nav.setMinimumWidth(190)
        nav.setMaximumWidth(260)
        nav_lay = QVBoxLayout(nav)
        nav_lay.setContentsMargins(0, 0, 0, 8)
        nav_lay.setSpacing(0)
        title = QLabel(_("StoreDesk"))
        title.setObjectName("AppTitle")
        mode = _("Demo") if ctx.demo else _("Online account")
        self.user_line = QLabel(f"{ctx.actor.name} · {role_title(ctx.actor.role)}\n{mode}")
        self.user_line.setObjectName("UserLine")
        self.nav = QListWidget()
        self.nav.setObjectName("NavList")
        self.nav.setIconSize(QSize(18, 18))
        self.nav.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for spec in self.specs:
            item = QListWidgetItem(icon(spec.icon or spec.id), _(spec.title))
            item.setData(Qt.ItemDataRole.UserRole, spec.id)
            self.nav.addItem(item)
        self.sign_out_button = QPushButton(_("Sign out / switch"))
        self.sign_out_button.clicked.connect(shell.sign_out)
        nav_lay.addWidget(title)
        nav_lay.addWidget(self.user_line)
        nav_lay.addWidget(self.nav, 1)
        nav_lay.addWidget(self.sign_out_button)

        # --- top bar: screen title + shared pickers
        top = QFrame()
        top.setObjectName("TopBar")
        top_lay = QHBoxLayout(top)
        top_lay.setContentsMargins(16, 8, 16, 8)
        self.screen_title = QLabel("")
        self.screen_title.setObjectName("ScreenTitle")
        self.pickers = ScopePickers(ctx)
        top_lay.addWidget(self.screen_title)
        top_lay.addStretch(1)
        top_lay.addWidget(self.pickers)

        self.stack = QStackedWidget()
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(0, 0, 0, 0)
        right_lay.setSpacing(0)
        right_lay.addWidget(top)
        right_lay.addWidget(self.stack, 1)

        self.splitter = QSplitter()
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(nav)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([210, 1070])
        self.setCentralWidget(self.splitter)

        self._build_status_bar()
        self._build_actions()
        self.nav.currentRowChanged.connect(self._on_nav_row)
        ctx.sig_navigate.connect(self._on_navigate)

        self.show_screen(start)
        self._restore_layout()

    # ------------------------------------------------------------------ status bar

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.online_label = QLabel("")
        self.pending_label = QLabel("")
        self.last_sync_label = QLabel("")
        self.conflicts_button = QPushButton("")
        self.conflicts_button.setObjectName("LinkButton")
        self.conflicts_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.conflicts_button.clicked.connect(self.shell.open_conflicts)
        self.sync_progress = ProgressPanel(compact=True)
        self.sync_button = QPushButton(icon("sync"), _("Sync now"))
        self.sync_button.clicked.connect(self.shell.sync_now)
        sb.addWidget(self.online_label)
        sb.addWidget(self.pending_label)
        sb.addWidget(self.last_sync_label)
        sb.addWidget(self.conflicts_button)
        sb.addPermanentWidget(self.sync_progress)
        sb.addPermanentWidget(self.sync_button)
        self.update_sync_status(self.shell.sync.status)
        self.shell.sync.sig_status.connect(self.update_sync_status)

    def update_sync_status(self, st) -> None:
        if self.ctx.demo:
            text, name = _("Demo data · offline"), "Offline"
        elif st.working_offline:
            text, name = _("Working offline"), "Offline"
        elif st.online:
            text, name = _("Online"), "Online"
        else:
            text, name = _("Offline"), "Offline"
        self.online_label.setText("● " + text)
        if self.online_label.objectName() != name:
            self.online_label.setObjectName(name)
            self.online_label.style().unpolish(self.online_label)
            self.online_label.style().polish(self.online_label)
        self.pending_label.setText(_("Unsynced edits: {n}").format(n=st.pending))
        when = st.last_sync_text()
        self.last_sync_label.setText(_("Last sync: {when}").format(when=when))
        self.conflicts_button.setText(_("Conflicts: {n}").format(n=st.conflicts))
        self.conflicts_button.setEnabled(st.conflicts > 0)
        self.sync_button.setEnabled(not self.ctx.demo and not st.running)
        self.sync_button.setToolTip(
            _("The demo works offline; sign in to a server to synchronise.")
            if self.ctx.demo
            else _("Send your edits and fetch the latest data now")
        )

    def _build_actions(self) -> None:
        for i in range(min(9, len(self.specs))):
            act = QAction(self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _c=False, n=i: self.nav.setCurrentRow(n))
            self.addAction(act)
        self.action_sync = QAction(_("Sync now"), self)
        self.action_sync.setShortcut(QKeySequence("F5"))
        self.action_sync.triggered.connect(self.shell.sync_now)
        self.addAction(self.action_sync)

    # ------------------------------------------------------------------ navigation

    def _index_of(self, screen_id: str) -> int:
        return next((i for i, s in enumerate(self.specs) if s.id == screen_id), -1)

    def screen_ids(self) -> list[str]:
        return [s.id for s in self.specs]

    def nav_titles(self) -> list[str]:
        return [self.nav.item(i).text() for i in range(self.nav.count())]

    def show_screen(self, screen_id: str) -> QWidget | None:
        i = self._index_of(screen_id)
        if i < 0:
            return None
        if self.nav.currentRow() != i:
            self.nav.setCurrentRow(i)  # re-enters through _on_nav_row
            return self.widgets.get(screen_id)
        self._on_nav_row(i)
        return self.widgets.get(screen_id)

    def _on_nav_row(self, row: int) -> None:
        if not 0 <= row < len(self.specs):
            return
        spec = self.specs[row]
        widget = self.widgets.get(spec.id)
        if widget is None:
            widget = self._prebuilt.pop(spec.id, None) or self._build_screen(spec)
            self.widgets[spec.id] = widget
            self.stack.addWidget(widget)
        self.stack.setCurrentWidget(widget)
        self.screen_title.setText(_(spec.title))
        self.settings.last_screen = spec.id
        self.sig_screen_changed.emit(spec.id)
        # once the screen left has let go of its page/preview/helper process
        release_free_memory_soon(RELEASE_AFTER_SWITCH_S)

    def _build_screen(self, spec: ScreenSpec) -> QWidget:
        try:
            return spec.factory(self.ctx)
        except Exception as e:
            log.error("screen %s failed to build:\n%s", spec.id, traceback.format_exc())
            return ScreenError(spec, e)

    def _on_navigate(self, screen_id: str, params: object) -> None:
        if self.show_screen(screen_id) is None and self._index_of(screen_id) < 0:
            log.info("navigation to %s ignored: not available for this role", screen_id)

    def current_screen_id(self) -> str:
        row = self.nav.currentRow()
        return self.specs[row].id if 0 <= row < len(self.specs) else ""

    # ------------------------------------------------------------------ layout memory

    def _restore_layout(self) -> None:
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray(base64.b64decode(s.window_geometry)))
        else:
            self.resize(1280, 800)
        if s.window_state:
            self.restoreState(QByteArray(base64.b64decode(s.window_state)))

    def remember_layout(self) -> None:
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.remember_layout()
        self.shell.on_window_closed(self)
        super().closeEvent(event)

    def call_later(self, ms: int, fn: Callable[[], None]) -> None:
        QTimer.singleShot(ms, self, fn)
