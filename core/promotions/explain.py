"""The sentences that explain a proposal, rendered from its stored maths at display time.

The server stores an English explanation (for logs and CSV); screens call :func:`explain`
with the current language so a manager reads it in theirs, from the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.i18n import N_, _


def yuan(fen: int | float) -> str:
    """¥1,234.50 from fen (display only; stored money stays integer fen)."""
    return f"¥{fen / 100:,.2f}"


def explain(template: str, m: dict[str, Any], translate: Callable[[str], str] = _) -> str:
    """Explanation + maths of a proposal in the language of ``translate``."""
    t = translate
    parts: list[str] = []
    days = m.get("days_to_expiry")
    if template == "markdown":
        parts.append(
            t(N_("Lot {lot} of {sku}: {qty} units on hand, days to expiry: {days}.")).format(
                lot=m.get("lot_code") or "-", sku=m.get("sku_name", ""), qty=m["on_hand"], days=days
            )
        )
        parts.append(
            t(
                N_(
                    "At the current rate ({rate:.1f}/day over the last 7 days, {ahead} units of "
                    "earlier lots selling first) about {without:.0f} units would sell before "
                    "expiry: {st0:.0%} sell-through."
                )
            ).format(
                rate=m["daily_rate"],
                ahead=m.get("units_ahead", 0),
                without=m["expected_units_without"],
                st0=m["sell_through_without"],
            )
        )
    else:
        wow = m.get("sales_7d_wow")
        parts.append(
            t(
                N_(
                    "{sku} is selling fast: {s7} units in the last 7 days against {prev} the "
                    "week before ({wow}), and stock ({stock}) is below safety stock ({safety})."
                )
            ).format(
                sku=m.get("sku_name", ""),
                s7=m["sales_7d"],
                prev=m.get("sales_prev_7d", 0),
                wow=f"{wow:+.0f}%" if wow is not None else "-",
                stock=m["on_hand"],
                safety=m.get("safety_stock"),
            )
        )
        if m.get("gift_name"):
            reason = (
                t(N_("overstocked"))
                if m.get("gift_reason") == "overstock"
                else t(N_("slow-moving"))
            )
            parts.append(
                t(
                    N_(
                        "Gift: {gift} ({reason}, {gstock} on hand), often bought with it "
                        "(lift {lift:.1f}); about {units} gift units would leave the shelf."
                    )
                ).format(
                    gift=m["gift_name"],
                    reason=reason,
                    gstock=m.get("gift_stock", 0),
                    lift=m.get("gift_lift", 0.0),
                    units=m.get("gift_units", 0),
                )
            )
        else:
            parts.append(t(N_("No suitable gift: no slow or overstocked SKU is bought with it.")))
    parts.append(
        t(
            N_(
                "With {pct}% off: about {with_:.0f} units ({st1:.0%}). Waste avoided {waste}, "
                "margin given up {margin}."
            )
        ).format(
            pct=m["discount_pct"],
            with_=m["expected_units_with"],
            st1=m["sell_through_with"],
            waste=yuan(m["waste_avoided_fen"]),
            margin=yuan(m["margin_given_up_fen"]),
        )
    )
    if template == "markdown" and m.get("daily_rate", 0) == 0:
        parts.append(
            t(
                N_(
                    "No sales in the last 7 days: a markdown alone is unlikely to clear it; "
                    "consider a transfer or a write-off."
                )
            )
        )
    return " ".join(parts)
