"""Static map images without Qt or a browser, for the weekly PDF pack.

:func:`render_visits_png` draws a week's visits (and optionally tracks) with Pillow in
Web Mercator: on cached raster tiles when the tile cache holds every tile of the chosen
zoom for the area (never fetching: reports are built offline), otherwise on the bundled
boundary base layer. The image is plain PNG bytes reportlab can embed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from core.maps.basemap import load_basemap
from core.maps.providers import TileProvider
from core.maps.tilecache import TileCache
from core.trajectory.coords import to_tile_datum
from core.trajectory.field_day import FieldMap

TILE = 256
OK_RGB = (46, 125, 50)
FLAGGED_RGB = (211, 47, 47)


@dataclass(frozen=True)
class StaticVisit:
    lat: float
    lon: float
    flagged: bool = False


@dataclass(frozen=True)
class StaticTrack:
    colour: str  # "#rrggbb"
    points: Sequence[tuple[float, float]]


def _world_px(lat: float, lon: float, z: float) -> tuple[float, float]:
    lat = max(min(lat, 85.05112878), -85.05112878)
    scale = TILE * 2**z
    x = (lon + 180.0) / 360.0 * scale
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * scale
    return x, y


def _fit_zoom(bounds: tuple[float, float, float, float], size: tuple[int, int]) -> int:
    s, w, n, e = bounds
    for z in range(18, 0, -1):
        x0, y0 = _world_px(n, w, z)
        x1, y1 = _world_px(s, e, z)
        if (x1 - x0) <= size[0] * 0.9 and (y1 - y0) <= size[1] * 0.9:
            return z
    return 1


def _hex(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def render_visits_png(
    visits: Sequence[StaticVisit],
    *,
    tracks: Sequence[StaticTrack] = (),
    size: tuple[int, int] = (900, 600),
    tile_cache: TileCache | None = None,
    provider: TileProvider | None = None,
    bounds: tuple[float, float, float, float] | None = None,
) -> bytes:
    """PNG of visits (green, flagged red) over cached tiles or the boundary base layer.

    ``bounds`` = (south, west, north, east) WGS-84; by default the visits' and tracks'
    extent (the whole East China base layer when there is nothing to draw).
    """
    datum = provider.datum if (provider is not None and tile_cache is not None) else "wgs84"

    def proj(lat: float, lon: float) -> tuple[float, float]:
        return to_tile_datum(lat, lon, datum)

    pts = [(v.lat, v.lon) for v in visits] + [p for t in tracks for p in t.points]
    if bounds is None:
        if pts:
            lats = [p[0] for p in pts]
            lons = [p[1] for p in pts]
            pad_lat = max(0.005, (max(lats) - min(lats)) * 0.08)
            pad_lon = max(0.005, (max(lons) - min(lons)) * 0.08)
            bounds = (
                min(lats) - pad_lat,
                min(lons) - pad_lon,
                max(lats) + pad_lat,
                max(lons) + pad_lon,
            )
        else:
            bounds = (27.0, 116.3, 35.2, 122.9)
    z = _fit_zoom(bounds, size)
    s, w, n, e = bounds
    cx, cy = _world_px((s + n) / 2, (w + e) / 2, z)
    ox, oy = cx - size[0] / 2, cy - size[1] / 2

    def px(lat: float, lon: float) -> tuple[float, float]:
        la, lo = proj(lat, lon)
        x, y = _world_px(la, lo, z)
        return x - ox, y - oy

    img = Image.new("RGB", size, (223, 233, 242))
    used_tiles = False
    if tile_cache is not None and provider is not None:
        used_tiles = _paste_tiles(img, tile_cache, provider, z, ox, oy)
    draw = ImageDraw.Draw(img, "RGBA")
    if not used_tiles:
        for feat in load_basemap()["features"]:
            geom = feat["geometry"]
            polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
            for poly in polys:
                ring = [px(lat, lon) for lon, lat in poly[0]]
                if len(ring) >= 3:
                    draw.polygon(ring, fill=(243, 239, 230, 255), outline=(150, 150, 150, 255))
    for t in tracks:
        line = [px(*p) for p in t.points]
        if len(line) >= 2:
            draw.line(line, fill=(*_hex(t.colour), 230), width=3, joint="curve")
    for v in sorted(visits, key=lambda v: v.flagged):
        x, y = px(v.lat, v.lon)
        r = 7 if v.flagged else 5
        draw.ellipse(
            (x - r, y - r, x + r, y + r),
            fill=(*(FLAGGED_RGB if v.flagged else OK_RGB), 240),
            outline=(255, 255, 255, 255),
            width=2,
        )
    if used_tiles and provider is not None:
        _attribution(draw, size, provider)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _paste_tiles(
    img: Image.Image, cache: TileCache, provider: TileProvider, z: int, ox: float, oy: float
) -> bool:
    """Paste cached tiles covering the image; False (nothing pasted) if any is missing."""
    w, h = img.size
    tx0, ty0 = int(ox // TILE), int(oy // TILE)
    tx1, ty1 = int((ox + w) // TILE), int((oy + h) // TILE)
    tiles = []
    for tx in range(tx0, tx1 + 1):
        for ty in range(ty0, ty1 + 1):
            got = cache.get(provider.key, z, tx % 2**z, ty)
            if got is None:
                return False
            tiles.append((tx, ty, got[0]))
    for tx, ty, data in tiles:
        try:
            tile = Image.open(io.BytesIO(data)).convert("RGB")
        except OSError:
            return False
        img.paste(tile, (round(tx * TILE - ox), round(ty * TILE - oy)))
    return True


def _attribution(draw: ImageDraw.ImageDraw, size: tuple[int, int], provider: TileProvider) -> None:
    import re

    text = re.sub(r"<[^>]+>", "", provider.attribution).replace("&copy;", "(c)")
    text = text.encode("ascii", "ignore").decode() or provider.key
    tw = draw.textlength(text)
    draw.rectangle((size[0] - tw - 8, size[1] - 16, size[0], size[1]), fill=(255, 255, 255, 200))
    draw.text((size[0] - tw - 4, size[1] - 14), text, fill=(60, 60, 60, 255))


def render_field_map_png(
    fm: FieldMap,
    *,
    size: tuple[int, int] = (900, 600),
    tile_cache: TileCache | None = None,
    provider: TileProvider | None = None,
    with_tracks: bool = True,
) -> bytes:
    """A prepared field map (``core.trajectory.field_day``) as a static PNG: tracks in the
    reps' colours (when asked), visits green/red by evidence."""
    visits = [
        StaticVisit(v.row.visit.customer_lat, v.row.visit.customer_lon, v.evidence.flagged)
        for v in fm.visits
    ]
    tracks = [StaticTrack(t.colour, t.points) for t in fm.tracks if with_tracks and t.points]
    return render_visits_png(
        visits, tracks=tracks, size=size, tile_cache=tile_cache, provider=provider
    )
