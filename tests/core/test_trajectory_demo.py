"""Visit evidence against the demo's planted ground truth (far check-in, short dwell, teleport)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select

from core.demo import demo_truth
from core.models import Region
from core.timeutil import to_local
from core.trajectory.arrays import FixArrays, PlaceArrays
from core.trajectory.batch import (
    Batch,
    clean_batch,
    detect_stops_batch,
    match_stops_batch,
    simplify_batch,
    trace_facts_batch,
)
from core.trajectory.cleaning import Fix, clean_fixes
from core.trajectory.evidence import trace_facts
from core.trajectory.field_day import load_field_day, prepare_field_map
from core.trajectory.simplify import simplify_tracks
from core.trajectory.stops import Place, RecordedVisit, detect_stops, match_stops
from tests.conftest import DEMO_TODAY


def test_flags_match_the_planted_suspicious_visits(demo_cache):
    truth = demo_truth(demo_cache.engine)["suspicious_visits"]
    day = DEMO_TODAY - dt.timedelta(days=1)  # a working day inside the 7 days with GPS
    with demo_cache.session() as s:
        region_ids = list(s.scalars(select(Region.id)))
    flagged, planted, visits, traced = set(), set(), 0, 0
    for rid in region_ids:
        with demo_cache.session() as s:
            raw = load_field_day(s, rid, None, day)
        fm = prepare_field_map(raw)
        traced += sum(1 for t in fm.tracks if len(t.points) >= 2)
        for v in fm.visits:
            visits += 1
            if v.evidence.flagged:
                flagged.add(v.id)
            if v.id in truth:
                planted.add(v.id)
    assert visits > 500 and traced > 100
    assert planted, "the demo plants suspicious visits every day"
    assert flagged == planted


def test_reps_in_scope_follow_the_users_scope(demo_cache):
    from core.models import Rep, User
    from core.mutations import actor_for_user
    from core.trajectory.field_day import reps_in_scope

    with demo_cache.session() as s:

        def actor(name):
            return actor_for_user(s, s.scalars(select(User).where(User.username == name)).one())

        sh = s.scalars(select(Region).where(Region.code == "SH")).one().id
        js = s.scalars(select(Region).where(Region.code == "JS")).one().id
        sup = actor("sup_sh")
        assert len(reps_in_scope(s, sup, sh)) == len(
            s.scalars(select(Rep).where(Rep.region_id == sh)).all()
        )
        assert reps_in_scope(s, sup, js) == []
        assert len(reps_in_scope(s, actor("admin"), js)) > 0
        mgr = actor("mgr_sh001")
        mine = reps_in_scope(s, mgr, sh)
        assert all(r.store_id in mgr.store_ids for r in mine)


def _same_field_map(new, ref) -> None:
    assert [t.rep for t in new.tracks] == [t.rep for t in ref.tracks]
    for a, b in zip(new.tracks, ref.tracks, strict=True):
        assert (a.n_raw, a.n_clean) == (b.n_raw, b.n_clean)
        assert a.stops == b.stops  # times, centroids, customers and distances, exactly
        assert a.points == b.points
    assert [v.id for v in new.visits] == [v.id for v in ref.visits]
    for a, b in zip(new.visits, ref.visits, strict=True):
        assert a.evidence == b.evidence  # score, flag, every measure and sentence
        assert a.stop_index == b.stop_index
    assert new.unrecorded == ref.unrecorded


def test_array_pipeline_equals_the_reference_on_the_demo(demo_cache):
    """prepare_field_map (numpy) gives exactly what the list-of-fixes reference gives."""
    from core.trajectory.field_day import prepare_field_map_reference

    with demo_cache.session() as s:
        region_ids = list(s.scalars(select(Region.id)))
    checked = 0
    for rid in region_ids:
        for day_from, day_to in (
            (DEMO_TODAY - dt.timedelta(days=1), None),
            (DEMO_TODAY - dt.timedelta(days=4), DEMO_TODAY),  # a range: several local days
        ):
            with demo_cache.session() as s:
                raw = load_field_day(s, rid, None, day_from, day_to)
            new, ref = prepare_field_map(raw), prepare_field_map_reference(raw)
            _same_field_map(new, ref)
            checked += len(ref.visits)
    assert checked > 1000


def _awkward_fixes(rng: random.Random, n: int, steps: Sequence[int], t0: dt.datetime) -> list[Fix]:
    """``n`` shuffled fixes: stays with jitter, walks, spikes, sustained jumps (teleports),
    duplicate instants, inaccurate fixes and gaps, in random activities of 12 fixes."""
    fixes, t, lat, lon = [], t0, 31.2, 121.45
    r = 0.0
    for i in range(n):
        if i % 12 == 0:  # a new activity every 12 fixes: stops really happen
            r = rng.random()
        t += dt.timedelta(seconds=rng.choice(steps))
        if rng.random() < 0.08:  # spike
            fixes.append(Fix(t, lat + 0.05, lon, 10.0))
        elif r < 0.6:  # stay, with GPS jitter
            fixes.append(Fix(t, lat + rng.gauss(0, 1e-4), lon + rng.gauss(0, 1e-4), 10.0))
        elif r < 0.9:  # walk/drive
            lat += rng.gauss(0, 1e-3)
            lon += rng.gauss(0, 1e-3)
            fixes.append(Fix(t, lat, lon, rng.choice([5.0, 20.0, 150.0])))
        else:  # sustained jump (teleport)
            lat += 0.03
            fixes.append(Fix(t, lat, lon, 10.0))
    rng.shuffle(fixes)
    return fixes


def _by_local_day(fixes: Sequence[Fix], tz: str) -> dict[dt.date, list[Fix]]:
    """A rep's cleaned fixes per local day: what the reference judges a visit against."""
    days: dict[dt.date, list[Fix]] = {}
    for f in fixes:
        days.setdefault(to_local(f.ts, tz).date(), []).append(f)
    return days


def _points(fixes: Sequence[Fix]) -> list[tuple[float, float]]:
    return [(f.lat, f.lon) for f in fixes]


def _simplified(got: list[tuple[np.ndarray, np.ndarray]]) -> list[list[tuple[float, float]]]:
    return [list(zip(a.tolist(), b.tolist(), strict=True)) for a, b in got]


def test_batch_steps_equal_the_reference_on_awkward_traces():
    """Spikes, duplicates, inaccurate fixes, gaps and jumps: each batch step, on one rep,
    as the list-of-fixes reference."""
    rng = random.Random(7)
    t0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    tz = "Asia/Shanghai"
    for _case in range(40):
        fixes = _awkward_fixes(rng, rng.randint(0, 400), [0, 1, 15, 30, 30, 30, 60, 1200], t0)
        ref = clean_fixes(fixes).fixes
        batch = clean_batch(Batch.of([FixArrays.from_fixes(fixes)]))
        assert batch.part(0).to_fixes() == ref
        stops = detect_stops(ref)
        assert detect_stops_batch(batch) == [stops]
        places = [
            Place(i, "", s.lat + rng.gauss(0, 5e-4), s.lon + rng.gauss(0, 5e-4))
            for i, s in enumerate(stops)
        ]
        assert match_stops_batch([stops], PlaceArrays.of(places)) == [match_stops(stops, places)]
        visits = []
        for k in range(10):
            cin = t0 + dt.timedelta(minutes=rng.randint(0, 600))
            out = cin + dt.timedelta(minutes=rng.choice([0, 3, 20, 45])) if k % 3 else None
            visits.append(
                RecordedVisit(
                    f"v{k}", 1, 1, cin, out, None, None, 31.2 + rng.gauss(0, 1e-3), 121.45
                )
            )
        days = _by_local_day(ref, tz)
        expected = [
            trace_facts(v, days.get(to_local(v.check_in_at, tz).date(), [])) for v in visits
        ]
        assert trace_facts_batch(visits, [0] * len(visits), batch, tz) == expected
        assert _simplified(simplify_batch(batch, 200)) == simplify_tracks([_points(ref)], 200)


def test_batch_steps_equal_the_reference_rep_by_rep():
    """All reps at once (segments of one set of arrays) as the reference on each rep alone,
    at every step: nothing crosses a boundary between reps, empty and one-fix reps included."""
    rng = random.Random(11)
    t0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    tz = "Asia/Shanghai"

    def at(seconds: int, lat: float = 31.2) -> Fix:
        return Fix(t0 + dt.timedelta(seconds=seconds), lat, 121.45, 10.0)

    # two reps staying at one place at the same times (a run must end with its rep), then
    # a rep whose first fix, far from where the one before ended, is not a spike of it
    staying = [FixArrays.from_fixes([at(30 * i) for i in range(40)])] * 2
    spike = [
        FixArrays.from_fixes([at(0), at(30)]),
        FixArrays.from_fixes([at(0, 31.23), at(3600), at(3630)]),
    ]
    for case in range(32):
        parts = [staying, spike][case] if case < 2 else []
        for _rep in range(rng.randint(1, 6) if case >= 2 else 0):
            # reps start where and when the one before did: a run or a spike test that
            # ran on past a rep's last fix would find the next rep's fixes within reach
            n = rng.choice([0, 1, 2, 30, 300])
            steps = [0, 1, 15, 30, 30, 60, 1200, 40000]
            parts.append(FixArrays.from_fixes(_awkward_fixes(rng, n, steps, t0)))
        ref = [clean_fixes(p.to_fixes()).fixes for p in parts]
        batch = clean_batch(Batch.of(parts))
        assert [batch.part(k).to_fixes() for k in range(len(parts))] == ref
        stops = [detect_stops(r) for r in ref]
        assert detect_stops_batch(batch) == stops
        near = [
            Place(i, "", s.lat + rng.gauss(0, 5e-4), s.lon + rng.gauss(0, 5e-4))
            for i, s in enumerate(s for part in stops for s in part)
        ]
        # the same places again under other ids (equal distances: the first listed wins),
        # and places on the edge of the box test
        edge = [Place(-1 - i, "", p.lat + 0.01, p.lon - 0.012) for i, p in enumerate(near)]
        twins = [Place(1000 + p.id, "", p.lat, p.lon) for p in near]
        listed = near + edge + twins
        rng.shuffle(listed)
        assert match_stops_batch(stops, PlaceArrays.of(listed)) == [
            match_stops(s, listed) for s in stops
        ]
        visits, segments, expected = [], [], []
        for k, r in enumerate(ref):
            days = _by_local_day(r, tz)
            for j in range(6):
                cin = t0 + dt.timedelta(minutes=rng.randint(0, 3000))
                out = cin + dt.timedelta(minutes=rng.choice([0, 3, 20, 45])) if j % 3 else None
                v = RecordedVisit(f"v{k}-{j}", k, 1, cin, out, None, None, 31.2, 121.45)
                visits.append(v)
                segments.append(k)
                expected.append(trace_facts(v, days.get(to_local(cin, tz).date(), [])))
        assert trace_facts_batch(visits, segments, batch, tz) == expected
        want = simplify_tracks([_points(r) for r in ref], 200)
        assert _simplified(simplify_batch(batch, 200)) == want


def test_batch_visit_windows_do_not_run_into_each_other():
    """Visits' windows are measured one after the other: a run of fixes near the customer
    ends with its window, whether the next window is the same rep's (later) or another's."""
    t0 = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    tz = "Asia/Shanghai"
    staying = [Fix(t0 + dt.timedelta(seconds=30 * i), 31.2, 121.45, 10.0) for i in range(40)]
    batch = clean_batch(Batch.of([FixArrays.from_fixes(staying)] * 2))
    visits, segments = [], []
    for rep in (0, 1):
        for k, minutes in enumerate((-25, 40)):  # windows: the first 5 min, the last 10 min
            cin = t0 + dt.timedelta(minutes=minutes)
            visits.append(RecordedVisit(f"v{rep}-{k}", rep, 1, cin, None, None, None, 31.2, 121.45))
            segments.append(rep)
    expected = [trace_facts(v, staying) for v in visits]
    assert [f.dwell_s for f in expected] == [300.0, 570.0, 300.0, 570.0]
    assert trace_facts_batch(visits, segments, batch, tz) == expected
