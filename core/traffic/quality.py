"""Counter-outage detection: which store-hours the door counter got wrong, and why.

A door counter fails in recognisable ways while the POS keeps working, so the POS is the
witness. An hour inside opening hours is flagged when:

``zero_with_transactions``
    the counter says 0 visitors while the till rang up sales — a dead counter;
``fewer_visitors_than_transactions``
    fewer visitors than transactions (conversion above 100 %) — an undercounting counter;
``zero_count``
    0 visitors and 0 transactions although this weekday-hour normally has traffic
    (median of at least :data:`MIN_TYPICAL` visitors) — counter and store data missing;
``spike``
    visitors far above the same weekday-hour on every count: a robust z-score above
    :data:`SPIKE_Z` (Iglewicz & Hoaglin's modified z = 0.6745 (x - median) / MAD), at
    least :data:`SPIKE_RATIO` × the usual count, and more than :data:`POISSON_Z` standard
    deviations of count noise (√usual) above it — while the hour's transactions fell below
    :data:`CONVERSION_DROP` × what the usual conversion predicts (and 3 binomial standard
    deviations under it). A real rush brings buyers too, so its
    conversion holds; staff walking through or a stuck sensor add "visitors" who never buy.
    Public holidays are not checked for spikes.

Flagged hours are excluded from the visitor-based KPIs (visitors, conversion, STAR) and
from forecast history; the POS figures (transactions, sales, units) stay, because the POS
was not at fault. Each outage carries its reason, shown to the user.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.i18n import N_, _
from core.traffic.records import HourRecord, StoreInfo

if TYPE_CHECKING:  # detection is pure; only store_outages reads (the start path needs no ORM)
    from sqlalchemy.orm import Session

SPIKE_Z = 3.5
#: ... and at least this multiple of the usual count: small samples make MAD jumpy.
SPIKE_RATIO = 2.0
#: ... and this many √usual above it: a quiet hour's Poisson noise is not a fault.
POISSON_Z = 5.0
#: ... while conversion fell below this fraction of the usual conversion.
CONVERSION_DROP = 0.5
MIN_TYPICAL = 3.0
#: Weeks of history before the range used as the reference for each weekday-hour.
REFERENCE_WEEKS = 8

REASONS: dict[str, str] = {
    "zero_with_transactions": N_(
        "Counter outage: 0 visitors counted but {transactions} transactions rung up"
    ),
    "fewer_visitors_than_transactions": N_(
        "Implausible count: {visitors} visitors but {transactions} transactions"
    ),
    "zero_count": N_(
        "No visitors or sales during opening hours (this hour usually has about {typical})"
    ),
    "spike": N_(
        "Implausible spike: {visitors} visitors where this hour usually has about {typical}, "
        "but no more buyers"
    ),
}

ONE_TRANSACTION = N_("Counter outage: 0 visitors counted but 1 transaction rung up")


@dataclass(frozen=True)
class Outage:
    """One excluded store-hour with the reason the counter is not trusted."""

    day: dt.date
    hour: int
    reason: str  # a key of REASONS
    visitors: int
    transactions: int
    typical: float  # median visitors of the same weekday-hour (0 if unknown)

    def describe(self) -> str:
        """The reason in the user's language."""
        if self.reason == "zero_with_transactions" and self.transactions == 1:
            return _(ONE_TRANSACTION)
        return _(REASONS[self.reason]).format(
            visitors=self.visitors,
            transactions=self.transactions,
            typical=round(self.typical),
        )


def _mad_z(x: float, values: list[float]) -> tuple[float, float]:
    """(median, modified z of x) with a MAD floor so a very regular series is not hair-trigger."""
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    mad = max(mad, 1.0, 0.05 * med)
    return med, 0.6745 * (x - med) / mad


def _conversion_collapsed(r: HourRecord, usual_conv: float) -> bool:
    """Transactions far below what the counted visitors would buy at the usual conversion.

    Both below :data:`CONVERSION_DROP` × expected and 3 binomial standard deviations
    under it, so a quiet hour's chance low conversion (2 buyers instead of 4) never counts.
    """
    expected = r.visitors * usual_conv
    sd = (r.visitors * usual_conv * (1.0 - usual_conv)) ** 0.5
    return r.transactions < CONVERSION_DROP * expected and expected - r.transactions > 3.0 * sd


def _trusted_for_reference(r: HourRecord) -> bool:
    return r.visitors >= r.transactions and not (r.visitors == 0 and r.transactions > 0)


def detect_outages(
    records: Iterable[HourRecord],
    store: StoreInfo,
    holiday_dates: Iterable[dt.date] = (),
    judge: tuple[dt.date, dt.date] | None = None,
) -> dict[tuple[dt.date, int], Outage]:
    """Outages among ``records`` (which also serve as each weekday-hour's reference).

    ``judge=(first, last)`` judges only the hours of those local days; all ``records``
    still form the reference, so each verdict is the one a full run gives (callers that
    keep only a range's outages skip the weeks loaded as history).
    Pure function of its inputs, so the rules are tested on hand-built hours.
    """
    recs = list(records)
    hol = set(holiday_dates)
    weekdays = {d: d.weekday() for d in {r.day for r in recs}}

    # The hours to judge (in record order) and the weekday-hours they take as reference:
    # a history of several weeks is only grouped for the slots that are judged.
    first, last = judge if judge is not None else (dt.date.min, dt.date.max)
    targets = [r for r in recs if first <= r.day <= last and store.is_open(r.hour)]
    needed = {(weekdays[r.day], r.hour) for r in targets}
    by_slot: dict[tuple[int, int], list[HourRecord]] = defaultdict(list)
    for r in recs:
        slot = (weekdays[r.day], r.hour)
        if slot in needed and r.day not in hol:
            by_slot[slot].append(r)
    # Reference medians use only hours that are not obviously broken.
    clean_v: dict[tuple[int, int], list[float]] = {}
    clean_t: dict[tuple[int, int], list[float]] = {}
    for slot, rs in by_slot.items():
        ok = [r for r in rs if _trusted_for_reference(r)]
        clean_v[slot] = [float(r.visitors) for r in ok]
        clean_t[slot] = [float(r.transactions) for r in ok]

    out: dict[tuple[dt.date, int], Outage] = {}
    for r in targets:
        slot = (weekdays[r.day], r.hour)
        # The reference is the *other* weeks of this weekday-hour.
        ref_v = list(clean_v.get(slot, []))
        ref_t = list(clean_t.get(slot, []))
        if r.day not in hol and _trusted_for_reference(r):
            ref_v.remove(float(r.visitors))
            ref_t.remove(float(r.transactions))
        # The usual count (median) only where a rule needs it, and the spike's costlier
        # terms (MAD, usual conversion) only once its cheap conditions hold: a region's
        # home judges ~5k hours at start-up. Same verdicts, same ``typical``.
        reason: str | None = None
        typical = 0.0
        if r.visitors == 0 and r.transactions > 0:
            reason = "zero_with_transactions"
        elif r.visitors < r.transactions:
            reason = "fewer_visitors_than_transactions"
        elif (
            r.visitors == 0
            and r.transactions == 0
            and ref_v
            and statistics.median(ref_v) >= MIN_TYPICAL
        ):
            reason = "zero_count"
        elif r.day not in hol and len(ref_v) >= 3:
            med = statistics.median(ref_v)
            if (
                r.visitors >= SPIKE_RATIO * med
                and r.visitors - med > POISSON_Z * max(med, 1.0) ** 0.5
            ):
                typical, z_v = _mad_z(r.visitors, ref_v)
                usual_conv = sum(ref_t) / sum(ref_v) if sum(ref_v) else 0.0
                if z_v > SPIKE_Z and _conversion_collapsed(r, usual_conv):
                    reason = "spike"
        if reason is not None:
            if reason != "spike":
                typical = statistics.median(ref_v) if ref_v else 0.0
            out[(r.day, r.hour)] = Outage(
                r.day, r.hour, reason, r.visitors, r.transactions, float(typical)
            )
    return out


def store_outages(session: Session, store_id: int, start: dt.date, end: dt.date) -> list[Outage]:
    """Outages of local days ``start`` .. ``end``, judged against the weeks before as well."""
    from core.traffic.hours import holidays, load_hours, store_info

    info = store_info(session, store_id)
    ref_start = start - dt.timedelta(weeks=REFERENCE_WEEKS)
    recs = load_hours(session, info, ref_start, end)
    found = detect_outages(recs, info, holidays(session, ref_start, end), judge=(start, end))
    return sorted(
        (o for o in found.values() if start <= o.day <= end), key=lambda o: (o.day, o.hour)
    )
