"""The bundled vector base layer: district/city boundaries of Shanghai, Jiangsu and Zhejiang.

Source: the province maps shipped in the ``echarts@4.9.0`` npm package
(``map/json/province/{shanghai,jiangsu,zhejiang}.json``, Apache-2.0, licence and notice
in ``resources/web/basemap/``). Those files use ECharts' compact "UTF8Encoding" (zig-zag
delta-coded characters); :func:`decode_echarts_geojson` turns them into plain GeoJSON and
:func:`build_basemap` simplifies them into the one small file the app ships, so the map
stays readable with an empty tile cache. At boundary scale the data's datum shift
(< 1 km) does not matter; it is drawn as-is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.resources import resource_path

BASEMAP_FILE = "east_china.geojson"
PROVINCES = {"shanghai": "上海市", "jiangsu": "江苏省", "zhejiang": "浙江省"}


def _decode_ring(encoded: str, offset: list[int], scale: float = 1024.0) -> list[list[float]]:
    prev_x, prev_y = offset[0], offset[1]
    ring: list[list[float]] = []
    for i in range(0, len(encoded) - 1, 2):
        x = ord(encoded[i]) - 64
        y = ord(encoded[i + 1]) - 64
        x = (x >> 1) ^ (-(x & 1))
        y = (y >> 1) ^ (-(y & 1))
        x += prev_x
        y += prev_y
        prev_x, prev_y = x, y
        ring.append([x / scale, y / scale])
    return ring


def decode_echarts_geojson(data: dict[str, Any]) -> dict[str, Any]:
    """ECharts' encoded map JSON -> standard GeoJSON (a no-op on plain GeoJSON)."""
    if not data.get("UTF8Encoding"):
        return data
    scale = float(data.get("UTF8Scale", 1024))
    out = []
    for feat in data["features"]:
        geom = feat["geometry"]
        offsets = geom.get("encodeOffsets")
        if geom["type"] == "Polygon":
            coords = [
                _decode_ring(ring, offsets[i], scale) for i, ring in enumerate(geom["coordinates"])
            ]
        elif geom["type"] == "MultiPolygon":
            coords = [
                [_decode_ring(ring, offsets[p][i], scale) for i, ring in enumerate(poly)]
                for p, poly in enumerate(geom["coordinates"])
            ]
        else:
            continue
        out.append(
            {
                "type": "Feature",
                "id": feat.get("id"),
                "geometry": {"type": geom["type"], "coordinates": coords},
                "properties": {"name": feat["properties"].get("name", "")},
            }
        )
    return {"type": "FeatureCollection", "features": out}


def build_basemap(source_dir: Path, target: Path, tolerance_deg: float = 0.004) -> int:
    """Decode + simplify the three province files into ``target``; returns its size in bytes."""
    from shapely.geometry import mapping, shape

    features = []
    for key, province in PROVINCES.items():
        raw = json.loads((source_dir / f"{key}.json").read_text(encoding="utf-8"))
        for feat in decode_echarts_geojson(raw)["features"]:
            geom = shape(feat["geometry"]).simplify(tolerance_deg, preserve_topology=True)
            gj = mapping(geom)
            gj = json.loads(json.dumps(gj, default=list))  # tuples -> lists
            gj["coordinates"] = _round(gj["coordinates"])
            features.append(
                {
                    "type": "Feature",
                    "geometry": gj,
                    "properties": {"name": feat["properties"]["name"], "province": province},
                }
            )
    doc = {"type": "FeatureCollection", "features": features}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    target.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


def _round(coords: Any) -> Any:
    if coords and isinstance(coords[0], int | float):
        return [round(coords[0], 4), round(coords[1], 4)]
    return [_round(c) for c in coords]


def basemap_path() -> Path:
    return resource_path("web", "basemap", BASEMAP_FILE)


def load_basemap() -> dict[str, Any]:
    """The bundled boundaries as GeoJSON (WGS-84 lon/lat)."""
    return json.loads(basemap_path().read_text(encoding="utf-8"))


if __name__ == "__main__":  # python -m core.maps.basemap <dir with the echarts province json>
    import sys

    size = build_basemap(Path(sys.argv[1]), basemap_path())
    print(f"wrote {basemap_path()} ({size} bytes)")
