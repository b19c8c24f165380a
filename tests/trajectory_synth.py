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


# --------------------------------------------------------------------------- a small field day

XSS_NAME = "<img src=x onerror=alert(1)>"


def seed_field_day(session, *, day: dt.date = dt.date(2026, 11, 26)) -> dict[str, object]:
    """One region, one store, three reps with traces and visits on ``day`` (09:00 local).

    Rep 1 visits two customers properly; rep 2 checks in 2 km away from a customer named
    with a script (XSS probe); rep 3 has a trace and an unrecorded stop at a customer.
    Returns ids the tests use.
    """
    from core.models import Customer, GpsPoint, Region, Rep, Store, Visit

    start = dt.datetime.combine(day, dt.time(1, 0), tzinfo=dt.UTC)  # 09:00 Shanghai
    session.add(Region(id=1, code="SH", name="上海区", name_en="Shanghai"))
    session.flush()
    session.add(
        Store(id=1, region_id=1, code="SH001", name="徐汇旗舰店", province="上海", city="上海",
              lat=31.1880, lon=121.4370)
    )  # fmt: skip
    session.flush()
    home = (31.2000, 121.4500)
    a = offset(*home, 0, 3000)
    b = offset(*home, 2500, 3000)
    c = offset(*home, 2500, 0)
    d = offset(*home, -3000, -2000)
    reps = [
        Rep(id=1, region_id=1, store_id=1, code="R001", name="张伟", home_lat=home[0], home_lon=home[1]),
        Rep(id=2, region_id=1, store_id=1, code="R002", name="李娜", home_lat=home[0], home_lon=home[1]),
        Rep(id=3, region_id=1, store_id=None, code="R003", name="王磊", home_lat=home[0], home_lon=home[1]),
    ]  # fmt: skip
    session.add_all(reps)
    session.flush()
    custs = [
        Customer(id=11, region_id=1, store_id=1, rep_id=1, name="好又多便利店", tier="A", lat=a[0], lon=a[1]),
        Customer(id=12, region_id=1, store_id=1, rep_id=1, name="联华超市", tier="B", lat=c[0], lon=c[1]),
        Customer(id=13, region_id=1, store_id=1, rep_id=2, name=XSS_NAME, tier="C", lat=b[0], lon=b[1]),
        Customer(id=14, region_id=1, store_id=None, rep_id=3, name="${window.sdPwned=1}", tier="B", lat=d[0], lon=d[1]),
    ]  # fmt: skip
    session.add_all(custs)
    session.flush()

    def trace(rep_id: int, builder: TraceBuilder) -> None:
        session.add_all(
            GpsPoint(rep_id=rep_id, ts=f.ts, lat=f.lat, lon=f.lon, accuracy_m=f.accuracy_m)
            for f in builder.fixes
        )

    trace(1, TraceBuilder(*home, start=start, seed=1).stay(2).move(*a, 10).stay(20)
          .move(*c, 15).stay(40).move(*home, 12))  # fmt: skip
    trace(2, TraceBuilder(*home, start=start, seed=2).stay(5).move(*offset(*home, 400, 4000), 12)
          .stay(30).move(*home, 12))  # fmt: skip
    trace(3, TraceBuilder(*home, start=start, seed=3).move(*d, 12).stay(25).move(*home, 12))

    def at(minutes: float) -> dt.datetime:
        return start + dt.timedelta(minutes=minutes)

    far = offset(*b, 0, -2000)
    session.add_all(
        [
            Visit(id="v-good-1", rep_id=1, customer_id=11, check_in_at=at(13), check_out_at=at(31),
                  check_in_lat=a[0], check_in_lon=a[1], purpose="补货", voice_summary="客户要求下周补货两箱",
                  photo_ref="photos/v-good-1.jpg"),
            Visit(id="v-good-2", rep_id=1, customer_id=12, check_in_at=at(49), check_out_at=at(85),
                  check_in_lat=c[0], check_in_lon=c[1], purpose="陈列", voice_summary="货架陈列已调整"),
            Visit(id="v-xss", rep_id=2, customer_id=13, check_in_at=at(20), check_out_at=at(45),
                  check_in_lat=far[0], check_in_lon=far[1], purpose="拜访",
                  voice_summary="<script>window.sdPwned=2</script>"),
        ]
    )  # fmt: skip
    session.flush()
    return {"day": day, "region_id": 1, "xss_visit": "v-xss", "good_visit": "v-good-1"}


def gpx_track(
    n: int,
    start: dt.datetime,
    step_s: int,
    *,
    origin: tuple[float, float],
    step_deg: float,
    digits: int,
) -> str:
    """A GPX 1.1 file with one track of *n* points from *origin*, one every *step_s* s."""
    lat0, lon0 = origin
    pts = "".join(
        f'<trkpt lat="{lat0 + i * step_deg:.{digits}f}" lon="{lon0 + i * step_deg:.{digits}f}">'
        f"<time>{(start + dt.timedelta(seconds=step_s * i)).strftime('%Y-%m-%dT%H:%M:%SZ')}</time>"
        "</trkpt>"
        for i in range(n)
    )
    return (
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><trkseg>{pts}</trkseg></trk></gpx>"
    )
