"""A rep's GPS fixes as numpy arrays: what the field map's steps run on.

:class:`FixArrays` holds fixes as parallel arrays and :class:`PlaceArrays` the places
stops are matched to; :mod:`core.trajectory.batch` runs the steps over many reps' arrays
at once. Times are int64 microseconds since the epoch (UTC), so durations divide exactly
as ``timedelta.total_seconds()`` does. Distances are numpy haversines
(:func:`haversine_np`); wherever a decision sits on a threshold within :data:`_EDGE_M`,
the scalar :func:`core.trajectory.cleaning.haversine_m` decides, so the results are
those of the reference functions over lists of :class:`Fix`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.trajectory.cleaning import EARTH_RADIUS_M, Fix
from core.trajectory.stops import Place

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
#: this close to a threshold (metres), the scalar haversine_m decides, as the reference does
_EDGE_M = 1e-6


def to_us(instant: dt.datetime) -> int:
    return (instant - EPOCH) // _US


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


@dataclass(frozen=True)
class FixArrays:
    """One rep's fixes as parallel arrays (time-ordered once cleaned)."""

    t_us: np.ndarray  # int64
    lat: np.ndarray  # float64, WGS-84
    lon: np.ndarray
    acc: np.ndarray

    def __len__(self) -> int:
        return len(self.t_us)

    @classmethod
    def empty(cls) -> FixArrays:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z)

    @classmethod
    def from_fixes(cls, fixes: Iterable[Fix]) -> FixArrays:
        fx = list(fixes)
        if not fx:
            return cls.empty()
        return cls(
            np.array([to_us(f.ts) for f in fx], dtype=np.int64),
            np.array([f.lat for f in fx], dtype=np.float64),
            np.array([f.lon for f in fx], dtype=np.float64),
            np.array([f.accuracy_m for f in fx], dtype=np.float64),
        )

    def take(self, idx: np.ndarray | slice) -> FixArrays:
        return FixArrays(self.t_us[idx], self.lat[idx], self.lon[idx], self.acc[idx])

    def fix(self, i: int) -> Fix:
        return Fix(
            from_us(self.t_us[i]), float(self.lat[i]), float(self.lon[i]), float(self.acc[i])
        )

    def to_fixes(self) -> list[Fix]:
        return [self.fix(i) for i in range(len(self))]


def haversine_np(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """:func:`haversine_m` over arrays (same formula, same order of operations)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.subtract(lon2, lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


@dataclass(frozen=True)
class PlaceArrays:
    """Places to match stops against: their ids and coordinates, as parallel columns."""

    ids: Sequence[int]
    lat: np.ndarray
    lon: np.ndarray

    @classmethod
    def of(cls, places: Sequence[Place]) -> PlaceArrays:
        return cls(
            [p.id for p in places],
            np.array([p.lat for p in places], dtype=np.float64),
            np.array([p.lon for p in places], dtype=np.float64),
        )


class TrackPoints(Sequence[tuple[float, float]]):
    """A track's (lat, lon) points held as the two arrays they were computed as; the
    tuples are made the first time the points are read as a sequence (the map's drawing
    reads the arrays). Equal to a list of the same tuples."""

    __slots__ = ("_points", "lat", "lon")

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        if len(lat) != len(lon):
            raise ValueError("lat and lon differ in length")
        self.lat, self.lon = lat, lon
        self._points: list[tuple[float, float]] | None = None

    def _list(self) -> list[tuple[float, float]]:
        if self._points is None:
            self._points = list(zip(self.lat.tolist(), self.lon.tolist(), strict=True))
        return self._points

    def __len__(self) -> int:
        return len(self.lat)

    def __getitem__(self, i: Any) -> Any:
        return self._list()[i]

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TrackPoints):
            return self._list() == other._list()
        if isinstance(other, list):
            return self._list() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-list semantics, as the list it stands for

    def __repr__(self) -> str:
        return f"TrackPoints({self._list()!r})"
