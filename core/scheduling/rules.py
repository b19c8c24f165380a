"""Rota rules: what makes a week of shifts legal, and a readable explanation when it is not.

Every rule returns :class:`Violation` values that name the staff, the shifts and the limit,
and render their explanation in the user's language at display time (``message()``), so the
same violation reads in Chinese on the desktop and in English in a server log.

Which rules are hard (block the edit) and which are soft (warn) — and why:

=====================  ========  ==========================================================
rule                   severity  why
=====================  ========  ==========================================================
``overlap``            hard      one person cannot work two shifts at once.
``rest``               hard      labour law style minimum rest between two shifts of one
                                 person (default 11 h; :class:`RuleSettings`). Every gap
                                 between two shifts counts, so split shifts are refused.
``weekly_max``         hard      hours in an ISO week (store-local, by shift start) above
                                 contract hours **plus** the overtime allowance.
``overtime``           soft      hours above the contract but within the allowance (default
                                 4 h): allowed, but the manager should see it.
``availability``       hard      the shift lies outside the person's availability windows
                                 (``staff_availability``, store-local). Someone with no
                                 availability rows recorded is treated as always available.
``coverage_open`` /    soft while the week is a draft (a rota is built shift by shift and
``coverage_close``     → hard    is incomplete most of the time); **hard at publish**: a
                       at publish published week must have a manager or keyholder on the
                                 floor when the store opens and when it closes, every day.
``understaffed``       soft      scheduled staff below the demand-derived requirement
                                 (:mod:`core.scheduling.demand`); a forecast is a guess.
=====================  ========  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.i18n import N_, _, translate_in
from core.timeutil import tz

HARD = "hard"
SOFT = "soft"

# The roles are ``core.models.StaffRole`` values, written out so that the rules (and the
# demand gaps a store manager's home shows at start-up, read before SQLAlchemy is
# imported: ``core.quickread``) need no database library; a test holds them equal.

#: Roles that can open and close the store (hold the keys).
KEY_ROLES = frozenset({"manager", "keyholder"})

ROLE_LABELS: dict[str, str] = {
    "manager": N_("Store manager"),
    "keyholder": N_("Keyholder"),
    "sales": N_("Sales associate"),
    "cashier": N_("Cashier"),
    "stock": N_("Stock clerk"),
}

WEEKDAY_LABELS = (
    N_("Mon"),
    N_("Tue"),
    N_("Wed"),
    N_("Thu"),
    N_("Fri"),
    N_("Sat"),
    N_("Sun"),
)


def role_label(role: str) -> str:
    return _(ROLE_LABELS.get(role, role))


@dataclass(frozen=True)
class RuleSettings:
    """Tunable limits; the defaults are what the mutation handlers (client and server) use."""

    min_rest: dt.timedelta = dt.timedelta(hours=11)
    #: Hours a person may work above the contract in one week before it becomes a hard stop.
    overtime_allowance_h: float = 4.0


DEFAULT_SETTINGS = RuleSettings()


@dataclass(frozen=True)
class StoreInfo:
    id: int
    code: str
    name: str
    timezone: str
    opens_at: dt.time
    closes_at: dt.time
    target_star: float
    min_floor_staff: int


@dataclass(frozen=True)
class Window:
    """An availability window on a weekday, store-local; ``end`` 00:00 means midnight."""

    weekday: int
    start: dt.time
    end: dt.time

    def end_minutes(self) -> int:
        m = self.end.hour * 60 + self.end.minute
        return 24 * 60 if m == 0 or m <= self.start.hour * 60 + self.start.minute else m

    def start_minutes(self) -> int:
        return self.start.hour * 60 + self.start.minute


@dataclass(frozen=True)
class StaffInfo:
    id: int
    name: str
    role: str
    contract_hours_week: float
    availability: tuple[Window, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class ShiftSpan:
    """A shift reduced to what the rules need (aware UTC instants)."""

    id: str
    staff_id: int
    role: str
    start: dt.datetime
    end: dt.datetime
    status: str = "draft"
    version: int = 1
    note: str = ""

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0


@dataclass(frozen=True)
class Violation:
    """One fired rule. ``template`` is an English source string formatted with ``params``."""

    rule: str
    severity: str
    template: str
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    staff_ids: tuple[int, ...] = ()
    shift_ids: tuple[str, ...] = ()
    day: dt.date | None = None

    @property
    def hard(self) -> bool:
        return self.severity == HARD

    def message(self) -> str:
        """The explanation in the current UI language."""
        return _(self.template).format(**self._params(_))

    def message_in(self, lang: str) -> str:
        return translate_in(lang, self.template).format(
            **self._params(lambda s: translate_in(lang, s))
        )

    def _params(self, tr: Any) -> dict[str, Any]:
        out = dict(self.params)
        if "weekday" in out:
            out["weekday"] = tr(WEEKDAY_LABELS[out["weekday"]])
        if "role" in out:
            out["role"] = tr(ROLE_LABELS.get(out["role"], out["role"]))
        return out


# --------------------------------------------------------------------------- helpers


def local(instant: dt.datetime, store: StoreInfo) -> dt.datetime:
    return instant.astimezone(tz(store.timezone))


def _fmt_span(span: ShiftSpan, store: StoreInfo) -> str:
    a, b = local(span.start, store), local(span.end, store)
    end = b.strftime("%H:%M") if b.date() == a.date() else b.strftime("%m-%d %H:%M")
    return f"{a:%m-%d %H:%M}–{end}"


def _fmt_hours(h: float) -> str:
    return f"{h:.1f}".rstrip("0").rstrip(".")


def week_monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def local_week_of(span: ShiftSpan, store: StoreInfo) -> dt.date:
    """The Monday of the ISO week a shift counts in (its store-local start day)."""
    return week_monday(local(span.start, store).date())


# --------------------------------------------------------------------------- per-person rules


def overlap_and_rest(
    staff: StaffInfo,
    shifts: Sequence[ShiftSpan],
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """Overlaps and short rests between the shifts of one person (any pair, not just neighbours
    of the sorted list, so a long shift enclosing two short ones is reported for both)."""
    out: list[Violation] = []
    ordered = sorted(shifts, key=lambda s: (s.start, s.end, s.id))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.start >= a.end + settings.min_rest:
                break  # sorted by start: every later shift is far enough from a
            if b.start < a.end:
                out.append(
                    Violation(
                        "overlap",
                        HARD,
                        N_("{name}: shifts {a} and {b} overlap (one person, one shift at a time)."),
                        {"name": staff.name, "a": _fmt_span(a, store), "b": _fmt_span(b, store)},
                        (staff.id,),
                        (a.id, b.id),
                        local(b.start, store).date(),
                    )
                )
            else:
                gap = b.start - a.end
                out.append(
                    Violation(
                        "rest",
                        HARD,
                        N_(
                            "{name}: only {rest} h rest between {a} and {b}; "
                            "the minimum is {minimum} h."
                        ),
                        {
                            "name": staff.name,
                            "a": _fmt_span(a, store),
                            "b": _fmt_span(b, store),
                            "rest": _fmt_hm(gap),
                            "minimum": _fmt_hm(settings.min_rest),
                        },
                        (staff.id,),
                        (a.id, b.id),
                        local(b.start, store).date(),
                    )
                )
    return out


def _fmt_hm(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    h, m = divmod(minutes, 60)
    return f"{h}" if m == 0 else f"{h}:{m:02d}"


def weekly_hours(
    staff: StaffInfo,
    shifts: Sequence[ShiftSpan],
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """Contract hours per ISO week: above contract + allowance is hard, above contract soft."""
    by_week: dict[dt.date, list[ShiftSpan]] = defaultdict(list)
    for s in shifts:
        by_week[local_week_of(s, store)].append(s)
    out: list[Violation] = []
    limit = staff.contract_hours_week + settings.overtime_allowance_h
    for monday, spans in sorted(by_week.items()):
        total = sum(s.hours for s in spans)
        ids = tuple(s.id for s in sorted(spans, key=lambda s: s.start))
        params = {
            "name": staff.name,
            "week": f"{monday:%m-%d}",
            "hours": _fmt_hours(total),
            "contract": _fmt_hours(staff.contract_hours_week),
            "limit": _fmt_hours(limit),
            "allowance": _fmt_hours(settings.overtime_allowance_h),
        }
        if total > limit + 1e-9:
            out.append(
                Violation(
                    "weekly_max",
                    HARD,
                    N_(
                        "{name}: {hours} h in the week of {week}, above the contract's "
                        "{contract} h plus {allowance} h overtime (maximum {limit} h)."
                    ),
                    params,
                    (staff.id,),
                    ids,
                    monday,
                )
            )
        elif total > staff.contract_hours_week + 1e-9:
            out.append(
                Violation(
                    "overtime",
                    SOFT,
                    N_(
                        "{name}: {hours} h in the week of {week}, overtime above the "
                        "contract's {contract} h (allowed up to {limit} h)."
                    ),
                    params,
                    (staff.id,),
                    ids,
                    monday,
                )
            )
    return out


def _day_segments(span: ShiftSpan, store: StoreInfo) -> list[tuple[dt.date, int, int]]:
    """(local day, start minute, end minute) pieces of a shift, split at local midnight."""
    a, b = local(span.start, store), local(span.end, store)
    out: list[tuple[dt.date, int, int]] = []
    day = a.date()
    cur = a
    while cur < b:
        next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), a.tzinfo)
        piece_end = min(b, next_midnight)
        start_m = cur.hour * 60 + cur.minute
        end_m = 24 * 60 if piece_end == next_midnight else piece_end.hour * 60 + piece_end.minute
        if end_m > start_m:
            out.append((day, start_m, end_m))
        cur = piece_end
        day = day + dt.timedelta(days=1)
    return out


def availability(
    staff: StaffInfo, shifts: Sequence[ShiftSpan], store: StoreInfo
) -> list[Violation]:
    """Each local-day piece of a shift must fit in one availability window of that weekday."""
    if not staff.availability:
        return []
    out: list[Violation] = []
    for s in shifts:
        for day, start_m, end_m in _day_segments(s, store):
            windows = [w for w in staff.availability if w.weekday == day.weekday()]
            if any(w.start_minutes() <= start_m and end_m <= w.end_minutes() for w in windows):
                continue
            avail = ", ".join(
                f"{w.start:%H:%M}–{'24:00' if w.end_minutes() == 1440 else f'{w.end:%H:%M}'}"
                for w in sorted(windows, key=lambda w: w.start)
            )
            template = (
                N_("{name} is not available for {shift}: available {weekday} {windows}.")
                if avail
                else N_("{name} is not available for {shift}: not available on {weekday}.")
            )
            out.append(
                Violation(
                    "availability",
                    HARD,
                    template,
                    {
                        "name": staff.name,
                        "shift": _fmt_span(s, store),
                        "weekday": day.weekday(),
                        "windows": avail,
                    },
                    (staff.id,),
                    (s.id,),
                    day,
                )
            )
            break
    return out


def staff_violations(
    staff: StaffInfo,
    shifts: Sequence[ShiftSpan],
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """Every per-person rule over one person's shifts."""
    return [
        *overlap_and_rest(staff, shifts, store, settings),
        *weekly_hours(staff, shifts, store, settings),
        *availability(staff, shifts, store),
    ]


# --------------------------------------------------------------------------- store-level rules


def _at(day: dt.date, t: dt.time, store: StoreInfo) -> dt.datetime:
    return dt.datetime.combine(day, t, tz(store.timezone)).astimezone(dt.UTC)


def opening_instants(day: dt.date, store: StoreInfo) -> tuple[dt.datetime, dt.datetime]:
    """(open, close) of a local business day as UTC; a close at/before open means next day."""
    opens = _at(day, store.opens_at, store)
    close_day = day if store.closes_at > store.opens_at else day + dt.timedelta(days=1)
    return opens, _at(close_day, store.closes_at, store)


def coverage(
    week_start: dt.date,
    shifts: Sequence[ShiftSpan],
    staff_by_id: dict[int, StaffInfo],
    store: StoreInfo,
    *,
    severity: str = SOFT,
) -> list[Violation]:
    """A manager or keyholder (by shift role or by the person's role) on the floor at open and
    at close, each day of the week."""
    key_shifts = [
        s
        for s in shifts
        if s.role in KEY_ROLES
        or (s.staff_id in staff_by_id and staff_by_id[s.staff_id].role in KEY_ROLES)
    ]
    out: list[Violation] = []
    for i in range(7):
        day = week_start + dt.timedelta(days=i)
        opens, closes = opening_instants(day, store)
        if not any(s.start <= opens < s.end for s in key_shifts):
            out.append(
                Violation(
                    "coverage_open",
                    severity,
                    N_(
                        "{weekday} {date}: no manager or keyholder on the floor at opening ({time})."
                    ),
                    {
                        "weekday": day.weekday(),
                        "date": f"{day:%m-%d}",
                        "time": f"{store.opens_at:%H:%M}",
                    },
                    (),
                    (),
                    day,
                )
            )
        if not any(s.start < closes <= s.end for s in key_shifts):
            out.append(
                Violation(
                    "coverage_close",
                    severity,
                    N_(
                        "{weekday} {date}: no manager or keyholder on the floor at closing ({time})."
                    ),
                    {
                        "weekday": day.weekday(),
                        "date": f"{day:%m-%d}",
                        "time": f"{store.closes_at:%H:%M}",
                    },
                    (),
                    (),
                    day,
                )
            )
    return out


def week_violations(
    week_start: dt.date,
    shifts: Sequence[ShiftSpan],
    staff: Iterable[StaffInfo],
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
    *,
    publishing: bool = False,
) -> list[Violation]:
    """All rule findings for shifts of a week (``shifts`` may include neighbouring days so
    that rest across the week boundary is checked; findings are kept when they touch a shift
    that starts inside the week)."""
    staff_by_id = {s.id: s for s in staff}
    in_week = {s.id for s in shifts if local_week_of(s, store) == week_start}
    per_person: dict[int, list[ShiftSpan]] = defaultdict(list)
    for s in shifts:
        per_person[s.staff_id].append(s)
    out: list[Violation] = []
    for staff_id, spans in sorted(per_person.items()):
        info = staff_by_id.get(staff_id) or StaffInfo(staff_id, f"#{staff_id}", "", 40.0)
        out.extend(
            v
            for v in staff_violations(info, spans, store, settings)
            if any(sid in in_week for sid in v.shift_ids)
        )
    week_shifts = [s for s in shifts if s.id in in_week]
    out.extend(
        coverage(week_start, week_shifts, staff_by_id, store, severity=HARD if publishing else SOFT)
    )
    return out


def violations_for_shift(
    shift: ShiftSpan,
    others: Sequence[ShiftSpan],
    staff: StaffInfo,
    store: StoreInfo,
    settings: RuleSettings = DEFAULT_SETTINGS,
) -> list[Violation]:
    """Hard and soft findings that involve ``shift`` once it joins the person's ``others``
    (other shifts of the same person; a previous version of ``shift`` is ignored)."""
    mine = [o for o in others if o.staff_id == staff.id and o.id != shift.id]
    mine.append(shift)
    return [v for v in staff_violations(staff, mine, store, settings) if shift.id in v.shift_ids]
