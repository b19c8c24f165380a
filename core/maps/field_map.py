"""The field map page: folium HTML for a prepared :class:`core.trajectory.field_day.FieldMap`.

Layers (each toggleable in the page's layer control): the bundled boundary base layer
(always readable, even with no tiles), optional raster tiles through
``storedesk://tiles/<provider>/{z}/{x}/{y}.png``, one coloured track per rep, stops,
recorded visits (flagged ones red and larger), unrecorded stops at customers, stores,
customers, and a heat map of the region's visits. Every text that reaches the page as
HTML is escaped with :func:`esc` (HTML *and* JS template-literal safe: folium puts popups
and tooltips inside backtick strings, where ``${...}`` would run); the kept page
(:func:`build_field_shell_html`) gets names as plain data and makes tooltips and popups
itself, escaping them with its own ``esc``, the same function. Clicking a visit calls
``bridge.visitClicked(id)`` over QWebChannel; the page announces itself with
``bridge.pageReady(json)`` once everything is drawn.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import folium
import numpy as np
from branca.element import Element, MacroElement
from folium.plugins import HeatMap
from jinja2 import Template

from core.i18n import _
from core.maps.assets import SCHEME, use_local_assets
from core.maps.basemap import load_basemap
from core.maps.providers import TileProvider
from core.resources import CJK_FONT_FILE
from core.timeutil import to_local
from core.timeutil import tz as time_zone
from core.trajectory.arrays import TrackPoints
from core.trajectory.coords import WGS84, to_tile_datum
from core.trajectory.evidence import format_distance, format_minutes
from core.trajectory.field_day import (
    REP_COLOURS,
    FieldDayRaw,
    FieldMap,
    PreparedTracks,
    VisitView,
)

FLAGGED_COLOUR = "#d32f2f"
OK_COLOUR = "#2e7d32"
UNRECORDED_COLOUR = "#ff8f00"
LEGEND_REPS = 8
STORE_ICON_HTML = '<div class="sd-store"><i class="fa-solid fa-store"></i></div>'
FONT_STACK = (
    '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", '
    '"Droid Sans Fallback", "SD CJK Fallback", sans-serif'
)


def esc(text: object) -> str:
    """Escape for HTML and for the JS template literals folium wraps popups/tooltips in."""
    return _esc(str(text))


@functools.lru_cache(maxsize=8192)
def _esc(text: str) -> str:  # names, tiers and labels repeat across a day's markers
    return (
        html.escape(text, quote=True)
        .replace("`", "&#96;")
        .replace("$", "&#36;")
        .replace("\\", "&#92;")
    )


def js_json(value: Any) -> str:
    """JSON safe to embed inside a <script> element."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class _Bridge(MacroElement):
    """Wires clicks to Python and announces readiness (rendered after every layer)."""

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  var groups = [{{ this.groups|join(", ") }}];
  var visits = {};
  groups.forEach(function (g) {
    g.eachLayer(function (l) { if (l.options && l.options.visitId) visits[l.options.visitId] = l; });
  });
  window.sdMap = map;
  window.sdVisitLayers = visits;
  window.sdSelectVisit = function (id) {
    var l = visits[id];
    if (!l) return false;
    if (!map.hasLayer(l)) return false;
    map.panTo(l.getLatLng());
    l.openPopup();
    return true;
  };
  function wire(bridge) {
    groups.forEach(function (g) {
      g.on("click", function (e) {
        var l = e.propagatedFrom || e.layer || e.sourceTarget;
        if (l && l.options && l.options.visitId) bridge.visitClicked(l.options.visitId);
      });
    });
    window.sdReady = true;
    bridge.pageReady({{ this.summary }});
  }
  if (typeof QWebChannel !== "undefined" && typeof qt !== "undefined" && qt.webChannelTransport) {
    new QWebChannel(qt.webChannelTransport, function (ch) {
      window.sdBridge = ch.objects.bridge;
      wire(ch.objects.bridge);
    });
  } else {
    wire({ visitClicked: function () {}, pageReady: function () {} });
  }
})();
{% endmacro %}
"""
    )

    def __init__(self, groups: list[str], summary: dict[str, Any]) -> None:
        super().__init__()
        self._name = "SdBridge"
        self.groups = groups
        self.summary = js_json(json.dumps(summary))


class _PointLayer(MacroElement):
    """Many circle markers from one JSON array (folium objects cost ~1 ms each to render).

    Each point is ``[lat, lon, options, tooltip_html, popup_html]``; the texts are already
    escaped with :func:`esc`, the options are plain Leaflet path options (``visitId`` too).
    """

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
  var g = {{ this.group }};
  {{ this.data }}.forEach(function (p) {
    var m = L.circleMarker([p[0], p[1]], p[2]);
    if (p[3]) m.bindTooltip(p[3]);
    if (p[4]) m.bindPopup(p[4], { maxWidth: 360 });
    m.addTo(g);
  });
})();
{% endmacro %}
"""
    )

    def __init__(self, group: folium.FeatureGroup, points: list[list[Any]]) -> None:
        super().__init__()
        self._name = "SdPoints"
        self.group = group.get_name()
        self.data = js_json(points)


def _style(radius: float, color: str, fill: str, weight: float, opacity: float) -> dict[str, Any]:
    return {
        "radius": radius,
        "color": color,
        "weight": weight,
        "fill": True,
        "fillColor": fill,
        "fillOpacity": opacity,
    }


def _hhmm(ts: Any, tz: str) -> str:
    if ts is None:
        return "–"
    local = to_local(ts, tz)
    return f"{local.hour:02d}:{local.minute:02d}"  # (strftime imports per call under Qt)


def visit_popup_html(v: VisitView, tz: str) -> str:
    ev = v.evidence
    rows = [
        (_("Customer"), f"{v.row.customer_name} ({v.row.customer_tier})"),
        (_("Rep"), v.row.rep_name),
        (
            _("Time"),
            f"{_hhmm(v.row.visit.check_in_at, tz)}–{_hhmm(v.row.visit.check_out_at, tz)}",
        ),
        (_("Evidence score"), str(ev.score)),
    ]
    if ev.checkin_distance_m is not None:
        rows.append((_("Check-in distance"), format_distance(ev.checkin_distance_m)))
    if ev.dwell_s is not None:
        rows.append((_("Dwell in trace"), format_minutes(ev.dwell_s)))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(val)}</td></tr>" for k, val in rows)
    expl = ev.explanation
    cls = "sd-flag" if ev.flagged else "sd-ok"
    note = f'<p class="{cls}">{esc(expl)}</p>' if expl else ""
    return f'<div class="sd-popup"><table>{body}</table>{note}</div>'


@dataclass
class _DayLayers:
    """What a day draws, in the tile datum, every text already escaped with :func:`esc`."""

    customers: list[list[Any]]  # [lat, lon, style, tooltip, popup]
    stores: list[tuple[float, float, str]]  # lat, lon, tooltip
    #: points (a list of (lat, lon), or an (n, 2) array), colour, tooltip
    tracks: list[tuple[Any, str, str]]
    stops: list[list[Any]]
    visits: list[list[Any]]
    heat: list[tuple[float, float]]
    bounds: list[tuple[float, float]] | None  # [sw, ne]
    legend: str
    summary: dict[str, Any]


def _track_points(t: Any) -> Any:
    """A track's points as an (n, 2) array when the track has them as arrays (cheaper)."""
    if t.lat is not None and t.lon is not None:
        return np.column_stack((t.lat, t.lon))
    return t.points


def _static_layers(
    raw: FieldDayRaw, datum: str
) -> tuple[list[list[Any]], list[tuple[float, float, str]], list[tuple[float, float]]]:
    """Customers not visited in the period, stores and the heat points: known from the query."""

    def pt(lat: float, lon: float) -> tuple[float, float]:
        return to_tile_datum(lat, lon, datum)

    visited = {v.visit.customer_id for v in raw.visits}
    cust_style = _style(3, "#607d8b", "#607d8b", 1, 0.6)
    cust_points = [
        [*pt(c.lat, c.lon), cust_style, esc(f"{c.name} ({c.tier})"), ""]
        for c in raw.customers
        if c.id not in visited
    ]
    stores = [(*pt(st.lat, st.lon), esc(f"{st.code} {st.name}")) for st in raw.stores]
    heat = [pt(*p) for p in raw.heat] if datum != WGS84 else list(raw.heat)
    return cust_points, stores, heat


def _day_layers(
    fm: FieldMap, datum: str, *, static: bool = True, tracks: bool = True
) -> _DayLayers:
    """Every layer of the page; without ``static``, customers, stores and heat are empty,
    without ``tracks`` the tracks and the bounds."""
    tz = fm.raw.timezone

    def pt(lat: float, lon: float) -> tuple[float, float]:
        return to_tile_datum(lat, lon, datum)

    cust_points, stores, heat = _static_layers(fm.raw, datum) if static else ([], [], [])
    track_layers = [
        (
            _track_points(t) if datum == WGS84 else [pt(*p) for p in t.points],
            t.colour,
            esc(t.rep.name),
        )
        for t in fm.tracks
        if tracks and len(t.points) >= 2
    ]

    stop_points: list[list[Any]] = []
    for t in fm.tracks:
        style = _style(5, t.colour, "#ffffff", 2, 1.0)
        for sm in t.stops:
            s = sm.stop
            label = _("Stop {start}–{end} ({minutes})").format(
                start=_hhmm(s.start, tz), end=_hhmm(s.end, tz), minutes=format_minutes(s.dwell_s)
            )
            stop_points.append([*pt(s.lat, s.lon), style, esc(f"{t.rep.name} · {label}"), ""])
    names = {c.id: c.name for c in fm.raw.customers}
    rep_names = {t.rep.id: t.rep.name for t in fm.tracks}
    unrec_style = _style(7, UNRECORDED_COLOUR, "#ffffff", 3, 1.0)
    for rep_id, sm in fm.unrecorded:
        text = _("{rep} stopped {minutes} at {customer} but recorded no visit").format(
            rep=rep_names.get(rep_id, ""),
            minutes=format_minutes(sm.stop.dwell_s),
            customer=names.get(sm.customer_id or -1, "?"),
        )
        stop_points.append([*pt(sm.stop.lat, sm.stop.lon), unrec_style, esc(text), ""])

    visit_points: list[list[Any]] = []
    for v in sorted(fm.visits, key=lambda v: v.evidence.flagged):  # flagged drawn on top
        flagged = v.evidence.flagged
        style = _style(
            11 if flagged else 8, "#ffffff", FLAGGED_COLOUR if flagged else OK_COLOUR, 2, 0.95
        )
        style["visitId"] = v.id  # what the bridge reads on click
        visit_points.append(
            [
                *pt(v.row.visit.customer_lat, v.row.visit.customer_lon),
                style,
                esc(f"{v.row.customer_name} · {v.row.rep_name}"),
                visit_popup_html(v, tz),
            ]
        )

    bounds = fm.bounds() if tracks else None
    return _DayLayers(
        customers=cust_points,
        stores=stores,
        tracks=track_layers,
        stops=stop_points,
        visits=visit_points,
        heat=heat,
        bounds=[pt(*bounds[0]), pt(*bounds[1])] if bounds is not None else None,
        legend=_legend(fm),
        summary=_summary(fm),
    )


def _legend(fm: FieldMap) -> str:
    """The legend's HTML (region, period, counts, symbols, the first reps' colours)."""
    drawn = [t for t in fm.tracks if t.points]
    legend_rows = "".join(
        f'<div><span class="sd-sw" style="background:{t.colour}"></span>{esc(t.rep.name)}</div>'
        for t in drawn[:LEGEND_REPS]
    )
    if len(drawn) > LEGEND_REPS:
        more_text = _("and {n} more").format(n=len(drawn) - LEGEND_REPS)
        legend_rows += f"<div>{esc(more_text)}</div>"
    counts = _("{n} visits, {f} flagged").format(n=len(fm.visits), f=fm.flagged)
    t_visit, t_flagged, t_unrec = _("Visit"), _("Flagged"), _("Unrecorded stop")
    return (
        f"<b>{esc(fm.raw.region_name)}</b> "
        f"{esc(_period(fm))}<div>{esc(counts)}</div>"
        f'<div><span class="sd-dot" style="background:{OK_COLOUR}"></span>{esc(t_visit)} '
        f'<span class="sd-dot" style="background:{FLAGGED_COLOUR}"></span>{esc(t_flagged)} '
        f'<span class="sd-dot sd-ring" style="border-color:{UNRECORDED_COLOUR}"></span>'
        f"{esc(t_unrec)}</div>{legend_rows}"
    )


def _summary(fm: FieldMap) -> dict[str, Any]:
    """What the page's ready message reports."""
    return {
        "tracks": sum(1 for t in fm.tracks if len(t.points) >= 2),
        "visits": len(fm.visits),
        "flagged": fm.flagged,
    }


def _base_map(provider: TileProvider | None) -> folium.Map:
    """Tiles (if any) and the boundary layer: what every page of the field map starts from."""
    m = folium.Map(
        location=None,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_start=11,
        max_zoom=provider.max_zoom if provider else 18,
    )
    if provider is not None:
        folium.TileLayer(
            tiles=f"{SCHEME}://tiles/{provider.key}/{{z}}/{{x}}/{{y}}.png",
            attr=provider.attribution,
            name=esc(_(provider.name)),
            max_zoom=provider.max_zoom,
            overlay=False,
            control=True,
        ).add_to(m)

    folium.GeoJson(
        load_basemap(),
        name=esc(_("Boundaries")),
        style_function=lambda _f: {
            "color": "#8d8d8d",
            "weight": 1,
            "fillColor": "#f3efe6",
            "fillOpacity": 0.35 if provider is not None else 0.9,
        },
        highlight_function=None,
        smooth_factor=1.0,
        interactive=False,
        control=True,
    ).add_to(m)
    return m


def build_field_map_html(
    fm: FieldMap,
    provider: TileProvider | None = None,
    *,
    bridge: bool = True,
    show_heat: bool = False,
    show_customers: bool = True,
) -> str:
    """The complete page (assets as ``storedesk://assets`` URLs; see core.maps.assets).

    Used for export (and by tests); the desktop view loads :func:`build_field_shell_html`
    once and sends each day with :func:`field_day_script`.
    """
    use_local_assets()
    datum = provider.datum if provider is not None else WGS84
    lay = _day_layers(fm, datum)
    m = _base_map(provider)

    heat = folium.FeatureGroup(name=esc(_("Visit heat (4 weeks)")), show=show_heat)
    if lay.heat:
        HeatMap(lay.heat, radius=14, blur=18, min_opacity=0.3).add_to(heat)
    heat.add_to(m)

    customers = folium.FeatureGroup(name=esc(_("Customers")), show=show_customers)
    customers.add_to(m)
    m.add_child(_PointLayer(customers, lay.customers))

    stores = folium.FeatureGroup(name=esc(_("Stores")))
    for lat, lon, tip in lay.stores:
        # a small square badge: big pins would hide the visits around a store
        folium.Marker(
            (lat, lon),
            icon=folium.DivIcon(
                html=STORE_ICON_HTML,
                icon_size=(18, 18),
                icon_anchor=(9, 9),
                class_name="sd-store-icon",
            ),
            tooltip=tip,
        ).add_to(stores)
    stores.add_to(m)

    tracks = folium.FeatureGroup(name=esc(_("Tracks")))
    for points, colour, tip in lay.tracks:
        folium.PolyLine(
            points, color=colour, weight=4, opacity=0.9, tooltip=tip, smooth_factor=1.0
        ).add_to(tracks)
    tracks.add_to(m)

    stops = folium.FeatureGroup(name=esc(_("Stops")))
    stops.add_to(m)
    m.add_child(_PointLayer(stops, lay.stops))

    visits = folium.FeatureGroup(name=esc(_("Visits")))
    visits.add_to(m)
    m.add_child(_PointLayer(visits, lay.visits))

    folium.LayerControl(collapsed=True).add_to(m)
    if lay.bounds is not None:
        m.fit_bounds(lay.bounds, padding=(24, 24))

    root = m.get_root()
    root.header.add_child(Element(f"<style>{_css()}</style>"))
    if bridge:
        root.header.add_child(Element('<script src="qrc:///qtwebchannel/qwebchannel.js"></script>'))
    root.html.add_child(Element(f'<div class="sd-legend">{lay.legend}</div>'))
    m.add_child(_Bridge([visits.get_name(), stops.get_name()], lay.summary))
    return root.render()


class _Shell(MacroElement):
    """The persistent page's drawing code: ``window.sdDraw(day)`` replaces the day's layers.

    A period arrives as ``sdBegin`` (:func:`field_static_script`: customers, stores, heat),
    optionally ``sdTracks`` (:func:`field_tracks_script`: view and tracks, sent while the
    visits are still judged) and ``sdDraw`` (:func:`field_day_script`). Tracks, the heat
    points and the customers travel as base64 little-endian int32 microdegrees (lat, lon
    interleaved), stops and visits as the compact rows of :func:`field_day_payload`, with
    the style as an index into ``day.styles``.

    Customers, stops, unrecorded stops and visits are drawn as one canvas layer per set
    (``Points`` in the script: the points as arrays, painted on the map's canvas exactly as
    circle markers are, hit-tested for hover and click), inside the layer control's groups.
    ``window.sdVisitLayers`` maps a visit's id to its place in the visits' layer
    (``getLatLng()``); ``window.sdSelectVisit(id)`` pans to it and opens its popup.

    Texts: what arrives as HTML (store and track tooltips, the legend) was escaped in
    Python with :func:`esc`; the tooltips and popups of customers, stops and visits are
    made here when first shown (hover, click, ``sdSelectVisit``) from plain data, and every
    text in them goes through this page's ``esc`` — the same escaping as :func:`esc`, so the
    HTML is the same as the exported page's (:func:`visit_popup_html`, :func:`_day_layers`).
    When everything is drawn the page calls ``bridge.pageReady(summary)``, as the full page
    does; the summary names the request it answers (``request``), when one was given.
    """

    _template = Template(
        """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  var G = {{ this.groups }};
  var visits = {};
  var legend = document.getElementById("sd-legend");
  var storeIcon = L.divIcon({html: {{ this.store_icon }}, iconSize: [18, 18],
                             iconAnchor: [9, 9], className: "sd-store-icon"});
  window.sdMap = map;
  window.sdVisitLayers = visits;
  window.sdSelectVisit = function (id) {
    var v = visits[id];
    if (!v) return false;
    if (!map.hasLayer(v.layer)) return false;
    // (made before the pan starts: the popup's auto-pan stops the pan midway)
    var popup = v.layer._popupFor(v.i);
    map.panTo(v.getLatLng());
    v.layer.sdOpenPopup(v.i, popup);
    return true;
  };
  function latlngs(b64) {
    var s = atob(b64), n = s.length, bytes = new Uint8Array(n);
    for (var i = 0; i < n; i++) bytes[i] = s.charCodeAt(i);
    var a = new Int32Array(bytes.buffer), out = new Array(a.length / 2);
    for (var j = 0; j < out.length; j++) out[j] = [a[2 * j] / 1e6, a[2 * j + 1] / 1e6];
    return out;
  }
  function coords(b64) {  // latlngs' microdegrees as they are (lat, lon interleaved)
    var s = atob(b64), n = s.length, bytes = new Uint8Array(n);
    for (var i = 0; i < n; i++) bytes[i] = s.charCodeAt(i);
    return new Int32Array(bytes.buffer);
  }
  var bridge = { visitClicked: function () {}, pageReady: function () {} };
  // Texts made on the page: escaped as core.maps.field_map.esc does (HTML, and the
  // characters folium's template literals would read); fmt fills the translated
  // templates as Python's str.format does ("{name}", "{{", "}}").
  var ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
             "`": "&#96;", "$": "&#36;", "\\\\": "&#92;"};
  function esc(s) {
    return String(s).replace(/[&<>"'`$\\\\]/g, function (c) { return ESC[c]; });
  }
  window.sdEsc = esc;
  function fmt(t, o) {
    return t.replace(/\\{\\{|\\}\\}|\\{(\\w+)\\}/g, function (m, k) {
      return k === undefined ? m.charAt(0) : String(o[k]);
    });
  }
  var clocks = {};
  function hhmm(d, rel) {  // a time (seconds from d.t0) as HH:MM in the day's time zone
    if (rel === null || rel === undefined) return "\u2013";
    var ms = (d.t0 + rel) * 1000, c = clocks[d.tz];
    if (c === undefined) {
      try {
        c = new Intl.DateTimeFormat("en-GB", {timeZone: d.tz, hour: "2-digit",
                                              minute: "2-digit", hourCycle: "h23"});
      } catch (e) { c = null; }
      clocks[d.tz] = c;
    }
    var h, m;
    if (c) {
      c.formatToParts(ms).forEach(function (p) {
        if (p.type === "hour") h = p.value;
        else if (p.type === "minute") m = p.value;
      });
    } else {  // (an unknown zone: the offset at the start of the period)
      var t = new Date(ms + d.tzOffset * 1000);
      h = ("0" + t.getUTCHours()).slice(-2);
      m = ("0" + t.getUTCMinutes()).slice(-2);
    }
    return h + ":" + m;
  }
  function minutes(d, n) { return fmt(d.labels.minutes, {n: n}); }
  function tipOf(l, i) {  // the tooltip of point i of a Points layer
    var p = l.rowAt(i), d = l.sdDay;
    switch (l.sdKind) {
      case "customer": return esc(d.names[p] + " (" + d.tiers[p] + ")");
      case "stop": return esc(d.reps[p[1]] + " \u00b7 " + fmt(d.labels.stop, {
        start: hhmm(d, p[2]), end: hhmm(d, p[3]), minutes: minutes(d, p[4])}));
      case "unrecorded": return esc(fmt(d.labels.unrecorded, {
        rep: d.reps[p[1]], minutes: minutes(d, p[2]), customer: p[3]}));
      case "visit": return esc(p[2] + " \u00b7 " + d.reps[p[4]]);
    }
    return "";
  }
  function visitPopup(d, p) {  // the HTML of core.maps.field_map.visit_popup_html
    var w = d.labels, rows = [
      [w.customer, p[2] + " (" + p[3] + ")"],
      [w.rep, d.reps[p[4]]],
      [w.time, hhmm(d, p[5]) + "\u2013" + hhmm(d, p[6])],
      [w.score, String(p[7])]
    ];
    if (p[8] !== null) rows.push([w.distance, p[8]]);
    if (p[9] !== null) rows.push([w.dwell, minutes(d, p[9])]);
    var body = rows.map(function (r) {
      return "<tr><th>" + esc(r[0]) + "</th><td>" + esc(r[1]) + "</td></tr>";
    }).join("");
    var note = p[10] ? '<p class="' + (p[11] ? "sd-flag" : "sd-ok") + '">' + esc(p[10]) + "</p>" : "";
    return '<div class="sd-popup"><table>' + body + "</table>" + note + "</div>";
  }
  window.sdPopupHtml = function (id) {
    var v = visits[id];
    return v ? v.layer.sdPopupHtml(v.i) : null;
  };
  function VisitRef(layer, i) { this.layer = layer; this.i = i; }  // (window.sdVisitLayers)
  VisitRef.prototype.getLatLng = function () { return this.layer.latLngAt(this.i); };
  // A point set drawn as ONE layer on the map's canvas renderer (the one the circle
  // markers used, so the order with boundaries, tracks and the other sets is the same),
  // not one circle marker per point: adding, removing and projecting ~1,650 markers was
  // most of a day's drawing. Each point is painted as Leaflet paints a circle marker
  // (rounded pixel position and radius, fill then stroke, in the rows' order: overlapping
  // points look the same), the canvas state set once per run of points of one style. (One
  // path per style, one fill and one stroke, was barely faster here and drew every ring
  // over every fill where points overlap.) The renderer redraws it on move, zoom and
  // resize, and asks it what is under the mouse (_containsPoint: the topmost point within
  // its radius and half its stroke, as for a circle marker); the point hit gets its
  // tooltip (made when first shown) and, for a visit, a click opens its popup and tells
  // Python. kind names the rows' texts (tipOf).
  var D2R = Math.PI / 180, MERC = L.Projection.SphericalMercator;
  var TF = L.CRS.EPSG3857.transformation;
  var Points = L.Path.extend({
    initialize: function (kind, b64, rows, styles, styleOf, day) {
      var a = coords(b64), n = a.length / 2, max = MERC.MAX_LATITUDE, i, lat, sin;
      this.sdKind = kind;
      this.sdDay = day;
      this._rows = rows;
      this._styles = styles;
      this._lat = new Float64Array(n);
      this._lng = new Float64Array(n);
      this._mx = new Float64Array(n);  // spherical mercator metres, as Leaflet projects
      this._my = new Float64Array(n);
      this._x = new Float64Array(n);  // layer pixels (rounded) for the current zoom
      this._y = new Float64Array(n);
      this._st = new Uint16Array(n);
      var weight = 0;
      for (i = 0; i < n; i++) {
        lat = this._lat[i] = a[2 * i] / 1e6;
        this._lng[i] = a[2 * i + 1] / 1e6;
        sin = Math.sin(Math.max(Math.min(max, lat), -max) * D2R);
        this._mx[i] = MERC.R * this._lng[i] * D2R;
        this._my[i] = MERC.R * Math.log((1 + sin) / (1 - sin)) / 2;
        this._st[i] = styleOf(i);
      }
      styles.forEach(function (s) { weight = Math.max(weight, s.weight); });
      L.setOptions(this, {weight: weight});  // (the renderer's redraw padding)
      this._hit = -1;
      this._tipAt = -1;
      this.on("mouseover mousemove", this._hover, this);
      this.on("mouseout", this._out, this);
      this.on("click", this._click, this);
    },
    count: function () { return this._lat.length; },
    latLngAt: function (i) { return L.latLng(this._lat[i], this._lng[i]); },
    rowAt: function (i) { return this._rows ? this._rows[i] : i; },
    onRemove: function (map) {
      if (this._tip) map.closeTooltip(this._tip);
      if (this._popup && this._popup._sdLayer === this) map.closePopup(this._popup);
      this._tipAt = -1;
      L.Path.prototype.onRemove.call(this, map);
    },
    _project: function () {
      var map = this._map, n = this._lat.length, i, r, w;
      var o = map.getPixelOrigin(), k = map.options.crs.scale(map.getZoom());
      var same = map.options.crs === L.CRS.EPSG3857, p;
      var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (i = 0; i < n; i++) {
        if (same) {
          this._x[i] = Math.round(k * (TF._a * this._mx[i] + TF._b)) - o.x;
          this._y[i] = Math.round(k * (TF._c * this._my[i] + TF._d)) - o.y;
        } else {
          p = map.latLngToLayerPoint([this._lat[i], this._lng[i]]);
          this._x[i] = p.x;
          this._y[i] = p.y;
        }
        x0 = Math.min(x0, this._x[i]); x1 = Math.max(x1, this._x[i]);
        y0 = Math.min(y0, this._y[i]); y1 = Math.max(y1, this._y[i]);
      }
      r = 0; w = 0;
      this._styles.forEach(function (s) { r = Math.max(r, s.radius); w = Math.max(w, s.weight); });
      this._pxBounds = n ? L.bounds([x0 - r - w, y0 - r - w], [x1 + r + w, y1 + r + w]) : null;
    },
    _update: function () { if (this._map) this._updatePath(); },
    _empty: function () { return !this._pxBounds; },
    _updatePath: function () {
      var rd = this._renderer;
      if (!rd._drawing || !this._pxBounds) return;
      var ctx = rd._ctx, b = rd._bounds, n = this._lat.length, i = 0, j, s, r, x, y;
      var fill, stroke, fa, sa, pad, k;
      if (ctx.setLineDash) ctx.setLineDash([]);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      while (i < n) {  // a run of points with the same style
        s = this._styles[this._st[i]];
        r = Math.max(Math.round(s.radius), 1);
        pad = r + s.weight;
        fill = !!s.fill;
        stroke = s.stroke !== false && s.weight !== 0;
        fa = s.fillOpacity === undefined ? 0.2 : s.fillOpacity;
        sa = s.opacity === undefined ? 1 : s.opacity;
        ctx.fillStyle = s.fillColor || s.color;
        ctx.strokeStyle = s.color;
        ctx.lineWidth = s.weight;
        for (j = i; j < n && this._st[j] === this._st[i]; j++);
        for (k = i; k < j; k++) {
          x = this._x[k]; y = this._y[k];
          if (x + pad < b.min.x || x - pad > b.max.x) continue;  // (off the canvas)
          if (y + pad < b.min.y || y - pad > b.max.y) continue;
          ctx.beginPath();
          ctx.arc(x, y, r, 0, Math.PI * 2, false);
          if (fill) { ctx.globalAlpha = fa; ctx.fill("evenodd"); }
          if (stroke) { ctx.globalAlpha = sa; ctx.stroke(); }
        }
        i = j;
      }
    },
    _containsPoint: function (p) {  // the topmost point under p (kept in _hit)
      var n = this._lat.length, tol = this._renderer.options.tolerance || 0, i, s, d, dx, dy;
      this._hit = -1;
      for (i = n - 1; i >= 0; i--) {
        s = this._styles[this._st[i]];
        d = s.radius + (s.stroke !== false ? s.weight / 2 : 0) + tol;
        dx = p.x - this._x[i]; dy = p.y - this._y[i];
        if (dx * dx + dy * dy <= d * d) { this._hit = i; return true; }
      }
      return false;
    },
    _hover: function () {
      if (this._hit !== this._tipAt) this.sdShowTip(this._hit);
    },
    _out: function () { this.sdShowTip(-1); },
    _click: function () {
      if (this._hit >= 0 && this.sdKind === "visit") {
        var id = this._rows[this._hit][1];
        this.sdOpenPopup(this._hit);
        bridge.visitClicked(id);
      }
    },
    // the tooltip of point i (-1: none), as a hover shows it
    sdShowTip: function (i) {
      if (!this._map) return null;
      this._tipAt = i;
      if (i < 0) {
        if (this._tip) this._map.closeTooltip(this._tip);
        return null;
      }
      if (!this._tip) this._tip = L.tooltip();
      this._tip.setContent(tipOf(this, i)).setLatLng(this.latLngAt(i));
      if (!this._map.hasLayer(this._tip)) this._map.openTooltip(this._tip);
      return this._tip;
    },
    sdPopupHtml: function (i) { return visitPopup(this.sdDay, this._rows[i]); },
    sdPopup: function () { return this._popup || null; },
    _popupFor: function (i) {  // (the one popup of this layer, made when first needed)
      if (!this._popup) this._popup = L.popup({maxWidth: 360});
      this._popup._sdLayer = this;
      return this._popup.setContent(this.sdPopupHtml(i)).setLatLng(this.latLngAt(i));
    },
    sdOpenPopup: function (i, popup) {
      this._map.openPopup(popup || this._popupFor(i));
      return this._popup;
    }
  });
  // A period is drawn in two steps: sdBegin (from the query: clears the last period,
  // draws customers, stores, heat) then sdDraw (tracks, stops, visits, view, legend).
  // A group is filled while off the map (filling or clearing a group that is on a canvas
  // map redraws per layer); the user's choice of shown layers is kept. The customers are
  // back on the map before the traces arrive: moving the view to the new day's bounds at
  // the same zoom is only a pan for them, not a new projection.
  var shown = null;
  var STATIC = ["heat", "customers", "stores"], DAY = ["tracks", "stops", "visits"];
  function offMap(keys) {
    keys.forEach(function (k) {
      if (map.hasLayer(G[k])) map.removeLayer(G[k]);
      G[k].clearLayers();
    });
  }
  function onMap(keys) {
    keys.forEach(function (k) { if (shown[k]) map.addLayer(G[k]); });
  }
  function begin(s) {
    map.closePopup();
    if (shown === null) {
      shown = {};
      Object.keys(G).forEach(function (k) { shown[k] = map.hasLayer(G[k]); });
    }
    offMap(STATIC.concat(DAY));
    Object.keys(visits).forEach(function (k) { delete visits[k]; });
    if (s.heat) {
      L.heatLayer(latlngs(s.heat), {blur: 18, maxZoom: 18, minOpacity: 0.3, radius: 14})
        .addTo(G.heat);
    }
    if (s.customers) {
      G.customers.addLayer(new Points("customer", s.customers, null, [s.customerStyle],
                                      function () { return 0; }, s));
    }
    s.stores.forEach(function (p) {
      L.marker([p[0], p[1]], {icon: storeIcon}).bindTooltip(p[2], {sticky: true})
        .addTo(G.stores);
    });
    onMap(STATIC);
  }
  // The tracks may come first (sdTracks: the tracks' layers, made while the visits are
  // still being judged); sdDraw then brings stops, visits and legend (tracks null), sets
  // the view and puts the day's layers on the map. Neither the tracks nor the new view
  // are shown before: a new zoom re-projects every layer and the page then paints, work
  // that competes with the judging for the CPU and delays the day's drawing.
  // A redraw because data arrived (keepView) leaves the view where the user put it; a
  // page that has drawn nothing yet (new, or back after a discard) still fits the day.
  var view = null, drawn = false;
  function tracks(t) {
    if (shown === null) begin({heat: "", customers: "", stores: []});
    offMap(DAY);
    Object.keys(visits).forEach(function (k) { delete visits[k]; });
    view = t.keepView && drawn ? null : t.bounds;
    t.tracks.forEach(function (p) {
      L.polyline(latlngs(p[0]), {color: p[1], weight: 4, opacity: 0.9, smoothFactor: 1.0})
        .bindTooltip(p[2], {sticky: true}).addTo(G.tracks);
    });
  }
  function draw(d, bridge) {
    var i;
    if (d.static) begin(d.static);
    if (d.tracks) tracks(d);
    else offMap(["stops", "visits"]);  // (the tracks group is off the map since sdTracks)
    Object.keys(visits).forEach(function (k) { delete visits[k]; });
    if (view) map.fitBounds(view, {padding: [24, 24], animate: false});
    view = null;
    // (a row's first field is its style; flagged visits come last: drawn on top)
    function points(g, kind, at, rows) {
      var l = new Points(kind, at, rows, d.styles, function (i) { return rows[i][0]; }, d);
      if (rows.length) g.addLayer(l);
      return l;
    }
    points(G.stops, "stop", d.stopsAt, d.stops);
    points(G.stops, "unrecorded", d.unrecordedAt, d.unrecorded);
    var vl = points(G.visits, "visit", d.visitsAt, d.visits);
    for (i = 0; i < d.visits.length; i++) visits[d.visits[i][1]] = new VisitRef(vl, i);
    onMap(DAY);
    shown = null;
    drawn = true;
    legend.innerHTML = d.legend;
    legend.style.display = "";
    window.sdReady = true;
    bridge.pageReady(JSON.stringify(d.summary));
  }
  var channel = new Promise(function (resolve) {
    if (typeof QWebChannel !== "undefined" && typeof qt !== "undefined" && qt.webChannelTransport) {
      new QWebChannel(qt.webChannelTransport, function (ch) {
        bridge = ch.objects.bridge;
        window.sdBridge = bridge;
        resolve(bridge);
      });
    } else {
      resolve({ visitClicked: function () {}, pageReady: function () {} });
    }
  });
  window.sdBegin = function (s) {
    window.sdReady = false;
    channel.then(function () { begin(s); });
  };
  window.sdTracks = function (t) {
    window.sdReady = false;
    channel.then(function () { tracks(t); });
  };
  window.sdDraw = function (d) {
    window.sdReady = false;
    channel.then(function (bridge) { draw(d, bridge); });
  };
})();
{% endmacro %}
"""
    )

    def __init__(self, groups: dict[str, str]) -> None:
        super().__init__()
        self._name = "SdShell"
        self.groups = "{" + ", ".join(f"{k}: {v}" for k, v in groups.items()) + "}"
        self.store_icon = js_json(STORE_ICON_HTML)


def build_field_shell_html(
    provider: TileProvider | None = None, *, show_heat: bool = False, show_customers: bool = True
) -> str:
    """The field map page without a day: loaded once per view (and tile source) and kept.

    Same layers, controls, styles and bridge as :func:`build_field_map_html`, all empty;
    each day is then drawn by ``window.sdDraw`` (:func:`field_day_script`), so asking for a
    day costs only the day's data, not a new page (folium render, boundary layer, page load).
    """
    use_local_assets()
    m = _base_map(provider)
    heat = folium.FeatureGroup(name=esc(_("Visit heat (4 weeks)")), show=show_heat)
    heat.add_to(m)
    # the heat plugin's script (in the body: after Leaflet's, which folium puts in the head)
    for _name, url in HeatMap.default_js:
        m.get_root().html.add_child(
            Element(f'<script src="{html.escape(url, quote=True)}"></script>')
        )
    groups = {"heat": heat}
    for key, name, show in (
        ("customers", _("Customers"), show_customers),
        ("stores", _("Stores"), True),
        ("tracks", _("Tracks"), True),
        ("stops", _("Stops"), True),
        ("visits", _("Visits"), True),
    ):
        groups[key] = folium.FeatureGroup(name=esc(name), show=show)
        groups[key].add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    # China's east, until the first day is drawn (fitBounds then)
    m.fit_bounds([(22.0, 108.0), (35.0, 123.0)])
    root = m.get_root()
    root.header.add_child(Element(f"<style>{_css()}</style>"))
    root.header.add_child(Element('<script src="qrc:///qtwebchannel/qwebchannel.js"></script>'))
    root.html.add_child(
        Element('<div class="sd-legend" id="sd-legend" style="display:none"></div>')
    )
    m.add_child(_Shell({k: g.get_name() for k, g in groups.items()}))
    return root.render()


def _b64_latlngs(points: Any) -> str:
    arr = np.rint(np.asarray(points, dtype=np.float64).reshape(-1) * 1e6).astype("<i4")
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _b64_pairs(pairs: Any) -> str:
    """:func:`_b64_latlngs` of (lat, lon) tuples (no per-tuple numpy work) or an array."""
    if isinstance(pairs, np.ndarray):
        return _b64_latlngs(pairs)
    flat = np.fromiter(itertools.chain.from_iterable(pairs), np.float64, 2 * len(pairs))
    return _b64_latlngs(flat)


def _in_datum(datum: str) -> Any:
    """(lat, lon) -> the point as drawn on tiles of ``datum`` (rounded when shifted)."""
    if datum == WGS84:
        return lambda lat, lon: (lat, lon)

    def shifted(lat: float, lon: float) -> tuple[float, float]:
        a, b = to_tile_datum(lat, lon, datum)
        return round(a, 7), round(b, 7)

    return shifted


def _heat_points(heat: Any) -> Any:
    """The heat points as an (n, 2) array when they come as arrays (:class:`TrackPoints`):
    the same floats as its tuples, so the same base64, without a tuple per visit."""
    if isinstance(heat, TrackPoints):
        return np.column_stack((heat.lat, heat.lon))
    return heat


def _shifted(points: Any, pt: Any) -> list[tuple[float, float]]:
    """``[pt(*p) for p in points]``, each distinct point shifted once (a customer visited
    n times is n equal heat points)."""
    done: dict[tuple[float, float], tuple[float, float]] = {}
    out = []
    for p in points:
        q = done.get(p)
        if q is None:
            q = done[p] = pt(*p)
        out.append(q)
    return out


def field_static_payload(raw: FieldDayRaw, provider: TileProvider | None = None) -> dict[str, Any]:
    """What a period draws that the query alone decides (for ``window.sdBegin``).

    Customers not visited in the period travel as base64 microdegrees (see :class:`_Shell`)
    with their names and tiers as plain text: the page makes (and escapes) a customer's
    tooltip when it is first shown. Stores come with their tooltips, escaped here.
    """
    datum = provider.datum if provider is not None else WGS84
    pt = _in_datum(datum)
    visited = {v.visit.customer_id for v in raw.visits}
    customers = [c for c in raw.customers if c.id not in visited]
    heat: Any = _heat_points(raw.heat) if datum == WGS84 else _shifted(raw.heat, pt)
    return {
        "customers": _b64_pairs([pt(c.lat, c.lon) for c in customers]) if customers else "",
        "names": [c.name for c in customers],
        "tiers": [c.tier for c in customers],
        "customerStyle": _style(3, "#607d8b", "#607d8b", 1, 0.6),
        "stores": [[*pt(st.lat, st.lon), esc(f"{st.code} {st.name}")] for st in raw.stores],
        "heat": _b64_pairs(heat) if len(heat) else "",
    }


def _call(function: str, payload: dict[str, Any]) -> str:
    """A script calling the page's ``window.<function>`` with ``payload``.

    Run with ``runJavaScript``, never put in an HTML ``<script>`` (that is
    :func:`js_json`'s job): JSON is a JavaScript expression (ES2019 allows U+2028/U+2029
    in strings), so no character needs more than JSON's escaping; compact separators.
    """
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"window.{function}({data});"


def field_static_script(raw: FieldDayRaw, provider: TileProvider | None = None) -> str:
    """Starts drawing a period on the kept page (clears the last one, draws customers,
    stores and heat) while the trace is still being prepared; :func:`field_day_script`
    with ``static=False`` completes it.

    :func:`_call`'s text, the heat spliced in as it is: the last key, base64 (no
    character JSON escapes), so its JSON is the text in quotes — without the encoder's
    scan of ~70 kB for characters to escape."""
    payload = field_static_payload(raw, provider)
    heat = payload.pop("heat")
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f'window.sdBegin({data[:-1]},"heat":"{heat}"}});'


def field_tracks_payload(
    raw: FieldDayRaw,
    prepared: PreparedTracks,
    provider: TileProvider | None = None,
    *,
    keep_view: bool = False,
) -> dict[str, Any]:
    """A period's view and tracks for ``window.sdTracks`` (before the visits are judged).

    The same tracks and bounds :func:`field_day_payload` carries (then sent without them).
    With ``keep_view`` a page that already shows a day keeps its centre and zoom (a
    redraw because data arrived must not move the map under the user).
    """
    datum = provider.datum if provider is not None else WGS84
    tracks = []
    for k, rep in enumerate(raw.reps):
        lat, lon = prepared.simplified[k]
        if len(lat) < 2:
            continue
        pts = (
            np.column_stack((lat, lon))
            if datum == WGS84
            else [
                to_tile_datum(a, b, datum) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)
            ]
        )
        tracks.append([_b64_latlngs(pts), REP_COLOURS[k % len(REP_COLOURS)], esc(rep.name)])
    bounds = prepared.bounds(raw)
    return {
        "tracks": tracks,
        "bounds": (
            [list(to_tile_datum(*bounds[0], datum)), list(to_tile_datum(*bounds[1], datum))]
            if bounds is not None
            else None
        ),
        "keepView": keep_view,
    }


def field_tracks_script(
    raw: FieldDayRaw,
    prepared: PreparedTracks,
    provider: TileProvider | None = None,
    *,
    keep_view: bool = False,
) -> str:
    """Draws a period's tracks (and sets the view) on the kept page, ahead of its visits."""
    return _call("sdTracks", field_tracks_payload(raw, prepared, provider, keep_view=keep_view))


def _labels() -> dict[str, str]:
    """The translated words and templates the page builds tooltips and popups from (the
    same as :func:`visit_popup_html` and :func:`_day_layers` use)."""
    return {
        "customer": _("Customer"),
        "rep": _("Rep"),
        "time": _("Time"),
        "score": _("Evidence score"),
        "distance": _("Check-in distance"),
        "dwell": _("Dwell in trace"),
        "minutes": _("{n} min"),
        "stop": _("Stop {start}–{end} ({minutes})"),
        "unrecorded": _("{rep} stopped {minutes} at {customer} but recorded no visit"),
    }


def field_day_payload(
    fm: FieldMap,
    provider: TileProvider | None = None,
    *,
    static: bool = True,
    tracks: bool = True,
    request: int | None = None,
) -> dict[str, Any]:
    """One day for ``window.sdDraw`` (see :class:`_Shell`), as plain JSON-able data.

    With ``static`` the payload carries :func:`field_static_payload` too (one message
    draws everything); without, ``window.sdBegin`` must have drawn that part first.
    Without ``tracks``, ``window.sdTracks`` (:func:`field_tracks_script`) has drawn the
    tracks and set the view. ``request`` comes back in the page's ready summary, so the
    asker can tell the ready of its request from a late one of an earlier request.

    Stops and visits are compact rows of plain data (names as they are, times as seconds
    from ``t0``, minutes as numbers, distances formatted); the page makes their tooltips
    and popups when first shown, from these rows and the translated ``labels``, escaping
    every text as :func:`esc` does — the same HTML :func:`visit_popup_html` and
    :func:`_day_layers` make for the exported page. Point styles are shared by index.

    * stop: ``[style, rep, start, end, minutes]``
    * unrecorded stop: ``[style, rep, minutes, customer]``
    * visit: ``[style, id, customer, tier, rep, check-in | null, check-out | null,
      score, distance text | null, dwell minutes | null, explanation, flagged 0/1]``

    (``rep`` indexes ``reps``, the names); their positions are in ``stopsAt``,
    ``unrecordedAt`` and ``visitsAt`` (base64 microdegrees, see :class:`_Shell`).
    """
    datum = provider.datum if provider is not None else WGS84
    pt = _in_datum(datum)
    zone = time_zone(fm.raw.timezone)
    start = dt.datetime.combine(fm.raw.day_from, dt.time(0), tzinfo=zone)
    t0 = math.floor(start.timestamp())
    styles: list[dict[str, Any]] = []
    style_of: dict[tuple[Any, ...], int] = {}

    def style(*key: Any) -> int:
        if key not in style_of:
            style_of[key] = len(styles)
            styles.append(_style(*key))
        return style_of[key]

    reps: list[str] = []
    rep_of: dict[str, int] = {}

    def rep(name: str) -> int:
        if name not in rep_of:
            rep_of[name] = len(reps)
            reps.append(name)
        return rep_of[name]

    stops: list[list[Any]] = []
    stops_at: list[tuple[float, float]] = []
    for t in fm.tracks:
        if not t.stops:
            continue
        s_style, s_rep = style(5, t.colour, "#ffffff", 2, 1.0), rep(t.rep.name)
        for sm in t.stops:
            s = sm.stop
            stops_at.append(pt(s.lat, s.lon))
            # (int() is floor here: the times are after 1970; minutes rounded as
            # format_minutes rounds them)
            stops.append(
                [
                    s_style,
                    s_rep,
                    int(s.start.timestamp()) - t0,
                    int(s.end.timestamp()) - t0,
                    round(s.dwell_s / 60),
                ]
            )
    names = {c.id: c.name for c in fm.raw.customers} if fm.unrecorded else {}
    rep_names = {t.rep.id: t.rep.name for t in fm.tracks}
    u_style = style(7, UNRECORDED_COLOUR, "#ffffff", 3, 1.0)
    unrecorded = [
        [
            u_style,
            rep(rep_names.get(rep_id, "")),
            round(sm.stop.dwell_s / 60),
            names.get(sm.customer_id or -1, "?"),
        ]
        for rep_id, sm in fm.unrecorded
    ]
    ok_style = style(8, "#ffffff", OK_COLOUR, 2, 0.95)
    flag_style = style(11, "#ffffff", FLAGGED_COLOUR, 2, 0.95)
    visits: list[list[Any]] = []
    visits_at: list[tuple[float, float]] = []
    for v in sorted(fm.visits, key=lambda v: v.evidence.flagged):  # flagged drawn on top
        r, ev = v.row, v.evidence
        rv = r.visit
        visits_at.append(pt(rv.customer_lat, rv.customer_lon))
        visits.append(
            [
                flag_style if ev.flagged else ok_style,
                v.id,
                r.customer_name,
                r.customer_tier,
                rep(r.rep_name),
                None if rv.check_in_at is None else int(rv.check_in_at.timestamp()) - t0,
                None if rv.check_out_at is None else int(rv.check_out_at.timestamp()) - t0,
                ev.score,
                None if ev.checkin_distance_m is None else format_distance(ev.checkin_distance_m),
                None if ev.dwell_s is None else round(ev.dwell_s / 60),
                ev.explanation,
                1 if ev.flagged else 0,
            ]
        )
    track_rows = None
    bounds = None
    if tracks:
        track_rows = [
            [
                _b64_latlngs(
                    _track_points(t)
                    if datum == WGS84
                    else [to_tile_datum(a, b, datum) for a, b in t.points]
                ),
                t.colour,
                esc(t.rep.name),
            ]
            for t in fm.tracks
            if len(t.points) >= 2
        ]
        b = fm.bounds()
        if b is not None:
            bounds = [list(to_tile_datum(*b[0], datum)), list(to_tile_datum(*b[1], datum))]
    summary = _summary(fm)
    return {
        "static": field_static_payload(fm.raw, provider) if static else None,
        "stops": stops,
        "stopsAt": _b64_pairs(stops_at),
        "unrecorded": unrecorded,
        "unrecordedAt": _b64_pairs([pt(sm.stop.lat, sm.stop.lon) for _r, sm in fm.unrecorded]),
        "visits": visits,
        "visitsAt": _b64_pairs(visits_at),
        "styles": styles,
        "reps": reps,
        "labels": _labels(),
        "tz": zone.key,
        "tzOffset": round(start.utcoffset().total_seconds()),  # type: ignore[union-attr]
        "t0": t0,
        "tracks": track_rows,
        "bounds": bounds,
        "legend": _legend(fm),
        "summary": summary if request is None else {**summary, "request": request},
    }


def field_day_script(
    fm: FieldMap,
    provider: TileProvider | None = None,
    *,
    static: bool = True,
    tracks: bool = True,
    request: int | None = None,
) -> str:
    """The JavaScript that draws one day on the page of :func:`build_field_shell_html`."""
    payload = field_day_payload(fm, provider, static=static, tracks=tracks, request=request)
    return _call("sdDraw", payload)


def _period(fm: FieldMap) -> str:
    if fm.raw.day_from == fm.raw.day_to:
        return fm.raw.day_from.isoformat()
    return f"{fm.raw.day_from.isoformat()} – {fm.raw.day_to.isoformat()}"


def _css() -> str:
    return (
        "@font-face{font-family:'SD CJK Fallback';"
        f"src:url('{SCHEME}://fonts/{CJK_FONT_FILE}');}}"
        f"html,body,.leaflet-container,.leaflet-tooltip,.leaflet-popup-content{{font-family:{FONT_STACK};}}"
        ".leaflet-container{background:#dfe9f2;}"
        ".sd-store{width:18px;height:18px;border-radius:3px;background:#0d47a1;color:#fff;"
        "font-size:10px;line-height:18px;text-align:center;box-shadow:0 0 0 1px #fff;}"
        ".sd-legend{position:absolute;right:10px;bottom:24px;z-index:1000;background:rgba(255,255,255,.92);"
        "padding:6px 9px;border-radius:4px;font-size:12px;line-height:18px;box-shadow:0 1px 4px rgba(0,0,0,.3);"
        "max-width:280px;}"
        ".sd-sw{display:inline-block;width:18px;height:4px;margin-right:6px;vertical-align:middle;}"
        ".sd-dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin:0 4px 0 6px;"
        "vertical-align:middle;}"
        ".sd-ring{background:#fff;border:2px solid;width:10px;height:10px;}"
        ".sd-popup table{font-size:12px;} .sd-popup th{padding-right:8px;color:#555;font-weight:normal;}"
        ".sd-flag{color:#b71c1c;margin:6px 0 0;font-size:12px;} .sd-ok{color:#1b5e20;margin:6px 0 0;font-size:12px;}"
    )
