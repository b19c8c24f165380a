"""Tile cache, area download (estimate, policy, progress, cancel) and static map images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from maptile_server import TILE_RGB, TileServer, tile_png
from PIL import Image

from core.maps.providers import OSM, USER_AGENT, custom_provider
from core.maps.static_map import StaticTrack, StaticVisit, _fit_zoom, render_visits_png
from core.maps.tilecache import (
    BBox,
    BulkDownloadForbidden,
    TileCache,
    TooManyTiles,
    count_tiles,
    estimate_area,
    lonlat_to_tile,
    prefetch_area,
    tiles_in_bbox,
)
from core.tasks import Cancelled, TaskState

XUHUI = BBox(31.15, 121.40, 31.22, 121.48)


@pytest.fixture
def cache(tmp_path):
    c = TileCache(tmp_path / "tiles.sqlite")
    yield c
    c.close()


def test_tile_numbering_and_counts_match_the_slippy_map_scheme():
    assert lonlat_to_tile(0.0, 0.0, 1) == (1, 1)
    assert lonlat_to_tile(31.2304, 121.4737, 10) == (857, 418)
    assert count_tiles(XUHUI, 12, 12) == 2 * 2 == len(list(tiles_in_bbox(XUHUI, 12, 12)))
    assert count_tiles(XUHUI, 10, 15) == len(list(tiles_in_bbox(XUHUI, 10, 15)))


def test_get_put_and_size(cache):
    assert cache.get("p", 1, 2, 3) is None
    cache.put("p", 1, 2, 3, b"abc")
    assert cache.get("p", 1, 2, 3) == (b"abc", "image/png")
    assert cache.count("p") == 1 and cache.size_bytes() == 3


def test_osm_refuses_area_download_with_the_reason(cache):
    with pytest.raises(BulkDownloadForbidden, match="usage policy forbids"):
        prefetch_area(cache, OSM, XUHUI, 12, 14, TaskState())
    assert cache.count() == 0


def test_estimate_then_download_from_a_loopback_server_with_progress(cache):
    with TileServer() as srv:
        provider = custom_provider(srv.url, attribution="test tiles")
        est = estimate_area(cache, provider, XUHUI, 12, 14)
        assert est.tiles == count_tiles(XUHUI, 12, 14) and est.cached == 0
        assert est.est_bytes == est.tiles * 18_000
        seen: list[float] = []
        res = prefetch_area(cache, provider, XUHUI, 12, 14, TaskState(lambda f, _m: seen.append(f)))
        assert (res.fetched, res.failed) == (est.tiles, 0)
        assert len(srv.requests) == est.tiles
        assert set(srv.user_agents) == {USER_AGENT}
        assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
        # a second estimate knows what is cached and the real average size
        again = estimate_area(cache, provider, XUHUI, 12, 14)
        assert (again.cached, again.to_fetch, again.est_bytes) == (est.tiles, 0, 0)
        res2 = prefetch_area(cache, provider, XUHUI, 12, 14, TaskState())
        assert (res2.fetched, res2.skipped) == (0, est.tiles)
        assert len(srv.requests) == est.tiles  # nothing fetched twice


def test_cancel_stops_the_download_and_keeps_fetched_tiles(cache):
    with TileServer() as srv:
        provider = custom_provider(srv.url)
        state = TaskState()

        def on_progress(fraction: float, _msg: str) -> None:
            if len(srv.requests) >= 5:
                state.cancel()

        state._on_progress = on_progress
        with pytest.raises(Cancelled):
            prefetch_area(cache, provider, XUHUI, 12, 15, state)
        assert 5 <= cache.count() < count_tiles(XUHUI, 12, 15)


def test_failed_tiles_are_counted_not_fatal(cache):
    with TileServer(fail_every=2) as srv:
        provider = custom_provider(srv.url)
        res = prefetch_area(cache, provider, XUHUI, 12, 13, TaskState())
        assert res.fetched == count_tiles(XUHUI, 12, 13)  # retries recover every 503
        assert res.failed == 0


def test_huge_area_is_refused_before_any_request(cache):
    with TileServer() as srv:
        with pytest.raises(TooManyTiles):
            prefetch_area(
                cache, custom_provider(srv.url), BBox(27, 116, 35, 123), 5, 16, TaskState()
            )
        assert srv.requests == []


# --------------------------------------------------------------------------- static map


def _pixels(png: bytes, rgb: tuple[int, int, int], tol: int = 12) -> int:
    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(arr - np.array(rgb)).max(axis=2) <= tol).sum())


def test_static_map_on_the_base_layer_draws_visits_and_tracks():
    visits = [StaticVisit(31.20, 121.45), StaticVisit(31.23, 121.48, flagged=True)]
    track = StaticTrack("#7b1fa2", [(31.19, 121.44), (31.21, 121.47), (31.24, 121.49)])
    png = render_visits_png(visits, tracks=[track], size=(400, 300))
    img = Image.open(io.BytesIO(png))
    assert img.size == (400, 300)
    assert _pixels(png, (211, 47, 47)) > 50  # flagged visit red
    assert _pixels(png, (46, 125, 50)) > 30  # ok visit green
    assert _pixels(png, (123, 31, 162), tol=25) > 50  # track
    assert _pixels(png, (243, 239, 230), tol=4) > 1000  # base layer land fill


def test_static_map_uses_cached_tiles_when_complete(cache):
    provider = custom_provider("http://unused/{z}/{x}/{y}.png", attribution="(c) test")
    visits = [StaticVisit(31.20, 121.45), StaticVisit(31.21, 121.46)]
    bare = render_visits_png(visits, size=(300, 200), tile_cache=cache, provider=provider)
    assert _pixels(bare, TILE_RGB) == 0  # nothing cached: base layer instead
    z = _fit_zoom((31.195, 121.445, 31.215, 121.465), (300, 200))
    png_bytes = tile_png()
    for _z, x, y in tiles_in_bbox(BBox(31.15, 121.38, 31.26, 121.53), z, z):
        cache.put(provider.key, z, x, y, png_bytes)
    png = render_visits_png(visits, size=(300, 200), tile_cache=cache, provider=provider)
    assert _pixels(png, TILE_RGB) > 300 * 200 * 0.8
