"""The application: QApplication + qasync loop, sign-in, the main window, language, errors.

:class:`Shell` owns what lives longer than one window: settings, the token store, the
signed-in :class:`desktop.context.AppContext`, the sync controller. The window is rebuilt
on sign-in, role switch and language switch. Long steps (demo generation, opening a
cache, login, first sync) never run on the UI thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLibraryInfo, QLocale, QObject, Qt, QTimer, QTranslator, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from core import i18n
from core.actor import Actor
from core.cache import open_cache
from core.i18n import _
from desktop.context import AppContext, Selection, Worker
from desktop.credentials import TokenStore, keyring_usable
from desktop.errors import install_excepthook, user_message
from desktop.settings import Settings, SettingsStore
from desktop.sync_controller import SyncController
from desktop.theme import install_fonts, install_theme

if TYPE_CHECKING:
    from desktop.signin import SignInDialog

log = logging.getLogger(__name__)

#: the first main window of this process has been frozen out of GC scans (_make_window)
_first_window_frozen = False


def tune_runtime() -> None:
    """Keep the cyclic garbage collector from stalling the UI thread.

    A worker thread that loads 100k rows allocates millions of objects; with CPython's
    default thresholds (700, 10, 10) that triggers repeated full collections which hold
    the GIL for hundreds of milliseconds, freezing the window even though the work is off
    the UI thread (measured: 430 ms longest heartbeat gap, 25 ms after tuning). Fewer,
    younger collections plus ``gc.freeze()`` of the start-up objects fix that; a shorter
    GIL switch interval lets the UI thread back in sooner while a worker computes.
    """
    gc.set_threshold(50_000, 50, 100)
    sys.setswitchinterval(0.002)
    gc.freeze()


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with fonts and theme (reuses an existing instance, e.g. in tests)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    tune_runtime()
    app.setApplicationName("StoreDesk")
    app.setOrganizationName("StoreDesk")
    app.setApplicationDisplayName("StoreDesk")
    install_fonts(app)
    install_theme(app)
    return app


class QtTranslations:
    """Qt's own strings (file dialogs, message box buttons) in the UI language."""

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self._translators: list[QTranslator] = []

    def apply(self, lang: str) -> bool:
        for t in self._translators:
            self.app.removeTranslator(t)
        self._translators.clear()
        if lang != "zh_CN":
            QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
            return True
        QLocale.setDefault(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
        folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
        ok = True
        for name in ("qtbase_zh_CN",):
            t = QTranslator(self.app)
            if t.load(name, folder):
                self.app.installTranslator(t)
                self._translators.append(t)
            else:
                log.warning("Qt translation %s not found in %s", name, folder)
                ok = False
        return ok


class Shell(QObject):
    sig_signed_in = Signal(object)
    """The main window for a new sign-in is shown (carries the MainWindow)."""

    sig_signed_out = Signal()

    def __init__(
        self,
        app: QApplication,
        *,
        settings_store: SettingsStore | None = None,
        cache_path: Path | None = None,
        demo_path: Path | None = None,
        demo_today: dt.date | None = None,
        language: str | None = None,
        show_windows: bool = True,
    ) -> None:
        super().__init__()
        self.app = app
        self.settings_store = settings_store or SettingsStore()
        self.settings: Settings = self.settings_store.load()
        self.cache_path = cache_path
        from desktop.demo_data import default_demo_path

        self.demo_path = demo_path or default_demo_path()
        self.demo_today = demo_today
        self.show_windows = show_windows
        self.tokens = TokenStore()
        self.sync = SyncController(self)
        self.sync.on_error = self._on_sync_error
        self.ctx: AppContext | None = None
        self.window: Any = None
        self.dialog: SignInDialog | None = None
        self.conflicts_dialog: Any = None
        self.startup = Worker("startup", 1)
        self.qt_tr = QtTranslations(app)
        self._demo_cache = None
        self._integrity_checks: dict[int, Any] = {}  # id(cache) -> Future of its deferred check
        self._server_session: Any = None
        self._undo_hook = install_excepthook(self.show_error)
        self._closing = False
        self.errors_shown: list[tuple[str, str]] = []
        #: the server protocol "edits wait for a newer server" was last told for
        self._held_told: int | None = None
        #: error boxes still open (closed with the shell; they may have no window as parent)
        self._error_boxes: list[QMessageBox] = []
        self.set_language(
            language if language is not None else (self.settings.language or None), rebuild=False
        )

    # ------------------------------------------------------------------ language

    def set_language(
        self, lang: str | None, *, rebuild: bool = True, remember: bool = False
    ) -> str:
        """Switch the UI language (None: the system's); rebuilds the window."""
        used = i18n.set_language(lang)
        self.qt_tr.apply(used)
        if remember:
            self.settings.language = lang or ""
            self.save_settings()
        if rebuild and self.window is not None:
            self.rebuild_window()
        return used

    # ------------------------------------------------------------------ settings

    def save_settings(self) -> bool:
        try:
            self.settings_store.save(self.settings)
            return True
        except OSError as e:
            log.warning("could not save settings: %s", e)
            self.show_error(*user_message(e))
            return False

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Auto sign-in with the remembered choice (demo when nothing is configured)."""
        s = self.settings
        if s.auto_sign_in and s.mode == "demo":
            self.sign_in_demo(
                s.demo_role,
                s.demo_store_code if s.demo_role == "store_manager" else s.demo_region_code,
            )
        elif (
            s.auto_sign_in
            and s.mode == "server"
            and s.server_url
            and s.username
            and self.tokens.load(s.server_url, s.username)
        ):
            self._sign_in_with_token(
                s.server_url, s.username, self.tokens.load(s.server_url, s.username)
            )
        else:
            self.show_sign_in()

    # ------------------------------------------------------------------ sign-in dialog

    def show_sign_in(self) -> SignInDialog:
        from desktop.signin import SignInDialog  # not needed by a remembered sign-in

        dlg = SignInDialog(self.settings, keyring_ok=keyring_usable())
        dlg.sig_demo_requested.connect(self.sign_in_demo)
        dlg.sig_server_requested.connect(self.sign_in_server)
        dlg.rejected.connect(self._on_dialog_rejected)
        self.dialog = dlg
        if self.show_windows:
            dlg.show()
        self._prepare_demo(
            lambda cache: self._load_choices(cache, dlg), panel=dlg.demo_progress_panel()
        )
        return dlg

    def _load_choices(self, cache, dlg: SignInDialog) -> None:
        def work():
            from core.directory import demo_choices

            with cache.session() as s:
                return demo_choices(s)

        self.startup.submit(work, on_result=dlg.set_demo_choices, on_error=self._on_start_error)

    def _on_dialog_rejected(self) -> None:
        self.dialog = None
        if self.window is None and self.show_windows:
            self.app.quit()

    # ------------------------------------------------------------------ demo

    def _prepare_demo(self, then, panel=None) -> None:
        """Open (generating on first start) the demo cache off the UI thread, then ``then(cache)``."""
        if self._demo_cache is not None:
            then(self._demo_cache)
            return
        from desktop.demo_data import ensure_demo_cache

        own_panel = None
        if panel is None and self.show_windows:
            own_panel = _StartupProgress()
            own_panel.show()
            panel = own_panel.panel
        state = panel.new_state(_("Preparing the demo data…")) if panel is not None else None
        from core.tasks import TaskState

        state = state or TaskState()
        today = self.demo_today or dt.date.today()

        def done(cache) -> None:
            if panel is not None:
                panel.finish()
            if own_panel is not None:
                own_panel.close()
            self._demo_cache = cache
            if cache.recovered is not None:
                self.show_error(_("Local data recovered"), cache.recovered.message())
            then(cache)

        def failed(exc: BaseException) -> None:
            if panel is not None:
                panel.finish()
            if own_panel is not None:
                own_panel.close()
            self._on_start_error(exc)

        self.startup.submit(
            lambda: ensure_demo_cache(self.demo_path, today, state, defer_integrity_check=True),
            on_result=done,
            on_error=failed,
        )

    def sign_in_demo(self, role: str, code: str = "") -> None:
        if self.dialog is not None:
            self.dialog.set_busy(_("Opening the demo…"))

        def with_cache(cache) -> None:
            def work():
                # the sqlite3 driver, not the ORM: a remembered sign-in opens the window
                # before SQLAlchemy is imported (core.quickread; equal to core.directory's)
                from core.quickread import data_last_day, demo_actor

                with cache.reader() as conn:
                    actor = demo_actor(conn, role, code)
                    if actor is None:
                        actor = demo_actor(conn, role, "")
                    return actor, data_last_day(conn)

            def ready(result) -> None:
                actor, last_day = result
                if actor is None:
                    self._on_start_error(LookupError(f"no demo {role}"))
                    return
                before = dataclasses.replace(self.settings)
                self.settings.mode = "demo"
                self.settings.demo_role = role
                if role == "store_manager":
                    self.settings.demo_store_code = code
                else:
                    self.settings.demo_region_code = code
                if self.settings != before:  # a remembered sign-in changes nothing: no fsync
                    self.save_settings()
                self._open_session(
                    cache, actor, last_day or self.demo_today or dt.date.today(), demo=True
                )

            self.startup.submit(work, on_result=ready, on_error=self._on_start_error)

        self._prepare_demo(
            with_cache, panel=self.dialog.demo_progress_panel() if self.dialog else None
        )

    # ------------------------------------------------------------------ server

    def sign_in_server(self, url: str, username: str, password: str) -> None:
        from desktop.server_session import login

        if self.dialog is not None:
            self.dialog.set_busy(_("Signing in…"))
        task = asyncio.ensure_future(login(url, username, password))
        task.add_done_callback(lambda t: self._on_logged_in(t, url, username))

    def _sign_in_with_token(self, url: str, username: str, token: str) -> None:
        from desktop.server_session import resume

        task = asyncio.ensure_future(resume(url, username, token))
        task.add_done_callback(lambda t: self._on_logged_in(t, url, username, resumed=True))

    def _on_logged_in(
        self, task: asyncio.Task, url: str, username: str, resumed: bool = False
    ) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.warning("sign-in to %s as %s failed", url, username, exc_info=exc)
            if resumed:  # a stale remembered token: ask for the password again
                self.tokens.clear(url, username)
                self.show_sign_in()
                return
            title, text = user_message(exc)
            if self.dialog is not None:
                self.dialog.show_error(text)
            else:
                self.show_error(title, text)
            return
        session = task.result()
        self.tokens.save(url, username, session.token)
        self.settings.mode = "server"
        self.settings.server_url = url
        self.settings.username = username
        self.save_settings()
        self._server_session = session
        from core.cache import default_cache_path

        path = self.cache_path or default_cache_path()
        self.startup.submit(
            lambda: open_cache(path, defer_integrity_check=True),
            on_result=lambda c: self._on_server_cache(c, session),
            on_error=self._on_start_error,
        )

    def _on_server_cache(self, cache, session) -> None:
        if cache.recovered is not None:
            self.show_error(_("Local data recovered"), cache.recovered.message())
        self._open_session(cache, session.actor, dt.date.today(), demo=False, server=session)

    # ------------------------------------------------------------------ cache integrity

    def _verify_cache(self, cache, worker: Worker) -> None:
        """Run the integrity check the cache was opened without (``core.cache.open_cache``).

        After sign-in it is queued on the DB worker behind the first screen's query, so it
        reads the file (sqlite3 releases the GIL) while the window paints, instead of
        before (≈0.2 s of a 116 MB file); after a failed sign-in, on the start-up worker.
        A damaged file is then handled as at open: moved aside, the user told, the
        session started again on a fresh file.
        """
        pending = self._integrity_checks.get(id(cache))
        if cache.integrity_checked or (pending is not None and not pending.done()):
            return

        def checked(problem: str | None) -> None:
            if problem is not None:
                self._on_cache_damaged(cache, problem)

        # (on the DB worker too without a session: a check asked again for a cache found
        # damaged before, whose verdict was lost with a closed session, must still run)
        fut = Worker.submit(worker, cache.check_integrity, on_result=checked)
        self._integrity_checks[id(cache)] = fut

    def _on_cache_damaged(self, cache, problem: str) -> None:
        in_use = self.ctx is not None and self.ctx.cache is cache
        if in_use:
            self._close_window()
            self._close_session(keep_demo_cache=False)
        if cache is self._demo_cache:
            self._demo_cache = None
        try:
            recovered = cache.move_aside(problem)
        except OSError as e:
            log.error("could not move the damaged cache %s aside: %s", cache.path, e)
            self.show_error(*user_message(e))
            return
        self.show_error(_("Local data recovered"), recovered.message())
        if in_use and not self._closing:
            self.start()

    # ------------------------------------------------------------------ session / window

    def _open_session(
        self, cache, actor: Actor, today: dt.date, *, demo: bool, server: Any = None
    ) -> None:
        self._close_session(keep_demo_cache=True)
        region = next(iter(sorted(actor.region_ids)), None)
        store = next(iter(sorted(actor.store_ids)), None) if actor.role == "store_manager" else None
        self.ctx = AppContext(cache, actor, today, Selection(store, region, today), demo=demo)
        self.ctx.sig_error.connect(lambda text: self.show_error(_("StoreDesk"), text))
        self.ctx.settings = self.settings  # additive: views read their remembered filters
        self.ctx.shell = self
        engine = server.engine(cache, run_db=self.ctx.db.run_plain) if server is not None else None
        self.sync.attach(self.ctx, engine, interval_s=self.settings.sync_interval_s)
        if self.dialog is not None:
            dlg, self.dialog = self.dialog, None
            dlg.rejected.disconnect()
            dlg.accept()
        self._make_window()
        self._verify_cache(cache, self.ctx.db)
        # the first screen reads through the sqlite3 driver; the ORM loads behind it
        self.ctx.db.warm_up()
        if engine is not None:
            self.sync.sync_now()
        self.sig_signed_in.emit(self.window)

    def _make_window(self, screen: str | None = None) -> None:
        from desktop.main_window import MainWindow

        if screen:
            self.settings.last_screen = screen
        self.window = MainWindow(self.ctx, self)
        self.sync.progress_panel = self.window.sync_progress
        global _first_window_frozen
        if not _first_window_frozen:
            # the window's long-lived objects need no more GC scans (see tune_runtime).
            # Once per process: on a later window (sign-in after sign-out, language switch)
            # it would also freeze the closed window and session, never to be collected
            _first_window_frozen = True
            gc.freeze()
        if self.show_windows:
            self.window.show()
        log.info(
            "main window shown: %s (%s), screens %s",
            self.ctx.actor.name,
            self.ctx.actor.role,
            ",".join(self.window.screen_ids()),
        )

    def rebuild_window(self) -> None:
        """A new window for the same session (after a language switch)."""
        if self.window is None or self.ctx is None:
            return
        old = self.window
        old.remember_layout()
        screen = old.current_screen_id()
        self.window = None
        old.shell_detached = True
        old.close()
        old.deleteLater()
        self._make_window(screen)

    def on_window_closed(self, window) -> None:
        """The user closed the main window: save and quit (not on a rebuild/sign-out)."""
        if getattr(window, "shell_detached", False) or window is not self.window:
            return
        self.save_settings()
        if self.show_windows and not self._closing:
            QTimer.singleShot(0, self.app.quit)

    def sign_out(self) -> None:
        """Forget the token and go back to the sign-in dialog."""
        if self.settings.mode == "server" and self.settings.server_url:
            self.tokens.clear(self.settings.server_url, self.settings.username)
        self.settings.auto_sign_in = True
        self._close_window()
        self._close_session(keep_demo_cache=True)
        self.sig_signed_out.emit()
        self.show_sign_in()

    def _close_window(self) -> None:
        if self.window is not None:
            w, self.window = self.window, None
            w.remember_layout()
            self.save_settings()
            w.shell_detached = True
            w.close()
            w.deleteLater()

    def _close_session(self, *, keep_demo_cache: bool) -> None:
        self.sync.detach()
        if self.conflicts_dialog is not None:
            self.conflicts_dialog.close()
            self.conflicts_dialog = None
        if self.ctx is not None:
            ctx, self.ctx = self.ctx, None
            ctx.shutdown()
            if ctx.cache is not self._demo_cache or not keep_demo_cache:
                ctx.cache.close()
        if self._server_session is not None:
            self._server_session = None

    def shutdown(self) -> None:
        """Close everything this shell started (windows, workers, caches)."""
        self._closing = True
        self._close_window()
        for box in list(self._error_boxes):  # shown without a window to belong to
            box.close()
        if self.dialog is not None:
            self.dialog.rejected.disconnect()
            self.dialog.close()
            self.dialog = None
        self._close_session(keep_demo_cache=False)
        self.startup.shutdown()
        if self._demo_cache is not None:
            self._demo_cache.close()
            self._demo_cache = None
        self._undo_hook()

    # ------------------------------------------------------------------ sync & conflicts

    def sync_now(self) -> None:
        self.sync.sync_now()

    def open_conflicts(self) -> None:
        if self.ctx is None:
            return
        from desktop.views.conflicts import ConflictsDialog

        if self.conflicts_dialog is None:
            self.conflicts_dialog = ConflictsDialog(self.ctx, parent=self.window)
            self.conflicts_dialog.finished.connect(
                lambda _r: setattr(self, "conflicts_dialog", None)
            )
        if self.show_windows:
            self.conflicts_dialog.show()
            self.conflicts_dialog.raise_()
        return self.conflicts_dialog

    def _on_sync_error(self, exc: BaseException) -> None:
        from desktop.errors import _is_network_error

        if _is_network_error(exc):
            return  # shown in the status bar as "Offline"; not worth a dialog each time
        from sync.engine import EditsHeld

        title, text = user_message(exc)
        if isinstance(exc, EditsHeld):  # the server is older: told once per server protocol
            if exc.server_protocol == self._held_told:
                return  # told once; the status bar keeps counting the unsynced edits
            self._held_told = exc.server_protocol
        self.show_error(title, text)

    # ------------------------------------------------------------------ errors

    def _on_start_error(self, exc: BaseException) -> None:
        if self._demo_cache is not None:  # a sign-in that failed on a damaged file
            self._verify_cache(self._demo_cache, self.startup)
        title, text = user_message(exc)
        if self.dialog is not None:
            self.dialog.show_error(text)
        else:
            self.show_error(title, text)
            if self.window is None and not self._closing:
                self.show_sign_in()

    def show_error(self, title: str, text: str) -> None:
        """Tell the user what happened and what to do (never raises)."""
        self.errors_shown.append((title, text))
        log.info("shown to the user: %s: %s", title, text)
        if not self.show_windows:
            return
        parent: QWidget | None = self.window or self.dialog
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent
        )
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self._forget_box(b))
        self._error_boxes.append(box)
        box.show()

    def _forget_box(self, box: QMessageBox) -> None:
        if box in self._error_boxes:
            self._error_boxes.remove(box)


class _StartupProgress(QWidget):
    """A small window with progress while the demo data is created on first start."""

    def __init__(self) -> None:
        from PySide6.QtWidgets import QLabel, QVBoxLayout

        from desktop.widgets.progress_panel import ProgressPanel

        super().__init__()
        self.setWindowTitle(_("StoreDesk"))
        self.setMinimumWidth(460)
        lay = QVBoxLayout(self)
        title = QLabel(_("Preparing the demo data…"))
        title.setStyleSheet("font-size: 15px; font-weight: 600;")
        lay.addWidget(title)
        self.panel = ProgressPanel()
        lay.addWidget(self.panel)


def run_app(args: Any) -> int:
    """``storedesk`` without a command: the app (demo region when nothing is configured)."""
    import qasync

    from desktop.logging_setup import setup_logging

    log_path = setup_logging()
    log.info("StoreDesk starting; log file %s", log_path)
    app = create_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    lang = {"zh": "zh_CN", "en": "en"}.get(getattr(args, "lang", None) or "")
    shell = Shell(
        app,
        cache_path=Path(args.cache) if getattr(args, "cache", None) else None,
        language=lang or None,
    )
    # windows come and go (progress, sign-in, rebuilt main window): the shell decides
    app.setQuitOnLastWindowClosed(False)
    QTimer.singleShot(0, shell.start)
    app.aboutToQuit.connect(shell.shutdown)
    with loop:
        loop.run_forever()
    return 0
