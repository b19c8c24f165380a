"""GPX import (valid 1.0/1.1, broken files refused whole), datum conversion, simplification bound."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.cache import open_cache
from core.models import GpsPoint, Region, Rep
from core.mutations import Actor
from core.trajectory.cleaning import haversine_m
from core.trajectory.coords import GCJ02, WGS84, in_mainland_china, to_tile_datum
from core.trajectory.gpx import GpxImportError, import_gpx, parse_gpx
from core.trajectory.simplify import simplify_track, simplify_tracks

GPX11 = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="31.3" lon="121.5"><name>ignored waypoint</name></wpt>
  <trk><name>上午</name>
    <trkseg>
      <trkpt lat="31.2000" lon="121.4500"><time>2026-11-26T01:00:00Z</time></trkpt>
      <trkpt lat="31.2001" lon="121.4501"><time>2026-11-26T01:00:30Z</time></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="31.2100" lon="121.4600"><time>2026-11-26T02:00:00Z</time></trkpt>
    </trkseg>
  </trk>
  <trk><name>下午</name>
    <trkseg>
      <trkpt lat="31.2200" lon="121.4700"><time>2026-11-26T06:00:00+00:00</time></trkpt>
      <trkpt lat="31.2201" lon="121.4701"><time>2026-11-26T14:00:30+08:00</time></trkpt>
    </trkseg>
  </trk>
</gpx>"""

GPX10 = """<?xml version="1.0"?>
<gpx version="1.0" creator="old device" xmlns="http://www.topografix.com/GPX/1/0">
  <trk><trkseg>
    <trkpt lat="30.2741" lon="120.1551"><time>2026-11-25T00:30:00Z</time><hdop>2</hdop></trkpt>
    <trkpt lat="30.2742" lon="120.1552"><time>2026-11-25T00:30:30Z</time></trkpt>
  </trkseg></trk>
</gpx>"""


ADMIN = Actor(user_id=1, name="admin", role="admin", store_ids=frozenset())


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "gpx.db")
    with c.session() as s:
        s.add(Region(id=1, code="SH", name="上海区"))
        s.add(Rep(id=7, region_id=1, code="R7", name="王磊", home_lat=31.2, home_lon=121.45))
    yield c
    c.close()


def _count(cache) -> int:
    with cache.session() as s:
        return s.scalar(select(func.count()).select_from(GpsPoint))


def test_parse_gpx_11_tracks_segments_and_times():
    parsed = parse_gpx(GPX11.encode())
    assert (parsed.tracks, parsed.segments, len(parsed.fixes)) == (2, 3, 5)
    assert parsed.fixes[0].ts == dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    # +08:00 local time is normalised to UTC
    assert parsed.fixes[-1].ts == dt.datetime(2026, 11, 26, 6, 0, 30, tzinfo=dt.UTC)


def test_import_gpx_10_then_reimport_is_idempotent(cache):
    with cache.session() as s:
        summary = import_gpx(s, 7, GPX10.encode(), ADMIN)
    assert (summary.points, summary.inserted) == (2, 2)
    with cache.session() as s:
        again = import_gpx(s, 7, GPX10, ADMIN)
    assert (again.inserted, again.skipped_existing) == (0, 2)
    with cache.session() as s:
        pts = s.scalars(select(GpsPoint).order_by(GpsPoint.ts)).all()
        assert [p.source for p in pts] == ["gpx", "gpx"]
        assert pts[0].accuracy_m == pytest.approx(10.0)  # hdop 2 x 5 m


BROKEN = {
    "not xml": (b"this is not xml at all", "not valid GPX"),
    "truncated": (GPX11[:400].encode(), "not valid GPX"),
    "empty": (b"   ", "empty"),
    "no time": (
        GPX11.replace("<time>2026-11-26T02:00:00Z</time>", "").encode(),
        "track 1, segment 2, point 1",
    ),
    "bad latitude": (
        GPX11.replace('lat="31.2100"', 'lat="131.2100"').encode(),
        "impossible position",
    ),
    "only waypoints": (
        b'<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        b'<wpt lat="31" lon="121"/></gpx>',
        "no track points",
    ),
    "binary": (b"\xff\xfe\x00\x01garbage", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_gpx_is_refused_and_nothing_is_imported(cache, case):
    data, message = BROKEN[case]
    with pytest.raises(GpxImportError, match=message), cache.session() as s:
        import_gpx(s, 7, data, ADMIN)
    assert _count(cache) == 0


def test_gpx_for_unknown_rep_is_refused(cache):
    with pytest.raises(GpxImportError), cache.session() as s:
        import_gpx(s, 999, GPX10, ADMIN)
    assert _count(cache) == 0


# --------------------------------------------------------------------------- coordinates


def test_gcj02_shift_applies_inside_mainland_china_only():
    shanghai = (31.2304, 121.4737)
    lat, lon = to_tile_datum(*shanghai, GCJ02)
    shift = haversine_m(*shanghai, lat, lon)
    assert 300 < shift < 700  # GCJ-02 offset in Shanghai is ~500 m
    assert to_tile_datum(*shanghai, WGS84) == shanghai  # OSM/Tianditu: never shifted
    for outside in [(48.8566, 2.3522), (22.2855, 114.1577), (25.0330, 121.5654), (35.68, 139.69)]:
        assert not in_mainland_china(*outside)
        assert to_tile_datum(*outside, GCJ02) == outside
    assert in_mainland_china(30.2741, 120.1551)  # Hangzhou


# --------------------------------------------------------------------------- simplification


def _random_walk(n: int, seed: int = 3) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    lat, lon = 31.2, 121.45
    out = []
    for _ in range(n):
        lat += rng.gauss(0, 0.0002)
        lon += rng.gauss(0, 0.0002)
        out.append((lat, lon))
    return out


def test_simplify_bounds_a_huge_trace_and_keeps_its_ends():
    pts = _random_walk(50_000)
    out = simplify_track(pts, max_points=300)
    assert 2 <= len(out) <= 300
    assert haversine_m(*out[0], *pts[0]) < 0.01
    assert haversine_m(*out[-1], *pts[-1]) < 0.01


def test_simplify_keeps_a_straight_line_as_two_points_and_short_lines_unchanged():
    line = [(31.2 + i * 1e-5, 121.45) for i in range(1000)]
    assert len(simplify_track(line, max_points=100)) == 2
    assert simplify_track([(31.2, 121.4)], max_points=10) == [(31.2, 121.4)]
    with pytest.raises(ValueError):
        simplify_track(line, max_points=1)


def test_simplify_tracks_shares_a_budget():
    tracks = [_random_walk(20_000, seed=i) for i in range(5)] + [_random_walk(3, seed=9)]
    out = simplify_tracks(tracks, total_max_points=2_000)
    assert sum(len(t) for t in out) <= 2_000 + 2 * len(tracks)
    assert all(len(t) >= 2 for t in out)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=3, max_value=5_000), budget=st.integers(min_value=2, max_value=400))
def test_simplify_bound_holds_for_any_size(n, budget):
    pts = _random_walk(n, seed=n)
    out = simplify_track(pts, max_points=budget)
    assert 2 <= len(out) <= max(budget, 2)
    assert all(math.isfinite(a) and math.isfinite(b) for a, b in out)


# --------------------------------------------------------------------------- more GPX files


def _big_gpx(n: int) -> str:
    t0 = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)
    pts = "".join(
        f'<trkpt lat="{31 + i * 1e-5:.6f}" lon="{121 + i * 1e-5:.6f}"><ele>4.5</ele>'
        f"<time>{(t0 + dt.timedelta(seconds=7 * i, microseconds=1000 * (i % 7))).isoformat()}</time>"
        f"{'<hdop>1.5</hdop>' if i % 3 == 0 else ''}</trkpt>"
        + ("</trkseg><trkseg>" if i % 1000 == 999 else "")
        for i in range(n)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        '<rte><rtept lat="1" lon="2"><time>2026-11-20T00:00:00Z</time></rtept></rte>'
        f"<trk><trkseg>{pts}</trkseg></trk></gpx>"
    )


def test_a_large_gpx_is_read_whole():
    text = _big_gpx(12_000)
    parsed = parse_gpx(text.encode())
    assert len(parsed.fixes) == 12_000
    assert (parsed.tracks, parsed.segments) == (1, 13)  # the last one empty; routes ignored
    assert [f.ts for f in parsed.fixes] == sorted(f.ts for f in parsed.fixes)
    third = parsed.fixes[3]
    assert (round(third.lat, 6), round(third.lon, 6), third.accuracy_m) == (
        31.00003,
        121.00003,
        7.5,
    )


MORE_BROKEN = {
    "other root": ("<kml><trk><trkseg/></trk></kml>", "no track points with times"),
    "unreadable time": (
        GPX10.replace("2026-11-25T00:30:30Z", "yesterday noon"),
        r"no time \(track 1, segment 1, point 2\)",
    ),
    "missing lon": (GPX10.replace(' lon="120.1552"', ""), "longitude is mandatory"),
    "nan lat": (GPX10.replace('lat="30.2742"', 'lat="NaN"'), "impossible position"),
    "trailing garbage": (GPX10 + "<gpx>", "not valid GPX"),
}


@pytest.mark.parametrize("case", sorted(MORE_BROKEN))
def test_more_broken_gpx_is_refused(case):
    text, message = MORE_BROKEN[case]
    with pytest.raises(GpxImportError, match=message):
        parse_gpx(text.encode())


def test_gpx_without_namespace_and_with_local_times():
    text = (
        '<gpx version="1.0"><trk><trkseg>'
        '<trkpt lat="31.1" lon="121.1"><time>2026-11-26T09:00:00.250+08:00</time></trkpt>'
        '<trkpt lat="31.2" lon="121.2"><time>2026-11-26T01:00:01</time><hdop>-1</hdop></trkpt>'
        "</trkseg></trk></gpx>"
    )
    fixes = parse_gpx(text).fixes
    assert [f.ts for f in fixes] == [
        dt.datetime(2026, 11, 26, 1, 0, 0, 250_000, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 26, 1, 0, 1, tzinfo=dt.UTC),
    ]
    assert [f.accuracy_m for f in fixes] == [10.0, 10.0]
