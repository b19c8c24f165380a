"""SKUs, store assortments, 35 days of SKU sales, expiry lots and basket affinity.

Two conditions the promotion and alert owners rely on are planted on purpose and recorded
in the ground truth:

* ``near_expiry_lots``: every store holds a few lots inside their alert window
  (alert_date ≤ today < expiry) with more units than the store can expect to sell before
  the expiry date at its recent daily rate;
* ``low_stock_rising``: 2–4 store×SKU per region whose on-hand is below safety stock while
  the last 7 days sold > 1.4 × the 7 days before.

Every other store×SKU keeps its on-hand between safety and max stock and its fresh lots
outside the alert window, so those two lists are exactly what a correct rule finds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass

import numpy as np

from core.demo import _data
from core.demo._base import Gen
from core.demo.org import Org
from core.demo.traffic import WEEKDAY, holidays_in

#: category -> mean units per day in an average store
CATEGORY_RATE = {
    "乳制品": 6.0, "烘焙": 5.0, "生鲜": 5.0, "冷冻": 2.5, "饮料": 8.0, "零食": 4.0,
    "粮油调味": 2.0, "日化": 1.5, "个护": 1.2, "母婴": 0.8, "酒类": 1.0,
}  # fmt: skip
PERISHABLE = ("乳制品", "烘焙", "生鲜")
SALES_DAYS = 35


@dataclass(frozen=True)
class SkuInfo:
    id: int
    code: str
    name: str
    name_en: str
    category: str
    unit: str
    price_fen: int
    cost_fen: int
    shelf_life_days: int | None
    alert_days: int
    #: mean units per day in an average store
    rate: float


def _ean13(n: int) -> str:
    body = f"69{n:010d}"
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def generate_inventory(gen: Gen, org: Org) -> None:
    r = gen.rnd("inventory")
    rng = gen.np_rng("inventory")
    today = gen.today

    # ---------------------------------------------------------------- SKUs
    skus: list[SkuInfo] = []
    for category, (life, alert, products) in _data.CATALOGUE.items():
        for name, name_en, unit, price in products:
            sid = len(skus) + 1
            shelf = r.randint(*life) if life else None
            price_fen = round(price * 100)
            skus.append(
                SkuInfo(
                    id=sid,
                    code=_ean13(r.randrange(10**7) * 1000 + sid),
                    name=name,
                    name_en=name_en,
                    category=category,
                    unit=unit,
                    price_fen=price_fen,
                    cost_fen=int(price_fen * r.uniform(0.58, 0.76)),
                    shelf_life_days=shelf,
                    alert_days=alert,
                    rate=CATEGORY_RATE[category] * r.lognormvariate(0, 0.5),
                )
            )
    gen.insert(
        "skus",
        ("id", "code", "name", "name_en", "category", "unit", "price_fen", "cost_fen",
         "shelf_life_days", "alert_days"),
        [
            (s.id, s.code, s.name, s.name_en, s.category, s.unit,
             s.price_fen, s.cost_fen, s.shelf_life_days, s.alert_days)
            for s in skus
        ],
    )  # fmt: skip
    _affinity(gen, skus)

    # ---------------------------------------------------------------- assortments
    days = [today - dt.timedelta(days=SALES_DAYS - 1 - i) for i in range(SALES_DAYS)]
    holiday_days = {d for d, _n in holidays_in(days[0], today)}
    by_region: dict[int, list[int]] = {}
    for store in org.stores:
        by_region.setdefault(store.region_id, []).append(store.id)
    rising_stores = {
        sid
        for rid, ids in sorted(by_region.items())
        for sid in r.sample(ids, min(len(ids), r.randint(2, 4)))
    }
    store_sku_rows, sales_rows, lot_rows = [], [], []
    near_expiry: list[int] = []
    rising: list[list[int]] = []
    weights = [1.4 if s.category in PERISHABLE else 1.0 for s in skus]
    for i, store in enumerate(org.stores):
        if i % 10 == 0:
            gen.step(0.3 + 0.15 * i / len(org.stores), "stock")
        n = r.randint(60, 80)
        chosen: list[SkuInfo] = []
        pool, w = list(skus), list(weights)
        while len(chosen) < n:
            k = r.choices(range(len(pool)), w)[0]
            chosen.append(pool.pop(k))
            w.pop(k)
        chosen.sort(key=lambda s: s.id)
        store_factor = store.base_visitors / 45.0
        lam = np.array([s.rate for s in chosen]) * store_factor * rng.lognormal(0, 0.3, n)
        day_f = np.array(
            [WEEKDAY[store.kind][d.weekday()] * (1.3 if d in holiday_days else 1.0) for d in days]
        )
        rising_idx = -1
        if store.id in rising_stores:
            candidates = [
                j for j in range(n) if lam[j] >= 3.0 and chosen[j].category not in PERISHABLE
            ]
            rising_idx = r.choice(candidates or [int(np.argmax(lam))])
        mult = np.ones((n, SALES_DAYS))
        if rising_idx >= 0:
            mult[rising_idx, -7:] = 2.0
        units = rng.poisson(lam[:, None] * day_f[None, :] * mult)
        if rising_idx >= 0:
            row = units[rising_idx]
            while row[-7:].sum() <= 1.4 * row[-14:-7].sum() + 1:
                row[-1 - r.randrange(7)] += 1
        discount = np.where(
            rng.random((n, SALES_DAYS)) < 0.1, rng.uniform(0.8, 0.95, (n, SALES_DAYS)), 1.0
        )
        for j, sku in enumerate(chosen):
            price = sku.price_fen
            safety = math.ceil(lam[j] * 3) + 2
            max_stock = safety * 3 + 6
            store_sku_rows.append((store.id, sku.id, safety, max_stock))
            for di in np.flatnonzero(units[j]).tolist():
                u = int(units[j, di])
                sales_rows.append(
                    (store.id, sku.id, days[di], u, round(u * price * discount[j, di]))
                )
            # lots ------------------------------------------------------
            shelf = sku.shelf_life_days
            alert = sku.alert_days
            cost = sku.cost_fen
            if j == rising_idx:
                total = max(1, safety // 3)
                n_lots = 1
            else:
                total = r.randint(safety, max_stock)
                n_lots = r.randint(1, 3)
            sizes = _split(r, total, n_lots)
            for k, qty in enumerate(sizes):
                if shelf is None:
                    received = today - dt.timedelta(days=r.randint(3, 60))
                    expiry = alert_date = None
                else:
                    lo = alert + 1 + k * max(1, shelf // 6)
                    days_left = r.randint(min(lo, shelf), max(min(lo, shelf), shelf))
                    expiry = today + dt.timedelta(days=days_left)
                    received = expiry - dt.timedelta(days=shelf)
                    alert_date = expiry - dt.timedelta(days=alert)
                lot_rows.append(
                    [len(lot_rows) + 1, store.id, sku.id, f"L{received:%y%m%d}{k + 1:02d}",
                     qty, received, expiry, alert_date, cost, price, 0]
                )  # fmt: skip
            if rising_idx == j:
                rising.append([store.id, sku.id])
        # planted near-expiry overstock: a few lots per store inside their alert window
        expiring = [
            j for j in range(n)
            if chosen[j].shelf_life_days is not None and j != rising_idx
        ]  # fmt: skip
        perishable_first = sorted(
            expiring, key=lambda j: (chosen[j].category not in PERISHABLE, r.random())
        )
        for j in perishable_first[: r.randint(3, 6)]:
            sku = chosen[j]
            alert = sku.alert_days
            shelf = sku.shelf_life_days or 0
            days_left = r.randint(1, max(1, min(alert, shelf - 1)))
            qty = math.ceil(lam[j] * days_left * r.uniform(1.8, 3.2)) + r.randint(4, 12)
            expiry = today + dt.timedelta(days=days_left)
            received = expiry - dt.timedelta(days=shelf)
            lot_rows.append(
                [len(lot_rows) + 1, store.id, sku.id, f"L{received:%y%m%d}09", qty, received,
                 expiry, expiry - dt.timedelta(days=alert), sku.cost_fen, sku.price_fen, 0]
            )  # fmt: skip
            near_expiry.append(len(lot_rows))
        # last week's waste: lots that expired and were written off
        for j in perishable_first[-2:]:
            sku = chosen[j]
            shelf = sku.shelf_life_days or 0
            alert = sku.alert_days
            expiry = today - dt.timedelta(days=r.randint(1, 10))
            received = expiry - dt.timedelta(days=shelf)
            lot_rows.append(
                [len(lot_rows) + 1, store.id, sku.id, f"L{received:%y%m%d}08", 0, received,
                 expiry, expiry - dt.timedelta(days=alert), sku.cost_fen, sku.price_fen,
                 r.randint(2, 10)]
            )  # fmt: skip
    gen.insert("store_skus", ("store_id", "sku_id", "safety_stock", "max_stock"), store_sku_rows)
    gen.insert(
        "daily_sku_sales", ("store_id", "sku_id", "date", "units", "revenue_fen"), sales_rows
    )
    gen.insert(
        "inventory_lots",
        ("id", "store_id", "sku_id", "lot_code", "qty", "received_on", "expiry_date",
         "alert_date", "cost_fen", "price_fen", "written_off_qty"),
        lot_rows,
    )  # fmt: skip
    gen.truth["near_expiry_lots"] = near_expiry
    gen.truth["low_stock_rising"] = sorted(rising)


def _split(r: random.Random, total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    cuts = sorted(r.sample(range(1, total), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(edges)]


def _affinity(gen: Gen, skus: list[SkuInfo]) -> None:
    r = gen.rnd("affinity")
    by_cat: dict[str, list[SkuInfo]] = {}
    for s in skus:
        by_cat.setdefault(s.category, []).append(s)
    pairs: dict[tuple[int, int], tuple[int, float]] = {}
    for s in skus:
        cat = s.category
        same = [o for o in by_cat[cat] if o.id != s.id]
        other = [o for c in _data.COMPLEMENTS.get(cat, ()) for o in by_cat.get(c, [])]
        for o, strong in [(o, False) for o in r.sample(same, min(2, len(same)))] + [
            (o, True) for o in r.sample(other, min(3, len(other)))
        ]:
            a, b = s.id, o.id
            if (a, b) in pairs:
                continue
            lift = round(r.uniform(1.8, 4.2) if strong else r.uniform(1.1, 2.2), 2)
            baskets = r.randint(40, 2400)
            pairs[(a, b)] = pairs[(b, a)] = (baskets, lift)
    gen.insert(
        "sku_affinity",
        ("sku_id", "other_sku_id", "baskets", "lift"),
        [(a, b, n, lift) for (a, b), (n, lift) in sorted(pairs.items())],
    )
