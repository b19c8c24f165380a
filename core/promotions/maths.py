"""The arithmetic behind a promotion proposal, kept apart so each number can be checked by hand.

Assumptions (shown to the manager in the explanation, and the reason for each constant):

* **Current rate** = units sold in the last 7 complete days ÷ 7. Recent weeks beat a long
  average for perishables whose demand moves with the season.
* **FEFO**: a lot only sells after the lots of the same SKU that expire before it, so the
  demand available to a lot is ``rate × days − units ahead of it``.
* **Price elasticity**: constant elasticity ``units × (1 − d)^−ε`` with ``ε = 2.5``, the
  middle of the 1.5–3.5 range reported for promoted fresh and chilled grocery items.
  Solving it for the volume needed to clear a lot gives the markdown; the result is rounded
  up to a 5% step (shelf labels) and clamped to the rule's minimum and maximum.
* **Waste** is valued at unit cost (what the store loses when a unit is written off);
  **margin given up** is the discount on every unit expected to sell during the offer.

All money is integer fen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ELASTICITY = 2.5
DISCOUNT_STEP = 5
#: Length of a clearance + gift offer, in days, when no expiry limits it.
GIFT_OFFER_DAYS = 7


def uplift(discount_pct: float, elasticity: float = ELASTICITY) -> float:
    """Volume multiplier of a discount under constant elasticity (1.0 at 0%)."""
    d = min(max(discount_pct, 0.0), 95.0) / 100.0
    return (1.0 - d) ** (-elasticity)


def discount_for_uplift(multiplier: float, elasticity: float = ELASTICITY) -> float:
    """The discount (percent, unrounded) that multiplies volume by ``multiplier``."""
    if multiplier <= 1.0:
        return 0.0
    return 100.0 * (1.0 - multiplier ** (-1.0 / elasticity))


def round_up_step(pct: float, step: int = DISCOUNT_STEP) -> int:
    return int(math.ceil(pct / step - 1e-9) * step)


def clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


@dataclass(frozen=True)
class ProposalMaths:
    """The figures shown beside a proposal (stored as JSON in ``promotion_proposals.maths``)."""

    on_hand: int  # units of the lot (markdown) or of the SKU (clearance + gift)
    days_to_expiry: int | None
    sales_7d: int
    sales_28d: int
    daily_rate: float
    units_ahead: int  # units of earlier-expiring lots sold first (FEFO)
    offer_days: int
    discount_pct: int
    expected_units_without: float
    expected_units_with: float
    sell_through_without: float  # 0..1 of on_hand
    sell_through_with: float
    waste_avoided_fen: int
    margin_given_up_fen: int
    value_at_risk_fen: int
    price_fen: int
    cost_fen: int
    elasticity: float = ELASTICITY
    template: str = "markdown"
    gift_units: int = 0
    gift_cost_fen: int = 0
    gift_excess_units: int = 0
    gift_unsold_before_expiry: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> ProposalMaths:
        fields = ProposalMaths.__dataclass_fields__
        return ProposalMaths(**{k: v for k, v in data.items() if k in fields})


def expected_units(rate: float, days: int, ahead: int, qty: int, multiplier: float = 1.0) -> float:
    """Units of a lot of ``qty`` expected to sell in ``days`` after ``ahead`` units go first."""
    return min(float(qty), max(0.0, rate * multiplier * days - ahead))


def markdown_discount(rate: float, days: int, ahead: int, qty: int, lo: int, hi: int) -> int:
    """The smallest 5%-step discount expected to clear the lot, within [lo, hi]."""
    demand = rate * days
    if demand <= 0:
        return hi
    needed = (qty + ahead) / demand
    return clamp(round_up_step(discount_for_uplift(needed)), lo, hi)


def markdown_maths(
    *,
    qty: int,
    days_to_expiry: int,
    sales_7d: int,
    sales_28d: int,
    ahead: int,
    price_fen: int,
    cost_fen: int,
    min_pct: int,
    max_pct: int,
    discount_pct: int | None = None,
) -> ProposalMaths:
    """A near-expiry markdown: sized to clear ``qty`` before expiry, or at ``discount_pct``."""
    rate = sales_7d / 7.0
    days = max(days_to_expiry, 0)
    if discount_pct is None:
        discount_pct = markdown_discount(rate, days, ahead, qty, min_pct, max_pct)
    without = expected_units(rate, days, ahead, qty)
    with_offer = expected_units(rate, days, ahead, qty, uplift(discount_pct))
    sold_in_offer = min(float(qty + ahead), rate * uplift(discount_pct) * days)
    return ProposalMaths(
        on_hand=qty,
        days_to_expiry=days_to_expiry,
        sales_7d=sales_7d,
        sales_28d=sales_28d,
        daily_rate=round(rate, 3),
        units_ahead=ahead,
        offer_days=days,
        discount_pct=discount_pct,
        expected_units_without=round(without, 2),
        expected_units_with=round(with_offer, 2),
        sell_through_without=round(without / qty, 4) if qty else 1.0,
        sell_through_with=round(with_offer / qty, 4) if qty else 1.0,
        waste_avoided_fen=round((with_offer - without) * cost_fen),
        margin_given_up_fen=round(sold_in_offer * price_fen * discount_pct / 100),
        value_at_risk_fen=round((qty - without) * cost_fen),
        price_fen=price_fen,
        cost_fen=cost_fen,
    )


def gift_maths(
    *,
    stock: int,
    days_to_expiry: int | None,
    sales_7d: int,
    sales_28d: int,
    price_fen: int,
    cost_fen: int,
    discount_pct: int,
    gift_excess_units: int,
    gift_unsold_before_expiry: int,
    gift_cost_fen: int,
) -> ProposalMaths:
    """Clearance + gift: the hot SKU carries a gift from slow or surplus stock.

    Every unit sold during the offer takes one gift unit, up to the gift's surplus. Waste
    avoided is the gift units that would otherwise expire unsold (at gift cost); margin
    given up is the discount on the hot SKU plus the cost of the gifts handed out.
    """
    rate = sales_7d / 7.0
    days = GIFT_OFFER_DAYS
    if days_to_expiry is not None:
        days = max(0, min(days, days_to_expiry))
    without = expected_units(rate, days, 0, stock)
    with_offer = expected_units(rate, days, 0, stock, uplift(discount_pct))
    gifts = int(min(with_offer, gift_excess_units)) if gift_excess_units > 0 else 0
    waste = min(gifts, gift_unsold_before_expiry) * gift_cost_fen
    at_risk = round((stock - without) * cost_fen)
    return ProposalMaths(
        on_hand=stock,
        days_to_expiry=days_to_expiry,
        sales_7d=sales_7d,
        sales_28d=sales_28d,
        daily_rate=round(rate, 3),
        units_ahead=0,
        offer_days=days,
        discount_pct=discount_pct,
        expected_units_without=round(without, 2),
        expected_units_with=round(with_offer, 2),
        sell_through_without=round(without / stock, 4) if stock else 1.0,
        sell_through_with=round(with_offer / stock, 4) if stock else 1.0,
        waste_avoided_fen=int(waste),
        margin_given_up_fen=round(with_offer * price_fen * discount_pct / 100)
        + gifts * gift_cost_fen,
        value_at_risk_fen=at_risk + gift_unsold_before_expiry * gift_cost_fen,
        price_fen=price_fen,
        cost_fen=cost_fen,
        template="clearance_gift",
        gift_units=gifts,
        gift_cost_fen=gift_cost_fen,
        gift_excess_units=gift_excess_units,
        gift_unsold_before_expiry=gift_unsold_before_expiry,
    )


def urgency(days_to_expiry: int | None, share_at_risk: float, horizon: int = 14) -> int:
    """0..100: 70 points for how soon it expires, 30 for the share of the stock at risk."""
    if days_to_expiry is None:
        time_part = 0.3  # no expiry: a sales opportunity, never an emergency
    else:
        time_part = 1.0 - min(max(days_to_expiry, 0), horizon) / horizon
    return round(70 * time_part + 30 * min(max(share_at_risk, 0.0), 1.0))


def recompute_for_discount(maths: dict[str, Any], discount_pct: int) -> ProposalMaths:
    """The same proposal's figures at another discount (the manager's adjustment)."""
    m = ProposalMaths.from_json(maths)
    if m.template == "clearance_gift":
        return gift_maths(
            stock=m.on_hand,
            days_to_expiry=m.days_to_expiry,
            sales_7d=m.sales_7d,
            sales_28d=m.sales_28d,
            price_fen=m.price_fen,
            cost_fen=m.cost_fen,
            discount_pct=discount_pct,
            gift_excess_units=m.gift_excess_units,
            gift_unsold_before_expiry=m.gift_unsold_before_expiry,
            gift_cost_fen=m.gift_cost_fen,
        )
    return markdown_maths(
        qty=m.on_hand,
        days_to_expiry=m.days_to_expiry if m.days_to_expiry is not None else 0,
        sales_7d=m.sales_7d,
        sales_28d=m.sales_28d,
        ahead=m.units_ahead,
        price_fen=m.price_fen,
        cost_fen=m.cost_fen,
        min_pct=0,
        max_pct=95,
        discount_pct=discount_pct,
    )
