"""The field map screen (拜访轨迹): a region's reps on a day or a range, fully offline.

Left: region, period and rep pickers, the period's visits (table) and the selected
visit's details. Right: the map (:class:`desktop.widgets.map_view.MapView`) with tracks
per rep, stops, visits (flagged ones red), stores, customers and a heat layer.

Building a map never blocks the UI thread: the query runs on ``ctx.db``
(:func:`core.trajectory.field_day.load_field_day`), cleaning/evidence/simplification
and the day's drawing script on ``ctx.cpu``. The map page itself (folium/Leaflet, tiles,
boundaries, layer control) is loaded from ``storedesk://map/`` once per tile source and
kept; asking for a day only sends the day's data to it: customers, stores and heat as
soon as the query is done (``window.sdBegin``), the tracks as soon as they are simplified
(``window.sdTracks``, emitted from the CPU pool), then stops, visits and legend
(``window.sdDraw``), after which the page answers ``pageReady`` naming the request (a late
answer to an earlier request is ignored). Export still builds the complete folium page.
A click on a visit marker comes back over QWebChannel and selects the visit here.
"Download this area" prefetches tiles of the visible area (count and size shown first;
progress and cancel during) from a provider whose terms allow it; the tile source, its
URL and "fetch tiles while online" are remembered per screen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QDate, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.cache import APP_AUTHOR, APP_NAME
from core.directory import RegionInfo, regions_in_scope
from core.i18n import N_, _
from core.maps.providers import BUILTIN, TileProvider, custom_provider
from core.maps.tilecache import (
    BBox,
    BulkDownloadForbidden,
    DownloadEstimate,
    PrefetchResult,
    TileCache,
    TooManyTiles,
    estimate_area,
    prefetch_area,
)
from core.tasks import Cancelled, TaskState
from core.timeutil import to_local
from core.timeutil import tz as zone_of
from core.trajectory.evidence import format_distance, format_minutes
from core.trajectory.field_day import (
    FieldMap,
    RepInfo,
    VisitView,
    load_field_day,
    prepare_field_map,
    prepare_tracks,
    reps_in_scope,
)
from core.trajectory.gps_import import RefusedImport, refusals_to_tell
from core.trajectory.gpx import (
    GpxImportError,
    GpxImportSummary,
    ParsedGpx,
    parse_gpx,
    queue_gpx,
    read_gpx_file,
)
from desktop.context import Worker
from desktop.screens import ScreenSpec, register_screen
from desktop.widgets.progress_panel import ProgressPanel
from desktop.widgets.table import Column, DataTable

SCREEN_ID = "field_map"
#: A range longer than this would draw weeks of tracks: refused with a message.
MAX_RANGE_DAYS = 31
#: Tables whose rows the map draws (``core.models``); a change to one (an edit, or a sync
#: that received rows of it) redraws the map.
SHOWN_TABLES = ("gps_points", "visits", "customers", "reps", "stores")
#: Changes arriving within this time of each other are one redraw.
DATA_REFRESH_MS = 300

TILE_SOURCES = (
    ("", N_("Boundaries only (no tiles)")),
    ("osm", N_("OpenStreetMap (view only)")),
    ("gaode", N_("AMap/Gaode (view only, GCJ-02)")),
    ("custom", N_("Organisation tile server")),
)


def tile_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)) / "tiles.sqlite"


def _qdate(d: dt.date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> dt.date:
    return dt.date(q.year(), q.month(), q.day())


def load_day(
    session: Any,
    region_id: int,
    rep_ids: list[int] | None,
    day_from: dt.date,
    day_to: dt.date,
    provider: TileProvider | None,
) -> tuple[Any, str]:
    """DB part of asking for a period (runs on ctx.db): the query, and the script that
    starts drawing it (customers, stores, heat) while the CPU pool prepares the traces."""
    from core.maps.field_map import field_static_script  # folium: not on the start path

    raw = load_field_day(session, region_id, rep_ids, day_from, day_to)
    return raw, field_static_script(raw, provider)


@dataclass
class DayBuild:
    fm: FieldMap
    script: str  # completes the drawing started by load_day's script
    rows: list[dict[str, Any]]  # the visits table
    seconds: float


def build_day(
    raw: Any,
    provider: TileProvider | None,
    request: int | None = None,
    on_tracks: Callable[[str], None] | None = None,
    keep_view: bool = False,
) -> DayBuild:
    """CPU part of asking for a period (runs on ctx.cpu): prepare, the scripts that
    complete the drawing started by :func:`load_day`, and the table's rows.

    With ``on_tracks``, the tracks' script is handed to it (on this thread) as soon as the
    tracks are simplified, so the page draws them while the visits are judged; the
    returned script then brings stops, visits and legend only. ``request`` comes back in
    the page's ready message (see FieldMapView._on_map_ready). With ``keep_view`` the
    tracks' script leaves the map's centre and zoom as they are (a redraw for new data).
    """
    from core.maps.field_map import field_day_script, field_tracks_script

    t0 = time.perf_counter()
    tracks = prepare_tracks(raw)
    if on_tracks is not None:
        on_tracks(field_tracks_script(raw, tracks, provider, keep_view=keep_view))
    fm = prepare_field_map(raw, tracks=tracks)
    script = field_day_script(fm, provider, static=False, tracks=on_tracks is None, request=request)
    rows = visit_table_rows(fm)
    return DayBuild(fm, script, rows, time.perf_counter() - t0)


def visit_table_rows(fm: FieldMap) -> list[dict[str, Any]]:
    """The visits table's rows (plain data: built on the CPU pool)."""
    tz = fm.raw.timezone
    multi_day = fm.raw.day_from != fm.raw.day_to
    flagged, ok = _("Flagged"), _("OK")
    zone = zone_of(tz)
    rows = []
    for v in fm.visits:
        local = v.row.visit.check_in_at.astimezone(zone)  # to_local(..., tz)
        rows.append(
            {
                "id": v.id,
                # (f-string: strftime imports a module per call under Qt's import hook)
                "time": (f"{local.month:02d}-{local.day:02d} " if multi_day else "")
                + f"{local.hour:02d}:{local.minute:02d}",
                "rep": v.row.rep_name,
                "customer": v.row.customer_name,
                "score": v.evidence.score,
                "flag": flagged if v.evidence.flagged else ok,
            }
        )
    return rows


def build_shell(provider: TileProvider | None) -> str:
    """The persistent map page for a tile source (runs on ctx.cpu, once per source)."""
    from core.maps.field_map import build_field_shell_html

    return build_field_shell_html(provider)


def shell_key(provider: TileProvider | None) -> str:
    """What the persistent page depends on: the tile layer it declares (not the day)."""
    if provider is None:
        return "none"
    return json.dumps(
        [provider.key, provider.name, provider.attribution, provider.datum, provider.max_zoom]
    )


def visit_details_text(v: VisitView, tz: str) -> str:
    """Plain text (never HTML) for the details panel: names cannot inject markup."""
    r, ev = v.row, v.evidence

    def hhmm(ts: dt.datetime | None) -> str:
        return to_local(ts, tz).strftime("%H:%M") if ts is not None else "–"

    when = (
        f"{to_local(r.visit.check_in_at, tz).date().isoformat()}  "
        f"{hhmm(r.visit.check_in_at)}–{hhmm(r.visit.check_out_at)}"
    )
    status = _("Flagged") if ev.flagged else _("OK")
    pairs: list[tuple[str, str]] = [
        (_("Customer"), f"{r.customer_name} ({r.customer_tier})"),
        (_("Rep"), r.rep_name),
        (_("Date"), when),
    ]
    if r.purpose:
        pairs.append((_("Purpose"), r.purpose))
    pairs.append((_("Evidence score"), f"{ev.score} ({status})"))
    if ev.checkin_distance_m is not None:
        pairs.append((_("Check-in distance"), format_distance(ev.checkin_distance_m)))
    if ev.dwell_s is not None:
        pairs.append((_("Dwell in trace"), format_minutes(ev.dwell_s)))
    if ev.speed_jumps:
        pairs.append((_("Speed jumps"), str(ev.speed_jumps)))
    lines = [f"{k}: {val}" for k, val in pairs]
    if ev.explanation:
        lines += ["", ev.explanation]
    voice_label, photo_label, none_text = _("Voice summary"), _("Photo"), _("none")
    lines += ["", f"{voice_label}: {r.voice_summary or '–'}"]
    lines.append(f"{photo_label}: {r.photo_ref or none_text}")
    return "\n".join(lines)


class DownloadAreaDialog(QDialog):
    """Zoom range, then tile count and size, then (on OK) the download starts."""

    sig_estimate = Signal(object)

    def __init__(
        self,
        parent: QWidget,
        cache: TileCache,
        provider: TileProvider,
        bbox: BBox,
        zoom: int,
        worker: Worker,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(_("Download this area for offline"))
        self.cache, self.provider, self.bbox, self.worker = cache, provider, bbox, worker
        self.zmin = QSpinBox()
        self.zmax = QSpinBox()
        for s in (self.zmin, self.zmax):
            s.setRange(1, provider.max_zoom)
        self.zmin.setValue(max(1, zoom - 2))
        self.zmax.setValue(min(provider.max_zoom, zoom + 3))
        self.estimate_label = QLabel(_("Counting tiles…"))
        self.estimate_label.setTextFormat(Qt.TextFormat.PlainText)
        self.estimate_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(_("Download"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        area = _("{s:.3f}–{n:.3f} N, {w:.3f}–{e:.3f} E").format(
            s=bbox.south, n=bbox.north, w=bbox.west, e=bbox.east
        )
        form.addRow(_("Tile source"), QLabel(_(provider.name)))
        form.addRow(_("Area"), QLabel(area))
        form.addRow(_("Closest zoom"), self.zmin)
        form.addRow(_("Most detailed zoom"), self.zmax)
        form.addRow(self.estimate_label)
        form.addRow(self.buttons)
        self.estimate: DownloadEstimate | None = None
        self._token = 0
        if not provider.allows_bulk_download:
            self.estimate_label.setText(provider.refusal())
            self.ok_button.setEnabled(False)
            self.zmin.setEnabled(False)
            self.zmax.setEnabled(False)
            return
        self.zmin.valueChanged.connect(self._recount)
        self.zmax.valueChanged.connect(self._recount)
        self._recount()

    def zoom_range(self) -> tuple[int, int]:
        a, b = self.zmin.value(), self.zmax.value()
        return min(a, b), max(a, b)

    def _recount(self) -> None:
        self._token += 1
        token = self._token
        self.ok_button.setEnabled(False)
        self.estimate_label.setText(_("Counting tiles…"))
        zmin, zmax = self.zoom_range()
        self.worker.submit(
            estimate_area,
            self.cache,
            self.provider,
            self.bbox,
            zmin,
            zmax,
            on_result=lambda est: self._on_estimate(token, est),
        )

    def _on_estimate(self, token: int, est: DownloadEstimate) -> None:
        if token != self._token:
            return
        self.estimate = est
        self.estimate_label.setText(est.describe())
        self.ok_button.setEnabled(est.to_fetch > 0)
        self.sig_estimate.emit(est)


class FieldMapView(QWidget):
    """The screen; see the module docstring."""

    sig_map_ready = Signal(float)
    """A map finished drawing in the page; carries seconds from request to ready."""
    sig_tracks_built = Signal(int, str)
    """A request's tracks script is ready (emitted on the CPU pool; request, script)."""

    def __init__(self, ctx: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.fm: FieldMap | None = None
        self._regions: list[RegionInfo] = []
        self._reps: list[RepInfo] = []
        self._token = 0
        self._t_request = 0.0
        self.last_timing: dict[str, float] = {}
        #: shell pages already built, by shell_key (a page is rebuilt only for a new source)
        self._shells: dict[str, str] = {}
        self._shell_wanted: str | None = None
        #: the scripts of the period asked last, until sent: (token, script)
        self._pending_begin: tuple[int, str] | None = None
        self._pending_fill: tuple[int, FieldMap, list[dict[str, Any]], bool] | None = None
        #: the last period asked for must still fit the map (a redraw for data keeps it)
        self._fit_owed = False
        self.selected_visit_id: str | None = None
        self._pending_draw: tuple[int, str] | None = None
        self._pending_tracks: tuple[int, str] | None = None
        #: (token, page id) the tracks script was run on
        self._tracks_sent: tuple[int, str | None] | None = None
        #: (token, page id) the last begin script was run on; token of the last day drawn
        self._begun: tuple[int, str | None] | None = None
        self._drawn_token = 0
        #: the last token whose page said ready; column widths owed until then (see _fill_table)
        self._ready_token = 0
        self._widths_owed = False
        self._tiles: TileCache | None = None
        self._tile_worker = Worker("tiles", 1)
        self._download_state: TaskState | None = None

        # --- pickers
        self.region_combo = QComboBox()
        self.from_edit = QDateEdit()
        self.to_edit = QDateEdit()
        for e in (self.from_edit, self.to_edit):
            e.setCalendarPopup(True)
            e.setDisplayFormat("yyyy-MM-dd")
            e.setMaximumDate(_qdate(ctx.today))
        day = ctx.selection.day
        self.from_edit.setDate(_qdate(day))
        self.to_edit.setDate(_qdate(day))
        self.rep_list = QListWidget()
        self.rep_list.setMaximumHeight(150)
        self.all_reps = QCheckBox(_("All reps"))
        self.all_reps.setChecked(True)
        self.tile_combo = QComboBox()
        for key, name in TILE_SOURCES:
            self.tile_combo.addItem(_(name), key)
        self.online_check = QCheckBox(_("Fetch missing tiles while online"))

        # --- visits table + details
        self.table = DataTable(
            [
                Column("time", N_("Time")),
                Column("flag", N_("Check")),
                Column("score", N_("Score"), numeric=True),
                Column("rep", N_("Rep")),
                Column("customer", N_("Customer")),
            ],
            cpu=ctx.cpu,
            title="visits",
        )
        self.table.view.selectionModel().currentRowChanged.connect(self._on_row_changed)
        # column widths from the first rows only: measuring every visit's texts (CJK
        # shaping) on each new day was most of the UI thread's time in a rebuild
        self.table.view.horizontalHeader().setResizeContentsPrecision(40)
        self.details = QLabel(_("Click a visit on the map or in the list."))
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumHeight(160)

        # --- map + actions
        from desktop.widgets.map_view import MapView  # QtWebEngine loads when the map opens

        self.map_view = MapView()
        self.map_view.sig_visit_clicked.connect(self._on_visit_clicked)
        self.map_view.sig_ready.connect(self._on_map_ready)
        self.sig_tracks_built.connect(self._on_tracks_built, Qt.ConnectionType.QueuedConnection)
        self.map_view.sig_shell_loaded.connect(lambda _key: self._draw_pending())
        self.map_view.sig_load_failed.connect(self._on_page_failed)
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        #: results of actions (download, export, import); status keeps the map's state
        self.notice = QLabel("")
        self.notice.setTextFormat(Qt.TextFormat.PlainText)
        self.notice.setWordWrap(True)
        self.download_button = QPushButton(_("Download this area for offline…"))
        self.export_html_button = QPushButton(_("Export HTML…"))
        self.export_png_button = QPushButton(_("Export PNG…"))
        self.gpx_button = QPushButton(_("Import GPX…"))
        self.progress = ProgressPanel(compact=True)
        self.progress.sig_cancelled.connect(self._cancel_download)
        self.download_button.clicked.connect(self.ask_download)
        self.export_html_button.clicked.connect(self._ask_export_html)
        self.export_png_button.clicked.connect(self._ask_export_png)
        self.map_view.sig_png_saved.connect(self._on_png_saved)
        self.map_view.sig_png_failed.connect(self._on_png_failed)
        self.gpx_button.clicked.connect(self._ask_import_gpx)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.addRow(_("Region"), self.region_combo)
        period = QHBoxLayout()
        period.addWidget(self.from_edit)
        period.addWidget(QLabel("–"))
        period.addWidget(self.to_edit)
        form.addRow(_("Period"), period)
        form.addRow(_("Tiles"), self.tile_combo)
        form.addRow("", self.online_check)
        ll.addLayout(form)
        ll.addWidget(self.all_reps)
        ll.addWidget(self.rep_list)
        ll.addWidget(self.table, 1)
        ll.addWidget(self.details)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        actions = QHBoxLayout()
        for b in (
            self.download_button,
            self.export_html_button,
            self.export_png_button,
            self.gpx_button,
        ):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.progress)
        rl.addLayout(actions)
        rl.addWidget(self.map_view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.notice)
        rl.addLayout(bottom)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        split.setSizes([360, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split)

        self._restore_filters()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh)
        self.region_combo.currentIndexChanged.connect(self._on_region_changed)
        self.from_edit.dateChanged.connect(self._on_period_changed)
        self.to_edit.dateChanged.connect(self._on_period_changed)
        self.rep_list.itemChanged.connect(lambda _i: self._on_reps_changed())
        self.all_reps.toggled.connect(self._on_all_reps)
        self.tile_combo.currentIndexChanged.connect(self._on_tiles_changed)
        self.online_check.toggled.connect(self._on_tiles_changed)
        #: changes to the shown tables arrived while the screen was hidden
        self._stale = False
        self._data_timer = QTimer(self)
        self._data_timer.setSingleShot(True)
        self._data_timer.setInterval(DATA_REFRESH_MS)
        self._data_timer.timeout.connect(self._on_data_timer)
        ctx.db.submit(self._load_regions, on_result=self._on_regions)
        ctx.sig_data_changed.connect(self._on_data_changed)

    # ------------------------------------------------------------------ settings

    def _settings(self) -> Any:
        return getattr(self.ctx, "settings", None)

    def _restore_filters(self) -> None:
        s = self._settings()
        if s is None:
            return
        i = self.tile_combo.findData(s.screen_filter(SCREEN_ID, "tiles", ""))
        self.tile_combo.setCurrentIndex(max(i, 0))
        self.online_check.setChecked(bool(s.screen_filter(SCREEN_ID, "online", False)))

    def _save_filter(self, name: str, value: Any) -> None:
        s = self._settings()
        if s is not None:
            s.set_screen_filter(SCREEN_ID, name, value)

    def provider(self) -> TileProvider | None:
        key = self.tile_combo.currentData() or ""
        if key == "custom":
            s = self._settings()
            url = s.screen_filter(SCREEN_ID, "tile_url", "") if s is not None else ""
            url = url or getattr(self, "_custom_url", "")
            if not url:
                return None
            return custom_provider(url, attribution=_("Organisation tile server"))
        return BUILTIN.get(key)

    def tile_cache(self) -> TileCache:
        if self._tiles is None:
            self._tiles = TileCache(tile_cache_path())
        return self._tiles

    def _apply_tile_config(self) -> None:
        p = self.provider()
        self.map_view.handler.configure_tiles(
            self.tile_cache() if p is not None else None,
            [p] if p is not None else [],
            online=self.online_check.isChecked(),
        )

    def set_custom_tile_url(self, url: str) -> None:
        self._custom_url = url
        self._save_filter("tile_url", url)

    # ------------------------------------------------------------------ pickers

    def _load_regions(self, session: Any) -> list[RegionInfo]:
        return regions_in_scope(session, self.ctx.actor)

    def _on_regions(self, regions: list[RegionInfo]) -> None:
        self._regions = regions
        with QSignalBlocker(self.region_combo):
            self.region_combo.clear()
            for r in regions:
                self.region_combo.addItem(r.name, r.id)
            i = self.region_combo.findData(self.ctx.selection.region_id)
            self.region_combo.setCurrentIndex(max(i, 0))
        self.region_combo.setEnabled(len(regions) > 1)
        self._load_reps()

    def region_id(self) -> int | None:
        return self.region_combo.currentData()

    def _on_region_changed(self) -> None:
        rid = self.region_id()
        if rid is not None:
            self.ctx.selection.set(region_id=rid)
        self._load_reps()

    def _load_reps(self) -> None:
        rid = self.region_id()
        if rid is None:
            self.status.setText(_("No region in your scope."))
            return
        actor = self.ctx.actor
        self.ctx.db.submit(reps_in_scope, actor, rid, on_result=self._on_reps)

    def _on_reps(self, reps: list[RepInfo]) -> None:
        self._fill_rep_list(reps, set())
        if not reps:
            self.status.setText(_("No sales reps work in your scope here."))
            return
        self.refresh()

    def _fill_rep_list(self, reps: list[RepInfo], unticked: set[int]) -> None:
        self._reps = reps
        with QSignalBlocker(self.rep_list):
            self.rep_list.clear()
            for r in reps:
                item = QListWidgetItem(f"{r.code}  {r.name}")
                item.setData(Qt.ItemDataRole.UserRole, r.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                checked = r.id not in unticked
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                self.rep_list.addItem(item)
        with QSignalBlocker(self.all_reps):
            self.all_reps.setChecked(len(self.selected_rep_ids()) == self.rep_list.count())

    def selected_rep_ids(self) -> list[int]:
        return [
            self.rep_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.rep_list.count())
            if self.rep_list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def _on_all_reps(self, checked: bool) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        with QSignalBlocker(self.rep_list):
            for i in range(self.rep_list.count()):
                self.rep_list.item(i).setCheckState(state)
        self._debounce.start()

    def _on_reps_changed(self) -> None:
        with QSignalBlocker(self.all_reps):
            self.all_reps.setChecked(len(self.selected_rep_ids()) == self.rep_list.count())
        self._debounce.start()

    def _on_period_changed(self) -> None:
        a, b = _pydate(self.from_edit.date()), _pydate(self.to_edit.date())
        if b < a:
            with QSignalBlocker(self.to_edit):
                self.to_edit.setDate(self.from_edit.date())
        self.ctx.selection.set(day=a)
        self._debounce.start()

    def _on_tiles_changed(self) -> None:
        self._save_filter("tiles", self.tile_combo.currentData() or "")
        self._save_filter("online", self.online_check.isChecked())
        if self.tile_combo.currentData() == "custom" and self.provider() is None:
            url, ok = QInputDialog.getText(
                self,
                _("Organisation tile server"),
                _(
                    "Tile URL with {z}, {x} and {y} (e.g. https://tiles.example.com/{z}/{x}/{y}.png):"
                ),
            )
            if ok and all(p in url for p in ("{z}", "{x}", "{y}")):
                self.set_custom_tile_url(url.strip())
        self._debounce.start()

    def set_period(self, day_from: dt.date, day_to: dt.date | None = None) -> None:
        with QSignalBlocker(self.from_edit), QSignalBlocker(self.to_edit):
            self.from_edit.setDate(_qdate(day_from))
            self.to_edit.setDate(_qdate(day_to or day_from))
        self.refresh()

    # ------------------------------------------------------------------ building

    def refresh(self, *, keep_view: bool = False) -> None:
        """Query on the DB worker, prepare on the CPU pool, then draw on the kept page.

        The map page itself (tiles, boundaries, controls, drawing code) is loaded once per
        tile source and kept (:meth:`ensure_shell`, concurrently with the query); a day
        only sends its data to it (:meth:`MapView.draw`). The map then fits the period,
        unless ``keep_view`` (data arrived for what is shown): the user's centre and zoom
        and the selected visit stay, unless a period asked for is still to be fitted.
        """
        self._data_timer.stop()  # this query reads the changed rows too
        self._stale = False
        rid = self.region_id()
        if rid is None:
            return
        a, b = _pydate(self.from_edit.date()), _pydate(self.to_edit.date())
        if (b - a).days + 1 > MAX_RANGE_DAYS:
            self.status.setText(
                _("Choose at most {n} days; a longer period draws too many tracks.").format(
                    n=MAX_RANGE_DAYS
                )
            )
            return
        self._token += 1
        token = self._token
        keep_view = keep_view and not self._fit_owed
        self._fit_owed = not keep_view
        self._pending_begin = self._pending_draw = self._pending_tracks = None
        self._t_request = time.perf_counter()
        self.status.setText(_("Building the map…"))
        rep_ids = self.selected_rep_ids() if self._reps else None
        self._apply_tile_config()
        provider = self.provider()
        self.ensure_shell(provider)
        self.ctx.db.submit(
            load_day,
            rid,
            rep_ids,
            a,
            b,
            provider,
            on_result=lambda res: self._on_loaded(token, res, provider, keep_view),
            on_error=self._on_error,
        )

    def ensure_shell(self, provider: TileProvider | None) -> None:
        """Have the persistent page for ``provider`` loaded (or loading) in the map view."""
        key = shell_key(provider)
        if self.map_view.shell_key == key or self._shell_wanted == key:
            return
        self._shell_wanted = key
        html = self._shells.get(key)
        if html is not None:
            self._show_shell(key, html)
            return
        self.ctx.cpu.submit(
            build_shell,
            provider,
            on_result=lambda page: self._on_shell_built(key, page),
            on_error=self._on_shell_error,
        )

    def _on_shell_built(self, key: str, html: str) -> None:
        self._shells[key] = html
        if self._shell_wanted == key:
            self._show_shell(key, html)

    def _on_shell_error(self, exc: BaseException) -> None:
        self._shell_wanted = None  # the next request tries again
        self._on_error(exc)

    def _show_shell(self, key: str, html: str) -> None:
        self._shell_wanted = None
        self.map_view.show_shell(html, key)

    def _on_loaded(
        self,
        token: int,
        res: tuple[Any, str],
        provider: TileProvider | None,
        keep_view: bool = False,
    ) -> None:
        if token != self._token:
            return
        raw, begin_script = res
        self.last_timing = {"query_s": time.perf_counter() - self._t_request}
        self._pending_begin = (token, begin_script)
        self._draw_pending()  # the page starts while the traces are prepared
        self.ctx.cpu.submit(
            build_day,
            raw,
            provider,
            token,
            lambda script: self._tracks_built(token, script),
            keep_view,
            on_result=lambda res: self._on_built(token, res, keep_view),
            on_error=self._on_error,
        )

    def _tracks_built(self, token: int, script: str) -> None:
        """(CPU pool) Hand the tracks script to the UI thread, ahead of the day's result."""
        with contextlib.suppress(RuntimeError):  # the view was closed: nothing to draw on
            self.sig_tracks_built.emit(token, script)

    def _on_tracks_built(self, token: int, script: str) -> None:
        if token != self._token:
            return
        self._pending_tracks = (token, script)
        self._draw_pending()

    def _on_built(self, token: int, result: DayBuild, keep_view: bool = False) -> None:
        if token != self._token:
            return
        fm = result.fm
        self.fm = fm
        self.last_timing["build_s"] = result.seconds
        self.last_timing["script_chars"] = len(result.script)
        self._pending_draw = (token, result.script)
        self._draw_pending()  # first: the page draws while the table fills here
        # the table in its own turn of the event loop (keeps each UI-thread step short)
        self._pending_fill = (token, fm, result.rows, keep_view)
        QTimer.singleShot(0, self, self._fill_pending)  # (dropped if the view is deleted)

    def _fill_pending(self) -> None:
        pending, self._pending_fill = self._pending_fill, None
        if pending is None or pending[0] != self._token:
            return
        _token, fm, rows, keep_selection = pending
        self._fill_table(fm, rows)
        kept = self.selected_visit_id if keep_selection else None
        if kept is not None and fm.visit(kept) is not None:
            self._select_row(kept)
            self.details.setText(visit_details_text(fm.visit(kept), fm.raw.timezone))
        else:
            self.selected_visit_id = None
            self.details.setText(_("Click a visit on the map or in the list."))

    def _draw_pending(self) -> None:
        """Send what is ready of the period asked last, once its page is there."""
        begin, tracks, draw = self._pending_begin, self._pending_tracks, self._pending_draw
        if begin is None or begin[0] != self._token:
            return
        provider = self.provider()
        if not self.map_view.shell_loaded or self.map_view.shell_key != shell_key(provider):
            self.ensure_shell(provider)  # sent when the page has loaded (sig_shell_loaded)
            return
        page = (self._token, self.map_view.current_id)
        if self._begun != page:  # (again, if the page was replaced meanwhile)
            self._begun = page
            self.last_timing["begin_sent_s"] = time.perf_counter() - self._t_request
            self.map_view.draw(begin[1])
        if tracks is not None and tracks[0] == self._token and self._tracks_sent != page:
            self._tracks_sent = page
            self.last_timing["tracks_sent_s"] = time.perf_counter() - self._t_request
            self.map_view.draw(tracks[1])
        if draw is not None and draw[0] == self._token and self._tracks_sent == page:
            self._pending_begin = self._pending_draw = self._pending_tracks = None
            self._drawn_token = self._token
            self.last_timing["draw_sent_s"] = time.perf_counter() - self._t_request
            self.map_view.draw(draw[1])

    def _on_map_ready(self, summary: str) -> None:
        if self._drawn_token != self._token:
            return  # the previous period finished drawing; this one is not sent yet
        info = json.loads(summary) if summary else {}
        if info.get("request") != self._token:
            # a late ready of an earlier request (its drawing was sent before this one's):
            # this request's drawing is still to come
            return
        total = time.perf_counter() - self._t_request
        self._fit_owed = False
        self._fill_pending()  # (if the page was quicker than the event loop)
        self.last_timing["ready_s"] = total
        self.status.setText(
            _(
                "{tracks} tracks, {visits} visits ({flagged} flagged) · ready in {s:.1f} s · "
                "{blocked} network requests blocked"
            ).format(
                tracks=info.get("tracks", 0),
                visits=info.get("visits", 0),
                flagged=info.get("flagged", 0),
                s=total,
                blocked=self.map_view.blocked,
            )
        )
        self._ready_token = self._token
        self.sig_map_ready.emit(total)
        if self._widths_owed:
            self._fit_columns()

    def _on_page_failed(self) -> None:
        """The kept page could not be loaded or brought back after its renderer died
        (MapView forgot it): say so; the next request loads a new page."""
        self._shell_wanted = None
        self._begun = self._tracks_sent = None
        if self._widths_owed:
            self._fit_columns()
        self.status.setText(_("The map page stopped. Choose the day again to redraw it."))

    def _on_error(self, exc: BaseException) -> None:
        if self._widths_owed:
            self._fit_columns()
        self.status.setText(_("The map could not be built: {error}").format(error=str(exc)))

    def _fill_table(self, fm: FieldMap, rows: list[dict[str, Any]] | None = None) -> None:
        # rows now, column widths in a later turn of the event loop (two short UI steps):
        # while the page is drawing the day, after its ready - measuring every name takes
        # 3-17 ms, which held up the ready message (and the status line) behind it
        self.table.model.set_rows(rows if rows is not None else visit_table_rows(fm))
        if self._drawn_token == self._token and self._ready_token != self._token:
            self._widths_owed = True
        else:
            self._fit_columns()

    def _fit_columns(self) -> None:
        self._widths_owed = False
        # (the view as context: the call is dropped if the view is deleted before it runs)
        QTimer.singleShot(0, self.table.view, self.table.view.resizeColumnsToContents)

    # ------------------------------------------------------------------ selection

    def _on_visit_clicked(self, visit_id: str) -> None:
        self.select_visit(visit_id, from_map=True)

    def _on_row_changed(self, current: Any, _previous: Any) -> None:
        if not current.isValid():
            return
        row = self.table.model.row(current.row())
        if row is not None:
            self.select_visit(row["id"], from_map=False)

    def select_visit(self, visit_id: str, *, from_map: bool) -> None:
        if self.fm is None:
            return
        v = self.fm.visit(visit_id)
        if v is None:
            return
        self.selected_visit_id = visit_id
        self.details.setText(visit_details_text(v, self.fm.raw.timezone))
        if from_map:
            self._select_row(visit_id)
        else:
            self.map_view.select_visit(visit_id)

    def _select_row(self, visit_id: str) -> None:
        """Select a visit's row without acting on it (the map is not moved)."""
        model = self.table.model
        for i in range(model.rowCount()):
            r = model.row(i)
            if r is not None and r["id"] == visit_id:
                with QSignalBlocker(self.table.view.selectionModel()):
                    self.table.view.selectRow(i)
                index = model.index(i, 0)
                # after the details text has resized the table
                QTimer.singleShot(0, self.table.view, lambda ix=index: self.table.view.scrollTo(ix))
                break

    # ------------------------------------------------------------------ offline area

    def ask_download(self) -> None:
        provider = self.provider()
        if provider is None:
            QMessageBox.information(
                self,
                _("Download this area for offline"),
                _("Choose a tile source first. The boundary layer is always available offline."),
            )
            return
        self.map_view.run_js(
            "(function(){var b = window.sdMap.getBounds();"
            "return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast(), window.sdMap.getZoom()]"
            ".join(',');})()",
            lambda res: self._open_download_dialog(provider, res),
        )

    def _open_download_dialog(self, provider: TileProvider, res: Any) -> None:
        try:
            s, w, n, e, z = (float(x) for x in str(res).split(","))
        except ValueError:
            return
        self.download_dialog = DownloadAreaDialog(
            self, self.tile_cache(), provider, BBox(s, w, n, e), int(z), self._tile_worker
        )
        self.download_dialog.accepted.connect(self._start_download)
        self.download_dialog.open()

    def _start_download(self) -> None:
        dlg = self.download_dialog
        zmin, zmax = dlg.zoom_range()
        state = self.progress.new_state(_("Downloading tiles…"))
        self._download_state = state
        self.download_button.setEnabled(False)
        self._tile_worker.submit(
            prefetch_area,
            self.tile_cache(),
            dlg.provider,
            dlg.bbox,
            zmin,
            zmax,
            state,
            on_result=self._on_download_done,
            on_error=self._on_download_error,
        )

    def _cancel_download(self) -> None:
        if self._download_state is not None:
            self._download_state.cancel()

    def _on_download_done(self, res: PrefetchResult) -> None:
        self.progress.finish()
        self.download_button.setEnabled(True)
        self._download_state = None
        self.notice.setText(
            _("Downloaded {n} tiles ({mb:.1f} MB); {failed} failed.").format(
                n=res.fetched, mb=res.bytes / 1e6, failed=res.failed
            )
        )

    def _on_download_error(self, exc: BaseException) -> None:
        self.progress.finish()
        self.download_button.setEnabled(True)
        self._download_state = None
        if isinstance(exc, Cancelled):
            self.notice.setText(_("Download cancelled; the tiles already fetched are kept."))
        elif isinstance(exc, BulkDownloadForbidden | TooManyTiles):
            self.notice.setText(str(exc))
        else:
            self.notice.setText(_("The download failed: {error}").format(error=str(exc)))

    # ------------------------------------------------------------------ export / import

    def export_html(self, path: Path) -> None:
        """Standalone HTML (assets inlined, boundary layer instead of tiles) on the CPU pool."""
        fm = self.fm
        if fm is None:
            return

        def work() -> Path:
            from core.maps.assets import inline_assets
            from core.maps.field_map import build_field_map_html

            page = inline_assets(build_field_map_html(fm, None, bridge=False))
            path.write_text(page, encoding="utf-8")
            return path

        self.ctx.cpu.submit(
            work,
            on_result=lambda p: self.notice.setText(_("Saved {path}").format(path=str(p))),
            on_error=self._on_error,
        )

    def _ask_export_html(self) -> None:
        path, _sel = QFileDialog.getSaveFileName(
            self, _("Export HTML…"), "field-map.html", _("Web pages (*.html)")
        )
        if path:
            self.export_html(Path(path))

    def _ask_export_png(self) -> None:
        path, _sel = QFileDialog.getSaveFileName(
            self, _("Export PNG…"), "field-map.png", _("PNG images (*.png)")
        )
        if path:
            self.export_png(Path(path))

    def export_png(self, path: Path) -> None:
        """The map as shown, saved once the page has drawn and painted it (see MapView)."""
        self.notice.setText(_("Saving {path}…").format(path=str(path)))
        self.map_view.export_png(path)

    def _on_png_saved(self, path: str) -> None:
        self.notice.setText(_("Saved {path}").format(path=path))

    def _on_png_failed(self, path: str, failure: str) -> None:
        if failure == self.map_view.PNG_NOT_WRITTEN:
            self.notice.setText(_("Could not write {path}.").format(path=path))
        else:
            self.notice.setText(_("The PNG was not saved: the map did not finish drawing in time."))

    def _ask_import_gpx(self) -> None:
        reps = self.selected_rep_ids()
        if len(reps) != 1:
            QMessageBox.information(
                self, _("Import GPX…"), _("Tick exactly one rep to import a GPX track for.")
            )
            return
        path, _sel = QFileDialog.getOpenFileName(
            self, _("Import GPX…"), "", _("GPX tracks (*.gpx)")
        )
        if path:
            self.import_gpx(reps[0], Path(path))

    def import_gpx(self, rep_id: int, path: Path) -> None:
        """Read the file on the CPU worker, then write its points and their outbox rows in
        one DB-worker transaction; then ask for a sync."""
        actor, now = self.ctx.actor, self.ctx.now()
        self.gpx_button.setEnabled(False)  # until this file is in
        self.notice.setText(_("Importing {file}…").format(file=path.name))

        def parsed(p: ParsedGpx) -> None:
            self.ctx.db.submit(
                queue_gpx,
                rep_id,
                p,
                actor,
                now,
                on_result=self._on_gpx_done,
                on_error=self._on_gpx_error,
            )

        self.ctx.cpu.submit(
            lambda: parse_gpx(read_gpx_file(path)), on_result=parsed, on_error=self._on_gpx_error
        )

    def _on_gpx_done(self, summary: GpxImportSummary) -> None:
        self.gpx_button.setEnabled(True)
        self.notice.setText(
            _("Imported {n} track points ({skipped} already there).").format(
                n=summary.inserted, skipped=summary.skipped_existing
            )
        )
        if summary.changes:
            self.ctx.sig_data_changed.emit(summary.changes)
            engine = self.ctx.sync_engine
            if engine is not None and hasattr(engine, "poke"):
                engine.poke()
        self.refresh()

    def _on_gpx_error(self, exc: BaseException) -> None:
        self.gpx_button.setEnabled(True)
        text = str(exc) if isinstance(exc, GpxImportError) else _("The GPX file could not be read.")
        self.notice.setText(text)
        QMessageBox.warning(self, _("Import GPX…"), text)

    def _on_data_changed(self, changes: Any) -> None:
        """Redraw when a sync or an edit changed what the map shows; after a sync, also
        say which imported tracks the server refused (each once)."""
        if changes.touches("sync"):
            self.ctx.db.submit(refusals_to_tell, on_result=self._on_refused)
        if changes.touches("reps") and self.region_id() is not None:
            # a rep added, moved or removed: the list follows, keeping the user's ticks
            self.ctx.db.submit(
                reps_in_scope,
                self.ctx.actor,
                self.region_id(),
                on_result=self._on_reps_changed_by_data,
            )
        if changes.touches(*SHOWN_TABLES) and self._token > 0:
            self._data_timer.start()  # a burst of changes (a sync's pages) redraws once

    def _on_reps_changed_by_data(self, reps: list[RepInfo]) -> None:
        """The region's reps after a change of data: reps that left go, new ones come in
        ticked if every rep was shown (unticked otherwise); the user's ticks stay."""
        if reps == self._reps:  # (a renamed rep is not the same: its label changes)
            return
        before = set(self.selected_rep_ids())
        unticked = {r.id for r in self._reps} - before
        if not self.all_reps.isChecked():
            unticked |= {r.id for r in reps} - {r.id for r in self._reps}
        self._fill_rep_list(reps, unticked)
        if set(self.selected_rep_ids()) != before and self._token > 0:
            self._data_timer.start()  # (the shown reps changed: redraw with them)

    def _on_data_timer(self) -> None:
        if self.isVisible():
            self.refresh(keep_view=True)
        else:  # nobody looks: redraw when the screen is shown again
            self._stale = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.refresh(keep_view=True)

    def _on_refused(self, refused: list[RefusedImport]) -> None:
        if not refused:
            return
        names = {r.id: r.name for r in self._reps}
        by_rep: dict[int, list[RefusedImport]] = {}
        for r in refused:
            by_rep.setdefault(r.rep_id, []).append(r)
        text = "\n".join(
            _("The server refused {n} imported track points of {rep}: {reason}").format(
                n=sum(r.points for r in rs),
                rep=names.get(rep_id, f"#{rep_id}"),
                reason=rs[-1].message,
            )
            for rep_id, rs in by_rep.items()
        )
        self.notice.setText(text)
        if set(by_rep) & set(self.selected_rep_ids()):
            self.refresh(keep_view=True)  # their points were taken off this desktop again

    def closeEvent(self, event: Any) -> None:
        self._cancel_download()
        self._tile_worker.shutdown()
        if self._tiles is not None:
            self._tiles.close()
            self._tiles = None
        super().closeEvent(event)


register_screen(
    ScreenSpec(
        id=SCREEN_ID,
        title=N_("Field map"),
        factory=FieldMapView,
        roles=frozenset({"supervisor", "admin", "store_manager"}),
        order=50,
        icon="field_map",
    )
)
