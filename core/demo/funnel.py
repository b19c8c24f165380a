"""~6,000 opportunities with their stage history (lead → visit → opportunity → quote →
contract → payment).

Each opportunity walks the stages with a next-step conversion of 60–80 %; a few skip the
visit (a phone lead qualified directly) or the contract (cash deals), a few are lost and
later re-entered (the stage appears twice in the history). A lead's visit stage is tied
to the rep's real visit to that customer when there is one, and that visit is linked to
the opportunity. Nothing happens after the dataset's "now", so opportunities naturally
sit open at every stage, some overdue (no quote 48 h after qualification, a contract
unpaid for more than 14 days) and some with a booked next step.
"""

from __future__ import annotations

import random

from core.demo import _data
from core.demo._base import DAY_S, Gen
from core.demo.field_sales import People, VisitsPlanned, first_visit_after
from core.models import Stage

STAGES = [s.value for s in Stage]
#: probability of moving on from each stage (lead..contract)
CONVERSION = {"lead": 0.78, "visit": 0.72, "opportunity": 0.68, "quote": 0.62, "contract": 0.8}
#: days spent in a stage before moving on
DELAY_DAYS = {
    "lead": (0.5, 6.0),
    "visit": (0.5, 8.0),
    "opportunity": (0.2, 4.0),
    "quote": (2.0, 18.0),
    "contract": (2.0, 25.0),
}
TIER_OPPS = {"A": (2, 5), "B": (1, 3), "C": (0, 3)}
TIER_AMOUNT_YUAN = {"A": (20_000, 300_000), "B": (5_000, 80_000), "C": (1_000, 20_000)}


def generate_funnel(gen: Gen, people: People, planned: VisitsPlanned) -> None:
    r = gen.rnd("funnel")
    reps = {rep.id: rep for rep in people.reps}
    start = gen.as_of - 91 * DAY_S
    opp_rows, event_rows = [], []
    for c in people.customers:
        lo, hi = TIER_OPPS[c.tier]
        for _ in range(r.randint(lo, hi)):
            oid = gen.new_id()
            amount = int(r.uniform(*TIER_AMOUNT_YUAN[c.tier])) * 100
            opened = int(r.uniform(start, gen.as_of - 3600))
            events, status, closed = _walk(r, gen.as_of, opened, amount, planned, c.id, oid)
            stage = events[-1][0]
            next_step, next_at = "", None
            if status == "open" and r.random() < 0.3:
                next_step = r.choice(_data.NEXT_STEPS)
                if r.random() < 0.12:  # booked, but the date has already passed
                    next_at = gen.as_of - int(r.uniform(0.5, 3) * DAY_S)
                else:
                    next_at = gen.as_of + int(r.uniform(0.2, 7) * DAY_S)
            title = f"{r.choice(_data.OPPORTUNITY_TITLES)}"
            opp_rows.append(
                (oid, c.id, c.rep_id, reps[c.rep_id].store.id, title, events[-1][2], stage,
                 status, opened, closed, next_step, next_at)
            )  # fmt: skip
            for stg, at, amt in events:
                event_rows.append((len(event_rows) + 1, oid, stg, at, amt))
    gen.insert(
        "opportunities",
        ("id", "customer_id", "rep_id", "store_id", "title", "amount_fen", "stage", "status",
         "opened_at", "closed_at", "next_step", "next_step_at"),
        opp_rows,
    )  # fmt: skip
    gen.insert(
        "opportunity_stage_events",
        ("id", "opportunity_id", "stage", "entered_at", "amount_fen"),
        event_rows,
    )


def _walk(
    r: random.Random,
    now: int,
    opened: int,
    amount: int,
    planned: VisitsPlanned,
    customer_id: int,
    oid: str,
) -> tuple[list[tuple[str, int, int]], str, int | None]:
    """The stage events of one opportunity, its status and closing time."""
    events: list[tuple[str, int, int]] = [("lead", opened, amount)]
    stage, t = "lead", opened
    reopened = False
    while stage != "payment":
        nxt = STAGES[STAGES.index(stage) + 1]
        if stage == "lead" and r.random() < 0.06:
            nxt = "opportunity"  # qualified on the phone, no visit needed
        elif stage == "quote" and r.random() < 0.05:
            nxt = "payment"  # paid on the spot, no contract
        if r.random() >= CONVERSION[stage]:
            lost_at = t + int(r.uniform(2, 10) * DAY_S)
            if lost_at > now:
                return events, "open", None
            if reopened or r.random() >= 0.05:
                return events, "lost", lost_at
            # lost, then the customer came back: the stage is entered again
            reopened = True
            t = lost_at + int(r.uniform(5, 20) * DAY_S)
            if t > now:
                return events, "lost", lost_at
            events.append((stage, t, amount))
            continue
        t_next = t + int(r.uniform(*DELAY_DAYS[stage]) * DAY_S)
        visit_index = None
        if nxt == "visit":
            visit_index = first_visit_after(planned, customer_id, t, 10 * DAY_S)
            if visit_index is not None:
                t_next = planned.visits[visit_index].check_in
        if t_next > now:
            return events, "open", None
        if visit_index is not None and planned.visits[visit_index].opportunity_id is None:
            planned.visits[visit_index].opportunity_id = oid
        if nxt == "quote":
            amount = int(amount * r.uniform(0.85, 1.1)) // 100 * 100
        elif nxt == "contract":
            amount = int(amount * r.uniform(0.92, 1.0)) // 100 * 100
        events.append((nxt, t_next, amount))
        stage, t = nxt, t_next
    return events, "won", t
