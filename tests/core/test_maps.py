"""Map page building: local assets only, escaping, field day preparation on a seeded cache."""

from __future__ import annotations

import re

import numpy as np
import pytest
from trajectory_synth import XSS_NAME, seed_field_day

from core.cache import open_cache
from core.maps.assets import ASSET_BASE, asset_file, inline_assets
from core.maps.basemap import decode_echarts_geojson, load_basemap
from core.maps.field_map import build_field_map_html, esc, js_json
from core.maps.providers import GAODE, OSM
from core.trajectory.field_day import load_field_day, prepare_field_map


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    cache = open_cache(tmp_path_factory.mktemp("fm") / "fm.db")
    with cache.session() as s:
        ids = seed_field_day(s)
    with cache.session() as s:
        raw = load_field_day(s, 1, None, ids["day"])
    yield prepare_field_map(raw), ids
    cache.close()


def test_field_day_prepared_with_known_answers(field):
    fm, _ids = field
    assert [t.rep.code for t in fm.tracks] == ["R001", "R002", "R003"]
    assert all(len(t.points) >= 2 for t in fm.tracks)
    by_id = {v.id: v for v in fm.visits}
    assert set(by_id) == {"v-good-1", "v-good-2", "v-xss"}
    assert not by_id["v-good-1"].evidence.flagged
    assert by_id["v-good-1"].stop_index is not None
    xss = by_id["v-xss"].evidence
    assert xss.flagged and "2.0 km" in xss.explanation
    # rep 3 stopped 25 min at customer 14 and recorded nothing
    assert [(rep, sm.customer_id) for rep, sm in fm.unrecorded] == [(3, 14)]
    assert fm.flagged == 1
    assert len(fm.raw.heat) == 3


def _asset_urls(page: str) -> list[str]:
    """URLs the page *loads* (scripts, images, stylesheets), not links a user may follow."""
    return re.findall(r'src="([^"]+)"', page) + re.findall(r'<link[^>]*href="([^"]+)"', page)


def test_page_loads_no_asset_from_the_network_and_every_asset_is_vendored(field):
    fm, _ = field
    page = build_field_map_html(fm, OSM)
    urls = _asset_urls(page)
    assert urls, "no assets at all?"
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), url
    local = [u for u in urls if u.startswith(ASSET_BASE)]
    assert len(local) >= 10
    for u in local:
        assert asset_file(u[len(ASSET_BASE) :]) is not None, u
    # tiles come through the app's scheme, never straight from the provider
    assert "storedesk://tiles/osm/{z}/{x}/{y}.png" in page
    assert "tile.openstreetmap.org/{z}" not in page
    assert '"visitId": "v-xss"' in page  # what the click bridge reads


def test_all_text_is_escaped(field):
    fm, _ = field
    page = build_field_map_html(fm, None)
    assert XSS_NAME not in page
    assert "<script>window.sdPwned" not in page
    assert "${window.sdPwned" not in page
    assert js_json(esc(XSS_NAME))[1:-1] in page  # escaped text, inside the layer's JSON
    assert esc("${x}") == "&#36;{x}"


def test_gcj_provider_shifts_drawn_points(field):
    fm, _ = field
    wgs = build_field_map_html(fm, OSM)
    gcj = build_field_map_html(fm, GAODE)
    first = fm.tracks[0].points[0]
    assert f"{first[0]}, {first[1]}" in wgs or f"[{first[0]}, {first[1]}]" in wgs
    assert f"[{first[0]}, {first[1]}]" not in gcj


def test_standalone_export_inlines_every_asset(field):
    fm, _ = field
    page = inline_assets(build_field_map_html(fm, None, bridge=False))
    assert ASSET_BASE not in page
    assert "leaflet" in page and "data:font/woff2;base64," in page
    assert not [u for u in _asset_urls(page) if u.startswith(("http:", "https:"))]


def test_asset_file_never_leaves_resources_web():
    assert asset_file("leaflet/leaflet.js") is not None
    assert asset_file("../fonts/DroidSansFallbackFull.ttf") is None
    assert asset_file("/etc/passwd") is None
    assert asset_file("leaflet/../../i18n/zh_CN/field_map.po") is None


def test_basemap_decodes_and_covers_the_three_provinces():
    # one ring: "@@" is the start point itself, then +1/+1 steps (zig-zag 2 -> +1)
    doc = {
        "UTF8Encoding": True,
        "features": [
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": ["@@BBBB"],
                    "encodeOffsets": [[1024, 2048]],
                },
                "properties": {"name": "x"},
            }
        ],
    }
    ring = decode_echarts_geojson(doc)["features"][0]["geometry"]["coordinates"][0]
    assert ring == [[1.0, 2.0], [1 + 1 / 1024, 2 + 1 / 1024], [1 + 2 / 1024, 2 + 2 / 1024]]
    base = load_basemap()
    provinces = {f["properties"]["province"] for f in base["features"]}
    assert provinces == {"上海市", "江苏省", "浙江省"}
    names = {f["properties"]["name"] for f in base["features"]}
    assert {"黄浦区", "南京市", "杭州市"} <= names


def test_static_png_of_a_field_map(field):
    import io

    from PIL import Image

    from core.maps.static_map import render_field_map_png

    fm, _ids = field
    png = render_field_map_png(fm, size=(480, 320))
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.size == (480, 320)
    arr = np.asarray(img, dtype=int)

    def near(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(arr - np.array(rgb)).max(axis=2) <= 20).sum())

    assert near((211, 47, 47)) > 40  # the flagged visit
    assert near((46, 125, 50)) > 40  # the good ones
    assert near((0x7B, 0x1F, 0xA2)) > 40  # rep 1's track


def test_ttc_first_font_is_an_aligned_sfnt():
    import struct

    from core.maps.assets import ttc_first_font
    from core.resources import cjk_font_path

    raw = cjk_font_path().read_bytes()
    ttf = ttc_first_font(raw)
    assert raw[:4] == b"ttcf" and ttf[:4] in (b"\x00\x01\x00\x00", b"true")
    (n,) = struct.unpack(">H", ttf[4:6])
    tags = []
    for i in range(n):
        tag, _sum, off, length = struct.unpack(">4sIII", ttf[12 + 16 * i : 28 + 16 * i])
        assert off % 4 == 0 and off + length <= len(ttf)
        tags.append(tag)
    assert {b"glyf", b"cmap", b"head", b"loca"} <= set(tags) and b"FFTM" not in tags
    assert ttc_first_font(ttf) == ttf  # a plain font passes through


@pytest.mark.parametrize("provider", [None, GAODE])
def test_tracks_sent_first_are_the_days_tracks(field, provider):
    """sdTracks (ahead of the visits) + sdDraw without tracks carry what one sdDraw does."""
    from core.maps.field_map import field_day_payload, field_tracks_payload
    from core.trajectory.field_day import prepare_tracks

    fm, _ids = field
    whole = field_day_payload(fm, provider, static=False, request=7)
    first = field_tracks_payload(fm.raw, prepare_tracks(fm.raw), provider)
    rest = field_day_payload(fm, provider, static=False, tracks=False, request=7)
    assert first["tracks"] == whole["tracks"] and len(first["tracks"]) == 3
    assert first["bounds"] == whole["bounds"] is not None
    assert rest["tracks"] is None and rest["bounds"] is None
    assert {k: v for k, v in rest.items() if k not in ("tracks", "bounds")} == {
        k: v for k, v in whole.items() if k not in ("tracks", "bounds")
    }
    assert rest["summary"] == {"tracks": 3, "visits": 3, "flagged": fm.flagged, "request": 7}


@pytest.mark.parametrize("provider", [None, GAODE])
def test_kept_page_scripts_carry_plain_data(field, provider):
    """The scripts for the kept page are calls with JSON (read back exactly); names travel
    as plain data (the page escapes them when it makes a tooltip or popup, see
    tests/desktop/test_field_map_view.py), not as ready-made HTML; styles are shared."""
    import json

    from core.maps.field_map import (
        _call,
        field_day_payload,
        field_day_script,
        field_static_payload,
        field_static_script,
    )

    fm, _ids = field
    day = field_day_script(fm, provider, static=False, tracks=False, request=3)
    assert day.startswith("window.sdDraw(") and day.endswith(");")
    payload = json.loads(day[len("window.sdDraw(") : -2])
    assert payload == json.loads(
        json.dumps(field_day_payload(fm, provider, static=False, tracks=False, request=3))
    )
    begin = field_static_script(fm.raw, provider)
    assert json.loads(begin[len("window.sdBegin(") : -2]) == json.loads(
        json.dumps(field_static_payload(fm.raw, provider))
    )
    # the heat spliced in as text: the very bytes _call makes of the whole payload
    assert fm.raw.heat and begin == _call("sdBegin", field_static_payload(fm.raw, provider))
    rows = json.dumps([payload[k] for k in ("stops", "unrecorded", "visits")])
    assert "<div" not in rows and "<tr>" not in rows and "&lt;" not in rows  # no HTML
    visits = {row[1]: row for row in payload["visits"]}
    assert set(visits) == {"v-good-1", "v-good-2", "v-xss"}
    assert visits["v-xss"][2] == XSS_NAME and visits["v-xss"][11] == 1
    assert payload["reps"][visits["v-xss"][4]] == "李娜"
    assert len(payload["stops"]) == sum(len(t.stops) for t in fm.tracks)
    assert [row[3] for row in payload["unrecorded"]] == ["${window.sdPwned=1}"]
    assert len(payload["styles"]) == len({json.dumps(s) for s in payload["styles"]})
