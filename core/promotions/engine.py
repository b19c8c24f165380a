"""The rule engine: measures per store×SKU and per lot, rule evaluation, gift choice, proposals.

``generate_proposals(session, store_ids, now)`` is what the central server runs on a timer
(and the demo seeds once). It is idempotent: a proposal's id is derived from
(store, SKU, lot, rule, business day), and no new proposal is made while one for the same
lot/rule is pending or was decided in the last :data:`REPROPOSE_AFTER_DAYS` days, so
running it twice — or on two server workers at once — never duplicates a proposal.

Sales windows end on the **last complete business day**: today once the store has closed
(local time past ``stores.closes_at``), else yesterday — a half day of sales would make
every SKU look slow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.orm import Session

from core.models import (
    DailySkuSales,
    InventoryLot,
    PromotionProposal,
    PromotionRule,
    ProposalStatus,
    Sku,
    SkuAffinity,
    Store,
    StoreSku,
)
from core.promotions import maths as pm
from core.promotions.explain import explain
from core.promotions.language import Rule, RuleSyntaxError, parse_rule

log = logging.getLogger(__name__)

#: A decided proposal blocks a new one for the same lot/rule for this many days.
REPROPOSE_AFTER_DAYS = 7
#: A gift must be slow or overstocked. "Slow" is relative to the store (a C-class mover):
#: its days of cover at the 28-day rate are among the store's slowest quarter, and at
#: least this many days — a fixed threshold would find nothing in a fast convenience
#: store and everything in a slow one.
SLOW_MIN_COVER_DAYS = 7
SLOW_QUANTILE = 0.75
#: Units beyond this many days of cover count as surplus a gift may use.
GIFT_KEEP_COVER_DAYS = 7


# --------------------------------------------------------------------------- store snapshot


@dataclass
class LotFacts:
    lot_id: int
    lot_code: str
    qty: int
    expiry_date: dt.date | None
    alert_date: dt.date | None


#: Days of sales history a snapshot holds (the longest window a rule can ask for).
WINDOW_DAYS = 28


@dataclass
class SkuFacts:
    """Everything the rules may ask about one SKU in one store on one day."""

    sku_id: int
    code: str
    name: str
    name_en: str
    price_fen: int
    cost_fen: int
    alert_days: int
    safety_stock: int | None
    max_stock: int | None
    #: units per day, oldest first; the last entry is ``as_of``
    daily: list[int] = field(default_factory=lambda: [0] * WINDOW_DAYS)
    lots: list[LotFacts] = field(default_factory=list)  # FEFO order, on-hand only

    @property
    def stock(self) -> int:
        return sum(lot.qty for lot in self.lots)


@dataclass
class StoreSnapshot:
    store_id: int
    store_name: str
    today: dt.date  # store-local business day
    as_of: dt.date  # last complete day of sales
    skus: dict[int, SkuFacts]

    def sales(self, sku_id: int, days: int, offset: int = 0) -> int:
        """Units sold in ``days`` days ending ``offset`` days before ``as_of``."""
        daily = self.skus[sku_id].daily
        return sum(daily[WINDOW_DAYS - offset - days : WINDOW_DAYS - offset])

    def cover_28d(self, sku_id: int) -> float:
        """Days the stock lasts at the 28-day rate (inf when it did not sell)."""
        f = self.skus[sku_id]
        rate = self.sales(sku_id, WINDOW_DAYS) / WINDOW_DAYS
        return f.stock / rate if rate else math.inf

    @cached_property
    def slow_cover_days(self) -> float:
        """Cover (days) from which a SKU counts as slow-moving in this store."""
        covers = sorted(self.cover_28d(k) for k, f in self.skus.items() if f.stock > 0)
        if not covers:
            return math.inf
        q = covers[min(len(covers) - 1, int(SLOW_QUANTILE * len(covers)))]
        return max(float(SLOW_MIN_COVER_DAYS), q)


def _fefo_key(lot: LotFacts) -> tuple[dt.date, int]:
    return (lot.expiry_date or dt.date.max, lot.lot_id)


def load_snapshot(
    session: Session, store_id: int, today: dt.date, as_of: dt.date | None = None
) -> StoreSnapshot:
    """One store's assortment, on-hand lots (not expired) and 28 days of sales to ``as_of``
    (default: yesterday). Plain column queries: this runs for every store on every cycle."""
    store = session.execute(select(Store.id, Store.name).where(Store.id == store_id)).first()
    if store is None:
        raise KeyError(f"store {store_id}")
    as_of = as_of or today - dt.timedelta(days=1)
    start = as_of - dt.timedelta(days=WINDOW_DAYS - 1)
    skus: dict[int, SkuFacts] = {}
    sku_cols = (
        Sku.id,
        Sku.code,
        Sku.name,
        Sku.name_en,
        Sku.price_fen,
        Sku.cost_fen,
        Sku.alert_days,
    )
    for row in session.execute(
        select(*sku_cols, StoreSku.safety_stock, StoreSku.max_stock)
        .join(StoreSku, StoreSku.sku_id == Sku.id)
        .where(StoreSku.store_id == store_id)
    ):
        skus[row[0]] = SkuFacts(*row)
    lot_rows = session.execute(
        select(
            InventoryLot.id,
            InventoryLot.sku_id,
            InventoryLot.lot_code,
            InventoryLot.qty - InventoryLot.written_off_qty,
            InventoryLot.expiry_date,
            InventoryLot.alert_date,
        ).where(
            InventoryLot.store_id == store_id,
            InventoryLot.qty - InventoryLot.written_off_qty > 0,
            InventoryLot.received_on <= today,
            or_(InventoryLot.expiry_date.is_(None), InventoryLot.expiry_date >= today),
        )
    ).all()
    missing = {r[1] for r in lot_rows} - skus.keys()
    if missing:  # stock of a SKU outside the assortment: no safety stock
        for row in session.execute(select(*sku_cols).where(Sku.id.in_(missing))):
            skus[row[0]] = SkuFacts(*row, None, None)
    for lot_id, sku_id, code, qty, expiry, alert in lot_rows:
        f = skus[sku_id]
        if alert is None and expiry is not None:
            alert = expiry - dt.timedelta(days=f.alert_days)
        f.lots.append(LotFacts(lot_id, code, qty, expiry, alert))
    for f in skus.values():
        f.lots.sort(key=_fefo_key)
    # Dates as ISO text: parsing ~2k date objects per store was most of the snapshot's time.
    slot = {(start + dt.timedelta(days=i)).isoformat(): i for i in range(WINDOW_DAYS)}
    for sku_id, day, units in session.execute(
        select(DailySkuSales.sku_id, cast(DailySkuSales.date, String), DailySkuSales.units).where(
            DailySkuSales.store_id == store_id,
            DailySkuSales.date >= start,
            DailySkuSales.date <= as_of,
        )
    ):
        f = skus.get(sku_id)
        i = slot.get(day[:10])
        if f is not None and i is not None:
            f.daily[i] = units
    return StoreSnapshot(store[0], store[1], today, as_of, skus)


def sku_metrics(snap: StoreSnapshot, sku_id: int) -> dict[str, Any]:
    f = snap.skus[sku_id]
    s7 = snap.sales(sku_id, 7)
    prev = snap.sales(sku_id, 7, offset=7)
    s28 = snap.sales(sku_id, 28)
    stock = f.stock
    rate = s7 / 7.0
    if stock == 0:
        cover: float = 0.0
    elif rate == 0:
        cover = math.inf
    else:
        cover = stock / rate
    return {
        "stock": stock,
        "safety_stock": f.safety_stock,
        "max_stock": f.max_stock,
        "sales_7d": s7,
        "sales_prev_7d": prev,
        "sales_28d": s28,
        # Undefined (None: comparisons false) when the previous week sold nothing.
        "sales_7d_wow": (s7 - prev) * 100.0 / prev if prev else None,
        "daily_rate": rate,
        "cover_days": cover,
    }


def lot_metrics(
    snap: StoreSnapshot, sku_id: int, lot: LotFacts, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    f = snap.skus[sku_id]
    values = dict(base) if base is not None else sku_metrics(snap, sku_id)
    ahead = units_ahead(f, lot)
    values["lot_qty"] = lot.qty
    values["units_ahead"] = ahead
    if lot.expiry_date is None:
        values.update(days_to_expiry=None, expected_sales_before_expiry=None, in_alert_window=False)
        return values
    days = (lot.expiry_date - snap.today).days
    values["days_to_expiry"] = days
    values["expected_sales_before_expiry"] = pm.expected_units(
        values["daily_rate"], max(days, 0), ahead, lot.qty
    )
    values["in_alert_window"] = lot.alert_date is not None and lot.alert_date <= snap.today
    return values


def units_ahead(f: SkuFacts, lot: LotFacts) -> int:
    """Units of the same SKU that sell before this lot (first-expiry-first-out)."""
    key = _fefo_key(lot)
    return sum(o.qty for o in f.lots if _fefo_key(o) < key)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Match:
    """One SKU (or lot) a rule triggers on, with the measures it saw (for the preview)."""

    store_id: int
    sku_id: int
    sku_code: str
    sku_name: str
    lot_id: int | None
    lot_code: str
    values: dict[str, Any]


def evaluate_rule(rule: Rule, snap: StoreSnapshot) -> list[Match]:
    out: list[Match] = []
    for sku_id, f in sorted(snap.skus.items()):
        if rule.subject == "lot":
            base = sku_metrics(snap, sku_id) if f.lots else None
            for lot in f.lots:
                values = lot_metrics(snap, sku_id, lot, base)
                if rule.evaluate(values):
                    out.append(
                        Match(
                            snap.store_id, sku_id, f.code, f.name, lot.lot_id, lot.lot_code, values
                        )
                    )
        else:
            if f.safety_stock is None:
                continue  # not in the assortment: no safety stock to reason about
            values = sku_metrics(snap, sku_id)
            if rule.evaluate(values):
                out.append(Match(snap.store_id, sku_id, f.code, f.name, None, "", values))
    return out


@dataclass(frozen=True)
class PreviewRow:
    sku_code: str
    sku_name: str
    lot_code: str
    stock: int
    safety_stock: int | None
    sales_7d: int
    sales_7d_wow: float | None
    days_to_expiry: int | None


def preview_rule(session: Session, store_id: int, text: str, now: dt.datetime) -> list[PreviewRow]:
    """Which SKUs/lots of ``store_id`` the rule text would trigger at ``now``.

    Raises :class:`RuleSyntaxError` for a text that does not parse.
    """
    rule = parse_rule(text)
    store = session.get(Store, store_id)
    if store is None:
        raise KeyError(f"store {store_id}")
    today, as_of = business_days(now, store.timezone, store.closes_at)
    snap = load_snapshot(session, store_id, today, as_of)
    return [
        PreviewRow(
            m.sku_code,
            m.sku_name,
            m.lot_code,
            int(m.values.get("lot_qty", m.values["stock"])),
            m.values["safety_stock"],
            m.values["sales_7d"],
            m.values["sales_7d_wow"],
            m.values.get("days_to_expiry"),
        )
        for m in evaluate_rule(rule, snap)
    ]


# --------------------------------------------------------------------------- gift choice


@dataclass(frozen=True)
class GiftChoice:
    sku_id: int
    code: str
    name: str
    lift: float
    baskets: int
    reason: str  # slow | overstock
    stock: int
    excess_units: int
    unsold_before_expiry: int
    cost_fen: int


def choose_gift(
    session: Session, snap: StoreSnapshot, sku_id: int, offer_end: dt.date
) -> GiftChoice | None:
    """The best gift for ``sku_id``: bought with it (lift > 1), slow or overstocked, and
    with no lot on hand that is — or will be during the offer — in its expiry alert window.
    """
    rows = session.execute(
        select(SkuAffinity).where(
            or_(SkuAffinity.sku_id == sku_id, SkuAffinity.other_sku_id == sku_id),
            SkuAffinity.lift > 1.0,
        )
    ).scalars()
    partners: dict[int, SkuAffinity] = {}
    for a in rows:
        other = a.other_sku_id if a.sku_id == sku_id else a.sku_id
        if other != sku_id and (other not in partners or a.lift > partners[other].lift):
            partners[other] = a
    best: tuple[tuple[float, int, int], GiftChoice] | None = None
    for other, a in partners.items():
        f = snap.skus.get(other)
        if f is None or f.stock <= 0:
            continue
        if any(lot.alert_date is not None and lot.alert_date <= offer_end for lot in f.lots):
            continue  # near expiry now or during the offer: never a gift
        rate28 = snap.sales(other, WINDOW_DAYS) / WINDOW_DAYS
        over = f.max_stock is not None and f.stock > f.max_stock
        slow = snap.cover_28d(other) >= snap.slow_cover_days
        if not (over or slow):
            continue
        excess = max(
            f.stock - (f.max_stock if f.max_stock is not None else f.stock),
            f.stock - math.ceil(rate28 * GIFT_KEEP_COVER_DAYS),
            0,
        )
        if excess <= 0:
            continue
        unsold = 0
        for lot in f.lots:
            if lot.expiry_date is None:
                continue
            days = (lot.expiry_date - snap.today).days
            unsold += round(lot.qty - pm.expected_units(rate28, days, units_ahead(f, lot), lot.qty))
        choice = GiftChoice(
            other,
            f.code,
            f.name,
            float(a.lift),
            int(a.baskets),
            "overstock" if over else "slow",
            f.stock,
            excess,
            unsold,
            f.cost_fen,
        )
        key = (float(a.lift), int(a.baskets), excess)
        if best is None or key > best[0]:
            best = (key, choice)
    return best[1] if best else None


# --------------------------------------------------------------------------- proposals


def local_today(now: dt.datetime, timezone: str) -> dt.date:
    return now.astimezone(ZoneInfo(timezone or "Asia/Shanghai")).date()


def business_days(
    now: dt.datetime, timezone: str, closes_at: dt.time | None
) -> tuple[dt.date, dt.date]:
    """(today, last complete sales day) in the store's time zone at ``now``."""
    local = now.astimezone(ZoneInfo(timezone or "Asia/Shanghai"))
    today = local.date()
    closed = closes_at is not None and local.time().replace(tzinfo=None) >= closes_at
    return today, today if closed else today - dt.timedelta(days=1)


def proposal_id(store_id: int, sku_id: int, lot_id: int | None, rule_id: int, day: dt.date) -> str:
    """Deterministic id: two generators (server workers) racing insert the same key."""
    raw = f"{store_id}:{sku_id}:{lot_id or 0}:{rule_id}:{day.isoformat()}"
    return hashlib.sha1(raw.encode()).hexdigest()[:32]


def load_rules(session: Session) -> list[tuple[PromotionRule, Rule]]:
    """Enabled rules that parse; a broken rule is logged and skipped, never fatal."""
    out = []
    for row in session.scalars(
        select(PromotionRule).where(PromotionRule.enabled.is_(True)).order_by(PromotionRule.id)
    ):
        try:
            out.append((row, parse_rule(row.text)))
        except RuleSyntaxError as e:
            log.warning("promotion rule %s does not parse: %s", row.code, e)
    return out


def _blocked_keys(
    session: Session, store_ids: Sequence[int], today: dt.date
) -> set[tuple[int, int, int | None, int]]:
    since = dt.datetime.combine(
        today - dt.timedelta(days=REPROPOSE_AFTER_DAYS), dt.time(), tzinfo=dt.UTC
    )
    rows = session.execute(
        select(
            PromotionProposal.store_id,
            PromotionProposal.sku_id,
            PromotionProposal.lot_id,
            PromotionProposal.rule_id,
        ).where(
            PromotionProposal.store_id.in_(store_ids),
            or_(
                PromotionProposal.status == ProposalStatus.PENDING.value,
                and_(
                    PromotionProposal.status.in_(
                        [ProposalStatus.APPROVED.value, ProposalStatus.REJECTED.value]
                    ),
                    PromotionProposal.generated_at >= since,
                ),
            ),
        )
    )
    return {(s, k, lot, r) for s, k, lot, r in rows}


def expire_stale(session: Session, store_ids: Sequence[int], today: dt.date) -> int:
    """Pending proposals whose offer window has passed can no longer be decided."""
    n = 0
    for p in session.scalars(
        select(PromotionProposal).where(
            PromotionProposal.store_id.in_(store_ids),
            PromotionProposal.status == ProposalStatus.PENDING.value,
            PromotionProposal.ends_on < today,
        )
    ):
        p.status = ProposalStatus.EXPIRED.value
        p.version += 1
        n += 1
    return n


def build_proposal(
    session: Session,
    snap: StoreSnapshot,
    row: PromotionRule,
    rule: Rule,
    match: Match,
    now: dt.datetime,
) -> PromotionProposal:
    f = snap.skus[match.sku_id]
    v = match.values
    lot = next((x for x in f.lots if x.lot_id == match.lot_id), None)
    earliest = next((x.expiry_date for x in f.lots if x.expiry_date is not None), None)
    expiry = lot.expiry_date if lot is not None else earliest
    days = (expiry - snap.today).days if expiry is not None else None
    context: dict[str, Any] = {
        "sku_code": f.code,
        "sku_name": f.name,
        "lot_code": match.lot_code,
        "expiry_date": expiry.isoformat() if expiry else None,
        "safety_stock": f.safety_stock,
        "sales_prev_7d": v["sales_prev_7d"],
        "sales_7d_wow": v["sales_7d_wow"],
        "as_of": snap.as_of.isoformat(),
        "rule_text": row.text,
    }
    gift: GiftChoice | None = None
    if rule.action == "clearance_gift":
        offer_days = pm.GIFT_OFFER_DAYS if days is None else max(0, min(pm.GIFT_OFFER_DAYS, days))
        offer_end = snap.today + dt.timedelta(days=max(offer_days - 1, 0))
        gift = choose_gift(session, snap, f.sku_id, offer_end)
        qty = lot.qty if lot is not None else f.stock
        m = pm.gift_maths(
            stock=qty,
            days_to_expiry=days,
            sales_7d=v["sales_7d"],
            sales_28d=v["sales_28d"],
            price_fen=f.price_fen,
            cost_fen=f.cost_fen,
            discount_pct=row.min_discount_pct,
            gift_excess_units=gift.excess_units if gift else 0,
            gift_unsold_before_expiry=gift.unsold_before_expiry if gift else 0,
            gift_cost_fen=gift.cost_fen if gift else 0,
        )
        if gift is not None:
            context.update(
                gift_sku_code=gift.code,
                gift_name=gift.name,
                gift_lift=round(gift.lift, 2),
                gift_reason=gift.reason,
                gift_stock=gift.stock,
            )
    else:
        qty = lot.qty if lot is not None else f.stock
        ahead = units_ahead(f, lot) if lot is not None else 0
        m = pm.markdown_maths(
            qty=qty,
            days_to_expiry=days if days is not None else pm.GIFT_OFFER_DAYS,
            sales_7d=v["sales_7d"],
            sales_28d=v["sales_28d"],
            ahead=ahead,
            price_fen=f.price_fen,
            cost_fen=f.cost_fen,
            min_pct=row.min_discount_pct,
            max_pct=row.max_discount_pct,
        )
    share = (m.value_at_risk_fen / (m.on_hand * m.cost_fen)) if m.on_hand and m.cost_fen else 0.0
    ends = snap.today + dt.timedelta(days=max(m.offer_days - 1, 0))
    data = m.to_json() | context
    p = PromotionProposal(
        id=proposal_id(snap.store_id, f.sku_id, match.lot_id, row.id, snap.today),
        store_id=snap.store_id,
        sku_id=f.sku_id,
        lot_id=match.lot_id,
        rule_id=row.id,
        template=rule.action,
        discount_pct=m.discount_pct,
        gift_sku_id=gift.sku_id if gift else None,
        status=ProposalStatus.PENDING.value,
        urgency=pm.urgency(days, share if rule.action == "markdown" else 0.0),
        value_at_risk_fen=m.value_at_risk_fen,
        maths=data,
        generated_at=now,
        starts_on=snap.today,
        ends_on=ends,
    )
    p.explanation = explain(rule.action, data, translate=lambda s: s)
    return p


def generate_proposals(
    session: Session, store_ids: Iterable[int], now: dt.datetime
) -> list[PromotionProposal]:
    """Evaluate every enabled rule on ``store_ids`` and add the new proposals to the session.

    Returns the proposals added (already flushed). Safe to call repeatedly.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    ids = list(store_ids)
    rules = load_rules(session)
    stores = session.execute(
        select(Store.id, Store.timezone, Store.closes_at).where(Store.id.in_(ids))
    ).all()
    added: list[PromotionProposal] = []
    for store_id, tzname, closes_at in stores:
        today, as_of = business_days(now, tzname, closes_at)
        expire_stale(session, [store_id], today)
        blocked = _blocked_keys(session, [store_id], today)
        snap = load_snapshot(session, store_id, today, as_of)
        for row, rule in rules:
            for match in evaluate_rule(rule, snap):
                key = (store_id, match.sku_id, match.lot_id, row.id)
                if key in blocked:
                    continue
                if int(match.values.get("lot_qty", match.values["stock"]) or 0) <= 0:
                    continue  # nothing on the shelf: no offer can run (the preview still lists it)
                p = build_proposal(session, snap, row, rule, match, now)
                if session.get(PromotionProposal, p.id) is not None:
                    continue
                session.add(p)
                blocked.add(key)
                added.append(p)
    session.flush()
    return added
