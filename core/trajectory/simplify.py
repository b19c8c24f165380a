"""Line simplification for drawing: a bounded number of points whatever the day's trace.

Douglas-Peucker (shapely) in a local metric projection, starting from a tolerance below
GPS noise and doubling it until the line fits the budget, so a quiet day keeps its shape
and a 1 Hz day of 40,000 fixes still ends at ``max_points``. Douglas-Peucker always keeps
the end points and converges to them, so the bound always holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from shapely.geometry import LineString

from core.trajectory.cleaning import EARTH_RADIUS_M

#: Starting tolerance: below typical phone GPS noise, so nothing visible is lost.
START_TOLERANCE_M = 3.0


def simplify_track(
    points: Sequence[tuple[float, float]] | np.ndarray,
    max_points: int = 400,
    start_tolerance_m: float = START_TOLERANCE_M,
) -> list[tuple[float, float]]:
    """(lat, lon) points -> at most ``max_points`` (>= 2) points, ends kept."""
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    n = len(points)
    if n <= 2:
        return [(float(p[0]), float(p[1])) for p in points]
    arr = np.asarray(points, dtype=float)
    lat0 = math.radians(float(arr[:, 0].mean()))
    # Equirectangular metres around the track's mean latitude: exact enough for a city day.
    xy = np.column_stack(
        (
            np.radians(arr[:, 1]) * math.cos(lat0) * EARTH_RADIUS_M,
            np.radians(arr[:, 0]) * EARTH_RADIUS_M,
        )
    )
    line = LineString(xy)
    tol = start_tolerance_m
    simplified = line.simplify(tol, preserve_topology=False)
    while len(simplified.coords) > max_points:
        tol *= 2
        simplified = line.simplify(tol, preserve_topology=False)
    kept = np.asarray(simplified.coords)
    lats = np.degrees(kept[:, 1] / EARTH_RADIUS_M)
    lons = np.degrees(kept[:, 0] / (math.cos(lat0) * EARTH_RADIUS_M))
    return list(zip(lats.tolist(), lons.tolist(), strict=True))


def simplify_tracks(
    tracks: Sequence[Sequence[tuple[float, float]] | np.ndarray], total_max_points: int = 20_000
) -> list[list[tuple[float, float]]]:
    """Share one point budget between several tracks, in proportion to their size."""
    total = sum(len(t) for t in tracks)
    if total == 0:
        return [[] for _ in tracks]
    out = []
    for t in tracks:
        budget = max(2, int(total_max_points * len(t) / max(total, total_max_points)))
        out.append(
            simplify_track(t, max_points=budget)
            if len(t) > 2
            else [(float(p[0]), float(p[1])) for p in t]
        )
    return out
