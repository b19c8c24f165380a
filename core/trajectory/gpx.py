"""Importing a rep's track from a GPX 1.0/1.1 file (tracks, segments, timestamps).

The whole file is parsed and validated before anything is written: a malformed file, a
file without timed track points, or a point outside WGS-84 ranges is refused with a
message saying what is wrong and where, and the cache is left untouched. Routes and
waypoints carry no time and are not traces, so they are ignored. GPX times are UTC by the
standard; a time without a zone is read as UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import gpxpy
import gpxpy.gpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import _
from core.models import GpsPoint, Rep
from core.trajectory.cleaning import Fix

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


@dataclass(frozen=True)
class ParsedGpx:
    tracks: int
    segments: int
    fixes: list[Fix]


def parse_gpx(data: bytes | str) -> ParsedGpx:
    """Parse and validate; raise :class:`GpxImportError` on anything unusable."""
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
                where = _("track {t}, segment {s}, point {p}").format(t=ti, s=si, p=pi)
                if p.time is None:
                    raise GpxImportError(
                        _("A track point has no time ({where}); a trace needs timestamps.").format(
                            where=where
                        )
                    )
                if (
                    p.latitude is None
                    or p.longitude is None
                    or not (-90 <= p.latitude <= 90 and -180 <= p.longitude <= 180)
                ):
                    raise GpxImportError(
                        _("A track point has an impossible position ({where}).").format(where=where)
                    )
                ts = p.time if p.time.tzinfo else p.time.replace(tzinfo=dt.UTC)
                acc = p.horizontal_dilution * 5.0 if p.horizontal_dilution else 10.0
                fixes.append(Fix(ts.astimezone(dt.UTC), float(p.latitude), float(p.longitude), acc))
    if not fixes:
        raise GpxImportError(
            _("The GPX file has no track points with times (routes and waypoints are not traces).")
        )
    fixes.sort(key=lambda f: f.ts)
    return ParsedGpx(tracks=len(gpx.tracks), segments=n_segments, fixes=fixes)


def import_gpx(session: Session, rep_id: int, data: bytes | str) -> GpxImportSummary:
    """Validate the whole file, then add its points to the rep's trace (idempotent).

    Runs in the caller's transaction (``ctx.db``): nothing is written when validation
    fails. Points at an instant the rep already has are skipped, so importing the same
    file twice changes nothing.
    """
    if session.get(Rep, rep_id) is None:
        raise GpxImportError(_("Unknown sales rep."))
    parsed = parse_gpx(data)
    first, last = parsed.fixes[0].ts, parsed.fixes[-1].ts
    existing = set(
        session.scalars(
            select(GpsPoint.ts).where(
                GpsPoint.rep_id == rep_id, GpsPoint.ts >= first, GpsPoint.ts <= last
            )
        )
    )
    seen: set[dt.datetime] = set()
    rows = []
    for f in parsed.fixes:
        if f.ts in existing or f.ts in seen:
            continue
        seen.add(f.ts)
        rows.append(
            GpsPoint(
                rep_id=rep_id, ts=f.ts, lat=f.lat, lon=f.lon, accuracy_m=f.accuracy_m, source="gpx"
            )
        )
    session.add_all(rows)
    session.flush()
    return GpxImportSummary(
        rep_id=rep_id,
        tracks=parsed.tracks,
        segments=parsed.segments,
        points=len(parsed.fixes),
        inserted=len(rows),
        skipped_existing=len(parsed.fixes) - len(rows),
        first=first,
        last=last,
    )
