"""Shift mutations: the desktop applies them optimistically, the server re-runs them on push.

* ``shift.create/1`` {id, store_id, staff_id, role, start_at, end_at, note} — a draft.
* ``shift.update/1`` {id, + changed fields of staff_id, role, start_at, end_at, note} with
  ``base_version``; a stale base is a :class:`Conflict` carrying the current row. An edit
  to a published shift turns it back into a draft, so people are never shown a half-edited
  rota until the manager publishes again.
* ``shift.delete/1`` {id} with ``base_version``; deleting an already deleted shift is a
  no-op (a retried delete must not fail).
* ``shift.publish/1`` {store_id, week_start} — draft → published for the store-week after
  re-validating every hard rule, including open/close coverage (hard only at publish).
* ``shift.copy_week/1`` {store_id, source_week, target_week, new_ids: {source_id: new_id}}
  — copies a week's shifts as drafts seven days later, skipping each copy that would break
  a hard rule. The client picks the new ids so client and server create the same rows.

Every hard-rule refusal is :class:`Rejected` whose message is the rule's explanation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import N_, _
from core.models import Shift, ShiftStatus, Staff, StaffRole, Store, new_id
from core.mutations import Actor, Changes, Conflict, Rejected, mutation
from core.scheduling.rules import (
    DEFAULT_SETTINGS,
    RuleSettings,
    ShiftSpan,
    StaffInfo,
    StoreInfo,
    Violation,
    violations_for_shift,
    week_violations,
)
from core.scheduling.week import (
    EDGE,
    load_person_spans,
    load_spans,
    load_staff,
    shift_to_dict,
    span_of,
    store_info,
    week_bounds,
)
from core.timeutil import tz

#: A single shift longer than this is a typing mistake, not a shift.
MAX_SHIFT = dt.timedelta(hours=16)
EDITABLE = ("staff_id", "role", "start_at", "end_at", "note")


def parse_instant(value: Any, field: str) -> dt.datetime:
    """An ISO-8601 instant with an offset -> aware UTC (naive local times are refused)."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise Rejected(
                "bad_input",
                _("{field} is not a date and time: {value}").format(field=field, value=value),
            ) from None
    if parsed.tzinfo is None:
        raise Rejected(
            "bad_input", _("{field} has no time zone: {value}").format(field=field, value=value)
        )
    return parsed.astimezone(dt.UTC)


def _store(session: Session, store_id: Any, *, lock: bool = False) -> Store:
    """The store row; ``lock`` takes a row lock (FOR UPDATE on PostgreSQL) so that shift
    writes of one store are serialised on a multi-worker server and the rule checks below
    cannot race with a concurrent edit (SQLite serialises writers anyway)."""
    try:
        store = session.get(Store, int(store_id), with_for_update=True if lock else None)
    except (TypeError, ValueError):
        store = None
    if store is None:
        raise Rejected("bad_input", _("Unknown store {store}.").format(store=store_id))
    return store


def _staff(session: Session, staff_id: Any, store_id: int) -> Staff:
    """The person, row-locked: a person's shifts in two stores are checked one at a time."""
    try:
        staff = session.get(Staff, int(staff_id), with_for_update=True)
    except (TypeError, ValueError):
        staff = None
    if staff is None or staff.store_id != store_id:
        raise Rejected(
            "bad_input", _("Staff {staff} does not work in this store.").format(staff=staff_id)
        )
    if not staff.active:
        raise Rejected("inactive_staff", _("{name} no longer works here.").format(name=staff.name))
    return staff


def _check_shape(role: str, start: dt.datetime, end: dt.datetime) -> None:
    if role not in {r.value for r in StaffRole}:
        raise Rejected("bad_input", _("Unknown role {role}.").format(role=role))
    if end <= start:
        raise Rejected("bad_input", _("A shift must end after it starts."))
    if end - start > MAX_SHIFT:
        raise Rejected(
            "too_long",
            _("A shift may last at most {hours} hours.").format(
                hours=int(MAX_SHIFT.total_seconds() // 3600)
            ),
        )


def _raise_hard(found: list[Violation]) -> None:
    hard = [v for v in found if v.hard]
    if hard:
        raise Rejected(
            hard[0].rule,
            "\n".join(v.message() for v in hard),
            rules=[v.rule for v in hard],
            messages_en=[v.message_in("en") for v in hard],
        )


def check_person(
    session: Session,
    span: ShiftSpan,
    staff: StaffInfo,
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """Rule findings for ``span`` against the person's other shifts (from the database)."""
    window = dt.timedelta(days=8)
    others = load_person_spans(session, staff.id, span.start - window, span.end + window)
    return violations_for_shift(span, others, staff, store, settings)


def _staff_info(session: Session, staff: Staff) -> StaffInfo:
    for info in load_staff(session, staff.store_id, include_ids={staff.id}):
        if info.id == staff.id:
            return info
    raise AssertionError("staff row vanished inside the transaction")


@mutation("shift.create")
def create_shift(
    session: Session, args: dict[str, Any], actor: Actor, base_version: int | None, now: dt.datetime
) -> Changes:
    store = _store(session, args.get("store_id"))
    actor.require_store(store.id)
    _store(session, store.id, lock=True)
    shift_id = str(args.get("id") or "")
    if not shift_id or len(shift_id) > 32:
        raise Rejected("bad_input", _("A new shift needs a client id of at most 32 characters."))
    if session.get(Shift, shift_id) is not None:
        raise Rejected("duplicate", _("A shift with this id already exists."))
    staff = _staff(session, args.get("staff_id"), store.id)
    role = str(args.get("role") or staff.role)
    start = parse_instant(args.get("start_at"), "start_at")
    end = parse_instant(args.get("end_at"), "end_at")
    _check_shape(role, start, end)
    span = ShiftSpan(shift_id, staff.id, role, start, end)
    _raise_hard(check_person(session, span, _staff_info(session, staff), store_info(store)))
    session.add(
        Shift(
            id=shift_id,
            store_id=store.id,
            staff_id=staff.id,
            role=role,
            start_at=start,
            end_at=end,
            status=ShiftStatus.DRAFT.value,
            note=str(args.get("note") or "")[:256],
            version=1,
            updated_at=now,
            updated_by=actor.user_id,
        )
    )
    session.flush()
    return Changes().add("shifts", shift_id)


def _current(session: Session, args: dict[str, Any], base_version: int | None) -> Shift | None:
    """The shift re-read under lock, checked against ``base_version``."""
    shift = session.get(
        Shift, str(args.get("id") or ""), with_for_update=True, populate_existing=True
    )
    if shift is None:
        return None
    if base_version is None:
        raise Rejected("bad_input", _("Editing a shift needs the version it was based on."))
    if shift.version != base_version:
        raise Conflict(
            "shift",
            shift.id,
            _(
                "This shift was changed elsewhere (version {theirs}, your edit was based on "
                "version {mine})."
            ).format(theirs=shift.version, mine=base_version),
            theirs=shift_to_dict(shift),
        )
    return shift


@mutation("shift.update")
def update_shift(
    session: Session, args: dict[str, Any], actor: Actor, base_version: int | None, now: dt.datetime
) -> Changes:
    shift = session.get(Shift, str(args.get("id") or ""))
    if shift is not None:
        actor.require_store(shift.store_id)
        _store(session, shift.store_id, lock=True)
    shift = _current(session, args, base_version)
    if shift is None:
        raise Conflict(
            "shift",
            str(args.get("id")),
            _("This shift was deleted elsewhere."),
            theirs={"id": str(args.get("id")), "deleted": True},
        )
    unknown = set(args) - {"id", *EDITABLE}
    if unknown:
        raise Rejected(
            "bad_input",
            _("These fields cannot be changed: {fields}").format(fields=", ".join(sorted(unknown))),
        )
    store = session.get(Store, shift.store_id)
    assert store is not None
    staff = _staff(session, args.get("staff_id", shift.staff_id), store.id)
    role = str(args.get("role", shift.role))
    start = parse_instant(args["start_at"], "start_at") if "start_at" in args else shift.start_at
    end = parse_instant(args["end_at"], "end_at") if "end_at" in args else shift.end_at
    _check_shape(role, start, end)
    span = ShiftSpan(shift.id, staff.id, role, start, end)
    _raise_hard(check_person(session, span, _staff_info(session, staff), store_info(store)))
    shift.staff_id = staff.id
    shift.role = role
    shift.start_at = start
    shift.end_at = end
    if "note" in args:
        shift.note = str(args["note"] or "")[:256]
    shift.status = ShiftStatus.DRAFT.value
    shift.version = shift.version + 1
    shift.updated_at = now
    shift.updated_by = actor.user_id
    session.flush()
    return Changes().add("shifts", shift.id)


@mutation("shift.delete")
def delete_shift(
    session: Session, args: dict[str, Any], actor: Actor, base_version: int | None, now: dt.datetime
) -> Changes:
    existing = session.get(Shift, str(args.get("id") or ""))
    if existing is None:
        return Changes().add("shifts", str(args.get("id")))
    actor.require_store(existing.store_id)
    _store(session, existing.store_id, lock=True)
    shift = _current(session, args, base_version)
    assert shift is not None
    session.delete(shift)
    session.flush()
    return Changes().add("shifts", shift.id)


def _week_start(value: Any) -> dt.date:
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        raise Rejected("bad_input", _("{value} is not a date.").format(value=value)) from None
    if day.weekday() != 0:
        raise Rejected("bad_input", _("A week starts on a Monday: {day}").format(day=day))
    return day


def publish_findings(
    session: Session,
    store_id: int,
    week_start: dt.date,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """What would stop (hard) or worry (soft) publishing a store-week."""
    store = _store(session, store_id)
    info = store_info(store)
    a, b = week_bounds(info, week_start)
    around = load_spans(session, store.id, a - EDGE, b + EDGE)
    staff = load_staff(session, store.id, include_ids={s.staff_id for s in around})
    return week_violations(week_start, around, staff, info, settings, publishing=True)


@mutation("shift.publish")
def publish_week(
    session: Session, args: dict[str, Any], actor: Actor, base_version: int | None, now: dt.datetime
) -> Changes:
    store = _store(session, args.get("store_id"))
    actor.require_store(store.id)
    _store(session, store.id, lock=True)
    week_start = _week_start(args.get("week_start"))
    _raise_hard(publish_findings(session, store.id, week_start))
    a, b = week_bounds(store_info(store), week_start)
    changes = Changes()
    drafts = session.scalars(
        select(Shift).where(
            Shift.store_id == store.id,
            Shift.start_at >= a,
            Shift.start_at < b,
            Shift.status == ShiftStatus.DRAFT.value,
        )
    ).all()
    for shift in drafts:
        shift.status = ShiftStatus.PUBLISHED.value
        shift.version += 1
        shift.updated_at = now
        shift.updated_by = actor.user_id
        changes.add("shifts", shift.id)
    session.flush()
    return changes if changes else Changes().add("shifts")


# --------------------------------------------------------------------------- copy a week


@dataclass(frozen=True)
class CopyItem:
    source_id: str
    span: ShiftSpan  # the copy, with its new id
    problems: tuple[Violation, ...]  # hard findings: the copy is skipped when not empty


@dataclass(frozen=True)
class CopyPlan:
    store_id: int
    source_week: dt.date
    target_week: dt.date
    items: tuple[CopyItem, ...]

    @property
    def created(self) -> tuple[CopyItem, ...]:
        return tuple(i for i in self.items if not i.problems)

    @property
    def skipped(self) -> tuple[CopyItem, ...]:
        return tuple(i for i in self.items if i.problems)


def plan_copy_week(
    session: Session,
    store_id: int,
    source_week: dt.date,
    target_week: dt.date,
    new_ids: dict[str, str],
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> CopyPlan:
    """Which shifts of ``source_week`` can be copied into ``target_week`` (same weekday and
    local time) without breaking a hard rule, given what is already planned there and the
    copies accepted before each one. Inactive staff are skipped with an explanation."""
    store = _store(session, store_id)
    info = store_info(store)
    a, b = week_bounds(info, source_week)
    sources = load_spans(session, store.id, a, b)
    staff = {s.id: s for s in load_staff(session, store.id)}
    delta = target_week - source_week
    ta, tb = week_bounds(info, target_week)
    accepted: list[ShiftSpan] = []
    items: list[CopyItem] = []
    for src in sources:
        new_id = new_ids.get(src.id)
        if not new_id:
            continue
        # Same local wall-clock time on the same weekday (DST-safe).
        zone_start = src.start.astimezone(tz(info.timezone))
        zone_end = src.end.astimezone(tz(info.timezone))
        start = (zone_start.replace(tzinfo=None) + delta).replace(tzinfo=tz(info.timezone))
        end = (zone_end.replace(tzinfo=None) + delta).replace(tzinfo=tz(info.timezone))
        span = ShiftSpan(
            new_id,
            src.staff_id,
            src.role,
            start.astimezone(dt.UTC),
            end.astimezone(dt.UTC),
            note=src.note,
        )
        person = staff.get(src.staff_id)
        if person is None:
            items.append(CopyItem(src.id, span, (_inactive(src.staff_id),)))
            continue
        others = load_person_spans(
            session, person.id, ta - dt.timedelta(days=8), tb + dt.timedelta(days=8)
        )
        others += [s for s in accepted if s.staff_id == person.id]
        hard = tuple(
            v for v in violations_for_shift(span, others, person, info, settings) if v.hard
        )
        if session.get(Shift, new_id) is not None:
            hard = (*hard, _duplicate(new_id))
        if not hard:
            accepted.append(span)
        items.append(CopyItem(src.id, span, hard))
    return CopyPlan(store.id, source_week, target_week, tuple(items))


def plan_copy_previous(
    session: Session,
    store_id: int,
    target_week: dt.date,
    id_factory: Callable[[], str] = new_id,
) -> CopyPlan:
    """The plan for "copy last week": every shift of the week before gets a fresh id."""
    source = target_week - dt.timedelta(days=7)
    info = store_info(_store(session, store_id))
    a, b = week_bounds(info, source)
    ids = {s.id: id_factory() for s in load_spans(session, store_id, a, b)}
    return plan_copy_week(session, store_id, source, target_week, ids)


def _inactive(staff_id: int) -> Violation:
    return Violation(
        "inactive_staff",
        "hard",
        N_("Staff #{staff} no longer works in this store."),
        {"staff": staff_id},
        (staff_id,),
    )


def _duplicate(shift_id: str) -> Violation:
    return Violation(
        "duplicate", "hard", N_("A shift with id {id} already exists."), {"id": shift_id}
    )


@mutation("shift.copy_week")
def copy_week(
    session: Session, args: dict[str, Any], actor: Actor, base_version: int | None, now: dt.datetime
) -> Changes:
    store = _store(session, args.get("store_id"))
    actor.require_store(store.id)
    _store(session, store.id, lock=True)
    source = _week_start(args.get("source_week"))
    target = _week_start(args.get("target_week"))
    raw_ids = args.get("new_ids") or {}
    if not isinstance(raw_ids, dict):
        raise Rejected("bad_input", _("new_ids must map source shift ids to new ids."))
    plan = plan_copy_week(
        session, store.id, source, target, {str(k): str(v) for k, v in raw_ids.items()}
    )
    changes = Changes().add("shifts")
    for item in plan.created:
        s = item.span
        session.add(
            Shift(
                id=s.id,
                store_id=store.id,
                staff_id=s.staff_id,
                role=s.role,
                start_at=s.start,
                end_at=s.end,
                status=ShiftStatus.DRAFT.value,
                note=s.note,
                version=1,
                updated_at=now,
                updated_by=actor.user_id,
            )
        )
        changes.add("shifts", s.id)
    session.flush()
    return changes


def affected_shift_ids(session: Session, name: str, args: dict[str, Any]) -> list[str]:
    """Local shift ids a refused ``name`` mutation may have changed optimistically, so the
    sync engine can re-read them from the server (for publish and copy_week no single id
    argument names them: a publish touches the store-week, a copy its new ids)."""
    if name == "shift.copy_week/1":
        return sorted(str(v) for v in (args.get("new_ids") or {}).values())
    if name == "shift.publish/1":
        try:
            store = _store(session, args.get("store_id"))
            week = _week_start(args.get("week_start"))
        except Rejected:
            return []
        a, b = week_bounds(store_info(store), week)
        return [s.id for s in load_spans(session, store.id, a, b)]
    if name in ("shift.create/1", "shift.update/1", "shift.delete/1") and args.get("id"):
        return [str(args["id"])]
    return []


__all__ = [
    "CopyItem",
    "CopyPlan",
    "affected_shift_ids",
    "check_person",
    "copy_week",
    "create_shift",
    "delete_shift",
    "parse_instant",
    "plan_copy_previous",
    "plan_copy_week",
    "publish_findings",
    "publish_week",
    "span_of",
    "update_shift",
]
