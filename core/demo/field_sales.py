"""Reps, customers with 12 months of stats, 13 weeks of visits and 7 days of GPS fixes.

A rep's working day (Mon–Sat, not on public holidays) starts at home around 08:30, visits
4–8 of their own customers (A tier most often) in nearest-neighbour order, breaks for
lunch near a customer, and ends at home. Visits for the whole 13 weeks are planned; GPS
fixes are written for the last 7 days only, every ~30 s along the day's path: roads are
approximated by straight-ish segments through one offset waypoint at 20–40 km/h, and the
rep stands within a few metres of each customer while visiting. Fix noise follows the
reported accuracy (5–30 m; ~1.5 % poor fixes of 100–350 m).

About 5 % of visits are planted as suspicious, recorded in ``truth["suspicious_visits"]``:
``far_checkin`` (checked in 300–2000 m away and never went closer), ``short_dwell``
(under 5 minutes on site) and ``teleport`` (the rep stays put and the trace jumps to the
customer and back — a spoofed location).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from core.demo import _data
from core.demo._base import (
    Gen,
    day_epoch,
    distance_m,
    local_epoch,
    offset,
    person_name,
    phone_number,
)
from core.demo.org import Org, StoreInfo
from core.demo.traffic import holidays_in

TIER_VISIT_WEIGHT = {"A": 6.0, "B": 3.0, "C": 1.0}
#: tier -> monthly purchases range in yuan
TIER_PURCHASES = {"A": (30_000, 90_000), "B": (8_000, 28_000), "C": (1_500, 8_000)}
GPS_DAYS = 7
GPS_STEP_S = 30
GPS_BATCH = 200_000
GPS_COLUMNS = ("rep_id", "ts", "lat", "lon", "accuracy_m", "source")


@dataclass
class RepInfo:
    id: int
    region_id: int
    code: str
    name: str
    city: _data.City
    store: StoreInfo
    home: tuple[float, float]
    customers: list[CustomerInfo] = field(default_factory=list)


@dataclass
class CustomerInfo:
    id: int
    rep_id: int
    name: str
    tier: str
    segment: str
    lat: float
    lon: float


@dataclass
class People:
    reps: list[RepInfo]
    customers: list[CustomerInfo]


@dataclass
class VisitPlan:
    """One planned visit; ``row`` is completed (opportunity link) before insert."""

    id: str
    rep_id: int
    customer_id: int
    check_in: int
    check_out: int
    ci: tuple[float, float]
    co: tuple[float, float]
    purpose: str
    photo: str | None
    summary: str
    kind: str = ""  # "", far_checkin, short_dwell, teleport
    opportunity_id: str | None = None


@dataclass
class DayTrack:
    """Knots of a rep's path for one day: position is linear between consecutive knots."""

    rep_id: int
    t: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)

    def add(self, t: float, p: tuple[float, float]) -> None:
        if self.t and t <= self.t[-1]:
            t = self.t[-1] + 1
        self.t.append(t)
        self.lat.append(p[0])
        self.lon.append(p[1])


@dataclass
class VisitsPlanned:
    visits: list[VisitPlan]
    tracks: list[DayTrack]
    #: customer id -> sorted [(check_in, index into visits)]
    by_customer: dict[int, list[tuple[int, int]]]


# --------------------------------------------------------------------------- reps & customers


def _split_by_weight(total: int, weights: list[int]) -> list[int]:
    """Largest-remainder split of ``total`` in proportion to ``weights``."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: out[i] - raw[i])[: total - sum(out)]:
        out[i] += 1
    return out


def _nearest_district(city: _data.City, lat: float, lon: float) -> _data.District:
    return min(city.districts, key=lambda d: (d.lat - lat) ** 2 + (d.lon - lon) ** 2)


def generate_reps_and_customers(gen: Gen, org: Org) -> People:
    r = gen.rnd("reps")
    reps: list[RepInfo] = []
    rep_rows = []
    for rid, spec in org.regions:
        n_reps = spec.reps * gen.scale
        per_city = _split_by_weight(n_reps, [c.stores for c in spec.cities])
        k = 0
        for city, n_city in zip(spec.cities, per_city, strict=True):
            city_stores = [s for s in org.stores if s.city is city]
            for j in range(n_city):
                k += 1
                district = city.districts[j % len(city.districts)]
                home = offset(district.lat, district.lon, r.gauss(0, 2500), r.gauss(0, 2500))
                store = min(city_stores, key=lambda s: distance_m(s.lat, s.lon, home[0], home[1]))
                rep = RepInfo(
                    id=len(reps) + 1,
                    region_id=rid,
                    code=f"R{spec.code}{k:03d}",
                    name=person_name(r),
                    city=city,
                    store=store,
                    home=home,
                )
                reps.append(rep)
                rep_rows.append(
                    (rep.id, rid, store.id, rep.code, rep.name, phone_number(r),
                     round(home[0], 6), round(home[1], 6))
                )  # fmt: skip
    gen.insert(
        "reps",
        ("id", "region_id", "store_id", "code", "name", "phone", "home_lat", "home_lon"),
        rep_rows,
    )

    r = gen.rnd("customers")
    counts = [r.randint(20, 27) for _ in reps]
    total = sum(counts)
    tiers = ["A"] * round(total * 0.15) + ["B"] * round(total * 0.35)
    tiers += ["C"] * (total - len(tiers))
    r.shuffle(tiers)
    segments = list(_data.SEGMENTS)
    seg_weights = [_data.SEGMENTS[s][0] for s in segments]
    customers: list[CustomerInfo] = []
    rows = []
    names_seen: set[str] = set()
    created_lo = dt.datetime(2018, 1, 1, tzinfo=dt.UTC).timestamp()
    created_hi = dt.datetime(2025, 12, 31, tzinfo=dt.UTC).timestamp()
    for rep, n in zip(reps, counts, strict=True):
        for _ in range(n):
            lat, lon = offset(rep.home[0], rep.home[1], r.gauss(0, 2200), r.gauss(0, 2200))
            district = _nearest_district(rep.city, lat, lon)
            segment = r.choices(segments, seg_weights)[0]
            base = (
                f"{rep.city.name}{district.name}{district.suffix}"
                f"{r.choice(_data.TRADE_WORDS)}{r.choice(_data.SEGMENTS[segment][1])}"
            )
            name, n_same = base, 1
            while name in names_seen:
                n_same += 1
                name = f"{base}（{n_same}店）"
            names_seen.add(name)
            cust = CustomerInfo(
                id=len(customers) + 1,
                rep_id=rep.id,
                name=name,
                tier=tiers[len(customers)],
                segment=segment,
                lat=lat,
                lon=lon,
            )
            customers.append(cust)
            rep.customers.append(cust)
            contact = f"{person_name(r)} {phone_number(r)}"
            address = (
                f"{rep.city.name}市{district.name}{district.suffix}"
                f"{r.choice(_data.ROADS)}{r.randint(1, 1200)}号"
            )
            rows.append(
                (cust.id, rep.region_id, rep.store.id, rep.id, name, cust.tier, segment,
                 contact, address, round(lat, 6), round(lon, 6),
                 int(r.uniform(created_lo, created_hi)))
            )  # fmt: skip
    gen.insert(
        "customers",
        ("id", "region_id", "store_id", "rep_id", "name", "tier", "segment", "contact",
         "address", "lat", "lon", "created_at"),
        rows,
    )  # fmt: skip
    _monthly_stats(gen, customers)
    return People(reps, customers)


def _monthly_stats(gen: Gen, customers: list[CustomerInfo]) -> None:
    """12 complete months; ~8 % growing > 35 % (last 3 vs previous 3), ~8 % slow movers."""
    r = gen.rnd("customer-stats")
    first_of_month = gen.today.replace(day=1)
    months = []
    m = first_of_month
    for _ in range(12):
        m = (m - dt.timedelta(days=1)).replace(day=1)
        months.append(m)
    months.reverse()
    growing, slow = [], []
    rows = []
    for c in customers:
        lo, hi = TIER_PURCHASES[c.tier]
        base = r.uniform(lo, hi) * _data.SEGMENTS[c.segment][2] * 100
        turns = _data.SEGMENTS[c.segment][3]
        grow = r.random() < 0.08
        is_slow = not grow and r.random() < 0.08
        if grow:
            growing.append(c.id)
        if is_slow:
            slow.append(c.id)
        amounts = []
        for i, month in enumerate(months):
            season = 1.25 if month.month in (1, 2) else (1.1 if month.month in (9, 10) else 1.0)
            ramp = 1.0
            if grow and i >= 9:
                ramp = 1.5 + 0.15 * (i - 9)
            amounts.append(base * season * ramp * r.lognormvariate(0, 0.08))
        if grow:  # the tag needs > 35 %: make sure noise did not eat it
            last, prev = sum(amounts[9:]), sum(amounts[6:9])
            if last <= 1.4 * prev:
                amounts[9:] = [a * 1.45 * prev / last for a in amounts[9:]]
        turn_base = turns * (r.uniform(0.35, 0.6) if is_slow else r.uniform(0.85, 1.15))
        for month, amount in zip(months, amounts, strict=True):
            rows.append((c.id, month, round(amount), round(turn_base * r.uniform(0.92, 1.08), 2)))
    gen.insert(
        "customer_monthly_stats",
        ("customer_id", "month", "purchases_fen", "inventory_turnover"),
        rows,
    )
    gen.truth["growing_customers"] = growing
    gen.truth["low_turnover_customers"] = slow


# --------------------------------------------------------------------------- visits


def plan_visits(gen: Gen, people: People) -> VisitsPlanned:
    """Every rep-day of the 13 weeks; day tracks only for the last ``GPS_DAYS`` days."""
    r = gen.rnd("visits")
    holiday_days = {d for d, _n in holidays_in(gen.history_start, gen.today)}
    work_days = [
        gen.history_start + dt.timedelta(days=i)
        for i in range(91)
        if (gen.history_start + dt.timedelta(days=i)).weekday() < 6
        and gen.history_start + dt.timedelta(days=i) not in holiday_days
    ]
    gps_from = gen.today - dt.timedelta(days=GPS_DAYS - 1)
    visits: list[VisitPlan] = []
    tracks: list[DayTrack] = []
    for i, rep in enumerate(people.reps):
        if i % 20 == 0:
            gen.step(0.5 + 0.2 * i / len(people.reps), "visits")
        weights = [TIER_VISIT_WEIGHT[c.tier] for c in rep.customers]
        speed_kmh = r.uniform(20, 40)
        for day in work_days:
            n = r.randint(4, 8)
            chosen = _weighted_sample(r, rep.customers, weights, n)
            track = DayTrack(rep.id) if day >= gps_from else None
            _plan_day(gen, r, rep, day, chosen, speed_kmh, visits, track)
            if track is not None:
                tracks.append(track)
    by_customer: dict[int, list[tuple[int, int]]] = {}
    for k, v in enumerate(visits):
        by_customer.setdefault(v.customer_id, []).append((v.check_in, k))
    for lst in by_customer.values():
        lst.sort()
    gen.truth["suspicious_visits"] = {v.id: v.kind for v in visits if v.kind}
    return VisitsPlanned(visits, tracks, by_customer)


def _weighted_sample(
    r: random.Random, items: list[CustomerInfo], weights: list[float], k: int
) -> list[CustomerInfo]:
    keys = sorted(range(len(items)), key=lambda i: -(r.random() ** (1.0 / weights[i])))
    return [items[i] for i in keys[:k]]


def _near_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance: plenty for city-scale routing and ~5x cheaper than haversine."""
    dy = (b[0] - a[0]) * 111_320.0
    dx = (b[1] - a[1]) * 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


def _jitter(r: random.Random, p: tuple[float, float], sigma_m: float) -> tuple[float, float]:
    return offset(p[0], p[1], r.gauss(0, sigma_m), r.gauss(0, sigma_m))


def _plan_day(
    gen: Gen,
    r: random.Random,
    rep: RepInfo,
    day: dt.date,
    chosen: list[CustomerInfo],
    speed_kmh: float,
    visits: list[VisitPlan],
    track: DayTrack | None,
) -> None:
    # nearest-neighbour route from home
    route: list[CustomerInfo] = []
    here = rep.home
    left = list(chosen)
    while left:
        nxt = min(left, key=lambda c: _near_m(here, (c.lat, c.lon)))
        left.remove(nxt)
        route.append(nxt)
        here = (nxt.lat, nxt.lon)
    speed = speed_kmh * r.uniform(0.85, 1.15) / 3.6  # m/s
    t = float(local_epoch(day, 8.5) + r.randint(0, 40 * 60))
    pos = rep.home
    had_lunch = False
    if track is not None:
        track.add(t, pos)

    def travel(dest: tuple[float, float]) -> None:
        nonlocal t, pos
        d = _near_m(pos, dest)
        if d < 30:
            return
        duration = d * 1.3 / speed + r.uniform(60, 240)
        if track is not None and d > 400:
            # one waypoint offset sideways: streets are not straight lines
            f = r.uniform(0.35, 0.65)
            side = r.uniform(-0.18, 0.18) * d
            mid = (pos[0] + f * (dest[0] - pos[0]), pos[1] + f * (dest[1] - pos[1]))
            bearing = math.atan2(dest[0] - pos[0], dest[1] - pos[1])
            mid = offset(mid[0], mid[1], side * math.cos(bearing), -side * math.sin(bearing))
            track.add(t + duration * f, mid)
        t += duration
        pos = dest
        if track is not None:
            track.add(t, pos)

    def stay(seconds: float) -> None:
        nonlocal t
        t += seconds
        if track is not None:
            track.add(t, pos)

    for c in route:
        spot = _jitter(r, (c.lat, c.lon), 12)  # where the rep actually stands
        kind = ""
        if r.random() < 0.05:
            kind = r.choices(("far_checkin", "short_dwell", "teleport"), (40, 35, 25))[0]
            if kind == "teleport" and _near_m(pos, (c.lat, c.lon)) < 2500:
                kind = "short_dwell"
        dwell = {"A": r.uniform(25, 50), "B": r.uniform(15, 35), "C": r.uniform(10, 25)}[
            c.tier
        ] * 60
        purpose = r.choice(_data.VISIT_PURPOSES)
        if kind == "far_checkin":
            dist = r.uniform(350, 1900)
            ang = r.uniform(0, 2 * math.pi)
            spot = offset(c.lat, c.lon, dist * math.sin(ang), dist * math.cos(ang))
        if kind == "teleport":
            stay(r.uniform(300, 900))  # sits somewhere else, then the trace "jumps"
            ci_t = t + 1
            if track is not None:
                track.add(ci_t, spot)
            ci_pos = _jitter(r, (c.lat, c.lon), 8)
            co_t = ci_t + dwell
            if track is not None:
                track.add(co_t, spot)
                track.add(co_t + 1, pos)
            t = co_t + 1
            co_pos = _jitter(r, (c.lat, c.lon), 8)
        else:
            travel(spot)
            ci_t = t + r.uniform(0, 60)
            if kind == "short_dwell":
                dwell = r.uniform(60, 280)
            ci_pos = _jitter(r, spot, 10)
            co_t = ci_t + dwell
            co_pos = _jitter(r, spot, 10)
            stay(co_t - t + r.uniform(0, 60))
        vid = gen.new_id()
        local = dt.datetime.fromtimestamp(ci_t + 8 * 3600, dt.UTC)
        photo = f"photos/{local:%Y}/{local:%m}/{vid}.jpg" if r.random() < 0.92 else None
        visits.append(
            VisitPlan(
                id=vid,
                rep_id=rep.id,
                customer_id=c.id,
                check_in=int(ci_t),
                check_out=int(co_t),
                ci=ci_pos,
                co=co_pos,
                purpose=purpose,
                photo=photo,
                summary=r.choice(_data.VOICE_SUMMARIES[purpose]),
                kind=kind,
            )
        )
        if not had_lunch and (t - day_epoch(day)) / 3600 > 11.75:
            had_lunch = True
            lunch = offset(
                pos[0], pos[1], r.uniform(-450, 450), r.choice((-1, 1)) * r.uniform(250, 450)
            )
            travel(lunch)
            stay(r.uniform(35, 60) * 60)
    travel(rep.home)


def write_visits_and_tracks(gen: Gen, people: People, planned: VisitsPlanned) -> None:
    gen.insert(
        "visits",
        ("id", "rep_id", "customer_id", "opportunity_id", "check_in_at", "check_out_at",
         "check_in_lat", "check_in_lon", "check_out_lat", "check_out_lon", "purpose",
         "photo_ref", "voice_summary"),
        [
            (v.id, v.rep_id, v.customer_id, v.opportunity_id, v.check_in, v.check_out,
             round(v.ci[0], 6), round(v.ci[1], 6), round(v.co[0], 6), round(v.co[1], 6),
             v.purpose, v.photo, v.summary)
            for v in planned.visits
        ],
    )  # fmt: skip
    gen.step(0.85, "gps")
    rng = gen.np_rng("gps")
    rows: list[tuple[object, ...]] = []
    for track in planned.tracks:
        knots_t = np.array(track.t)
        start, end = knots_t[0], knots_t[-1]
        n = int((end - start) // GPS_STEP_S)
        ts = start + np.arange(n) * GPS_STEP_S + rng.integers(-3, 4, n)
        ts = np.clip(ts, start, end).astype(np.int64)
        ts = np.unique(ts)
        lat = np.interp(ts, knots_t, np.array(track.lat))
        lon = np.interp(ts, knots_t, np.array(track.lon))
        acc = rng.uniform(5, 30, len(ts))
        poor = rng.random(len(ts)) < 0.015
        acc[poor] = rng.uniform(100, 350, int(poor.sum()))
        sigma = np.where(poor, acc / 1.5, acc / 2.5)
        north = rng.normal(0, 1, len(ts)) * sigma
        east = rng.normal(0, 1, len(ts)) * sigma
        lat = lat + north / 111_320.0
        lon = lon + east / (111_320.0 * np.cos(np.radians(lat)))
        rows.extend(
            zip(
                [track.rep_id] * len(ts),
                ts.tolist(),
                np.round(lat, 6).tolist(),
                np.round(lon, 6).tolist(),
                np.round(acc, 1).tolist(),
                ["app"] * len(ts),
                strict=True,
            )
        )
        if len(rows) >= GPS_BATCH:  # bounded memory at --scale 10 (4 M fixes)
            gen.insert("gps_points", GPS_COLUMNS, rows)
            rows = []
    gen.step(0.9, "gps")
    gen.insert("gps_points", GPS_COLUMNS, rows)


def first_visit_after(
    planned: VisitsPlanned, customer_id: int, after: int, within_s: int
) -> int | None:
    """Index of the customer's first visit checking in within (after, after + within_s]."""
    lst = planned.by_customer.get(customer_id)
    if not lst:
        return None
    i = bisect_left(lst, (after + 1, -1))
    if i < len(lst) and lst[i][0] <= after + within_s:
        return lst[i][1]
    return None
