"""The field map's data: one region, some reps, a day or a range — queried, then prepared.

Two steps so the desktop can keep the UI thread free (DESIGN §4): :func:`load_field_day`
runs on the DB worker and returns plain dataclasses; :func:`prepare_field_map` is CPU
work (clean, stops, evidence, simplify) for the CPU pool. Neither returns ORM objects.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Rep, UserRole
from core.mutations import Actor
from core.timeutil import local_day_bounds, to_local
from core.trajectory import gps_blocks
from core.trajectory.arrays import FixArrays, PlaceArrays, TrackPoints
from core.trajectory.batch import (
    Batch,
    clean_batch,
    compare_with_visits_batch,
    detect_stop_table,
    match_stops_batch,
    simplify_batch,
    trace_facts_batch,
    visit_times,
)
from core.trajectory.cleaning import Fix, clean_fixes
from core.trajectory.evidence import VisitEvidence, score_visit, score_visit_facts
from core.trajectory.simplify import simplify_tracks
from core.trajectory.stops import (
    Place,
    RecordedVisit,
    StopMatch,
    compare_with_visits,
    detect_stops,
    match_stops,
)

#: Distinct, print-safe track colours (one per rep, cycled).
REP_COLOURS = (
    "#7b1fa2", "#1565c0", "#ef6c00", "#00838f", "#c2185b", "#2e7d32", "#5d4037",
    "#3949ab", "#f9a825", "#00695c", "#6a1b9a", "#d84315", "#0277bd", "#558b2f",
    "#ad1457", "#4e342e", "#283593", "#9e9d24", "#00796b", "#4527a0",
)  # fmt: skip

#: Heat map window: the region's visits in the 4 weeks up to the last day shown.
HEAT_DAYS = 28
#: Drawing budget for all tracks together (points), see core.trajectory.simplify.
TRACK_POINT_BUDGET = 20_000


@dataclass(frozen=True)
class RepInfo:
    id: int
    code: str
    name: str
    region_id: int
    store_id: int | None


@dataclass(frozen=True, init=False)
class CustomerInfo:
    id: int
    name: str
    tier: str
    lat: float
    lon: float
    rep_id: int | None

    def __init__(
        self, id: int, name: str, tier: str, lat: float, lon: float, rep_id: int | None
    ) -> None:
        # What the frozen dataclass's own __init__ does, at under half its cost (that one
        # sets each field through object.__setattr__): ~1,000 customers per request.
        d = self.__dict__
        d["id"] = id
        d["name"] = name
        d["tier"] = tier
        d["lat"] = lat
        d["lon"] = lon
        d["rep_id"] = rep_id


@dataclass(frozen=True)
class StoreInfo:
    id: int
    code: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, init=False)
class VisitRow:
    visit: RecordedVisit
    rep_name: str
    customer_name: str
    customer_tier: str
    purpose: str
    photo_ref: str | None
    voice_summary: str

    def __init__(
        self,
        visit: RecordedVisit,
        rep_name: str,
        customer_name: str,
        customer_tier: str,
        purpose: str,
        photo_ref: str | None,
        voice_summary: str,
    ) -> None:
        # as CustomerInfo's: the dataclass's own __init__, at under half its cost
        d = self.__dict__
        d["visit"] = visit
        d["rep_name"] = rep_name
        d["customer_name"] = customer_name
        d["customer_tier"] = customer_tier
        d["purpose"] = purpose
        d["photo_ref"] = photo_ref
        d["voice_summary"] = voice_summary


@dataclass
class FieldDayRaw:
    region_id: int
    region_name: str
    timezone: str
    day_from: dt.date
    day_to: dt.date
    reps: list[RepInfo]
    #: each rep's fixes of the period as arrays (time-ordered, as stored)
    gps: dict[int, FixArrays]
    visits: list[VisitRow]
    customers: list[CustomerInfo]
    stores: list[StoreInfo]
    #: (lat, lon) per visit of the heat window: a list, or TrackPoints (arrays)
    heat: Sequence[tuple[float, float]]

    @property
    def fixes(self) -> dict[int, list[Fix]]:
        """The fixes as :class:`Fix` objects (the reference functions' input)."""
        return {rep_id: fa.to_fixes() for rep_id, fa in self.gps.items()}


@dataclass
class RepTrack:
    rep: RepInfo
    colour: str
    points: Sequence[tuple[float, float]]  # simplified, WGS-84 (a list, or TrackPoints)
    n_raw: int
    n_clean: int
    stops: list[StopMatch]
    #: ``points`` as arrays (drawing data is built from these), when the maker has them
    lat: np.ndarray | None = field(default=None, compare=False, repr=False)
    lon: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class VisitView:
    row: VisitRow
    evidence: VisitEvidence
    stop_index: int | None  # into the rep's RepTrack.stops

    @property
    def id(self) -> str:
        return self.row.visit.id


@dataclass
class FieldMap:
    raw: FieldDayRaw
    tracks: list[RepTrack]
    visits: list[VisitView]
    #: (rep id, stop) for stops at a customer with no recorded visit
    unrecorded: list[tuple[int, StopMatch]] = field(default_factory=list)

    def visit(self, visit_id: str) -> VisitView | None:
        return next((v for v in self.visits if v.id == visit_id), None)

    @property
    def flagged(self) -> int:
        return sum(1 for v in self.visits if v.evidence.flagged)

    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        lats: list[Any] = [[v.row.visit.customer_lat for v in self.visits]]
        lons: list[Any] = [[v.row.visit.customer_lon for v in self.visits]]
        for t in self.tracks:
            if t.lat is not None and t.lon is not None:
                lats.append(t.lat)
                lons.append(t.lon)
            elif t.points:
                lats.append([p[0] for p in t.points])
                lons.append([p[1] for p in t.points])
        lat, lon = np.concatenate(lats), np.concatenate(lons)
        if not lat.size:
            lat = np.array([s.lat for s in self.raw.stores], dtype=np.float64)
            lon = np.array([s.lon for s in self.raw.stores], dtype=np.float64)
        if not lat.size:
            return None
        return (float(lat.min()), float(lon.min())), (float(lat.max()), float(lon.max()))


def reps_in_scope(session: Session, actor: Actor, region_id: int) -> list[RepInfo]:
    """Reps a user may review: a region's reps for supervisors/admins, a store's for managers."""
    q = select(Rep).where(Rep.region_id == region_id).order_by(Rep.code)
    if actor.role == UserRole.STORE_MANAGER.value:
        q = q.where(Rep.store_id.in_(actor.store_ids))
    elif actor.role != UserRole.ADMIN.value and not actor.can_region(region_id):
        return []
    return [RepInfo(r.id, r.code, r.name, r.region_id, r.store_id) for r in session.scalars(q)]


def load_field_day(
    session: Session,
    region_id: int,
    rep_ids: Sequence[int] | None,
    day_from: dt.date,
    day_to: dt.date | None = None,
) -> FieldDayRaw:
    """Everything the map draws for a region and period (plain data, DB worker).

    Plain SQL on the cache's ``sqlite3`` connection (no statement building, no ORM or
    SQLAlchemy result processing: ≈ 5 ms of the 13 it took on the demo day); the GPS
    fixes come from the per-hour blocks (:mod:`core.trajectory.gps_blocks`), which also
    rebuilds what a writer left stale. Instants are bound as the cache stores them
    (``UTCDateTime``: naive UTC text) and read back aware.
    """
    day_to = day_to or day_from
    session.flush()  # the session's own pending writes, as an ORM query would see them
    raw = _sqlite(session)
    region = raw.execute("SELECT name, timezone FROM regions WHERE id = ?", (region_id,)).fetchone()
    if region is None:
        raise LookupError(f"no region {region_id}")
    region_name, tz = region
    start, _ = local_day_bounds(day_from, tz)
    _, end = local_day_bounds(day_to, tz)
    since, until = _stored(start), _stored(end)

    rep_sql = "SELECT id, code, name, region_id, store_id FROM reps WHERE region_id = ?"
    rep_args: list[Any] = [region_id]
    if rep_ids is not None:
        rep_args += list(rep_ids)
        rep_sql += f" AND id IN ({_marks(rep_ids)})"
    reps = [RepInfo(*r) for r in raw.execute(rep_sql + " ORDER BY code", rep_args)]
    ids = [r.id for r in reps]
    names = {r.id: r.name for r in reps}

    gps = gps_blocks.read_fixes(raw, ids, start, end) if ids else {}

    visits: list[VisitRow] = []
    if ids:
        rows = raw.execute(
            "SELECT v.id, v.rep_id, v.customer_id, v.check_in_at, v.check_out_at,"
            " v.check_in_lat, v.check_in_lon, c.lat, c.lon, c.name, c.tier, v.purpose,"
            " v.photo_ref, v.voice_summary"
            " FROM visits AS v JOIN customers AS c ON c.id = v.customer_id"
            f" WHERE v.rep_id IN ({_marks(ids)}) AND v.check_in_at >= ? AND v.check_in_at < ?"
            " ORDER BY v.check_in_at",
            [*ids, since, until],
        ).fetchall()
        for vid, rep_id, cid, cin, cout, clat, clon, lat, lon, *rest in rows:
            visits.append(
                VisitRow(
                    RecordedVisit(
                        vid, rep_id, cid, _aware(cin), _aware(cout), clat, clon, lat, lon
                    ),
                    names[rep_id],
                    *rest,
                )
            )

    cust_sql = "SELECT id, name, tier, lat, lon, rep_id FROM customers WHERE region_id = ?"
    cust_args: list[Any] = [region_id]
    if rep_ids is not None:
        cust_sql += f" AND rep_id IN ({_marks(ids)})"
        cust_args += ids
    cust_rows = raw.execute(cust_sql, cust_args).fetchall()
    customers = [CustomerInfo(*c) for c in cust_rows]
    stores = [
        StoreInfo(*st)
        for st in raw.execute(
            "SELECT id, code, name, lat, lon FROM stores WHERE region_id = ?", (region_id,)
        ).fetchall()
    ]
    return FieldDayRaw(
        region_id=region_id,
        region_name=region_name,
        timezone=tz,
        day_from=day_from,
        day_to=day_to,
        reps=reps,
        gps=gps,
        visits=visits,
        customers=customers,
        stores=stores,
        heat=_heat(raw, region_id, day_to, tz, until, {c[0]: c for c in cust_rows}),
    )


def _heat(
    raw: sqlite3.Connection,
    region_id: int,
    day_to: dt.date,
    tz: str,
    until: str,
    known: dict[int, tuple[Any, ...]],
) -> Sequence[tuple[float, float]]:
    """(lat, lon) of the customer of every visit by the region's reps in the
    :data:`HEAT_DAYS` up to ``day_to``: one point per visit (a customer visited 5 times
    is 5 points), customers in ascending id, as arrays (:class:`TrackPoints`).

    SQLite hands the visits' customer ids over as one text (``group_concat``: one Python
    object, not one per visit, and no sort in SQL — a ``GROUP BY`` cost ≈ 1 ms), numpy
    counts them; a customer's lat/lon comes from ``known`` (``customers`` rows by id, read
    already), else from its row. Visits whose customer has no row are left out, as a join
    leaves them. The text is read only when every id is an INTEGER: ``max`` is an int (a
    TEXT or BLOB value sorts above every number) and the text has nothing but digits,
    signs and commas (a REAL is written with a '.' or letters). Otherwise (no writer of
    ours stores such an id) the grouped query (:func:`_heat_grouped`)."""
    heat_start, _ = local_day_bounds(day_to - dt.timedelta(days=HEAT_DAYS - 1), tz)
    args = (region_id, _stored(heat_start), until)
    text, top = raw.execute(
        "SELECT group_concat(customer_id), max(customer_id) FROM visits"
        " WHERE rep_id IN (SELECT id FROM reps WHERE region_id = ?)"
        " AND check_in_at >= ? AND check_in_at < ?",
        args,
    ).fetchone()
    if text is None:
        return []
    if not (isinstance(top, int) and isinstance(text, str) and not text.translate(_INT_TEXT)):
        return _heat_grouped(raw, args)
    ids = np.fromstring(text, dtype=np.int64, sep=",")
    if ids.size != text.count(",") + 1:  # (cannot happen after those checks)
        return _heat_grouped(raw, args)
    uniq, counts = np.unique(ids, return_counts=True)
    cids = uniq.tolist()
    missing = [cid for cid in cids if cid not in known]
    if missing:
        known = dict(known)
        for i in range(0, len(missing), _CHUNK):
            part = missing[i : i + _CHUNK]
            for row in raw.execute(
                f"SELECT id, lat, lon FROM customers WHERE id IN ({_marks(part)})", part
            ):
                known[row[0]] = (row[0], None, None, row[1], row[2])
        found = np.fromiter((cid in known for cid in cids), dtype=bool, count=len(cids))
        if not found.all():
            cids = [cid for cid, ok in zip(cids, found.tolist(), strict=True) if ok]
            counts = counts[found]
    lat = np.array([known[cid][3] for cid in cids], dtype=np.float64)
    lon = np.array([known[cid][4] for cid in cids], dtype=np.float64)
    return TrackPoints(np.repeat(lat, counts), np.repeat(lon, counts))


def _heat_grouped(raw: sqlite3.Connection, args: tuple[Any, ...]) -> list[tuple[float, float]]:
    """:func:`_heat` counted per customer in SQL (the rows in ascending customer id)."""
    heat: list[tuple[float, float]] = []
    for lat, lon, n in raw.execute(
        "SELECT c.lat, c.lon, v.n FROM ("
        " SELECT customer_id, count(*) AS n FROM visits"
        " WHERE rep_id IN (SELECT id FROM reps WHERE region_id = ?)"
        " AND check_in_at >= ? AND check_in_at < ? GROUP BY customer_id"
        ") AS v JOIN customers AS c ON c.id = v.customer_id ORDER BY v.customer_id",
        args,
    ).fetchall():
        heat += [(lat, lon)] * n
    return heat


def _sqlite(session: Session) -> sqlite3.Connection:
    raw = session.connection().connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        raise TypeError("the field map reads a desktop cache (SQLite)")
    return raw


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _stored(instant: dt.datetime) -> str:
    """An aware instant as ``UTCDateTime`` stores it in SQLite (naive UTC text)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_fromiso = dt.datetime.fromisoformat
#: ids per ``IN (…)`` list (well under SQLite's bound-parameter limit)
_CHUNK = 500
#: deletes what SQLite writes for INTEGER values and commas (str.translate)
_INT_TEXT = str.maketrans("", "", "0123456789-,")


def _aware(value: Any) -> dt.datetime | None:
    """A stored instant read back as ``UTCDateTime`` does (aware UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        # The stored form ('YYYY-MM-DD HH:MM:SS.ffffff', naive UTC) is parsed aware at once
        # (≈ 6× cheaper than parsing then replace()); any other text as before. (Only that
        # form: fromisoformat takes any character between date and time, so '2026-11-26'
        # + '+00:00' would read as a naive midnight.)
        if len(value) == 26 and value[10] == " " and value[19] == "." and value[20:].isdigit():
            try:
                return _fromiso(value + "+00:00")
            except ValueError:
                pass
        value = _fromiso(value)
    return value.replace(tzinfo=dt.UTC)


@dataclass
class PreparedTracks:
    """The first part of preparing a period: cleaned fixes and simplified tracks (per rep
    of ``raw.reps``), enough to draw the tracks before the visits are judged."""

    raw_parts: list[FixArrays]
    cleaned: Batch
    simplified: list[tuple[np.ndarray, np.ndarray]]  # (lats, lons) per rep

    def bounds(self, raw: FieldDayRaw) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """:meth:`FieldMap.bounds` of the map these tracks belong to."""
        reps = {r.id for r in raw.reps}
        lat = [v.visit.customer_lat for v in raw.visits if v.visit.rep_id in reps]
        lon = [v.visit.customer_lon for v in raw.visits if v.visit.rep_id in reps]
        lats = np.concatenate([np.array(lat, dtype=np.float64), *(a for a, _ in self.simplified)])
        lons = np.concatenate([np.array(lon, dtype=np.float64), *(b for _, b in self.simplified)])
        if not lats.size:
            lats = np.array([s.lat for s in raw.stores], dtype=np.float64)
            lons = np.array([s.lon for s in raw.stores], dtype=np.float64)
        if not lats.size:
            return None
        return (float(lats.min()), float(lons.min())), (float(lats.max()), float(lons.max()))


def prepare_tracks(raw: FieldDayRaw, *, point_budget: int = TRACK_POINT_BUDGET) -> PreparedTracks:
    """Clean every rep's fixes and simplify the tracks (the start of :func:`prepare_field_map`)."""
    empty = FixArrays.empty()
    raw_parts = [raw.gps.get(rep.id, empty) for rep in raw.reps]
    cleaned = clean_batch(Batch.of(raw_parts))
    return PreparedTracks(raw_parts, cleaned, simplify_batch(cleaned, point_budget))


def prepare_field_map(
    raw: FieldDayRaw,
    *,
    point_budget: int = TRACK_POINT_BUDGET,
    tracks: PreparedTracks | None = None,
) -> FieldMap:
    """Clean, detect stops, score evidence and simplify (CPU pool; no database).

    Runs over numpy arrays, every rep at once (:mod:`core.trajectory.batch`); the results
    are those of :func:`prepare_field_map_reference`, the same steps over lists of fixes.
    ``tracks`` is :func:`prepare_tracks` of the same ``raw``, when done already.
    """
    # the places of the reference (customers, then each visit's customer), as columns
    places = PlaceArrays(
        [c.id for c in raw.customers] + [v.visit.customer_id for v in raw.visits],
        np.array(
            [c.lat for c in raw.customers] + [v.visit.customer_lat for v in raw.visits],
            dtype=np.float64,
        ),
        np.array(
            [c.lon for c in raw.customers] + [v.visit.customer_lon for v in raw.visits],
            dtype=np.float64,
        ),
    )
    if tracks is None:
        tracks = prepare_tracks(raw, point_budget=point_budget)
    raw_parts, cleaned = tracks.raw_parts, tracks.cleaned
    table = detect_stop_table(cleaned)
    matched = match_stops_batch(table.stops, places)
    segment = {rep.id: k for k, rep in enumerate(raw.reps)}

    visits_by_rep: dict[int, list[VisitRow]] = defaultdict(list)
    for v in raw.visits:
        if v.visit.rep_id in segment:
            visits_by_rep[v.visit.rep_id].append(v)
    rows = [r for rep in raw.reps for r in visits_by_rep.get(rep.id, [])]
    row_visits = [r.visit for r in rows]
    row_segments = [segment[v.rep_id] for v in row_visits]
    times = visit_times(row_visits)
    facts = trace_facts_batch(row_visits, row_segments, cleaned, raw.timezone, times=times)
    # compare_with_visits of each rep's stops with its visits, all reps at once
    visit_stop, unrecorded_stops = compare_with_visits_batch(
        table, matched, row_visits, row_segments, times=times
    )
    views = [
        VisitView(r, score_visit_facts(r.visit, f), i)
        for r, f, i in zip(rows, facts, visit_stop, strict=True)
    ]
    unrecorded: list[tuple[int, StopMatch]] = [
        (rep.id, matched[k][i]) for k, rep in enumerate(raw.reps) for i in unrecorded_stops[k]
    ]

    rep_tracks = []
    for k, rep in enumerate(raw.reps):
        lats, lons = tracks.simplified[k]
        rep_tracks.append(
            RepTrack(
                rep=rep,
                colour=REP_COLOURS[k % len(REP_COLOURS)],
                points=TrackPoints(lats, lons),
                n_raw=len(raw_parts[k]),
                n_clean=int(cleaned.starts[k + 1] - cleaned.starts[k]),
                stops=matched[k],
                lat=lats,
                lon=lons,
            )
        )
    views.sort(key=lambda v: v.row.visit.check_in_at)
    return FieldMap(raw=raw, tracks=rep_tracks, visits=views, unrecorded=unrecorded)


def prepare_field_map_reference(
    raw: FieldDayRaw, *, point_budget: int = TRACK_POINT_BUDGET
) -> FieldMap:
    """The definition of :func:`prepare_field_map`: the same steps over lists of fixes."""
    places = [Place(c.id, c.name, c.lat, c.lon) for c in raw.customers]
    places += [
        Place(v.visit.customer_id, v.customer_name, v.visit.customer_lat, v.visit.customer_lon)
        for v in raw.visits
    ]
    cleaned: dict[int, list[Fix]] = {}
    stops: dict[int, list[StopMatch]] = {}
    raw_fixes = raw.fixes
    for rep in raw.reps:
        fx = clean_fixes(raw_fixes.get(rep.id, [])).fixes
        cleaned[rep.id] = fx
        stops[rep.id] = match_stops(detect_stops(fx), places)

    visits_by_rep: dict[int, list[VisitRow]] = defaultdict(list)
    for v in raw.visits:
        visits_by_rep[v.visit.rep_id].append(v)

    views: list[VisitView] = []
    unrecorded: list[tuple[int, StopMatch]] = []
    for rep in raw.reps:
        fx = cleaned[rep.id]
        by_day: dict[dt.date, list[Fix]] = defaultdict(list)
        for f in fx:
            by_day[to_local(f.ts, raw.timezone).date()].append(f)
        rows = visits_by_rep.get(rep.id, [])
        cmp = compare_with_visits(stops[rep.id], [r.visit for r in rows])
        for r in rows:
            day = to_local(r.visit.check_in_at, raw.timezone).date()
            ev = score_visit(r.visit, by_day.get(day, []))
            views.append(VisitView(r, ev, cmp.visit_stop.get(r.visit.id)))
        unrecorded += [(rep.id, stops[rep.id][i]) for i in cmp.unrecorded_stops]

    simplified = simplify_tracks(
        [[(f.lat, f.lon) for f in cleaned[r.id]] for r in raw.reps], total_max_points=point_budget
    )
    tracks = [
        RepTrack(
            rep=rep,
            colour=REP_COLOURS[i % len(REP_COLOURS)],
            points=simplified[i],
            n_raw=len(raw_fixes.get(rep.id, [])),
            n_clean=len(cleaned[rep.id]),
            stops=stops[rep.id],
        )
        for i, rep in enumerate(raw.reps)
    ]
    views.sort(key=lambda v: v.row.visit.check_in_at)
    return FieldMap(raw=raw, tracks=tracks, visits=views, unrecorded=unrecorded)
