"""Reading a store's week of shifts into plain dataclasses (the schedule screen's service).

Views never see ORM objects: every function takes a ``Session`` and returns the frozen
dataclasses of :mod:`core.scheduling.rules`, safe to hand across threads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Shift, ShiftStatus, Staff, StaffAvailability, Store
from core.scheduling.demand import WeekDemand, load_forecast, week_demand
from core.scheduling.rules import (
    DEFAULT_SETTINGS,
    RuleSettings,
    ShiftSpan,
    StaffInfo,
    StoreInfo,
    Violation,
    Window,
    week_violations,
)
from core.timeutil import tz

#: Shifts this close to a week's edges are loaded too, so rest across the boundary is checked.
EDGE = dt.timedelta(days=2)


def store_info(store: Store) -> StoreInfo:
    return StoreInfo(
        id=store.id,
        code=store.code,
        name=store.name,
        timezone=store.timezone or "Asia/Shanghai",
        opens_at=store.opens_at,
        closes_at=store.closes_at,
        target_star=float(store.target_star or 12.0),
        min_floor_staff=int(store.min_floor_staff if store.min_floor_staff is not None else 2),
    )


def load_store(session: Session, store_id: int) -> StoreInfo | None:
    store = session.get(Store, store_id)
    return store_info(store) if store is not None else None


def load_staff(
    session: Session, store_id: int, *, include_ids: set[int] | None = None
) -> list[StaffInfo]:
    """Active staff of a store (plus any inactive ones named in ``include_ids``), by role."""
    rows = session.scalars(select(Staff).where(Staff.store_id == store_id)).all()
    rows = [r for r in rows if r.active or (include_ids and r.id in include_ids)]
    ids = [r.id for r in rows]
    windows: dict[int, list[Window]] = {i: [] for i in ids}
    if ids:
        for a in session.scalars(
            select(StaffAvailability).where(StaffAvailability.staff_id.in_(ids))
        ):
            windows[a.staff_id].append(Window(a.weekday, a.start, a.end))
    order = {"manager": 0, "keyholder": 1, "sales": 2, "cashier": 3, "stock": 4}
    rows.sort(key=lambda r: (order.get(r.role, 9), r.name, r.id))
    return [
        StaffInfo(
            id=r.id,
            name=r.name,
            role=r.role,
            contract_hours_week=float(r.contract_hours_week),
            availability=tuple(sorted(windows[r.id], key=lambda w: (w.weekday, w.start))),
            active=r.active,
        )
        for r in rows
    ]


def span_of(shift: Shift) -> ShiftSpan:
    return ShiftSpan(
        id=shift.id,
        staff_id=shift.staff_id,
        role=shift.role,
        start=shift.start_at,
        end=shift.end_at,
        status=shift.status,
        version=shift.version,
        note=shift.note or "",
    )


def shift_to_dict(shift: Shift) -> dict[str, Any]:
    """A shift row as JSON-ready values (the ``theirs`` of a conflict)."""
    return {
        "id": shift.id,
        "store_id": shift.store_id,
        "staff_id": shift.staff_id,
        "role": shift.role,
        "start_at": shift.start_at.isoformat(),
        "end_at": shift.end_at.isoformat(),
        "status": shift.status,
        "note": shift.note or "",
        "version": shift.version,
        "updated_at": shift.updated_at.isoformat() if shift.updated_at else None,
        "updated_by": shift.updated_by,
    }


def week_bounds(store: StoreInfo, week_start: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[Monday 00:00, next Monday 00:00) store-local, as UTC instants."""
    zone = tz(store.timezone)
    a = dt.datetime.combine(week_start, dt.time(0), zone).astimezone(dt.UTC)
    b = dt.datetime.combine(week_start + dt.timedelta(days=7), dt.time(0), zone)
    return a, b.astimezone(dt.UTC)


def load_spans(
    session: Session,
    store_id: int,
    start: dt.datetime,
    end: dt.datetime,
    *,
    staff_ids: set[int] | None = None,
) -> list[ShiftSpan]:
    """Shifts of a store starting in [start, end) (optionally of some people only)."""
    q = select(Shift).where(
        Shift.store_id == store_id, Shift.start_at >= start, Shift.start_at < end
    )
    if staff_ids is not None:
        q = q.where(Shift.staff_id.in_(staff_ids))
    return [span_of(s) for s in session.scalars(q.order_by(Shift.start_at, Shift.id))]


def load_person_spans(
    session: Session, staff_id: int, start: dt.datetime, end: dt.datetime
) -> list[ShiftSpan]:
    """One person's shifts in any store overlapping the window (people can help out elsewhere)."""
    q = select(Shift).where(Shift.staff_id == staff_id, Shift.start_at < end, Shift.end_at > start)
    return [span_of(s) for s in session.scalars(q)]


@dataclass(frozen=True)
class WeekSchedule:
    """Everything the schedule screen draws for one store-week."""

    store: StoreInfo
    week_start: dt.date
    staff: tuple[StaffInfo, ...]
    shifts: tuple[ShiftSpan, ...]  # starting inside the week
    violations: tuple[Violation, ...]
    demand: WeekDemand

    @property
    def draft_count(self) -> int:
        return sum(1 for s in self.shifts if s.status == ShiftStatus.DRAFT.value)

    @property
    def published_count(self) -> int:
        return sum(1 for s in self.shifts if s.status == ShiftStatus.PUBLISHED.value)


def load_week(
    session: Session,
    store_id: int,
    week_start: dt.date,
    settings: RuleSettings = DEFAULT_SETTINGS,
    forecast: dict[tuple[dt.date, int], float] | None = None,
) -> WeekSchedule | None:
    """The store's week: staff, shifts, rule findings (with the demand gaps) and demand."""
    store = load_store(session, store_id)
    if store is None:
        return None
    a, b = week_bounds(store, week_start)
    around = load_spans(session, store_id, a - EDGE, b + EDGE)
    shifts = [s for s in around if a <= s.start < b]
    staff = load_staff(session, store_id, include_ids={s.staff_id for s in around})
    if forecast is None:
        forecast = load_forecast(session, store_id, week_start, 7)
    demand = week_demand(store, week_start, forecast, shifts)
    violations = week_violations(week_start, around, staff, store, settings)
    violations.extend(demand.violations())
    return WeekSchedule(
        store=store,
        week_start=week_start,
        staff=tuple(staff),
        shifts=tuple(shifts),
        violations=tuple(violations),
        demand=demand,
    )
