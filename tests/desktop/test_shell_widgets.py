"""The shell's reusable widgets and plain services: table model, chart, KPI card, progress,
settings (versioned, migrated, atomic), log redaction, token storage fallback."""

from __future__ import annotations

import csv
import errno
import json
import logging
import typing
from dataclasses import dataclass

import pytest
from PySide6.QtCore import QModelIndex, Qt

from core.tasks import Cancelled

pytestmark = pytest.mark.gui


@dataclass
class Row:
    code: str
    name: str
    sales: int | None


def _table(qtbot, n=1234):
    from desktop.widgets.table import Column, DataTable

    t = DataTable(
        [
            Column("code", "Store code"),
            Column("name", "Store"),
            Column("sales", "Sales", numeric=True),
        ],
        title="stores",
    )
    qtbot.addWidget(t)
    t.set_rows([Row(f"S{i:04d}", f"店{i}", (i * 37) % 1000 if i % 10 else None) for i in range(n)])
    return t


def test_table_loads_in_batches_sorts_and_filters(qtbot) -> None:
    t = _table(qtbot)
    m = t.model
    assert m.total_rows == 1234
    assert m.rowCount() == 500  # first batch only
    assert m.canFetchMore()
    m.fetchMore()
    assert m.rowCount() == 1000
    m.sort(2, Qt.SortOrder.DescendingOrder)
    values = [r.sales for r in m.visible_rows()]
    assert values[0] == 999 and values[-1] is None  # None sorts last
    assert m.data(m.index(0, 2), Qt.ItemDataRole.DisplayRole) == "999"
    assert m.data(m.index(0, 2), Qt.ItemDataRole.TextAlignmentRole) & Qt.AlignmentFlag.AlignRight
    t.filter_edit.setText("店12")  # the user types in the filter box
    assert m.matching_rows == len([i for i in range(1234) if "店12" in f"店{i}"])
    assert all("店12" in r.name for r in m.visible_rows())
    assert m.headerData(1, Qt.Orientation.Horizontal) == "Store"
    assert m.rowCount(m.index(0, 0)) == 0 and m.columnCount(QModelIndex()) == 3


def test_table_exports_every_filtered_row_to_csv_and_excel(qtbot, tmp_path) -> None:
    from openpyxl import load_workbook

    t = _table(qtbot)
    t.model.batch = 100
    t.filter_edit.setText("店1")
    expected = t.model.matching_rows
    assert expected > t.model.batch  # more rows than were ever fetched into the view
    t.export(tmp_path / "out.csv", "csv")
    with (tmp_path / "out.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Store code", "Store", "Sales"]
    assert len(rows) == expected + 1
    t.export(tmp_path / "out.xlsx", "xlsx")
    ws = load_workbook(tmp_path / "out.xlsx").active
    assert ws.max_row == expected + 1
    assert ws.cell(1, 2).value == "Store"
    numbers = [ws.cell(r, 3).value for r in range(2, 10)]
    assert any(isinstance(v, int) for v in numbers)  # numbers stay numbers in Excel


def test_export_to_an_unwritable_place_is_explained(qtbot, tmp_path, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a))
    t = _table(qtbot, 10)
    t.export(tmp_path / "missing-folder" / "out.csv", "csv")
    assert shown and "could not be written" in shown[0][2]


def test_chart_keeps_one_item_per_series_and_shows_values_on_hover(qtbot) -> None:
    from desktop.widgets.timeseries_chart import TimeSeriesChart

    c = TimeSeriesChart(x_format=lambda x: f"{int(x):02d}:00")
    qtbot.addWidget(c)
    item = c.set_series("today", [9, 10, 11], [5, 12, None], name="Today")
    c.set_series("last", [9, 10, 11], [4, 10, 8], name="Last week")
    assert c.set_series("today", [9, 10, 11], [6, 13, 9], name="Today") is item  # setData
    assert len(c.plot.getPlotItem().listDataItems()) == 2
    assert c.hover_text_at(10.2) == "10:00   Today: 13   Last week: 10"
    c.set_series("today", [9, 10, 11], [6, None, 9])
    assert "Today: —" in c.hover_text_at(10)


def test_kpi_card_arrow_and_colour(qtbot) -> None:
    from desktop.widgets.kpi_card import KpiCard

    card = KpiCard("Sales")
    qtbot.addWidget(card)
    card.set_value("¥1,000", 0.125)
    assert card.change_label.text().startswith("▲ 12.5 %") and card.change_kind == "ChangeUp"
    card.set_value("¥900", -0.1)
    assert card.change_label.text().startswith("▼ 10.0 %") and card.change_kind == "ChangeDown"
    card.set_value("3 h", 0.2, good_when_up=False)  # e.g. waiting time: up is bad news
    assert card.change_kind == "ChangeDown"
    card.set_value("—", None)
    assert card.change_label.text().startswith("—") and card.change_kind == "ChangeFlat"


def test_progress_panel_reports_from_a_thread_and_cancels(qtbot) -> None:
    import threading

    from desktop.widgets.progress_panel import ProgressPanel

    p = ProgressPanel()
    qtbot.addWidget(p)
    state = p.new_state("Working")
    assert p.isVisible() or not p.isHidden()
    t = threading.Thread(target=lambda: state.progress(0.5, "half way"))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: p.bar.value() == 500)
    assert p.label.text() == "half way"
    with qtbot.waitSignal(p.sig_cancelled):
        qtbot.mouseClick(p.cancel_button, Qt.MouseButton.LeftButton)
    with pytest.raises(Cancelled):
        state.check()
    p.finish()
    assert not p.running


# --------------------------------------------------------------------------- settings


def test_settings_roundtrip_and_filters(tmp_path) -> None:
    from desktop.settings import Settings, SettingsStore

    store = SettingsStore(tmp_path / "s.json")
    s = Settings(language="zh_CN", mode="server", server_url="https://c.example")
    s.set_screen_filter("traffic", "basis", "visitors")
    store.save(s)
    back = store.load()
    assert back == s
    assert back.screen_filter("traffic", "basis") == "visitors"
    assert back.screen_filter("traffic", "nope", 3) == 3
    with pytest.raises(TypeError):
        s.set_screen_filter("x", "y", object())


def test_settings_v1_file_is_migrated(tmp_path) -> None:
    from desktop.settings import SETTINGS_VERSION, SettingsStore

    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "lang": "zh",
                "role": "supervisor",
                "server_url": "http://x",
                "sync_interval_s": "bad",
            }
        )
    )
    s = SettingsStore(path).load()
    assert s.schema_version == SETTINGS_VERSION
    assert s.language == "zh_CN" and s.demo_role == "supervisor" and s.server_url == "http://x"
    assert s.sync_interval_s == 300  # a wrongly typed value falls back to the default


def test_unreadable_settings_are_moved_aside(tmp_path) -> None:
    from desktop.settings import Settings, SettingsStore

    path = tmp_path / "s.json"
    path.write_text("{ not json")
    assert SettingsStore(path).load() == Settings()
    assert (tmp_path / "s.unreadable.json").exists()


def test_settings_save_is_atomic_when_the_disk_is_full(tmp_path, monkeypatch) -> None:
    import os

    from desktop.settings import Settings, SettingsStore

    store = SettingsStore(tmp_path / "s.json")
    store.save(Settings(language="en"))

    def full(*_a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        store.save(Settings(language="zh_CN"))
    monkeypatch.undo()
    assert store.load().language == "en"  # the old file is intact
    assert not (tmp_path / "s.tmp").exists()


# --------------------------------------------------------------------------- logs & secrets


def test_log_file_rotates_and_never_holds_tokens(tmp_path) -> None:
    from desktop.logging_setup import setup_logging, teardown_logging

    path = setup_logging(tmp_path)
    try:
        log = logging.getLogger("storedesk.test")
        log.warning("login ok, Authorization: Bearer abcDEF123456789 sent")
        log.warning("payload %s", {"password": "hunter2", "user": "mgr"})
        for h in logging.getLogger().handlers:
            h.flush()
        text = path.read_text(encoding="utf-8")
        assert "abcDEF123456789" not in text and "hunter2" not in text
        assert "Bearer ***" in text and "mgr" in text
        handler = next(
            h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") == str(path)
        )
        assert handler.maxBytes > 0 and handler.backupCount >= 3
    finally:
        teardown_logging()


def test_token_without_keyring_stays_in_memory(monkeypatch) -> None:
    import keyring

    from desktop.credentials import TokenStore, keyring_usable

    assert not keyring_usable()  # the tests' null backend
    calls = []
    monkeypatch.setattr(keyring, "set_password", lambda *a: calls.append(a))
    t = TokenStore()
    assert t.save("http://s", "u", "tok-123") is False
    assert calls == []
    assert t.load("http://s", "u") == "tok-123"
    t.clear("http://s", "u")
    assert t.load("http://s", "u") is None


def test_token_goes_to_a_working_keyring(monkeypatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1
        data: typing.ClassVar[dict] = {}

        def set_password(self, service, username, password):
            self.data[(service, username)] = password

        def get_password(self, service, username):
            return self.data.get((service, username))

        def delete_password(self, service, username):
            self.data.pop((service, username), None)

    from desktop.credentials import TokenStore

    previous = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        t = TokenStore()
        assert t.save("http://s/", "u", "tok") is True
        assert Memory.data == {("StoreDesk", "http://s|u"): "tok"}
        assert TokenStore().load("http://s", "u") == "tok"  # a new run finds it
        t.clear("http://s", "u")
        assert Memory.data == {}
    finally:
        keyring.set_keyring(previous)


def test_user_messages_say_what_to_do() -> None:
    import httpx

    from core.cache import CacheTooNew
    from desktop.errors import user_message
    from sync.engine import AuthError, OfflineError, ScopeError

    assert user_message(OfflineError("Cannot reach the server: refused"))[0] == "Server unreachable"
    assert "case-sensitive" in user_message(AuthError("Wrong user name or password."))[1]
    assert user_message(ScopeError("The server refused: forbidden"))[0] == "Not allowed"
    assert user_message(httpx.ConnectError("refused"))[0] == "Server unreachable"
    assert user_message(OSError(errno.ENOSPC, "full"))[0] == "Disk full"
    assert (
        user_message(CacheTooNew("written by a newer StoreDesk"))[0]
        == "Data file from a newer StoreDesk"
    )
    title, text = user_message(ZeroDivisionError())
    assert title == "Unexpected error" and "ZeroDivisionError" in text


def test_sync_controller_goes_offline_and_syncs_on_reconnect(qtbot, qloop, demo_cache) -> None:
    """With the server down, the status says Offline; when /v1/health answers, it syncs."""
    import datetime as dt

    from core.mutations import Actor
    from desktop import sync_controller as sc
    from desktop.context import AppContext, Selection
    from sync.engine import OfflineError

    class Engine:
        """Stands in for sync.engine.SyncEngine: the network is down, then back."""

        def __init__(self) -> None:
            self.up = False
            self.syncs = 0

        async def sync(self, state):
            self.syncs += 1
            if not self.up:
                raise OfflineError("Cannot reach the server: connection refused")
            state.progress(1.0, "done")

        async def health(self) -> bool:
            if not self.up:
                raise OfflineError("down")
            return True

        async def aclose(self) -> None:
            pass

    actor = Actor(1, "t", "admin", frozenset())
    ctx = AppContext(
        demo_cache,
        actor,
        dt.date(2026, 11, 27),
        Selection(None, None, dt.date(2026, 11, 27)),
        demo=False,
    )
    ctrl = sc.SyncController()
    ctrl._reconnect_timer.setInterval(50)
    engine = Engine()
    try:
        ctrl.attach(ctx, engine)
        with qtbot.waitSignal(ctrl.sig_finished, timeout=10_000) as sig:
            ctrl.sync_now()
        assert isinstance(sig.args[0], OfflineError)
        assert ctrl.status.online is False and "Cannot reach the server" in ctrl.status.last_error
        assert ctrl._reconnect_timer.isActive()
        engine.up = True  # the network is back: the probe notices and syncs by itself
        with qtbot.waitSignal(ctrl.sig_finished, timeout=10_000) as sig:
            pass
        assert sig.args[0] is None
        assert ctrl.status.online is True and ctrl.status.last_error == ""
        assert not ctrl._reconnect_timer.isActive() and engine.syncs == 2
        ctrl.set_working_offline(True)
        ctrl.sync_now()
        assert engine.syncs == 2  # working offline: no network at all
    finally:
        ctrl.detach()
        ctx.shutdown()


def test_sync_controller_shows_what_was_pulled_when_edits_are_held(
    qtbot, qloop, demo_cache
) -> None:
    """An older server took everything but the held edits: the screens still reload the
    tables that arrived, and the status keeps the reason."""
    import datetime as dt

    from core.mutations import Actor
    from desktop import sync_controller as sc
    from desktop.context import AppContext, Selection
    from sync.engine import EditsHeld, SyncResult

    class Engine:
        """Stands in for sync.engine.SyncEngine against a server not updated yet."""

        async def sync(self, state):
            result = SyncResult(pulled=3, pulled_tables={"visit_notes"}, held=2)
            raise EditsHeld("2 edits wait for the server", result, 2)

        async def aclose(self) -> None:
            pass

    actor = Actor(1, "t", "admin", frozenset())
    day = dt.date(2026, 11, 27)
    ctx = AppContext(demo_cache, actor, day, Selection(None, None, day), demo=False)
    ctrl = sc.SyncController()
    changes = []
    ctx.sig_data_changed.connect(changes.append)
    try:
        ctrl.attach(ctx, Engine())
        with qtbot.waitSignal(ctrl.sig_finished, timeout=10_000) as sig:
            ctrl.sync_now()
        assert isinstance(sig.args[0], EditsHeld)
        assert ctrl.status.online is True and ctrl.status.last_error.startswith("2 edits wait")
        assert changes and changes[-1].touches("visit_notes")
    finally:
        ctrl.detach()
        ctx.shutdown()
