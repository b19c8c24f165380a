"""Public holidays and 13 weeks of hourly door-counter + POS traffic.

visitors ~ Poisson(store base × weekday × hour-of-day profile × holiday × day noise);
transactions ~ Binomial(visitors, store conversion ± noise), so conversion sits around
15–35 %. A handful of counter outages are planted: several consecutive opening hours with
zero visitors while the tills keep ringing, or an absurd spike of visitors for an hour or
two. They are listed in the ground truth (``outages``) for the traffic owners' tests.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from core.demo import _data
from core.demo._base import Gen, day_epoch, to_datetime
from core.demo.org import Org

WEEKDAY = {
    "mall": (0.85, 0.82, 0.86, 0.9, 1.08, 1.45, 1.38),
    "street": (0.95, 0.94, 0.96, 0.98, 1.08, 1.2, 1.12),
    "community": (0.98, 0.97, 0.98, 0.99, 1.04, 1.12, 1.1),
}
HOLIDAY_LIFT = {"mall": 1.65, "street": 1.25, "community": 1.1}


def _profile(kind: str) -> np.ndarray:
    """Relative visitors per local hour 0..23 (peaks at lunch and after work)."""
    h = np.arange(24, dtype=float)

    def bump(centre: float, width: float, height: float) -> np.ndarray:
        return height * np.exp(-0.5 * ((h - centre) / width) ** 2)

    if kind == "mall":
        p = 0.35 + bump(13, 1.6, 0.9) + bump(19, 1.8, 1.1) + bump(16, 2.5, 0.4)
    elif kind == "street":
        p = 0.3 + bump(8, 1.0, 0.8) + bump(12.3, 1.2, 1.0) + bump(18.3, 1.5, 1.0)
    else:
        p = 0.3 + bump(7.8, 1.1, 0.9) + bump(11.5, 1.5, 0.5) + bump(17.8, 1.4, 1.1)
    return p / p.mean()


def holidays_in(start: dt.date, end: dt.date) -> list[tuple[dt.date, str]]:
    out = []
    for first, last, name in _data.HOLIDAYS:
        d, stop = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while d <= stop:
            if start <= d <= end:
                out.append((d, name))
            d += dt.timedelta(days=1)
    return out


def generate_traffic(gen: Gen, org: Org) -> None:
    holidays = holidays_in(gen.history_start, gen.today + dt.timedelta(days=90))
    gen.insert("holidays", ("date", "name"), holidays)
    holiday_days = {d for d, _n in holidays}

    rng = gen.np_rng("traffic")
    days = [gen.history_start + dt.timedelta(days=i) for i in range(91)]
    n_days = len(days)
    weekday = np.array([d.weekday() for d in days])
    is_holiday = np.array([d in holiday_days for d in days])
    day0 = np.array([day_epoch(d) for d in days], dtype=np.int64)
    trend = np.linspace(0.96, 1.04, n_days)

    outages = _plan_outages(gen, org, days, holiday_days)
    truth: list[list[object]] = []
    rows: list[tuple[object, ...]] = []
    for i, store in enumerate(org.stores):
        if i % 10 == 0:
            gen.step(0.15 + 0.15 * i / len(org.stores), "traffic")
        hours = np.arange(store.opens, store.closes)
        prof = _profile(store.kind)[hours]
        wd = np.array(WEEKDAY[store.kind])[weekday]
        hol = np.where(is_holiday, HOLIDAY_LIFT[store.kind], 1.0)
        day_noise = rng.lognormal(0.0, 0.12, n_days)
        lam = store.base_visitors * np.outer(wd * hol * day_noise * trend, prof)
        visitors = rng.poisson(lam)
        conv = np.clip(
            store.conversion
            * rng.normal(1.0, 0.08, visitors.shape)
            * np.where(hol > 1, 0.9, 1.0)[:, None],
            0.08,
            0.6,
        )
        transactions = rng.binomial(visitors, conv)
        basket = store.basket_fen * rng.lognormal(0.0, 0.12, visitors.shape)
        sales = np.rint(transactions * basket / 10).astype(np.int64) * 10
        units = rng.poisson(transactions * 2.4)
        for kind, di, h0, length in outages.get(store.id, ()):
            cols = slice(h0 - store.opens, h0 - store.opens + length)
            if kind == "zero":
                visitors[di, cols] = 0
            else:
                visitors[di, cols] = visitors[di, cols] * rng.integers(15, 40) + 500
            truth.append(
                [store.id, to_datetime(int(day0[di]) + h0 * 3600).isoformat(), length, kind]
            )
        starts = day0[:, None] + hours[None, :] * 3600
        for s, v, t, f, u in zip(
            starts.ravel().tolist(),
            visitors.ravel().tolist(),
            transactions.ravel().tolist(),
            sales.ravel().tolist(),
            units.ravel().tolist(),
            strict=True,
        ):
            rows.append((store.id, s, v, t, f, u, "counter"))
    gen.insert(
        "hourly_traffic",
        ("store_id", "hour_start", "visitors", "transactions", "sales_fen", "units", "source"),
        rows,
    )
    gen.truth["outages"] = sorted(truth)


def _plan_outages(
    gen: Gen, org: Org, days: list[dt.date], holidays: set[dt.date]
) -> dict[int, list[tuple[str, int, int, int]]]:
    """store id -> [(zero|spike, day index, first local hour, hours)]; two in the last week."""
    r = gen.rnd("outages")
    n = 6 * gen.scale
    stores = r.sample(org.stores, min(n, len(org.stores)))
    plan: dict[int, list[tuple[str, int, int, int]]] = {}
    for k, store in enumerate(stores):
        kind = "spike" if k % 3 == 2 else "zero"
        if k < 2:
            di = len(days) - 1 - r.randrange(1, 7)
        else:
            di = r.randrange(0, len(days) - 7)
            while days[di] in holidays:
                di = r.randrange(0, len(days) - 7)
        length = r.randint(3, 8) if kind == "zero" else r.randint(1, 2)
        h0 = r.randint(store.opens + 1, store.closes - length)
        plan.setdefault(store.id, []).append((kind, di, h0, length))
    return plan
