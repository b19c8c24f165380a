"""Synthetic GPS traces with known stops, shared by the trajectory and map tests."""

from __future__ import annotations

import datetime as dt
import math
import random

from core.trajectory.cleaning import Fix

T0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)  # 09:00 Shanghai
STEP = dt.timedelta(seconds=30)


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return (
        lat + north_m / 111_195.0,
        lon + east_m / (111_195.0 * math.cos(math.radians(lat))),
    )


class TraceBuilder:
    """Build a 30-s trace from "stay" and "move" legs, with small seeded jitter (<= 8 m)."""

    def __init__(self, lat: float, lon: float, start: dt.datetime = T0, seed: int = 1) -> None:
        self.lat, self.lon, self.t = lat, lon, start
        self.fixes: list[Fix] = []
        self.rng = random.Random(seed)

    def _emit(self, lat: float, lon: float) -> None:
        j_lat, j_lon = offset(lat, lon, self.rng.uniform(-5, 5), self.rng.uniform(-5, 5))
        self.fixes.append(Fix(self.t, j_lat, j_lon, 8.0))
        self.t += STEP

    def stay(self, minutes: float) -> TraceBuilder:
        for _ in range(round(minutes * 2)):
            self._emit(self.lat, self.lon)
        return self

    def move(self, lat: float, lon: float, minutes: float) -> TraceBuilder:
        n = max(1, round(minutes * 2))
        lat0, lon0 = self.lat, self.lon
        for i in range(1, n + 1):
            self._emit(lat0 + (lat - lat0) * i / n, lon0 + (lon - lon0) * i / n)
        self.lat, self.lon = lat, lon
        return self

    def jump(self, lat: float, lon: float) -> TraceBuilder:
        """Teleport: the next fix is already at the far place."""
        self.lat, self.lon = lat, lon
        return self

    def gap(self, minutes: float) -> TraceBuilder:
        self.t += dt.timedelta(minutes=minutes)
        return self
