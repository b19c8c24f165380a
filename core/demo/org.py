"""Regions, stores, users, staff with availability, and 15 weeks of rota.

The rota is built by a plain greedy pass that *never* breaks a hard rule (one shift per
person and day so no overlap, ≥ 11 h rest, weekly hours ≤ contract, inside the person's
availability window, a manager/keyholder on the opening and on the closing shift); a slot
that cannot be filled is left empty rather than filled illegally. The tests re-check every
rule on the written rows.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from core.demo import _data
from core.demo._base import Gen, day_epoch, offset, person_name
from core.models import ShiftStatus, StaffRole, StoreFormat, UserRole

KEY_ROLES = (StaffRole.MANAGER.value, StaffRole.KEYHOLDER.value)
REST_S = 11 * 3600

#: store type -> (opens, closes, weight, relative traffic)
STORE_TYPES: dict[str, tuple[int, int, float, float]] = {
    "mall": (10, 22, 0.45, 1.25),
    "street": (8, 22, 0.35, 1.0),
    "community": (7, 21, 0.20, 0.8),
}


@dataclass
class StoreInfo:
    id: int
    region_id: int
    region_code: str
    code: str
    name: str
    city: _data.City
    district: _data.District
    lat: float
    lon: float
    kind: str
    opens: int
    closes: int
    area_m2: int
    #: expected visitors in an average opening hour (before seasonality)
    base_visitors: float
    conversion: float
    basket_fen: int
    manager_user_id: int = 0
    manager_name: str = ""


@dataclass
class StaffInfo:
    id: int
    store_id: int
    name: str
    role: str
    contract_hours: float
    #: weekday -> (start hour, end hour) local
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Org:
    regions: list[tuple[int, _data.RegionSpec]]
    stores: list[StoreInfo]
    staff: list[StaffInfo]
    user_ids: dict[str, int]


def generate_org(gen: Gen) -> Org:
    r = gen.rnd("org")
    regions = [(i + 1, spec) for i, spec in enumerate(_data.REGIONS)]
    gen.insert(
        "regions",
        ("id", "code", "name", "name_en", "timezone"),
        [(rid, s.code, s.name, s.name_en, "Asia/Shanghai") for rid, s in regions],
    )
    stores = _stores(gen, r, regions)
    staff = _staff(gen, r, stores)
    user_ids = _users(gen, r, regions, stores)
    return Org(regions, stores, staff, user_ids)


def _stores(
    gen: Gen, r: random.Random, regions: list[tuple[int, _data.RegionSpec]]
) -> list[StoreInfo]:
    stores: list[StoreInfo] = []
    rows = []
    kinds = list(STORE_TYPES)
    weights = [STORE_TYPES[k][2] for k in kinds]
    for rid, spec in regions:
        n_in_region = 0
        for city in spec.cities:
            used: dict[str, int] = {}
            for k in range(city.stores * gen.scale):
                district = city.districts[k % len(city.districts)]
                landmark = district.landmarks[(k // len(city.districts)) % len(district.landmarks)]
                n_in_region += 1
                code = f"{spec.code}{n_in_region:03d}"
                base = f"{city.name}{district.name}{landmark}"
                used[base] = used.get(base, 0) + 1
                name = base + ("店" if used[base] == 1 else f"{used[base]}号店")
                lat, lon = offset(district.lat, district.lon, r.gauss(0, 1800), r.gauss(0, 1800))
                kind = r.choices(kinds, weights)[0]
                opens, closes, _w, rel = STORE_TYPES[kind]
                area = int(r.choice((120, 150, 180, 220, 260, 300, 360, 420, 500, 650)))
                tier_factor = 1.15 if city.tier == 1 else 0.9
                base_visitors = rel * tier_factor * (14 + area / 26) * r.uniform(0.85, 1.2)
                fmt = StoreFormat.DIRECT if r.random() < 0.7 else StoreFormat.FRANCHISE
                cluster = f"T{city.tier}-{kind}-{'L' if area >= 300 else 'S'}"
                road = r.choice(_data.ROADS)
                address = (
                    f"{city.name}市{district.name}{district.suffix}{road}{r.randint(1, 999)}号"
                )
                if city.name == "上海":
                    address = f"上海市{district.name}区{road}{r.randint(1, 999)}号"
                target_star = round(r.uniform(12, 18), 1)
                opened_on = dt.date(r.randint(2012, 2024), r.randint(1, 12), r.randint(1, 28))
                sid = len(stores) + 1
                info = StoreInfo(
                    id=sid,
                    region_id=rid,
                    region_code=spec.code,
                    code=code,
                    name=name,
                    city=city,
                    district=district,
                    lat=lat,
                    lon=lon,
                    kind=kind,
                    opens=opens,
                    closes=closes,
                    area_m2=area,
                    base_visitors=base_visitors,
                    conversion=r.uniform(0.17, 0.32),
                    basket_fen=int(r.uniform(3800, 9500)),
                )
                stores.append(info)
                rows.append(
                    (
                        sid, rid, code, name, city.province, city.name,
                        district.name + district.suffix, address, fmt.value,
                        round(lat, 6), round(lon, 6), "Asia/Shanghai",
                        dt.time(opens), dt.time(closes), area, cluster, target_star,
                        2 if area < 300 else 3, opened_on,
                    )
                )  # fmt: skip
    gen.insert(
        "stores",
        (
            "id", "region_id", "code", "name", "province", "city", "district", "address",
            "format", "lat", "lon", "timezone", "opens_at", "closes_at", "area_m2", "cluster",
            "target_star", "min_floor_staff", "opened_on",
        ),
        rows,
    )  # fmt: skip
    return stores


def _staff(gen: Gen, r: random.Random, stores: list[StoreInfo]) -> list[StaffInfo]:
    staff: list[StaffInfo] = []
    for store in stores:
        n = r.randint(8, 14)
        roles = [StaffRole.MANAGER.value] + [StaffRole.KEYHOLDER.value] * (2 if n < 11 else 3)
        others = n - len(roles)
        roles += [StaffRole.CASHIER.value, StaffRole.STOCK.value]
        roles += r.choices(
            (StaffRole.SALES.value, StaffRole.CASHIER.value, StaffRole.STOCK.value),
            (5, 3, 2),
            k=others - 2,
        )
        for role in roles:
            info = StaffInfo(
                id=len(staff) + 1,
                store_id=store.id,
                name=person_name(r),
                role=role,
                contract_hours=40.0,
            )
            o, c = store.opens, store.closes
            if role in KEY_ROLES:
                info.windows = {wd: (o, c) for wd in range(7)}
            elif r.random() < 0.6:
                off = r.randrange(5)  # a weekday they never work (kids, studies...)
                info.windows = {wd: (o, c) for wd in range(7) if wd != off}
            else:
                info.contract_hours = float(r.choice((20, 24, 30)))
                start = o + 2 if r.random() < 0.5 else c - 6
                days = [*r.sample(range(7), r.randint(4, 6)), 5, 6]
                info.windows = {wd: (start, start + 6) for wd in set(days)}
            staff.append(info)
        store.manager_name = next(s.name for s in staff if s.store_id == store.id)
    gen.insert(
        "staff",
        ("id", "store_id", "name", "role", "contract_hours_week", "hourly_cost_fen", "active"),
        [
            (
                s.id, s.store_id, s.name, s.role, s.contract_hours,
                {"manager": 4800, "keyholder": 3600}.get(s.role, 2400 + 100 * (s.id % 5)), 1,
            )
            for s in staff
        ],
    )  # fmt: skip
    gen.insert(
        "staff_availability",
        ("staff_id", "weekday", "start", "end"),
        [
            (s.id, wd, dt.time(a), dt.time(b) if b < 24 else dt.time(23, 59))
            for s in staff
            for wd, (a, b) in sorted(s.windows.items())
        ],
    )
    return staff


def _users(
    gen: Gen, r: random.Random, regions: list[tuple[int, _data.RegionSpec]], stores: list[StoreInfo]
) -> dict[str, int]:
    users = [(1, "admin", "系统管理员", UserRole.ADMIN.value)]
    scopes: list[tuple[int, int | None, int | None]] = []
    for rid, spec in regions:
        uid = len(users) + 1
        users.append((uid, f"sup_{spec.code.lower()}", person_name(r), UserRole.SUPERVISOR.value))
        scopes.append((uid, None, rid))
    for store in stores:
        uid = len(users) + 1
        store.manager_user_id = uid
        users.append(
            (uid, f"mgr_{store.code.lower()}", store.manager_name, UserRole.STORE_MANAGER.value)
        )
        scopes.append((uid, store.id, None))
    gen.insert(
        "users",
        ("id", "username", "display_name", "role", "password_hash", "active"),
        [(uid, name, display, role, None, 1) for uid, name, display, role in users],
    )
    gen.insert("user_scopes", ("user_id", "store_id", "region_id"), scopes)
    return {u[1]: u[0] for u in users}


# --------------------------------------------------------------------------- shifts


def generate_shifts(gen: Gen, org: Org) -> None:
    """Published rota for the 13 weeks before this one and this week; next week a draft."""
    r = gen.rnd("shifts")
    this_monday = gen.today - dt.timedelta(days=gen.today.weekday())
    first_monday = this_monday - dt.timedelta(weeks=13)
    weeks = [first_monday + dt.timedelta(weeks=w) for w in range(15)]
    by_store: dict[int, list[StaffInfo]] = {}
    for s in org.staff:
        by_store.setdefault(s.store_id, []).append(s)
    rows = []
    for i, store in enumerate(org.stores):
        if i % 10 == 0:
            gen.step(0.08 + 0.07 * i / len(org.stores), "rota")
        team = by_store[store.id]
        last_end: dict[int, int] = {}
        for monday in weeks:
            draft = monday > this_monday
            status = ShiftStatus.DRAFT.value if draft else ShiftStatus.PUBLISHED.value
            published_at = (
                gen.as_of - 3600 * 5
                if draft
                else day_epoch(monday - dt.timedelta(days=4)) + 18 * 3600
            )
            for staff_id, start, end, role in _week_rota(r, store, team, monday, last_end):
                rows.append(
                    (gen.new_id(), store.id, staff_id, role, start, end, status, "", 1,
                     published_at, store.manager_user_id)
                )  # fmt: skip
    gen.insert(
        "shifts",
        ("id", "store_id", "staff_id", "role", "start_at", "end_at", "status", "note",
         "version", "updated_at", "updated_by"),
        rows,
    )  # fmt: skip


def _week_rota(
    r: random.Random,
    store: StoreInfo,
    team: list[StaffInfo],
    monday: dt.date,
    last_end: dict[int, int],
) -> list[tuple[int, int, int, str]]:
    o, c = store.opens, store.closes
    hours: dict[int, float] = {s.id: 0.0 for s in team}
    worked_day: dict[int, set[int]] = {s.id: set() for s in team}
    out: list[tuple[int, int, int, str]] = []

    def fits(s: StaffInfo, wd: int, a: float, b: float) -> bool:
        win = s.windows.get(wd)
        if win is None or a < win[0] or b > win[1]:
            return False
        if wd in worked_day[s.id] or hours[s.id] + (b - a) > s.contract_hours:
            return False
        start = day_epoch(monday + dt.timedelta(days=wd)) + int(a * 3600)
        return start - last_end.get(s.id, -(10**12)) >= REST_S

    def take(s: StaffInfo, wd: int, a: float, b: float) -> None:
        base = day_epoch(monday + dt.timedelta(days=wd))
        start, end = base + int(a * 3600), base + int(b * 3600)
        hours[s.id] += b - a
        worked_day[s.id].add(wd)
        last_end[s.id] = end
        out.append((s.id, start, end, s.role))

    key = [s for s in team if s.role in KEY_ROLES]
    rest = [s for s in team if s.role not in KEY_ROLES]
    early, late, mid = (o, o + 8), (c - 8, c), (o + 2, o + 10)
    # Weekend and Friday need more hands: floor staff pick those days first.
    day_pref = [0.8, 0.8, 0.9, 0.9, 1.2, 1.5, 1.4]
    plans: dict[int, list[int]] = {}
    for s in rest:
        length = 8 if s.contract_hours >= 40 else 6
        k = int(s.contract_hours // length)
        days = sorted(s.windows, key=lambda wd: -day_pref[wd] * r.uniform(0.6, 1.4))
        plans[s.id] = sorted(days[:k])
    for wd in range(7):
        # opening and closing must each have a manager or keyholder
        for slot in (early, late):
            candidates = [s for s in key if fits(s, wd, *slot)]
            if candidates:
                best = min(candidates, key=lambda s: (hours[s.id], r.random()))
                take(best, wd, *slot)
        for n, s in enumerate(rest):
            if wd not in plans[s.id]:
                continue
            if s.contract_hours < 40:
                a = s.windows[wd][0]
                if fits(s, wd, a, a + 6):
                    take(s, wd, a, a + 6)
                continue
            prefer = (early, late) if (n + wd // 3) % 2 == 0 else (late, early)
            for slot in (*prefer, mid):
                if slot[1] <= c and fits(s, wd, *slot):
                    take(s, wd, *slot)
                    break
    return out
