"""The local tile cache (SQLite) and "download this area for offline".

Tiles live in their own SQLite file (binary blobs have no place in the synced domain
cache, and the tile file can be deleted at any time). The desktop's scheme handler reads
tiles with :meth:`TileCache.get`; while online it fills the cache with what the user
views (:func:`fetch_tile`). :func:`prefetch_area` is the explicit offline download: a
plain function with a :class:`core.tasks.TaskState` for progress and cancel, which
refuses providers whose usage policy forbids bulk download and shows the tile count and
size before anything is fetched (:func:`estimate_area`). Cancelling keeps the tiles
already fetched: they are valid on their own and the next attempt skips them.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.i18n import _
from core.maps.providers import USER_AGENT, TileProvider
from core.tasks import TaskState

#: Average tile size used before any tile of a provider is cached (raster street map).
DEFAULT_TILE_BYTES = 18_000
#: One prefetch is capped: beyond this an area is a planet, not a sales territory.
MAX_PREFETCH_TILES = 30_000


class BulkDownloadForbidden(Exception):
    """The provider's usage policy forbids area download; ``str(e)`` says why (translated)."""


class TooManyTiles(Exception):
    """The area/zoom range asks for more tiles than one download may fetch."""


@dataclass(frozen=True)
class BBox:
    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True)
class DownloadEstimate:
    tiles: int
    cached: int
    to_fetch: int
    est_bytes: int

    def describe(self) -> str:
        return _("{tiles} tiles ({cached} already cached), about {mb:.1f} MB to download").format(
            tiles=self.tiles, cached=self.cached, mb=self.est_bytes / 1e6
        )


@dataclass(frozen=True)
class PrefetchResult:
    fetched: int
    skipped: int
    failed: int
    bytes: int


def lonlat_to_tile(lat: float, lon: float, z: int) -> tuple[int, int]:
    """Web-Mercator tile containing a point (standard XYZ / slippy map numbering)."""
    lat = max(min(lat, 85.05112878), -85.05112878)
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tiles_in_bbox(bbox: BBox, zmin: int, zmax: int) -> Iterator[tuple[int, int, int]]:
    for z in range(zmin, zmax + 1):
        x0, y0 = lonlat_to_tile(bbox.north, bbox.west, z)
        x1, y1 = lonlat_to_tile(bbox.south, bbox.east, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                yield z, x, y


def count_tiles(bbox: BBox, zmin: int, zmax: int) -> int:
    total = 0
    for z in range(zmin, zmax + 1):
        x0, y0 = lonlat_to_tile(bbox.north, bbox.west, z)
        x1, y1 = lonlat_to_tile(bbox.south, bbox.east, z)
        total += (x1 - x0 + 1) * (y1 - y0 + 1)
    return total


class TileCache:
    """get/put of tiles by (provider, z, x, y); safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS tiles (
                provider TEXT NOT NULL, z INTEGER NOT NULL, x INTEGER NOT NULL,
                y INTEGER NOT NULL, data BLOB NOT NULL, content_type TEXT NOT NULL,
                fetched_at TEXT NOT NULL, PRIMARY KEY (provider, z, x, y))"""
        )
        self._db.commit()

    def get(self, provider: str, z: int, x: int, y: int) -> tuple[bytes, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data, content_type FROM tiles WHERE provider=? AND z=? AND x=? AND y=?",
                (provider, z, x, y),
            ).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def has(self, provider: str, z: int, x: int, y: int) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM tiles WHERE provider=? AND z=? AND x=? AND y=?",
                    (provider, z, x, y),
                ).fetchone()
                is not None
            )

    def put(
        self, provider: str, z: int, x: int, y: int, data: bytes, content_type: str = "image/png"
    ) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                (provider, z, x, y, data, content_type, now),
            )
            self._db.commit()

    def count(self, provider: str | None = None) -> int:
        with self._lock:
            if provider is None:
                return self._db.execute("SELECT count(*) FROM tiles").fetchone()[0]
            return self._db.execute(
                "SELECT count(*) FROM tiles WHERE provider=?", (provider,)
            ).fetchone()[0]

    def average_size(self, provider: str) -> int | None:
        with self._lock:
            avg = self._db.execute(
                "SELECT avg(length(data)) FROM tiles WHERE provider=?", (provider,)
            ).fetchone()[0]
        return int(avg) if avg else None

    def size_bytes(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(sum(length(data)), 0) FROM tiles").fetchone()[
                0
            ]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def estimate_area(
    cache: TileCache, provider: TileProvider, bbox: BBox, zmin: int, zmax: int
) -> DownloadEstimate:
    """Tile count and download size, shown to the user before anything is fetched."""
    total = count_tiles(bbox, zmin, zmax)
    cached = 0
    if total <= MAX_PREFETCH_TILES:
        cached = sum(1 for t in tiles_in_bbox(bbox, zmin, zmax) if cache.has(provider.key, *t))
    avg = cache.average_size(provider.key) or DEFAULT_TILE_BYTES
    return DownloadEstimate(total, cached, total - cached, (total - cached) * avg)


def make_client(timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=timeout, follow_redirects=True)


def fetch_tile(
    provider: TileProvider, z: int, x: int, y: int, client: httpx.Client
) -> tuple[bytes, str]:
    """One tile from the provider's server (raises httpx errors; 2xx image only)."""
    r = client.get(provider.tile_url(z, x, y))
    r.raise_for_status()
    ctype = r.headers.get("content-type", "image/png").split(";")[0].strip()
    if not ctype.startswith("image/"):
        raise httpx.HTTPError(f"not an image: {ctype}")
    return r.content, ctype


def prefetch_area(
    cache: TileCache,
    provider: TileProvider,
    bbox: BBox,
    zmin: int,
    zmax: int,
    state: TaskState,
    *,
    client_factory: Callable[[], httpx.Client] = make_client,
) -> PrefetchResult:
    """Download every missing tile of an area for offline use (progress + cancel)."""
    if not provider.allows_bulk_download:
        raise BulkDownloadForbidden(provider.refusal())
    zmax = min(zmax, provider.max_zoom)
    total = count_tiles(bbox, zmin, zmax)
    if total > MAX_PREFETCH_TILES:
        raise TooManyTiles(
            _(
                "{n} tiles is too many for one download (limit {limit}); choose a smaller area or fewer zoom levels."
            ).format(n=total, limit=MAX_PREFETCH_TILES)
        )
    fetched = skipped = failed = nbytes = 0
    with client_factory() as client:
        for i, (z, x, y) in enumerate(tiles_in_bbox(bbox, zmin, zmax)):
            state.progress(i / max(total, 1), _("Tile {i} of {n}").format(i=i + 1, n=total))
            if cache.has(provider.key, z, x, y):
                skipped += 1
                continue
            for attempt in range(3):
                try:
                    data, ctype = fetch_tile(provider, z, x, y, client)
                except httpx.HTTPError:
                    if attempt == 2:
                        failed += 1
                    continue
                cache.put(provider.key, z, x, y, data, ctype)
                fetched += 1
                nbytes += len(data)
                break
    state.progress(1.0, _("Done"))
    return PrefetchResult(fetched, skipped, failed, nbytes)
