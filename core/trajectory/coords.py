"""Datum handling: stored coordinates are WGS-84; GCJ-02 only for tiles that need it.

AMap/Gaode and Tencent tiles are drawn in GCJ-02 (the obfuscated datum mandated for maps
published in mainland China); a WGS-84 point drawn on them lands 300-600 m off inside
China. Outside mainland China (and in Hong Kong, Macau, Taiwan) those providers use
WGS-84, so no shift is applied there. Tianditu (CGCS2000) and OSM-style sources match
WGS-84 at map scale. The maths is ``prcoords``'; this module only decides *when*.
"""

from __future__ import annotations

from collections.abc import Iterable

import prcoords

WGS84 = "wgs84"
GCJ02 = "gcj02"

# (south, west, north, east) areas inside prcoords' rough China box that do not use GCJ-02.
_EXCLUDED = (
    (21.8, 119.3, 25.4, 122.1),  # Taiwan
    (22.13, 113.82, 22.57, 114.45),  # Hong Kong
    (22.1, 113.52, 22.22, 113.6),  # Macau
)


def in_mainland_china(lat: float, lon: float) -> bool:
    """True where GCJ-02 applies (a coarse box test, as the GCJ providers themselves use)."""
    if not prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)):
        return False
    return not any(s <= lat <= n and w <= lon <= e for s, w, n, e in _EXCLUDED)


def to_tile_datum(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """A stored WGS-84 point in the datum of the tile source it will be drawn on."""
    if datum == GCJ02 and in_mainland_china(lat, lon):
        c = prcoords.wgs_gcj(prcoords.Coords(lat, lon), check_china=False)
        return c.lat, c.lon
    return lat, lon


def path_to_tile_datum(
    points: Iterable[tuple[float, float]], datum: str
) -> list[tuple[float, float]]:
    if datum != GCJ02:
        return list(points)
    return [to_tile_datum(lat, lon, datum) for lat, lon in points]
