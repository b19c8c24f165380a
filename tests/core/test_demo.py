"""The demo region: deterministic, the right volumes, and true to its own invariants.

Most tests read the session's ``demo_db_template`` (generated once per run). Values are
recomputed from the written rows with plain SQL/numpy, independently of the generator,
so a generator bug shows up as a failing invariant rather than a self-fulfilling check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cache import make_engine, open_cache
from core.demo import DEFAULT_SEED, DEMO_PASSWORD, DemoSummary, demo_truth, generate
from core.models import Base, GpsPoint, Shift, Visit
from core.tasks import Cancelled, TaskState
from tests.conftest import DEMO_SEED, DEMO_TODAY

ROOT = Path(__file__).resolve().parents[2]
TODAY = DEMO_TODAY
UTC8 = dt.timedelta(hours=8)


@pytest.fixture(scope="module")
def db(demo_db_template: Path):
    conn = sqlite3.connect(f"file:{demo_db_template}?mode=ro", uri=True)
    yield conn
    conn.close()


def ts(text: str) -> dt.datetime:
    """Stored naive-UTC text -> naive UTC datetime."""
    return dt.datetime.fromisoformat(text)


def local(text: str) -> dt.datetime:
    return ts(text) + UTC8


def dist_m(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(lon2) - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * np.arcsin(np.sqrt(a))


def table_checksums(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {}
        for table in Base.metadata.sorted_tables:
            pk = ", ".join(c.name for c in table.primary_key.columns)
            h = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {table.name} ORDER BY {pk}"):
                h.update(repr(row).encode())
            out[table.name] = h.hexdigest()
        return out
    finally:
        conn.close()


# --------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_same_seed_same_bytes_in_process(demo_db_template: Path, tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "again.db")
    summary = generate(cache.engine, scale=1, seed=DEMO_SEED, today=DEMO_TODAY)
    cache.close()
    assert summary.seconds < 60, "region ×1 must generate in seconds"
    assert table_checksums(tmp_path / "again.db") == table_checksums(demo_db_template)


def _org_only(seed: int) -> dict[str, list[tuple]]:
    """Stores, staff and users for a seed, in memory (cheap: the first generation steps)."""
    from core.cache import init_schema
    from core.demo import org
    from core.demo._base import Gen

    engine = make_engine("sqlite://")
    init_schema(engine)
    with engine.begin() as conn:
        gen = Gen(conn=conn, seed=seed, scale=1, today=TODAY, progress=None)
        org.generate_org(gen)
        return {
            t: list(conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY id"))
            for t in ("stores", "staff", "users")
        }


def test_different_seed_different_data() -> None:
    a, b, a2 = _org_only(1), _org_only(2), _org_only(1)
    assert a == a2
    for table in a:
        assert a[table] != b[table], table
    # the structure stays: same store codes, same account names
    assert [r[2] for r in a["stores"]] == [r[2] for r in b["stores"]]
    assert [r[1] for r in a["users"]] == [r[1] for r in b["users"]]


def test_cancel_rolls_back(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "cancelled.db")
    seen: list[float] = []

    def on_progress(fraction: float, _message: str) -> None:
        seen.append(fraction)
        if fraction >= 0.15:
            state.cancel()

    state = TaskState(on_progress)
    with pytest.raises(Cancelled):
        generate(cache.engine, seed=DEMO_SEED, today=TODAY, progress=state)
    with cache.engine.connect() as conn:
        for table in ("regions", "stores", "staff", "shifts", "users"):
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0
    cache.close()
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] >= 0.15


def test_refuses_a_filled_database(demo_cache) -> None:
    with pytest.raises(ValueError, match="already holds"):
        generate(demo_cache.engine, seed=DEMO_SEED, today=TODAY)
    with pytest.raises(ValueError, match="scale"):
        generate(demo_cache.engine, scale=0)
    with pytest.raises(ValueError, match="schema"):
        generate(make_engine("sqlite://"))


def test_summary_format() -> None:
    s = DemoSummary(seed=7, scale=2, today=TODAY, counts={"stores": 166, "gps_points": 812345})
    text = s.format()
    assert "seed 7" in text and "812,345" in text and "166" in text
    lines = text.splitlines()
    assert lines[1].index("166") + 3 == lines[2].index("812,345") + 7  # right-aligned
    assert s.total_rows == 166 + 812345
    assert DEMO_PASSWORD == "demo" and isinstance(DEFAULT_SEED, int)


# --------------------------------------------------------------------------- volumes


def test_volumes(db: sqlite3.Connection) -> None:
    q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
    assert q("SELECT code, name FROM regions ORDER BY id") == [
        ("SH", "上海区"), ("JS", "江苏区"), ("ZJ", "浙江区"),
    ]  # fmt: skip
    stores = dict(
        q(
            "SELECT r.code, count(*) FROM stores s JOIN regions r ON r.id = s.region_id GROUP BY r.code"
        )
    )
    assert stores == {"SH": 30, "JS": 28, "ZJ": 25}
    reps = dict(
        q(
            "SELECT r.code, count(*) FROM reps p JOIN regions r ON r.id = p.region_id GROUP BY r.code"
        )
    )
    assert reps == {"SH": 46, "JS": 43, "ZJ": 38}
    n_customers = q("SELECT count(*) FROM customers")[0][0]
    assert 2800 <= n_customers <= 3200
    tiers = dict(q("SELECT tier, count(*) FROM customers GROUP BY tier"))
    assert abs(tiers["A"] / n_customers - 0.15) < 0.01
    assert abs(tiers["B"] / n_customers - 0.35) < 0.01
    assert abs(tiers["C"] / n_customers - 0.50) < 0.01
    per_rep = [n for (n,) in q("SELECT count(*) FROM customers GROUP BY rep_id")]
    assert min(per_rep) >= 20 and max(per_rep) <= 30
    assert set(dict(q("SELECT segment, 1 FROM customers"))) == {
        "便利店", "超市", "餐饮", "母婴店", "药店", "烟酒店",
    }  # fmt: skip
    formats = dict(q("SELECT format, count(*) FROM stores GROUP BY format"))
    assert 0.55 <= formats["direct"] / 83 <= 0.85
    staff = [n for (n,) in q("SELECT count(*) FROM staff GROUP BY store_id")]
    assert len(staff) == 83 and min(staff) >= 8 and max(staff) <= 14
    assert 140 <= q("SELECT count(*) FROM skus")[0][0] <= 160
    assortment = [n for (n,) in q("SELECT count(*) FROM store_skus GROUP BY store_id")]
    assert min(assortment) >= 60 and max(assortment) <= 80
    assert 5000 <= q("SELECT count(*) FROM opportunities")[0][0] <= 7000
    assert q("SELECT count(*) FROM sku_affinity WHERE lift > 1")[0][0] > 500


def test_names_and_places(db: sqlite3.Connection) -> None:
    centres = {
        "上海": (31.23, 121.47), "南京": (32.06, 118.80), "苏州": (31.30, 120.62),
        "无锡": (31.54, 120.31), "常州": (31.79, 119.95), "南通": (32.03, 120.95),
        "杭州": (30.27, 120.18), "宁波": (29.86, 121.55), "温州": (27.97, 120.70),
        "嘉兴": (30.75, 120.75), "绍兴": (30.03, 120.54),
    }  # fmt: skip
    for code, name, city, lat, lon, opens, closes, cluster, star in db.execute(
        "SELECT code, name, city, lat, lon, opens_at, closes_at, cluster, target_star FROM stores"
    ):
        assert name.startswith(city) and name.endswith("店"), name
        assert dist_m(lat, lon, *centres[city]) < 40_000, (code, name)
        assert opens < closes and cluster and 5 <= star <= 20
    assert (
        db.execute("SELECT name FROM stores WHERE code = 'SH001'").fetchone()[0]
        == "上海徐汇美罗城店"
    )
    for name, city_name in db.execute(
        "SELECT c.name, s.city FROM customers c JOIN stores s ON s.id = c.store_id LIMIT 500"
    ):
        assert name.startswith(city_name) and ("区" in name or "园区" in name), name
    for (name,) in db.execute("SELECT name FROM staff LIMIT 300"):
        assert 2 <= len(name) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in name)


def test_users_and_scopes(db: sqlite3.Connection) -> None:
    users = {u: (role, pw, name) for u, role, pw, name in db.execute(
        "SELECT username, role, password_hash, display_name FROM users")}  # fmt: skip
    assert users["admin"][0] == "admin"
    assert all(pw is None for _r, pw, _n in users.values())
    region_scope = dict(db.execute(
        "SELECT u.username, r.code FROM user_scopes s JOIN users u ON u.id = s.user_id "
        "JOIN regions r ON r.id = s.region_id"))  # fmt: skip
    assert region_scope == {"sup_sh": "SH", "sup_js": "JS", "sup_zj": "ZJ"}
    assert {users[u][0] for u in region_scope} == {"supervisor"}
    store_scope = dict(db.execute(
        "SELECT u.username, st.code FROM user_scopes s JOIN users u ON u.id = s.user_id "
        "JOIN stores st ON st.id = s.store_id"))  # fmt: skip
    codes = [c for (c,) in db.execute("SELECT code FROM stores")]
    assert store_scope == {f"mgr_{c.lower()}": c for c in codes}
    assert {users[u][0] for u in store_scope} == {"store_manager"}
    # the manager account carries the name of the store's manager on the staff list
    for username, code in store_scope.items():
        manager = db.execute(
            "SELECT f.name FROM staff f JOIN stores s ON s.id = f.store_id "
            "WHERE s.code = ? AND f.role = 'manager'", (code,)).fetchone()  # fmt: skip
        assert manager[0] == users[username][2]


# --------------------------------------------------------------------------- rota


def test_shifts_respect_hard_rules(db: sqlite3.Connection) -> None:
    stores = {sid: (int(o[:2]), int(c[:2])) for sid, o, c in db.execute(
        "SELECT id, opens_at, closes_at FROM stores")}  # fmt: skip
    staff = {sid: (store, role, hours) for sid, store, role, hours in db.execute(
        "SELECT id, store_id, role, contract_hours_week FROM staff")}  # fmt: skip
    windows: dict[tuple[int, int], list[tuple[dt.time, dt.time]]] = defaultdict(list)
    for sid, wd, a, b in db.execute("SELECT staff_id, weekday, start, end FROM staff_availability"):
        windows[(sid, wd)].append((dt.time.fromisoformat(a), dt.time.fromisoformat(b)))
    by_person: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    opening: set[tuple[int, dt.date]] = set()
    closing: set[tuple[int, dt.date]] = set()
    status_by_week: dict[dt.date, set[str]] = defaultdict(set)
    n = 0
    for store_id, staff_id, role, start, end, status in db.execute(
        "SELECT store_id, staff_id, role, start_at, end_at, status FROM shifts"
    ):
        n += 1
        s, e = local(start), local(end)
        assert staff[staff_id][0] == store_id and staff[staff_id][1] == role
        assert s.date() == e.date() or e.time() == dt.time(0)
        assert any(a <= s.time() and e.time() <= b for a, b in windows[(staff_id, s.weekday())]), (
            "shift outside availability", staff_id, s, e)  # fmt: skip
        by_person[staff_id].append((s, e))
        o, c = stores[store_id]
        if role in ("manager", "keyholder"):
            if s.hour <= o:
                opening.add((store_id, s.date()))
            if e.hour >= c:
                closing.add((store_id, s.date()))
        status_by_week[s.date() - dt.timedelta(days=s.weekday())].add(status)
    assert n > 40_000
    for staff_id, shifts in by_person.items():
        shifts.sort()
        weekly: Counter[dt.date] = Counter()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(shifts):
            assert s2 - e1 >= dt.timedelta(hours=11), (staff_id, e1, s2)  # also: no overlap
        for s, e in shifts:
            weekly[s.date() - dt.timedelta(days=s.weekday())] += (e - s).total_seconds() / 3600
        assert max(weekly.values()) <= staff[staff_id][2], staff_id
    this_monday = TODAY - dt.timedelta(days=TODAY.weekday())
    weeks = sorted(status_by_week)
    assert len(weeks) == 15 and weeks[-1] == this_monday + dt.timedelta(weeks=1)
    assert status_by_week[weeks[-1]] == {"draft"}
    assert all(status_by_week[w] == {"published"} for w in weeks[:-1])
    days = [weeks[0] + dt.timedelta(days=i) for i in range(15 * 7)]
    for store_id in stores:
        for day in days:
            assert (store_id, day) in opening, ("opening uncovered", store_id, day)
            assert (store_id, day) in closing, ("closing uncovered", store_id, day)


# --------------------------------------------------------------------------- traffic


def test_traffic_shape(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT store_id, hour_start, visitors, transactions, sales_fen FROM hourly_traffic"
    ).fetchall()
    days = {local(h).date() for _s, h, _v, _t, _f in rows}
    assert min(days) == TODAY - dt.timedelta(days=90) and max(days) == TODAY and len(days) == 91
    per_store_days = Counter(s for s, d in {(s, local(h).date()) for s, h, *_ in rows})
    assert set(per_store_days.values()) == {91}
    opening = {sid: (int(o[:2]), int(c[:2])) for sid, o, c in db.execute(
        "SELECT id, opens_at, closes_at FROM stores")}  # fmt: skip
    assert all(opening[s][0] <= local(h).hour < opening[s][1] for s, h, *_ in rows)
    visitors = sum(r[2] for r in rows)
    conversion = sum(r[3] for r in rows) / visitors
    assert 0.15 <= conversion <= 0.35
    by_weekday: dict[int, list[int]] = defaultdict(list)
    by_hour: dict[int, list[int]] = defaultdict(list)
    holiday = {
        dt.date.fromisoformat(d): n for d, n in db.execute("SELECT date, name FROM holidays")
    }
    assert holiday[dt.date(2026, 10, 1)] == "国庆节" and holiday[dt.date(2026, 9, 25)] == "中秋节"
    daily: Counter[dt.date] = Counter()
    for _s, h, v, *_ in rows:
        lt = local(h)
        daily[lt.date()] += v
        if lt.date() not in holiday:
            by_weekday[lt.weekday()].append(v)
            by_hour[lt.hour].append(v)
    weekday_mean = np.mean([np.mean(by_weekday[d]) for d in range(5)])
    assert np.mean(by_weekday[5]) > 1.1 * weekday_mean  # Saturday busier
    assert np.mean(by_hour[19]) > 1.3 * np.mean(by_hour[10])  # evening peak
    national_day = np.mean([daily[dt.date(2026, 10, d)] for d in range(2, 6)])
    normal = np.mean([v for d, v in daily.items() if d not in holiday and d.weekday() < 5])
    assert national_day > 1.15 * normal


def test_counter_outages(db: sqlite3.Connection, demo_db_template: Path) -> None:
    truth = demo_truth(make_engine(demo_db_template))["outages"]
    assert len(truth) >= 6
    kinds = Counter(k for *_x, k in truth)
    assert kinds["zero"] >= 3 and kinds["spike"] >= 1
    # zero-visitor runs while the tills keep ringing, found from the data alone
    zero_runs = db.execute(
        "SELECT store_id, count(*) FROM hourly_traffic WHERE visitors = 0 AND transactions > 0 "
        "GROUP BY store_id, substr(hour_start, 1, 10) HAVING count(*) >= 3"
    ).fetchall()
    assert len(zero_runs) >= kinds["zero"]
    visitors: dict[int, list[int]] = defaultdict(list)
    for store, v in db.execute("SELECT store_id, visitors FROM hourly_traffic"):
        visitors[store].append(v)
    spikes = sum(1 for vs in visitors.values() for v in vs if v > 8 * np.median(vs) and v > 300)
    assert spikes >= kinds["spike"]
    recent = [x for x in truth if ts(x[1][:19]).date() >= TODAY - dt.timedelta(days=7)]
    assert recent, "at least one outage shows up in the current week"


# --------------------------------------------------------------------------- stock


def test_lots_and_sales_ranges(db: sqlite3.Connection) -> None:
    days = [d for (d,) in db.execute("SELECT DISTINCT date FROM daily_sku_sales ORDER BY date")]
    assert len(days) == 35 and days[-1] == TODAY.isoformat()
    per = [
        n for (n,) in db.execute("SELECT count(*) FROM inventory_lots GROUP BY store_id, sku_id")
    ]
    assert min(per) >= 1 and max(per) <= 5
    bad = db.execute(
        "SELECT count(*) FROM inventory_lots l JOIN skus k ON k.id = l.sku_id WHERE "
        "(k.shelf_life_days IS NULL) != (l.expiry_date IS NULL) OR "
        "(l.expiry_date IS NOT NULL AND l.alert_date != date(l.expiry_date, '-' || k.alert_days || ' days'))"
    ).fetchone()[0]
    assert bad == 0
    assert db.execute("SELECT count(*) FROM skus WHERE shelf_life_days <= 7").fetchone()[0] > 20


def _daily_rate(db: sqlite3.Connection) -> dict[tuple[int, int], float]:
    since = (TODAY - dt.timedelta(days=27)).isoformat()
    return {
        (s, k): u / 28.0
        for s, k, u in db.execute(
            "SELECT store_id, sku_id, sum(units) FROM daily_sku_sales WHERE date >= ? "
            "GROUP BY store_id, sku_id",
            (since,),
        )
    }


def test_every_store_has_near_expiry_overstock(db: sqlite3.Connection) -> None:
    rate = _daily_rate(db)
    found: Counter[int] = Counter()
    lots = db.execute(
        "SELECT store_id, sku_id, qty, expiry_date FROM inventory_lots "
        "WHERE alert_date <= ? AND expiry_date > ?",
        (TODAY.isoformat(), TODAY.isoformat()),
    )
    for store, sku, qty, expiry in lots:
        days_left = (dt.date.fromisoformat(expiry) - TODAY).days
        if qty > rate.get((store, sku), 0.0) * days_left:
            found[store] += 1
    assert len(found) == 83 and min(found.values()) >= 2


def test_low_stock_with_rising_sales_in_each_region(
    db: sqlite3.Connection, demo_db_template: Path
) -> None:
    today = TODAY.isoformat()
    on_hand = dict(
        ((s, k), q)
        for s, k, q in db.execute(
            "SELECT store_id, sku_id, sum(qty) FROM inventory_lots "
            "WHERE expiry_date IS NULL OR expiry_date > ? GROUP BY store_id, sku_id",
            (today,),
        )
    )
    last7 = (TODAY - dt.timedelta(days=6)).isoformat()
    prev7 = (TODAY - dt.timedelta(days=13)).isoformat()
    sales: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for s, k, d, u in db.execute(
        "SELECT store_id, sku_id, date, units FROM daily_sku_sales WHERE date >= ?", (prev7,)
    ):
        sales[(s, k)][0 if d >= last7 else 1] += u
    hits = []
    for s, k, safety, region in db.execute(
        "SELECT ss.store_id, ss.sku_id, ss.safety_stock, st.region_id FROM store_skus ss "
        "JOIN stores st ON st.id = ss.store_id"
    ):
        last, prev = sales[(s, k)]
        if on_hand.get((s, k), 0) < safety and last > 1.4 * prev:
            hits.append((region, s, k))
    per_region = Counter(r for r, _s, _k in hits)
    assert set(per_region) == {1, 2, 3}
    assert all(2 <= n <= 4 for n in per_region.values()), per_region
    truth = {tuple(x) for x in demo_truth(make_engine(demo_db_template))["low_stock_rising"]}
    assert {(s, k) for _r, s, k in hits} == truth


# --------------------------------------------------------------------------- field sales


def test_customer_stats_tags(db: sqlite3.Connection, demo_db_template: Path) -> None:
    months = [
        m for (m,) in db.execute("SELECT DISTINCT month FROM customer_monthly_stats ORDER BY month")
    ]
    assert len(months) == 12 and months[-1] == "2026-10-01"
    assert db.execute(
        "SELECT count(*) FROM (SELECT customer_id FROM customer_monthly_stats GROUP BY customer_id "
        "HAVING count(*) != 12)").fetchone()[0] == 0  # fmt: skip
    series: dict[int, list[int]] = defaultdict(list)
    turnover: dict[int, float] = {}
    for c, _m, p, t in db.execute(
        "SELECT customer_id, month, purchases_fen, inventory_turnover FROM customer_monthly_stats "
        "ORDER BY customer_id, month"
    ):
        series[c].append(p)
        turnover[c] = t
    growing = [c for c, s in series.items() if sum(s[9:]) > 1.35 * sum(s[6:9])]
    assert 0.04 * len(series) < len(growing) < 0.15 * len(series)
    segment = dict(db.execute("SELECT id, segment FROM customers"))
    seg_avg = {
        s: np.mean([t for c, t in turnover.items() if segment[c] == s])
        for s in set(segment.values())
    }
    slow = [c for c, t in turnover.items() if t < 0.65 * seg_avg[segment[c]]]
    assert 0.03 * len(series) < len(slow) < 0.15 * len(series)
    truth = demo_truth(make_engine(demo_db_template))
    assert set(growing) == set(truth["growing_customers"])


def test_visits_calendar_and_fields(db: sqlite3.Connection, demo_db_template: Path) -> None:
    rows = db.execute(
        "SELECT v.id, v.check_in_at, v.check_out_at, v.photo_ref, v.voice_summary, v.purpose, "
        "v.rep_id, c.rep_id FROM visits v JOIN customers c ON c.id = v.customer_id"
    ).fetchall()
    assert 40_000 < len(rows) < 70_000
    holidays = {dt.date.fromisoformat(d) for (d,) in db.execute("SELECT date FROM holidays")}
    per_rep_day: Counter[tuple[int, dt.date]] = Counter()
    for vid, ci, co, photo, voice, purpose, rep, owner in rows:
        day = local(ci).date()
        assert day.weekday() < 6 and day not in holidays
        assert TODAY - dt.timedelta(days=90) <= day <= TODAY
        assert ts(co) > ts(ci) and rep == owner and purpose and voice
        if photo is not None:
            assert photo == f"photos/{day:%Y}/{day:%m}/{vid}.jpg"
        per_rep_day[(rep, day)] += 1
    assert min(per_rep_day.values()) >= 4 and max(per_rep_day.values()) <= 8
    suspicious = demo_truth(make_engine(demo_db_template))["suspicious_visits"]
    assert 0.03 < len(suspicious) / len(rows) < 0.07
    assert set(suspicious.values()) == {"far_checkin", "short_dwell", "teleport"}
    dwell = dict(db.execute(
        "SELECT id, (julianday(check_out_at) - julianday(check_in_at)) * 1440 FROM visits"))  # fmt: skip
    short = {v for v, k in suspicious.items() if k == "short_dwell"}
    assert all(dwell[v] < 5 for v in short)
    assert sum(1 for v, m in dwell.items() if m < 5 and v not in short) == 0
    far = db.execute(
        "SELECT v.id, v.check_in_lat, v.check_in_lon, c.lat, c.lon FROM visits v "
        "JOIN customers c ON c.id = v.customer_id").fetchall()  # fmt: skip
    for vid, la, lo, cla, clo in far:
        d = dist_m(la, lo, cla, clo)
        if suspicious.get(vid) == "far_checkin":
            assert 300 <= d <= 2100
        else:
            assert d < 150, (vid, d)


def test_gps_points_near_customers_during_visits(
    db: sqlite3.Connection, demo_db_template: Path
) -> None:
    first = TODAY - dt.timedelta(days=6)
    start = (dt.datetime.combine(first, dt.time(0)) - UTC8).isoformat(sep=" ")
    gps = db.execute(
        "SELECT rep_id, ts, lat, lon, accuracy_m FROM gps_points ORDER BY rep_id, ts"
    ).fetchall()
    assert min(g[1] for g in gps) >= start, "GPS only for the last 7 days"
    by_rep: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    reps = defaultdict(list)
    for g in gps:
        reps[g[0]].append(g)
    assert len(reps) == 127
    for rep, pts in reps.items():
        t = np.array([ts(p[1]).timestamp() for p in pts])
        by_rep[rep] = (t, np.array([p[2] for p in pts]), np.array([p[3] for p in pts]))
    steps = np.concatenate([np.diff(t) for t, _a, _b in by_rep.values()])
    assert np.median(steps[steps < 600]) == pytest.approx(30, abs=2)
    acc = np.array([g[4] for g in gps])
    assert np.median(acc) < 30 and 0.003 < np.mean(acc > 100) < 0.05
    suspicious = demo_truth(make_engine(demo_db_template))["suspicious_visits"]
    visits = db.execute(
        "SELECT v.id, v.rep_id, v.check_in_at, v.check_out_at, c.lat, c.lon FROM visits v "
        "JOIN customers c ON c.id = v.customer_id WHERE v.check_in_at >= ?", (start,)
    ).fetchall()  # fmt: skip
    assert len(visits) > 3000
    teleports = 0
    for vid, rep, ci, co, clat, clon in visits:
        t, la, lo = by_rep[rep]
        a, b = ts(ci).timestamp(), ts(co).timestamp()
        inside = (t >= a) & (t <= b)
        assert inside.any(), vid
        near = dist_m(clat, clon, la[inside], lo[inside]) <= 150
        if suspicious.get(vid) == "far_checkin":
            assert not near.any(), vid
        else:
            assert near.mean() > 0.5, (vid, suspicious.get(vid))
        if suspicious.get(vid) == "teleport":
            # the trace jumps: > 2 km within one ~30 s step just before check-in
            j = int(np.searchsorted(t, a))
            jump = dist_m(la[j - 1], lo[j - 1], la[j], lo[j])
            teleports += 1
            assert jump > 1500 and t[j] - t[j - 1] < 40, (vid, jump)
    assert teleports >= 3
    # travelling speeds are plausible outside teleports
    t, la, lo = by_rep[1]
    v = dist_m(la[:-1], lo[:-1], la[1:], lo[1:]) / np.maximum(np.diff(t), 1) * 3.6
    assert np.percentile(v, 95) < 80


# --------------------------------------------------------------------------- funnel


def test_funnel_decreases_stage_by_stage(db: sqlite3.Connection) -> None:
    stages = ["lead", "visit", "opportunity", "quote", "contract", "payment"]
    reached = dict(db.execute(
        "SELECT stage, count(DISTINCT opportunity_id) FROM opportunity_stage_events GROUP BY stage"))  # fmt: skip
    counts = [reached[s] for s in stages]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 6, counts
    assert counts[0] == db.execute("SELECT count(*) FROM opportunities").fetchone()[0]
    for a, b in itertools.pairwise(counts):
        assert 0.45 <= b / a <= 0.85, counts
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for oid, stage, at in db.execute(
        "SELECT opportunity_id, stage, entered_at FROM opportunity_stage_events ORDER BY opportunity_id, entered_at, id"
    ):
        events[oid].append((stage, at))
    skipped = reopened = 0
    for evs in events.values():
        names = [s for s, _a in evs]
        assert names[0] == "lead"
        assert [a for _s, a in evs] == sorted(a for _s, a in evs)
        if len(set(names)) != len(names):
            reopened += 1
        idx = [stages.index(s) for s in dict.fromkeys(names)]
        if any(b - a > 1 for a, b in itertools.pairwise(idx)):
            skipped += 1
    assert skipped > 50 and reopened > 5
    as_of = dt.datetime.combine(TODAY, dt.time(15))  # 23:00 local in UTC
    opps = db.execute(
        "SELECT id, stage, status, opened_at, closed_at, next_step, next_step_at, amount_fen "
        "FROM opportunities").fetchall()  # fmt: skip
    no_quote = unpaid = booked = 0
    for oid, stage, status, opened, closed, step, step_at, amount in opps:
        assert amount > 0
        last_stage, last_at = events[oid][-1]
        assert stage == last_stage and ts(opened) == ts(events[oid][0][1])
        assert ts(last_at) <= as_of
        assert (status == "open") == (closed is None)
        if status == "won":
            assert stage == "payment"
        if (
            status == "open"
            and stage == "opportunity"
            and as_of - ts(last_at) > dt.timedelta(hours=48)
        ):
            no_quote += 1
        if status == "open" and stage == "contract" and as_of - ts(last_at) > dt.timedelta(days=14):
            unpaid += 1
        if step:
            booked += 1
            assert step_at is not None and status == "open"
    assert no_quote >= 10 and unpaid >= 5 and booked >= 100


def test_visits_linked_to_opportunities(db: sqlite3.Connection) -> None:
    linked = db.execute(
        "SELECT v.customer_id, o.customer_id, v.check_in_at, e.entered_at FROM visits v "
        "JOIN opportunities o ON o.id = v.opportunity_id "
        "JOIN opportunity_stage_events e ON e.opportunity_id = o.id AND e.stage = 'visit'"
    ).fetchall()
    assert len(linked) > 1000
    assert all(a == b for a, b, *_ in linked)
    assert sum(1 for *_x, ci, at in linked if ci == at) > 0.9 * len(linked)


# --------------------------------------------------------------------------- ORM compatibility


def test_bulk_rows_read_back_through_the_orm(demo_db_template: Path) -> None:
    engine = make_engine(demo_db_template)
    with Session(engine) as s:
        shift = s.scalars(select(Shift).limit(1)).one()
        assert shift.start_at.tzinfo is dt.UTC and shift.end_at > shift.start_at
        day_start = dt.datetime.combine(TODAY, dt.time(0), tzinfo=dt.UTC) - UTC8
        pts = s.scalars(
            select(GpsPoint).where(
                GpsPoint.rep_id == 7,
                GpsPoint.ts >= day_start,
                GpsPoint.ts < day_start + dt.timedelta(days=1),
            )
        ).all()
        assert pts and all(day_start <= p.ts < day_start + dt.timedelta(days=1) for p in pts)
        visit = s.scalars(select(Visit).where(Visit.opportunity_id.is_not(None)).limit(1)).one()
        assert visit.check_in_at.tzinfo is dt.UTC
    engine.dispose()


@pytest.mark.slow
def test_scale_two_multiplies_volumes(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "x2.db")
    summary = generate(cache.engine, scale=2, seed=5, today=dt.date(2026, 6, 30))
    cache.close()
    c = summary.counts
    assert c["regions"] == 3 and c["stores"] == 166 and c["reps"] == 254
    assert 5600 <= c["customers"] <= 6400 and c["users"] == 1 + 3 + 166
    conn = sqlite3.connect(tmp_path / "x2.db")
    codes = [r[0] for r in conn.execute("SELECT code FROM stores")]
    assert len(set(codes)) == 166 and "SH060" in codes
    assert conn.execute("SELECT name FROM holidays WHERE date = '2026-06-19'").fetchone() == (
        "端午节",
    )
    conn.close()


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", "demo", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_cli_writes_file_and_refuses_to_overwrite(tmp_path: Path, demo_db_template: Path) -> None:
    """Also the determinism test: another process, same seed and day -> the same rows."""
    out = tmp_path / "x.db"
    out.write_bytes(b"an older file")
    r = run_cli(
        "--out", str(out), "--today", DEMO_TODAY.isoformat(), "--seed", str(DEMO_SEED), "--force"
    )
    assert r.returncode == 0, r.stderr
    assert "stores" in r.stdout and " 83" in r.stdout and "gps_points" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]  # no temp files left
    cache = open_cache(out)
    assert cache.recovered is None
    with cache.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM reps").scalar() == 127
        meta = dict(conn.exec_driver_sql("SELECT key, value FROM meta").fetchall())
    cache.close()
    assert meta["demo_today"] == "2026-11-27" and meta["demo_seed"] == str(DEMO_SEED)
    assert table_checksums(out) == table_checksums(demo_db_template)
    before = out.read_bytes()
    r = run_cli("--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--force" in r.stderr and out.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [["--scale", "0"], ["--scale", "x"], ["--today", "2026-13-01"], ["--seed", "abc"]],
)
def test_cli_bad_arguments(tmp_path: Path, args: list[str]) -> None:
    r = run_cli("--out", str(tmp_path / "y.db"), *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "y.db").exists()


def test_cli_missing_folder(tmp_path: Path) -> None:
    r = run_cli("--out", str(tmp_path / "nope" / "y.db"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_portable_insert_path_writes_the_same_rows(
    tmp_path: Path, demo_db_template: Path, monkeypatch
) -> None:
    """The Core-insert path used on PostgreSQL stores exactly what the SQLite fast path stores."""
    from core.demo import _base

    original = _base.Gen.__post_init__

    def portable(self) -> None:
        original(self)
        self.sqlite = False

    monkeypatch.setattr(_base.Gen, "__post_init__", portable)
    cache = open_cache(tmp_path / "portable.db")
    generate(cache.engine, scale=1, seed=DEMO_SEED, today=DEMO_TODAY)
    cache.close()
    assert table_checksums(tmp_path / "portable.db") == table_checksums(demo_db_template)


def test_cli_interrupt_leaves_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    import argparse

    import core.demo as demo

    def interrupted(*_a, **_k) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "generate", interrupted)
    out = tmp_path / "z.db"
    args = argparse.Namespace(out=str(out), scale=1, seed=None, today=None, force=False)
    assert demo.cli_demo(args) == 130
    assert list(tmp_path.iterdir()) == []
    assert "nothing was written" in capsys.readouterr().err
