"""Visit evidence against the demo's planted ground truth (far check-in, short dwell, teleport)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.demo import demo_truth
from core.models import Region
from core.trajectory.field_day import load_field_day, prepare_field_map
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
