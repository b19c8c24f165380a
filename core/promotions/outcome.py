"""Did the promotion do what the maths said? Forecast vs actual sell-through per decision.

For each decided proposal, the actual units are the SKU's daily sales in the store from
the offer's first day to its last (or to the last day with sales data, while it runs).
The lot's share follows the same first-expiry-first-out assumption as the forecast: units
of earlier lots sell first. The forecast is re-run for the days that actually elapsed, so
a promotion halfway through is compared with half its forecast, not all of it.

:func:`promotion_outcomes` is the entry point for the queue's history tab and for the
weekly review pack (``core.reports``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import (
    DailySkuSales,
    InventoryLot,
    PromotionDecision,
    PromotionProposal,
    Sku,
    Store,
)
from core.promotions import maths as pm
from core.promotions.engine import local_today


@dataclass(frozen=True)
class PromotionOutcome:
    proposal_id: str
    store_id: int
    store_code: str
    store_name: str
    sku_code: str
    sku_name: str
    lot_code: str
    template: str
    decision: str  # approve | reject
    discount_pct: int | None  # the approved discount (None when rejected)
    decided_by_name: str
    decided_at: dt.datetime
    starts_on: dt.date
    ends_on: dt.date
    offer_days: int
    days_run: int  # days with sales data inside the offer window
    status: str  # not_started | running | finished
    on_hand: int
    forecast_units: float  # over the whole offer (with the offer if approved, without if not)
    forecast_units_to_date: float  # the same forecast for the days that ran
    actual_units: int  # the lot's share of actual sales in the days that ran
    forecast_sell_through: float
    actual_sell_through: float
    waste_avoided_forecast_fen: int

    @property
    def error_units(self) -> float:
        """Actual minus forecast for the elapsed days (positive: sold better than forecast)."""
        return self.actual_units - self.forecast_units_to_date


def promotion_outcomes(
    session: Session, store_ids: Sequence[int], start: dt.date, end: dt.date
) -> list[PromotionOutcome]:
    """Outcomes of the proposals of ``store_ids`` decided on local days ``start``..``end``."""
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    rows = session.execute(
        select(PromotionDecision, PromotionProposal, Store, Sku, InventoryLot)
        .join(PromotionProposal, PromotionProposal.id == PromotionDecision.proposal_id)
        .join(Store, Store.id == PromotionProposal.store_id)
        .join(Sku, Sku.id == PromotionProposal.sku_id)
        .outerjoin(InventoryLot, InventoryLot.id == PromotionProposal.lot_id)
        .where(
            PromotionProposal.store_id.in_(list(store_ids)),
            PromotionDecision.decided_at >= lo,
            PromotionDecision.decided_at < hi,
        )
        .order_by(PromotionDecision.decided_at, PromotionDecision.id)
    ).all()
    out: list[PromotionOutcome] = []
    last_day_cache: dict[int, dt.date | None] = {}
    for dec, p, store, sku, lot in rows:
        day = local_today(dec.decided_at, store.timezone)
        if not start <= day <= end:
            continue
        if store.id not in last_day_cache:
            last_day_cache[store.id] = session.scalar(
                select(func.max(DailySkuSales.date)).where(DailySkuSales.store_id == store.id)
            )
        out.append(_outcome(session, dec, p, store, sku, lot, day, last_day_cache[store.id]))
    return out


def _outcome(
    session: Session,
    dec: PromotionDecision,
    p: PromotionProposal,
    store: Store,
    sku: Sku,
    lot: InventoryLot | None,
    decided_day: dt.date,
    last_data_day: dt.date | None,
) -> PromotionOutcome:
    m = dict(p.maths or {})
    approved = dec.decision == "approve"
    discount = dec.discount_pct if approved and dec.discount_pct is not None else 0
    figures = pm.recompute_for_discount(m, discount) if m else None
    offer_days = int(m.get("offer_days", 0)) or 1
    begin = max(p.starts_on or decided_day, decided_day)
    finish = p.ends_on or (begin + dt.timedelta(days=offer_days - 1))
    if finish < begin:
        finish = begin
    through = min(finish, last_data_day) if last_data_day else begin - dt.timedelta(days=1)
    days_run = max(0, (through - begin).days + 1)
    sold = 0
    if days_run:
        sold = int(
            session.scalar(
                select(func.coalesce(func.sum(DailySkuSales.units), 0)).where(
                    DailySkuSales.store_id == store.id,
                    DailySkuSales.sku_id == sku.id,
                    DailySkuSales.date >= begin,
                    DailySkuSales.date <= through,
                )
            )
            or 0
        )
    on_hand = int(m.get("on_hand", 0))
    ahead = int(m.get("units_ahead", 0))
    rate = float(m.get("daily_rate", 0.0))
    mult = pm.uplift(discount)
    actual = min(on_hand, max(0, sold - ahead)) if template_is_lot(p) else min(on_hand, sold)
    forecast = figures.expected_units_with if figures else 0.0
    to_date = pm.expected_units(rate, min(days_run, offer_days), ahead, on_hand, mult)
    if days_run == 0:
        status = "not_started"
    elif through >= finish:
        status = "finished"
    else:
        status = "running"
    return PromotionOutcome(
        proposal_id=p.id,
        store_id=store.id,
        store_code=store.code,
        store_name=store.name,
        sku_code=sku.code,
        sku_name=sku.name,
        lot_code=lot.lot_code if lot is not None else "",
        template=p.template,
        decision=dec.decision,
        discount_pct=dec.discount_pct if approved else None,
        decided_by_name=dec.decided_by_name,
        decided_at=dec.decided_at,
        starts_on=begin,
        ends_on=finish,
        offer_days=offer_days,
        days_run=days_run,
        status=status,
        on_hand=on_hand,
        forecast_units=round(forecast, 2),
        forecast_units_to_date=round(to_date, 2),
        actual_units=actual,
        forecast_sell_through=round(forecast / on_hand, 4) if on_hand else 0.0,
        actual_sell_through=round(actual / on_hand, 4) if on_hand else 0.0,
        waste_avoided_forecast_fen=figures.waste_avoided_fen if figures and approved else 0,
    )


def template_is_lot(p: PromotionProposal) -> bool:
    return p.lot_id is not None
