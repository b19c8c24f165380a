"""GPX import as an offline-first edit: points + ``gps.import/1`` outbox rows, one transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core import mutations
from core.cache import open_cache
from core.models import GpsPoint, Outbox, Region, Rep, Store
from core.mutations import Actor, Rejected, ScopeDenied, get
from core.trajectory import gpx as gpx_mod
from core.trajectory.gps_import import MAX_POINTS, MUTATION, gps_point_keys
from core.trajectory.gpx import GpxImportError, import_gpx
from tests.trajectory_synth import gpx_track

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
ADMIN = Actor(user_id=1, name="admin", role="admin", store_ids=frozenset())
MGR1 = Actor(user_id=3, name="mgr1", role="store_manager", store_ids=frozenset({1}))
SUP2 = Actor(
    user_id=2, name="sup2", role="supervisor", store_ids=frozenset({2}), region_ids=frozenset({2})
)


def gpx_text(n: int, start: dt.datetime = T0, step_s: int = 30) -> str:
    return gpx_track(n, start, step_s, origin=(31.2, 121.45), step_deg=1e-5, digits=6)


@pytest.fixture
def cache(tmp_path):
    c = open_cache(tmp_path / "gps.db")
    with c.session() as s:
        s.add_all([Region(id=1, code="SH", name="上海区"), Region(id=2, code="JS", name="江苏区")])
        s.flush()
        for sid, rid in ((1, 1), (2, 2)):
            s.add(
                Store(
                    id=sid,
                    region_id=rid,
                    code=f"S{sid}",
                    name=f"店{sid}",
                    province="沪",
                    city="上海",
                    lat=31.2,
                    lon=121.4,
                )
            )
        s.flush()
        s.add(Rep(id=7, region_id=1, store_id=1, code="R7", name="王磊", home_lat=31.2, home_lon=121.45))  # fmt: skip
        s.add(Rep(id=8, region_id=2, store_id=2, code="R8", name="李娜", home_lat=31.2, home_lon=121.45))  # fmt: skip
    yield c
    c.close()


def counts(cache) -> tuple[int, int]:
    with cache.session() as s:
        pts = s.scalar(select(func.count()).select_from(GpsPoint))
        obs = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.name == MUTATION))
        return pts, obs


def test_import_writes_points_and_chunked_outbox_rows_together(cache, monkeypatch):
    monkeypatch.setattr(gpx_mod, "CHUNK", 4)
    with cache.session() as s:
        summary = import_gpx(s, 7, gpx_text(10), MGR1, NOW)
    assert (summary.inserted, summary.skipped_existing, summary.mutations) == (10, 0, 3)
    assert summary.changes is not None and summary.changes.touches("gps_points", "outbox")
    assert counts(cache) == (10, 3)
    with cache.session() as s:
        obs = s.scalars(select(Outbox).order_by(Outbox.mutation_id)).all()
        assert [len(o.args["points"]) for o in obs] == [4, 4, 2]
        assert {o.args["rep_id"] for o in obs} == {7} and {o.status for o in obs} == {"pending"}
        first = obs[0].args["points"][0]
        assert first == [T0.isoformat(), pytest.approx(31.2), pytest.approx(121.45), 10.0]
        assert gps_point_keys(obs[0].args)[0] == (7, T0)
        assert {p.source for p in s.scalars(select(GpsPoint))} == {"gpx"}

    # the same file again: every point is already there, nothing is queued
    with cache.session() as s:
        again = import_gpx(s, 7, gpx_text(10), MGR1, NOW)
    assert (again.inserted, again.skipped_existing, again.mutations) == (0, 10, 0)
    # a longer file: only the new points travel
    with cache.session() as s:
        more = import_gpx(s, 7, gpx_text(12), MGR1, NOW)
    assert (more.inserted, more.skipped_existing, more.mutations) == (2, 10, 1)
    assert counts(cache) == (12, 4)


def test_a_refused_chunk_rolls_back_the_whole_import(cache, monkeypatch):
    """All or nothing: the third chunk fails in the handler, the first two go too."""
    monkeypatch.setattr(gpx_mod, "CHUNK", 4)
    handler = get(MUTATION).handler
    calls = []

    def flaky(session, args, actor, base_version, now):
        calls.append(1)
        if len(calls) == 3:
            raise Rejected("bad_gps_points", "boom")
        return handler(session, args, actor, base_version, now)

    spec = mutations.REGISTRY[MUTATION]
    monkeypatch.setitem(mutations.REGISTRY, MUTATION, type(spec)(spec.name, flaky))
    with pytest.raises(GpxImportError, match="boom"), cache.session() as s:
        import_gpx(s, 7, gpx_text(10), MGR1, NOW)
    assert len(calls) == 3
    assert counts(cache) == (0, 0)


def test_scope_is_checked_before_anything_is_written(cache):
    with pytest.raises(GpxImportError, match="outside your scope"), cache.session() as s:
        import_gpx(s, 8, gpx_text(3), MGR1, NOW)  # rep of store 2: not mgr1's
    with pytest.raises(GpxImportError, match="outside your scope"), cache.session() as s:
        import_gpx(s, 7, gpx_text(3), SUP2, NOW)  # rep of region 1: not sup2's
    with pytest.raises(GpxImportError, match="Unknown sales rep"), cache.session() as s:
        import_gpx(s, 99, gpx_text(3), ADMIN, NOW)
    assert counts(cache) == (0, 0)
    with cache.session() as s:
        assert import_gpx(s, 8, gpx_text(3), SUP2, NOW).inserted == 3


def test_a_track_from_the_future_is_refused(cache):
    future = NOW + dt.timedelta(hours=1)
    with pytest.raises(GpxImportError, match="impossible time"), cache.session() as s:
        import_gpx(s, 7, gpx_text(3, start=future), ADMIN, NOW)
    with pytest.raises(GpxImportError, match="impossible time"), cache.session() as s:
        import_gpx(s, 7, gpx_text(3, start=dt.datetime(1999, 8, 1, tzinfo=dt.UTC)), ADMIN, NOW)
    assert counts(cache) == (0, 0)


def _apply(cache, args, actor=ADMIN):
    with cache.session() as s:
        return get(MUTATION).handler(s, args, actor, None, NOW)


GOOD = [T0.isoformat(), 31.2, 121.4, 10.0]
BAD_ARGS = {
    "rep_id not int": {"rep_id": "7", "points": [GOOD]},
    "rep_id bool": {"rep_id": True, "points": [GOOD]},
    "no points": {"rep_id": 7, "points": []},
    "points not list": {"rep_id": 7, "points": "x"},
    "short point": {"rep_id": 7, "points": [[T0.isoformat(), 31.2, 121.4]]},
    "point as object": {"rep_id": 7, "points": [{"ts": T0.isoformat()}]},
    "naive time": {"rep_id": 7, "points": [["2026-11-26T01:00:00", 31.2, 121.4, 10.0]]},
    "garbage time": {"rep_id": 7, "points": [["yesterday", 31.2, 121.4, 10.0]]},
    "future": {"rep_id": 7, "points": [[(NOW + dt.timedelta(hours=1)).isoformat(), 31, 121, 5]]},
    "1990": {"rep_id": 7, "points": [["1990-01-01T00:00:00+00:00", 31.2, 121.4, 10.0]]},
    "lat 91": {"rep_id": 7, "points": [[T0.isoformat(), 91.0, 121.4, 10.0]]},
    "lon -181": {"rep_id": 7, "points": [[T0.isoformat(), 31.2, -181, 10.0]]},
    "lat as text": {"rep_id": 7, "points": [[T0.isoformat(), "31.2", 121.4, 10.0]]},
    "lat bool": {"rep_id": 7, "points": [[T0.isoformat(), True, 121.4, 10.0]]},
    "nan": {"rep_id": 7, "points": [[T0.isoformat(), float("nan"), 121.4, 10.0]]},
    "huge int": {"rep_id": 7, "points": [[T0.isoformat(), 31.2, 10**400, 10.0]]},
    "accuracy 0": {"rep_id": 7, "points": [[T0.isoformat(), 31.2, 121.4, 0]]},
    "accuracy huge": {"rep_id": 7, "points": [[T0.isoformat(), 31.2, 121.4, 1e9]]},
    "same instant twice": {"rep_id": 7, "points": [GOOD, GOOD]},
}


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_handler_refuses_bad_values_and_writes_nothing(cache, case):
    with pytest.raises(Rejected):
        _apply(cache, BAD_ARGS[case])
    assert counts(cache) == (0, 0)


def test_handler_limits_points_and_checks_scope_and_rep(cache):
    many = [
        [(T0 + dt.timedelta(seconds=i)).isoformat(), 31.2, 121.4, 10.0]
        for i in range(MAX_POINTS + 1)
    ]
    with pytest.raises(Rejected) as e:
        _apply(cache, {"rep_id": 7, "points": many})
    assert e.value.reason_code == "too_many_points"
    with pytest.raises(ScopeDenied):
        _apply(cache, {"rep_id": 8, "points": [GOOD]}, MGR1)
    with pytest.raises(Rejected) as e:
        _apply(cache, {"rep_id": 99, "points": [GOOD]})
    assert e.value.reason_code == "unknown_rep"
    assert counts(cache) == (0, 0)
    assert _apply(cache, {"rep_id": 7, "points": many[:MAX_POINTS]}).touches("gps_points")


def test_handler_is_insert_only_and_idempotent(cache):
    assert _apply(cache, {"rep_id": 7, "points": [GOOD]}).touches("gps_points")
    moved = [T0.isoformat(), 30.0, 120.0, 50.0]  # same instant, other position: first wins
    later = [(T0 + dt.timedelta(minutes=1)).isoformat(), 31.3, 121.5, 8.0]
    assert not _apply(cache, {"rep_id": 7, "points": [GOOD]})
    assert _apply(cache, {"rep_id": 7, "points": [moved, later]}).touches("gps_points")
    with cache.session() as s:
        pts = s.scalars(select(GpsPoint).order_by(GpsPoint.ts)).all()
        assert [(p.lat, p.lon, p.accuracy_m) for p in pts] == [
            (31.2, 121.4, 10.0),
            (31.3, 121.5, 8.0),
        ]


def test_insert_new_rows_skips_taken_keys_and_tells_the_recorder(cache):
    """A key taken meanwhile (a concurrent import) is skipped, not overwritten, not an error."""
    from core.mutations import ROW_RECORDER_KEY, insert_new_rows

    told = []
    t1 = T0 + dt.timedelta(seconds=1)
    with cache.session() as s:
        s.add(GpsPoint(rep_id=7, ts=T0, lat=1.0, lon=2.0, accuracy_m=3.0, source="app"))
        s.flush()
        s.info[ROW_RECORDER_KEY] = lambda _s, name, rows: told.append((name, rows))
        rows = [
            {"rep_id": 7, "ts": ts, "lat": 31.2, "lon": 121.4, "accuracy_m": 5.0, "source": "gpx"}
            for ts in (T0, t1)
        ]
        assert insert_new_rows(s, GpsPoint, rows) == [rows[1]]
        assert told == [("gps_points", [rows[1]])]
    with cache.session() as s:
        pts = s.scalars(select(GpsPoint).order_by(GpsPoint.ts)).all()
        assert [(p.ts, p.source, p.lat) for p in pts] == [(T0, "app", 1.0), (t1, "gpx", 31.2)]


def test_a_refused_import_is_told_once_even_after_a_restart(cache):
    """Refused outbox rows are kept; what was reported is kept too, so the field map of a
    restarted desktop (a new view, a new session on the same file) does not report it again."""
    from core.trajectory.gps_import import refusals_to_tell

    with cache.session() as s:
        import_gpx(s, 7, gpx_text(3), MGR1, NOW)
        import_gpx(s, 7, gpx_text(2, start=T0 + dt.timedelta(hours=2)), MGR1, NOW)
    with cache.session() as s:
        first, second = s.scalars(select(Outbox).order_by(Outbox.mutation_id)).all()
        first.status, first.error = "rejected", "rep is outside the scope"
    with cache.session() as s:
        told = refusals_to_tell(s)
    assert [(r.rep_id, r.points, r.message) for r in told] == [(7, 3, "rep is outside the scope")]
    cache.close()  # the app restarts
    again = open_cache(cache.path)
    try:
        with again.session() as s:
            assert refusals_to_tell(s) == []
            s.get(Outbox, second.mutation_id).status = "rejected"
        with again.session() as s:
            assert [r.points for r in refusals_to_tell(s)] == [2]  # only the new one
        with again.session() as s:
            assert refusals_to_tell(s) == []
    finally:
        again.close()


def test_a_gpx_file_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from pathlib import Path

    from core.trajectory.gpx import MAX_FILE_BYTES, read_gpx_file

    big = tmp_path / "big.gpx"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing written
    opened: list[Path] = []
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self))
    monkeypatch.setattr(Path, "read_bytes", lambda self: opened.append(self))
    with pytest.raises(GpxImportError, match="larger than 50 MB"):
        read_gpx_file(big)
    assert opened == []
    monkeypatch.undo()
    small = tmp_path / "small.gpx"
    small.write_text(gpx_text(2), encoding="utf-8")
    assert read_gpx_file(small) == small.read_bytes()
