"""prepare_field_map (numpy, all reps at once) equals prepare_field_map_reference (lists of
fixes, rep by rep) on generated days: fixes moved by exactly the thresholds' distances
(stop radius, match and near-customer radius) and time steps on the dwell, gap and
evidence edges, duplicate instants, inaccurate fixes, reps with 0, 1 or 2 fixes, visits
with and without check-out or check-in position, periods of several days, in time zones
with half- and quarter-hour offsets and DST changes, near a pole and the antimeridian.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.timeutil import local_day_bounds
from core.trajectory.arrays import FixArrays, to_us
from core.trajectory.cleaning import EARTH_RADIUS_M
from core.trajectory.field_day import (
    CustomerInfo,
    FieldDayRaw,
    RepInfo,
    VisitRow,
    prepare_field_map,
    prepare_field_map_reference,
)
from core.trajectory.stops import RecordedVisit
from tests.core.test_trajectory_demo import _same_field_map

#: metres: 0, the stop radius (60), the match and near-customer radius (150), each a hair off
DISTS = [0.0, 1.0, 30.0, 59.999999, 60.0, 60.000001, 149.99999, 150.0, 150.000001, 300.0, 5000.0]
#: seconds: the evidence gap (180), the dwell (300), the stop gap (900), either side
STEPS = [0, 0, 1, 30, 60, 179, 180, 181, 299, 300, 301, 899, 900, 901, 3600]
ACCURACY = [10.0, 99.9999, 100.0, 100.0001]
ZONES = ["Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "UTC"]
DAYS = [dt.date(2026, 11, 26), dt.date(2026, 3, 8), dt.date(2026, 11, 1)]  # (NY: DST changes)
BEARINGS = [0.0, math.pi / 2, math.pi, 0.7]


def _moved(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    lat2 = lat + math.degrees(metres * math.cos(bearing) / EARTH_RADIUS_M)
    lon2 = lon + math.degrees(
        metres * math.sin(bearing) / (EARTH_RADIUS_M * math.cos(math.radians(lat)))
    )
    return max(min(lat2, 89.999), -89.999), ((lon2 + 180.0) % 360.0) - 180.0


@st.composite
def field_days(draw: st.DrawFn) -> FieldDayRaw:
    tz = draw(st.sampled_from(ZONES))
    day_from = draw(st.sampled_from(DAYS))
    day_to = day_from + dt.timedelta(days=draw(st.sampled_from([0, 0, 2])))
    start, _ = local_day_bounds(day_from, tz)
    _, end = local_day_bounds(day_to, tz)
    base = draw(st.sampled_from([(31.2, 121.45), (89.99, 10.0), (0.0, 179.9995)]))
    reps, gps, visits, customers = [], {}, [], []
    for r in range(1, draw(st.integers(0, 4)) + 1):
        reps.append(RepInfo(r, f"R{r:02d}", f"rep {r}", 1, None))
        t = start + dt.timedelta(seconds=draw(st.integers(0, int((end - start).total_seconds()))))
        lat, lon = base
        fixes: list[tuple[dt.datetime, float, float, float]] = []
        for _ in range(draw(st.sampled_from([0, 1, 2, 10, 40, 120]))):
            t += dt.timedelta(
                seconds=draw(st.sampled_from(STEPS)),
                microseconds=draw(st.sampled_from([0, 0, 1, 999_999])),
            )
            if t >= end:
                break
            lat, lon = _moved(
                lat, lon, draw(st.sampled_from(DISTS)), draw(st.sampled_from(BEARINGS))
            )
            fixes.append((t, lat, lon, draw(st.sampled_from(ACCURACY))))
        if fixes:
            gps[r] = FixArrays(
                np.array([to_us(f[0]) for f in fixes], dtype=np.int64),
                np.array([f[1] for f in fixes]),
                np.array([f[2] for f in fixes]),
                np.array([f[3] for f in fixes]),
            )
        for _ in range(draw(st.integers(0, 3))):
            near = fixes[draw(st.integers(0, len(fixes) - 1))] if fixes else None
            at = near[0] if near else start + dt.timedelta(hours=3)
            alat, alon = near[1:3] if near else base
            clat, clon = _moved(alat, alon, draw(st.sampled_from(DISTS)), 2.0)
            cid = len(customers) + 1
            customers.append(CustomerInfo(cid, f"c{cid}", "A", clat, clon, r))
            cin = at + dt.timedelta(seconds=draw(st.sampled_from([-1800, -180, 0, 1, 300, 1801])))
            if not start <= cin < end or not draw(st.booleans()):
                continue
            cout = None
            if draw(st.booleans()):
                cout = cin + dt.timedelta(seconds=draw(st.sampled_from([0, 180, 300, 1800, 7200])))
            pos = _moved(clat, clon, draw(st.sampled_from(DISTS)), 1.0)
            vlat, vlon = pos if draw(st.booleans()) else (None, None)
            v = RecordedVisit(f"v{len(visits)}", r, cid, cin, cout, vlat, vlon, clat, clon)
            visits.append(VisitRow(v, f"rep {r}", f"c{cid}", "A", "p", None, ""))
    visits.sort(key=lambda v: v.visit.check_in_at)
    return FieldDayRaw(1, "R", tz, day_from, day_to, reps, gps, visits, customers, [], [])


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(field_days(), st.sampled_from([20, 20_000]))
def test_the_batch_field_map_equals_the_reference_on_generated_days(raw, budget):
    _same_field_map(
        prepare_field_map(raw, point_budget=budget),
        prepare_field_map_reference(raw, point_budget=budget),
    )
