"""Importing a rep's track from a GPX 1.0/1.1 file, and the ``gps.import/1`` mutation.

The whole file is parsed and validated before anything is written: a malformed file, a
file without timed track points, or a point outside WGS-84 ranges is refused with a
message saying what is wrong and where, and the cache is left untouched. Routes and
waypoints carry no time and are not traces, so they are ignored. GPX times are UTC by the
standard; a time without a zone is read as UTC.

A good file is an offline-first edit like the others: its new points become
``gps.import/1`` mutations (:mod:`core.trajectory.gps_import`) of at most ``CHUNK`` points
each, applied locally with their outbox rows in the caller's one transaction (all or
nothing), so they reach the server and the other desktops through push and pull. Points at
an instant the rep already has are skipped, so importing the same file twice queues nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gpxpy
import gpxpy.gpx
from sqlalchemy.orm import Session

from core.i18n import _
from core.mutations import Actor, Changes, MutationError, Rejected, ScopeDenied, apply_local
from core.trajectory.cleaning import Fix
from core.trajectory.gps_import import (
    CHUNK,
    CLOCK_SKEW,
    EARLIEST,
    MAX_ACCURACY_M,
    MUTATION,
    existing_times,
    rep_in_scope,
)

MAX_FILE_BYTES = 50 * 1024 * 1024


class GpxImportError(ValueError):
    """A GPX file refused as a whole; the message is for the user (translated)."""


@dataclass(frozen=True)
class GpxImportSummary:
    rep_id: int
    tracks: int
    segments: int
    points: int
    inserted: int
    skipped_existing: int
    first: dt.datetime
    last: dt.datetime
    #: ``gps.import/1`` mutations queued for the server (0 when nothing was new).
    mutations: int = 0
    changes: Changes | None = None


@dataclass(frozen=True)
class ParsedGpx:
    tracks: int
    segments: int
    fixes: list[Fix]


def read_gpx_file(path: Path) -> bytes:
    """The file's bytes, refused by its size before any is read (a 2 GB file chosen by
    mistake would otherwise be read whole, only to be refused)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GpxImportError(_("The GPX file is larger than 50 MB."))
    with path.open("rb") as f:
        return f.read(MAX_FILE_BYTES + 1)  # grown since: parse_gpx refuses it


def parse_gpx(data: bytes | str) -> ParsedGpx:
    """Parse and validate; raise :class:`GpxImportError` on anything unusable.

    gpxpy reads the file (GPX 1.0 and 1.1). The desktop calls this on its CPU worker, so a
    large file never holds the UI thread; the position of a bad point is only put into
    words when there is one.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise GpxImportError(_("The GPX file is larger than 50 MB."))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise GpxImportError(_("The file is not a text GPX file (not UTF-8).")) from None
    else:
        text = data
    if not text.strip():
        raise GpxImportError(_("The GPX file is empty."))
    try:
        gpx = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as e:
        raise GpxImportError(
            _("The file is not valid GPX: {detail}").format(detail=str(e).splitlines()[0][:200])
        ) from None

    fixes: list[Fix] = []
    n_segments = 0
    for ti, track in enumerate(gpx.tracks, start=1):
        for si, seg in enumerate(track.segments, start=1):
            n_segments += 1
            for pi, p in enumerate(seg.points, start=1):
                if p.time is None:
                    raise GpxImportError(
                        _("A track point has no time ({where}); a trace needs timestamps.").format(
                            where=_where(ti, si, pi)
                        )
                    )
                lat, lon = p.latitude, p.longitude
                if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise GpxImportError(
                        _("A track point has an impossible position ({where}).").format(
                            where=_where(ti, si, pi)
                        )
                    )
                ts = p.time if p.time.tzinfo else p.time.replace(tzinfo=dt.UTC)
                hdop = p.horizontal_dilution
                acc = min(hdop * 5.0, MAX_ACCURACY_M) if hdop and hdop > 0 else 10.0
                fixes.append(Fix(ts.astimezone(dt.UTC), float(lat), float(lon), acc))
    if not fixes:
        raise GpxImportError(
            _("The GPX file has no track points with times (routes and waypoints are not traces).")
        )
    fixes.sort(key=lambda f: f.ts)
    return ParsedGpx(tracks=len(gpx.tracks), segments=n_segments, fixes=fixes)


def _where(track: int, segment: int, point: int) -> str:
    return _("track {t}, segment {s}, point {p}").format(t=track, s=segment, p=point)


def import_gpx(
    session: Session,
    rep_id: int,
    data: bytes | str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> GpxImportSummary:
    """Validate the whole file, then queue its new points as ``gps.import/1`` mutations.

    Runs in the caller's transaction (``ctx.db``): the points and their outbox rows are
    committed together, and nothing is written when validation fails (the caller's
    transaction rolls back on the :class:`GpxImportError`). Points at an instant the rep
    already has are skipped, so importing the same file twice changes nothing.
    """
    _check_rep(session, actor, rep_id)
    return queue_gpx(session, rep_id, parse_gpx(data), actor, now)


def _check_rep(session: Session, actor: Actor, rep_id: int) -> None:
    try:
        rep_in_scope(session, actor, rep_id)
    except Rejected:
        raise GpxImportError(_("Unknown sales rep.")) from None
    except ScopeDenied:
        raise GpxImportError(
            _("This sales rep is outside your scope: you cannot import a track for them.")
        ) from None


def _build_blocks(session: Session, rep_id: int) -> None:
    """The GPS blocks of the imported hours (:mod:`core.trajectory.gps_blocks`), built now, in
    the import's transaction, rather than by the next map read."""
    from core.trajectory import gps_blocks

    raw = gps_blocks.driver_connection(session)
    if raw is not None:
        gps_blocks.rebuild_stale(raw, [rep_id])


def queue_gpx(
    session: Session,
    rep_id: int,
    parsed: ParsedGpx,
    actor: Actor,
    now: dt.datetime | None = None,
) -> GpxImportSummary:
    """The database half of :func:`import_gpx`, for a file parsed elsewhere.

    The desktop parses on its CPU worker and runs only this on its single DB worker, so
    screen queries do not wait behind the parsing of a large file.
    """
    now = now or dt.datetime.now(dt.UTC)
    _check_rep(session, actor, rep_id)
    first, last = parsed.fixes[0].ts, parsed.fixes[-1].ts
    if first < EARLIEST or last > now + CLOCK_SKEW:
        bad = first if first < EARLIEST else last
        raise GpxImportError(
            _("A track point has an impossible time ({time}).").format(time=bad.isoformat())
        )
    existing = existing_times(session, rep_id, first, last)
    seen: set[dt.datetime] = set()
    new: list[list[Any]] = []
    for f in parsed.fixes:
        if f.ts in existing or f.ts in seen:
            continue
        seen.add(f.ts)
        new.append([f.ts.isoformat(), f.lat, f.lon, f.accuracy_m])
    changes = Changes()
    n_mutations = 0
    for i in range(0, len(new), CHUNK):
        args = {"rep_id": rep_id, "points": new[i : i + CHUNK]}
        try:
            changes.merge(apply_local(session, actor, MUTATION, args, now=now))
        except MutationError as e:  # the handler refused what parse_gpx let through
            raise GpxImportError(e.message) from None
        n_mutations += 1
    _build_blocks(session, rep_id)
    return GpxImportSummary(
        rep_id=rep_id,
        tracks=parsed.tracks,
        segments=parsed.segments,
        points=len(parsed.fixes),
        inserted=len(new),
        skipped_existing=len(parsed.fixes) - len(new),
        first=first,
        last=last,
        mutations=n_mutations,
        changes=changes,
    )
