"""Reports screen as a supervisor uses it on Monday: build, preview, save, print, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QFileDialog
from sqlalchemy import select

from core.models import Region, User
from core.mutations import actor_for_user
from tests.conftest import DEMO_TODAY

pytestmark = pytest.mark.gui


@pytest.fixture
def view(demo_cache, qapp, qtbot):
    from desktop.context import AppContext, Selection
    from desktop.theme import install_fonts, install_theme
    from desktop.views.reports import ReportsView

    install_theme(qapp)
    install_fonts(qapp)
    with demo_cache.session() as s:
        user = s.scalars(select(User).where(User.username == "sup_sh")).one()
        actor = actor_for_user(s, user)
        region_id = s.scalars(select(Region.id).where(Region.code == "SH")).one()
        store_id = min(actor.store_ids)
    ctx = AppContext(demo_cache, actor, DEMO_TODAY, Selection(store_id, region_id, DEMO_TODAY))
    v = ReportsView(ctx)
    qtbot.addWidget(v)
    v.resize(1200, 900)
    v.show()
    yield v
    ctx.shutdown()


def test_default_week_is_the_last_full_week(view) -> None:
    assert view.week_box.currentData() == "2026-W47"
    assert view.scope_region.isChecked() and view.scope_region.isVisible()


def test_build_region_pack_previews_saves_and_prints(
    view, qtbot, tmp_path: Path, artifacts, monkeypatch
) -> None:
    view.lang_box.setCurrentIndex(view.lang_box.findData("zh_CN"))
    with qtbot.waitSignal(view.sig_pack_ready, timeout=120_000) as ready:
        qtbot.mouseClick(view.build_button, qtbot_button())
    pdf = Path(ready.args[0])
    pages = len(PdfReader(pdf).pages)
    qtbot.waitUntil(lambda: view.document.pageCount() == pages, timeout=10_000)
    assert view.save_button.isEnabled() and view.print_button.isEnabled()
    assert str(pages) in view.status.text()
    qtbot.wait(200)
    view.grab().save(str(artifacts / "reports.png"))

    target = tmp_path / "weekly.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(view.save_button, qtbot_button())
    assert target.read_bytes() == pdf.read_bytes()

    printed = tmp_path / "printed.pdf"

    def accept(dialog: QPrintDialog) -> int:
        dialog.printer().setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        dialog.printer().setOutputFileName(str(printed))
        return QPrintDialog.DialogCode.Accepted

    monkeypatch.setattr(QPrintDialog, "exec", accept)
    qtbot.mouseClick(view.print_button, qtbot_button())
    assert len(PdfReader(printed).pages) == pages


def test_cancel_stops_the_build_and_writes_nothing(view, qtbot) -> None:
    view.build()
    view.cancel()
    with qtbot.waitSignal(view.sig_build_failed, timeout=120_000) as failed:
        pass
    assert "Cancelled" in failed.args[0]
    assert view.pdf_path is None and view.build_button.isEnabled()
    assert not any(view._tmpdir.iterdir())


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_leaving_the_screen_lets_the_renderer_go_and_closes_the_preview(view, qtbot) -> None:
    assert view.renderer.pid is not None  # started (warming up) when the screen was shown
    with qtbot.waitSignal(view.sig_pack_ready, timeout=120_000):
        view.build()
    qtbot.waitUntil(lambda: view.document.pageCount() > 0, timeout=10_000)
    pages = view.document.pageCount()
    view.hide()
    assert view.renderer.pid is None and view.document.pageCount() == 0
    view.show()
    qtbot.waitUntil(lambda: view.document.pageCount() == pages, timeout=10_000)
    assert view.renderer.pid is not None and view.print_button.isEnabled()
