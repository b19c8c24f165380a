"""Cleaning raw GPS fixes before anything is measured on them.

Phones report fixes with an accuracy estimate; a fix whose accuracy circle is wider than
the radius we detect stops with says nothing about where the rep stood, so it is dropped.
Isolated spikes (one fix far away, the fixes before and after agreeing with each other)
are multipath/cell-tower artefacts and are dropped too. A *sustained* jump — the trace
continues from the far place — is kept: it may be a real teleport (a faked location), and
the visit evidence score must see it (:mod:`core.trajectory.evidence`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EARTH_RADIUS_M = 6_371_008.8

#: Fixes less accurate than this are dropped (metres, the phone's reported accuracy).
MAX_ACCURACY_M = 100.0
#: Faster than this between two fixes is not a vehicle in a city: a spike or a jump.
MAX_SPEED_KMH = 150.0


@dataclass(frozen=True, slots=True)
class Fix:
    """One GPS fix, WGS-84, aware UTC time."""

    ts: dt.datetime
    lat: float
    lon: float
    accuracy_m: float = 10.0


@dataclass
class CleanResult:
    fixes: list[Fix]
    dropped_inaccurate: int = 0
    dropped_spikes: int = 0
    dropped_duplicates: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return self.dropped_inaccurate + self.dropped_spikes + self.dropped_duplicates


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def speed_kmh(a: Fix, b: Fix) -> float:
    """Implied speed between two fixes (infinite for a distance covered in no time)."""
    seconds = abs((b.ts - a.ts).total_seconds())
    dist = haversine_m(a.lat, a.lon, b.lat, b.lon)
    if seconds == 0:
        return 0.0 if dist < 1 else math.inf
    return dist / seconds * 3.6


def clean_fixes(
    fixes: Iterable[Fix],
    *,
    max_accuracy_m: float = MAX_ACCURACY_M,
    max_speed_kmh: float = MAX_SPEED_KMH,
) -> CleanResult:
    """Sort by time, drop duplicate instants, inaccurate fixes and isolated speed spikes."""
    ordered = sorted(fixes, key=lambda f: f.ts)
    result = CleanResult(fixes=[])
    accurate: list[Fix] = []
    last_ts: dt.datetime | None = None
    for f in ordered:
        if last_ts is not None and f.ts == last_ts:
            result.dropped_duplicates += 1
            continue
        last_ts = f.ts
        if f.accuracy_m > max_accuracy_m or not (-90 <= f.lat <= 90 and -180 <= f.lon <= 180):
            result.dropped_inaccurate += 1
            continue
        accurate.append(f)

    kept: list[Fix] = []
    for i, f in enumerate(accurate):
        if kept and speed_kmh(kept[-1], f) > max_speed_kmh:
            nxt = accurate[i + 1] if i + 1 < len(accurate) else None
            # A spike: the next fix is plausible from the last kept one, this one is not.
            if nxt is not None and speed_kmh(kept[-1], nxt) <= max_speed_kmh:
                result.dropped_spikes += 1
                continue
        kept.append(f)
    result.fixes = kept
    return result


def speed_jumps(
    fixes: Sequence[Fix], max_speed_kmh: float = MAX_SPEED_KMH
) -> list[tuple[Fix, Fix]]:
    """Consecutive pairs (in cleaned fixes) whose implied speed is impossible."""
    return [(a, b) for a, b in itertools.pairwise(fixes) if speed_kmh(a, b) > max_speed_kmh]
