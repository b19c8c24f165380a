"""How numbers look on screen: money from integer fen, percentages, counts."""

from __future__ import annotations


def money(fen: float | int | None, *, decimals: int = 0) -> str:
    """12345600 fen -> '¥123,456' (negative: '-¥1,200')."""
    if fen is None:
        return "—"
    yuan = fen / 100
    sign = "-" if yuan < 0 else ""
    return f"{sign}¥{abs(yuan):,.{decimals}f}"


def percent(ratio: float | None, decimals: int = 1) -> str:
    return "—" if ratio is None else f"{ratio * 100:.{decimals}f} %"


def count(n: float | int | None) -> str:
    return "—" if n is None else f"{round(n):,}"
