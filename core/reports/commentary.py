"""The short written commentary of a pack: biggest movers and what needs attention.

Generated from the numbers in :class:`PackData` only, in the pack's language. The biggest
mover is the KPI with the largest absolute week-over-week change; "attention" lists
concrete follow-ups (under-staffed hours, pending approvals, expiry waste, flagged visits,
excluded counter hours).
"""

from __future__ import annotations

from core.i18n import N_, translate_in
from core.reports.model import Kpi, PackData


def format_value(kpi: Kpi, lang: str) -> str:
    return format_number(kpi.value, kpi.kind, lang)


def format_number(value: float | None, kind: str, lang: str) -> str:
    if value is None:
        return "—"
    if kind == "money_fen":
        yuan = value / 100
        if lang.startswith("zh") and abs(yuan) >= 10_000:
            return f"¥{yuan / 10_000:,.2f}" + translate_in(lang, "10k")
        return f"¥{yuan:,.0f}"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "ratio":
        return f"{value:,.2f}"
    if kind == "hours":
        return f"{value:,.1f} h"
    return f"{value:,.0f}"


def format_change(change: float | None) -> str:
    if change is None:
        return "—"
    arrow = "▲" if change > 0 else ("▼" if change < 0 else "■")
    return f"{arrow} {abs(change) * 100:.1f}%"


def biggest_mover(kpis: list[Kpi]) -> Kpi | None:
    movable = [k for k in kpis if k.change is not None]
    if not movable:
        return None
    return max(movable, key=lambda k: (abs(k.change or 0.0), k.key))


def commentary(data: PackData, lang: str) -> list[str]:
    def t(s: str) -> str:
        return translate_in(lang, s)

    lines: list[str] = []
    mover = biggest_mover(data.kpis)
    if mover is not None and mover.change is not None:
        direction = t(N_("rose")) if mover.change > 0 else t(N_("fell"))
        good = (mover.change > 0) == mover.higher_is_better
        lines.append(
            t(
                N_(
                    "Biggest mover: {kpi} {direction} {pct:.1f}% week over week to {value} ({verdict})."
                )
            ).format(
                kpi=t(mover.label),
                direction=direction,
                pct=abs(mover.change) * 100,
                value=format_value(mover, lang),
                verdict=t(N_("an improvement")) if good else t(N_("needs a look")),
            )
        )
        others = sorted(
            (k for k in data.kpis if k.change is not None and k is not mover),
            key=lambda k: -abs(k.change or 0.0),
        )[:2]
        if others:
            lines.append(
                t(N_("Also moving: {items}.")).format(
                    items=t(N_(", ")).join(
                        f"{t(k.label)} {format_change(k.change)}" for k in others
                    )
                )
            )
    else:
        lines.append(t(N_("No comparable previous week: changes are not shown.")))

    attention: list[str] = []
    under = sum(r.understaffed_hours for r in data.staffing)
    if under > 0:
        attention.append(
            t(
                N_("{hours:.0f} store-hours were scheduled below the staff required by demand")
            ).format(hours=under)
        )
    if data.pending_promotions:
        attention.append(
            t(N_("{n} promotion proposals are still waiting for approval")).format(
                n=data.pending_promotions
            )
        )
    if data.waste_incurred_fen > 0:
        attention.append(
            t(N_("expiry write-offs cost {amount}")).format(
                amount=format_number(data.waste_incurred_fen, "money_fen", lang)
            )
        )
    flagged = sum(r.flagged for r in data.reps)
    if flagged:
        attention.append(
            t(N_("{n} visits have weak GPS evidence and should be checked")).format(n=flagged)
        )
    if data.excluded_hours:
        attention.append(
            t(N_("{n} counter hours were excluded as outages")).format(n=len(data.excluded_hours))
        )
    if attention:
        lines.append(t(N_("Needs attention: {items}.")).format(items=t(N_("; ")).join(attention)))
    else:
        lines.append(t(N_("Nothing needs special attention this week.")))
    return lines
