"""The plain data a weekly review pack is drawn from.

``core.reports.gather`` fills these from the feature modules' analytics (traffic,
scheduling, promotions, trajectory, funnel); ``core.reports.render`` draws them. Keeping
them apart means the maths is never duplicated in the report, and rendering is tested on
the exact numbers the analytics produced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kpi:
    key: str  # stable id: visitors, transactions, sales, conversion, atv, upt, star ...
    label: str  # English source; translated when drawn
    value: float | None
    previous: float | None
    kind: str = "count"  # count | money_fen | pct | ratio
    higher_is_better: bool = True

    @property
    def change(self) -> float | None:
        """Relative week-over-week change, None when not comparable."""
        if self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / abs(self.previous)


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    visitors: int
    transactions: int
    sales_fen: int
    conversion: float | None
    prev_visitors: int | None = None
    prev_conversion: float | None = None


@dataclass(frozen=True)
class HourRow:
    hour: int
    visitors: float
    conversion: float | None


@dataclass(frozen=True)
class StaffingRow:
    day: dt.date
    scheduled_hours: float
    required_hours: float
    understaffed_hours: float  # store-hours with fewer staff than required


@dataclass(frozen=True)
class PromotionRow:
    store: str
    sku: str
    template: str
    decision: str  # approved | rejected
    discount_pct: int | None
    decided_by: str
    expected_units: float | None
    actual_units: float | None
    waste_avoided_fen: int


@dataclass(frozen=True)
class RankingRow:
    store: str
    visitors: int
    conversion: float | None
    sales_fen: int
    sales_change: float | None


@dataclass(frozen=True)
class FunnelRow:
    stage: str
    count: int
    amount_fen: int
    next_conversion: float | None
    cumulative_conversion: float | None


@dataclass(frozen=True)
class RepRow:
    rep: str
    visits: int
    effective_visits: int
    flagged: int
    customers: int


@dataclass
class PackData:
    scope_kind: str  # store | region
    scope_code: str
    scope_name: str
    year: int
    week: int
    week_start: dt.date
    as_of: dt.datetime | None
    author_role: str
    kpis: list[Kpi] = field(default_factory=list)
    days: list[DayRow] = field(default_factory=list)
    hours: list[HourRow] = field(default_factory=list)
    staffing: list[StaffingRow] = field(default_factory=list)
    promotions: list[PromotionRow] = field(default_factory=list)
    waste_avoided_fen: int = 0
    waste_incurred_fen: int = 0
    pending_promotions: int = 0
    excluded_hours: list[str] = field(default_factory=list)  # data-quality notes
    ranking: list[RankingRow] = field(default_factory=list)
    funnel: list[FunnelRow] = field(default_factory=list)
    reps: list[RepRow] = field(default_factory=list)
    #: the week's visits at their customers (lat, lon, weak evidence), drawn as a static
    #: map by the renderer (so the drawing happens where reportlab runs, not in the app)
    map_visits: list[tuple[float, float, bool]] = field(default_factory=list)
    map_png: bytes | None = None  # the drawn map (render_pack fills it from map_visits)
    map_caption: str = ""

    @property
    def week_label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def week_end(self) -> dt.date:
        return self.week_start + dt.timedelta(days=6)
