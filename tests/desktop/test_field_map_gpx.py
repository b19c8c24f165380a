"""The field map's GPX import around the file and the server's answer: a refusal is told
once per desktop (not again by a field map opened later or after a restart), and a file
over 50 MB is refused by its size before it is read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select

from core.models import Outbox, Rep
from core.mutations import Changes
from core.trajectory.gps_import import MUTATION
from core.trajectory.gpx import MAX_FILE_BYTES, import_gpx
from tests.conftest import DEMO_TODAY
from tests.desktop.field_map_helpers import supervisor_map_context

pytestmark = [pytest.mark.gui, pytest.mark.webengine]

DAY = DEMO_TODAY - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def ctx(demo_db_template, tmp_path_factory, qapp):
    with supervisor_map_context(demo_db_template, tmp_path_factory.mktemp("fmgpx"), DAY) as c:
        yield c


@pytest.fixture
def make_view(ctx, qtbot):
    from desktop.views.field_map import FieldMapView

    made = []

    def make():
        v = FieldMapView(ctx)
        qtbot.addWidget(v)
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()
        v.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _db_idle(qtbot, ctx) -> None:
    done: list = []
    ctx.db.submit(lambda _s: None, on_result=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    qtbot.wait(50)


def _gpx(day: str, n: int) -> str:
    return (
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        + "".join(
            f'<trkpt lat="31.3{i}" lon="121.5{i}"><time>{day}T0{i + 1}:00:00Z</time></trkpt>'
            for i in range(n)
        )
        + "</trkseg></trk></gpx>"
    )


def test_a_refusal_is_not_told_again_by_a_later_field_map(qtbot, ctx, make_view):
    with ctx.cache.session() as s:
        rep = s.scalars(select(Rep).where(Rep.region_id.in_(ctx.actor.region_ids))).first()
        day = (DAY - dt.timedelta(days=40)).isoformat()
        import_gpx(s, rep.id, _gpx(day, 3), ctx.actor, ctx.now())
    with ctx.cache.session() as s:
        ob = s.scalars(
            select(Outbox).where(Outbox.name == MUTATION).order_by(Outbox.mutation_id.desc())
        ).first()
        ob.status, ob.error = "rejected", "rep is outside the scope of SUP_SH"

    first = make_view()
    ctx.sig_data_changed.emit(Changes().add("sync"))
    want = "The server refused 3 imported track points of"
    qtbot.waitUntil(lambda: want in first.notice.text(), timeout=10_000)
    first.close()

    later = make_view()  # another field map, as after a restart of the app
    later.notice.setText("")
    ctx.sig_data_changed.emit(Changes().add("sync"))
    _db_idle(qtbot, ctx)
    assert later.notice.text() == ""


def test_a_gpx_file_over_50_mb_is_refused_unread(qtbot, ctx, make_view, tmp_path, monkeypatch):
    view = make_view()
    big = tmp_path / "huge.gpx"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: large on paper only
    read: list[Path] = []
    real_read_bytes, real_open = Path.read_bytes, Path.open

    def read_bytes(p: Path) -> bytes:
        read.extend([p] if p == big else [])
        return real_read_bytes(p)

    def open_(p: Path, *a, **k):
        read.extend([p] if p == big else [])
        return real_open(p, *a, **k)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(Path, "open", open_)
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    view.import_gpx(1, big)
    qtbot.waitUntil(lambda: bool(warnings), timeout=10_000)
    assert warnings == ["The GPX file is larger than 50 MB."] == [view.notice.text()]
    assert read == [] and view.gpx_button.isEnabled()
