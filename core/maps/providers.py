"""Tile providers as a setting, with the datum they draw in and their usage policy.

Which provider a user may *prefetch* from is a matter of its terms, not of code:
OpenStreetMap's own servers (tile usage policy, revised January 2024) are for interactive
viewing — caching tiles the user actually looked at is normal use, but bulk download "to
view later" is prohibited — so "download this area" refuses them with that reason. An
organisation's own tile server (or a commercial provider whose contract allows offline
use) is configured as a custom provider that permits it. AMap/Gaode tiles are GCJ-02; the
map builder shifts points for them (:mod:`core.trajectory.coords`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.i18n import N_, _
from core.trajectory.coords import GCJ02, WGS84

#: Sent with every tile request (OSM requires an identifying User-Agent).
USER_AGENT = "StoreDesk/0.1 (retail field workstation; offline tile cache)"


@dataclass(frozen=True)
class TileProvider:
    key: str  # stable id, part of storedesk://tiles/<key>/z/x/y.png and of cache rows
    name: str  # English source, translated at display
    url: str  # "{s}", "{z}", "{x}", "{y}" placeholders
    attribution: str  # HTML attribution the page must show
    datum: str = WGS84
    max_zoom: int = 18
    subdomains: str = ""
    allows_bulk_download: bool = False
    #: Why bulk download is refused (English source, translated by :meth:`refusal`).
    bulk_policy: str = ""
    usage_note: str = ""

    def tile_url(self, z: int, x: int, y: int) -> str:
        s = self.subdomains[(x + y) % len(self.subdomains)] if self.subdomains else ""
        return self.url.format(s=s, z=z, x=x, y=y)

    def refusal(self) -> str:
        return _(self.bulk_policy) if self.bulk_policy else ""


OSM = TileProvider(
    key="osm",
    name=N_("OpenStreetMap (view only)"),
    url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    attribution='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
    max_zoom=19,
    allows_bulk_download=False,
    bulk_policy=N_(
        "OpenStreetMap's tile usage policy forbids downloading areas in bulk for offline "
        "use. Tiles you look at while online are still cached. For offline areas, set up "
        "your organisation's own tile server (or a provider whose terms allow it) in Settings."
    ),
)

GAODE = TileProvider(
    key="gaode",
    name=N_("AMap/Gaode (view only, GCJ-02)"),
    url="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
    attribution="&copy; AutoNavi (高德地图)",
    datum=GCJ02,
    subdomains="1234",
    allows_bulk_download=False,
    bulk_policy=N_(
        "AMap's terms do not allow downloading its tiles in bulk without a commercial "
        "licence. Use your organisation's own tile server for offline areas."
    ),
)


def custom_provider(
    url: str,
    *,
    attribution: str = "",
    datum: str = WGS84,
    max_zoom: int = 18,
    key: str = "custom",
    name: str = N_("Organisation tile server"),
) -> TileProvider:
    """A tile server whose terms allow offline copies (the organisation's own, or licensed)."""
    return TileProvider(
        key=key,
        name=name,
        url=url,
        attribution=attribution,
        datum=datum,
        max_zoom=max_zoom,
        allows_bulk_download=True,
    )


BUILTIN = {p.key: p for p in (OSM, GAODE)}
