"""The ``gps.import/1`` mutation: imported track points of one rep, insert-only.

Kept apart from :mod:`core.trajectory.gpx` so that registering the mutation (the server,
the sync engine's rebase) never imports gpxpy. A desktop queues a GPX file's new points as
mutations of at most :data:`CHUNK` points; the server runs the same handler and checks
everything again: the rep exists and is in the user's scope, every time, position and
accuracy is plausible, and a mutation holds at most :data:`MAX_POINTS` points. Points at an
instant the rep already has are skipped (first wins, never overwritten), so a replay, a
re-application over pulled rows or another desktop importing the same file inserts
nothing twice.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.i18n import _
from core.models import GpsPoint, Outbox, Rep, SyncState
from core.mutations import Actor, Changes, Rejected, ScopeDenied, insert_new_rows, mutation

MUTATION = "gps.import/1"
#: Points per mutation the desktop queues: about 130 KB of JSON, a short server transaction.
CHUNK = 2_000
#: Points per mutation the server accepts (a hostile or broken client cannot send more).
MAX_POINTS = 5_000
#: No GPS fix is older (receivers that lost their week number report 1999 and earlier).
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: A fix may be this far ahead of the applying side's clock (clocks drift; GPS time does not).
CLOCK_SKEW = dt.timedelta(minutes=10)
MAX_ACCURACY_M = 10_000.0


def rep_in_scope(session: Session, actor: Actor, rep_id: int) -> Rep:
    rep = session.get(Rep, rep_id)
    if rep is None:
        raise Rejected("unknown_rep", _("Unknown sales rep."))
    if not (actor.can_store(rep.store_id) or actor.can_region(rep.region_id)):
        raise ScopeDenied(f"rep {rep_id} is outside the scope of {actor.name}")
    return rep


def existing_times(
    session: Session, rep_id: int, first: dt.datetime, last: dt.datetime
) -> set[dt.datetime]:
    return set(
        session.scalars(
            select(GpsPoint.ts).where(
                GpsPoint.rep_id == rep_id, GpsPoint.ts >= first, GpsPoint.ts <= last
            )
        )
    )


# --------------------------------------------------------------------------- the mutation


def _bad(detail: str) -> Rejected:
    return Rejected(
        "bad_gps_points", _("The GPS track was refused: {detail}").format(detail=detail[:200])
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:  # an integer of 400 digits is valid JSON
        return None
    return f if math.isfinite(f) else None


def _parse_point(p: Any, now: dt.datetime) -> tuple[dt.datetime, float, float, float]:
    """One ``[ts, lat, lon, accuracy_m]`` of the mutation's args, checked."""
    if not isinstance(p, list) or len(p) != 4 or not isinstance(p[0], str):
        raise _bad(f"a point must be [time, lat, lon, accuracy], got {str(p)[:80]}")
    try:
        ts = dt.datetime.fromisoformat(p[0])
    except ValueError:
        raise _bad(f"bad time {p[0][:40]!r}") from None
    if ts.tzinfo is None:
        raise _bad(f"time without a zone {p[0][:40]!r}")
    ts = ts.astimezone(dt.UTC)
    if ts < EARLIEST or ts > now + CLOCK_SKEW:
        raise _bad(f"impossible time {ts.isoformat()}")
    lat, lon, acc = _number(p[1]), _number(p[2]), _number(p[3])
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _bad(f"impossible position {p[1]!r}, {p[2]!r}")
    if acc is None or not 0 < acc <= MAX_ACCURACY_M:
        raise _bad(f"impossible accuracy {p[3]!r}")
    return ts, lat, lon, acc


@mutation("gps.import")
def handle_gps_import(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    """Add imported points to a rep's trace (source='gpx'); points already there are kept.

    Insert-only with a natural key (rep, instant): a replay, a re-application over pulled
    rows, or another desktop importing the same file inserts nothing twice. The rows go in
    with one batched insert (:func:`core.mutations.insert_new_rows`), which the central
    change log records like ORM writes.
    """
    rep_id = args.get("rep_id")
    if isinstance(rep_id, bool) or not isinstance(rep_id, int):
        raise _bad(f"rep_id must be an integer, got {str(rep_id)[:40]!r}")
    points = args.get("points")
    if not isinstance(points, list) or not points:
        raise _bad("points must be a non-empty list")
    if len(points) > MAX_POINTS:
        raise Rejected(
            "too_many_points",
            _("A GPS import may send at most {n} points at a time.").format(n=MAX_POINTS),
        )
    rep_in_scope(session, actor, rep_id)
    parsed: dict[dt.datetime, tuple[float, float, float]] = {}
    for p in points:
        ts, lat, lon, acc = _parse_point(p, now)
        if ts in parsed:
            raise _bad(f"two points at {ts.isoformat()}")
        parsed[ts] = (lat, lon, acc)
    existing = existing_times(session, rep_id, min(parsed), max(parsed))
    rows = [
        {"rep_id": rep_id, "ts": ts, "lat": lat, "lon": lon, "accuracy_m": acc, "source": "gpx"}
        for ts, (lat, lon, acc) in parsed.items()
        if ts not in existing
    ]
    if not rows:
        return Changes()
    session.flush()  # ORM writes pending in this session go first
    if not insert_new_rows(session, GpsPoint, rows):
        return Changes()
    return Changes().add("gps_points", rep_id)


def gps_point_keys(args: dict[str, Any]) -> list[tuple[int, dt.datetime]]:
    """The (rep, instant) keys a ``gps.import/1`` mutation may have written locally.

    Used to reconcile the optimistic local points with the server's after a refusal.
    Malformed entries are skipped (the handler would have refused them).
    """
    rep_id = args.get("rep_id")
    points = args.get("points")
    if isinstance(rep_id, bool) or not isinstance(rep_id, int) or not isinstance(points, list):
        return []
    out = []
    for p in points:
        try:
            ts = dt.datetime.fromisoformat(p[0])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if ts.tzinfo is not None:
            out.append((rep_id, ts.astimezone(dt.UTC)))
    return out


@dataclass(frozen=True)
class RefusedImport:
    """A ``gps.import/1`` the server refused: its points were removed from this cache."""

    mutation_id: int
    rep_id: int
    points: int
    message: str


#: ``sync_state`` key: the last refused import the desktop has reported
K_REFUSALS_TOLD = "gps_import_refusals_told"


def refusals_to_tell(session: Session) -> list[RefusedImport]:
    """The refused imports not reported yet, now counted as reported.

    Refused outbox rows are kept (their reason stays readable), so what was told lives in
    ``sync_state``: a field map opened later, or after the app restarts, does not report
    them again.
    """
    told = session.get(SyncState, K_REFUSALS_TOLD)
    refused = refused_imports(session, int(told.value) if told is not None else 0)
    if refused:
        last = str(refused[-1].mutation_id)
        if told is None:
            session.add(SyncState(key=K_REFUSALS_TOLD, value=last))
        else:
            told.value = last
    return refused


def refused_imports(session: Session, after_mutation_id: int = 0) -> list[RefusedImport]:
    """The refused GPX imports of this desktop's outbox, newest last (local cache only).

    The rep and the point count are read with SQLite's JSON functions, so the points
    themselves (up to :data:`CHUNK` per row) are never loaded.
    """
    rows = session.execute(
        select(
            Outbox.mutation_id,
            func.json_extract(Outbox.args, "$.rep_id"),
            func.json_array_length(Outbox.args, "$.points"),
            Outbox.error,
        )
        .where(
            Outbox.name == MUTATION,
            Outbox.status == "rejected",
            Outbox.mutation_id > after_mutation_id,
        )
        .order_by(Outbox.mutation_id)
    ).all()
    return [RefusedImport(int(m), int(r or 0), int(n or 0), e or "") for m, r, n, e in rows]
