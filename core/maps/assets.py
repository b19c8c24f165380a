"""Point folium at the vendored copies of its JS/CSS under ``resources/web``.

folium's ``JSCSSMixin`` classes list CDN URLs in ``default_js``/``default_css`` class
attributes. :func:`use_local_assets` assigns each class we draw with a *new* list of
``storedesk://assets/...`` URLs (never mutating the old lists: they are shared between
classes and modules). The desktop's scheme handler serves those paths from
``resources/web`` (:func:`asset_file`), and :func:`inline_assets` turns a page into one
standalone file for export (scripts, styles, fonts and images inlined as data URIs).
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

from core.resources import resource_path

SCHEME = "storedesk"
ASSET_BASE = f"{SCHEME}://assets/"

#: folium asset name -> path under resources/web (README.md there lists sources/licences).
LOCAL_JS = {
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/js/bootstrap.bundle.min.js",
    "awesome_markers": "awesome-markers/leaflet.awesome-markers.js",
    "leaflet-heat.js": "leaflet-heat/leaflet_heat.min.js",
    "markerclusterjs": "markercluster/leaflet.markercluster.js",
}
LOCAL_CSS = {
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/css/bootstrap.min.css",
    "glyphicons_css": "glyphicons/css/bootstrap-glyphicons.css",
    "awesome_markers_font_css": "fontawesome/css/all.min.css",
    "awesome_markers_css": "awesome-markers/leaflet.awesome-markers.css",
    "awesome_rotate_css": "awesome-rotate/leaflet.awesome.rotate.min.css",
    "markerclustercss": "markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "markercluster/MarkerCluster.Default.css",
}

_applied = False


def _localise(
    pairs: list[tuple[str, str]], table: dict[str, str], cls: type
) -> list[tuple[str, str]]:
    out = []
    for name, _url in pairs:
        if name not in table:
            raise RuntimeError(f"{cls.__name__} needs asset {name!r} that is not vendored")
        out.append((name, ASSET_BASE + table[name]))
    return out


def use_local_assets() -> None:
    """Make every folium class StoreDesk draws with load its assets from ``storedesk://``."""
    global _applied
    if _applied:
        return
    import folium
    from folium.plugins import HeatMap, MarkerCluster

    for cls in (folium.Map, HeatMap, MarkerCluster):
        cls.default_js = _localise(list(cls.default_js), LOCAL_JS, cls)
        cls.default_css = _localise(list(cls.default_css), LOCAL_CSS, cls)
    _applied = True


def web_root() -> Path:
    return resource_path("web")


def asset_file(rel: str) -> Path | None:
    """The vendored file for a URL path, or None (never anything outside resources/web)."""
    rel = rel.split("?", 1)[0].split("#", 1)[0].lstrip("/")
    if not rel or ".." in Path(rel).parts:
        return None
    root = web_root().resolve()
    path = (root / rel).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def mime_type(path: Path) -> str:
    ext = path.suffix.lower()
    return (
        {
            ".js": "text/javascript",
            ".css": "text/css",
            ".woff2": "font/woff2",
            ".woff": "font/woff",
            ".ttf": "font/ttf",
            ".eot": "application/vnd.ms-fontobject",
            ".svg": "image/svg+xml",
            ".png": "image/png",
            ".json": "application/json",
            ".geojson": "application/geo+json",
            ".html": "text/html",
        }.get(ext)
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


_URL_IN_CSS = re.compile(r"url\((['\"]?)([^'\")]+)\1\)")


def _data_uri(path: Path) -> str:
    return f"data:{mime_type(path)};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_css(path: Path) -> str:
    css = path.read_text(encoding="utf-8")

    def repl(m: re.Match[str]) -> str:
        ref = m.group(2)
        if ref.startswith(("data:", "#")):
            return m.group(0)
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        if not target.is_file():
            return m.group(0)
        return f'url("{_data_uri(target)}")'

    return _URL_IN_CSS.sub(repl, css)


def inline_assets(html: str) -> str:
    """A page with every ``storedesk://assets`` script/style inlined (for a standalone file)."""

    def script(m: re.Match[str]) -> str:
        f = asset_file(m.group(1))
        if f is None:
            return m.group(0)
        body = f.read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>{body}</script>"

    def style(m: re.Match[str]) -> str:
        f = asset_file(m.group(1))
        if f is None:
            return m.group(0)
        return f"<style>{_inline_css(f)}</style>"

    base = re.escape(ASSET_BASE)
    html = re.sub(rf'<script src="{base}([^"]+)"></script>', script, html)
    html = re.sub(rf'<link rel="stylesheet" href="{base}([^"]+)"\s*/?>', style, html)
    return html


def ttc_first_font(data: bytes, drop: frozenset[bytes] = frozenset({b"FFTM"})) -> bytes:
    """The first font of a TrueType collection as a standalone, 4-byte aligned .ttf.

    Chromium's font sanitizer (OTS) refuses the bundled ``wqy-microhei.ttc`` (a misaligned
    FontForge ``FFTM`` table); rebuilding font 0 with aligned tables (``FFTM`` dropped, it is
    only a build timestamp) gives a web font the map page can use as its CJK fallback.
    """
    import struct

    if data[:4] != b"ttcf":
        return data
    (offset,) = struct.unpack(">I", data[12:16])
    sfnt_version = data[offset : offset + 4]
    (num_tables,) = struct.unpack(">H", data[offset + 4 : offset + 6])
    entries = []
    for i in range(num_tables):
        rec = data[offset + 12 + 16 * i : offset + 28 + 16 * i]
        tag, checksum, toff, length = struct.unpack(">4sIII", rec)
        if tag not in drop:
            entries.append((tag, checksum, data[toff : toff + length]))
    entries.sort(key=lambda e: e[0])
    n = len(entries)
    entry_selector = max(i for i in range(16) if 2**i <= n)
    search_range = 16 * 2**entry_selector
    header = sfnt_version + struct.pack(
        ">HHHH", n, search_range, entry_selector, n * 16 - search_range
    )
    pos = 12 + 16 * n
    directory = b""
    body = b""
    for tag, checksum, table in entries:
        directory += struct.pack(">4sIII", tag, checksum, pos + len(body), len(table))
        body += table + b"\0" * (-len(table) % 4)
    return header + directory + body
