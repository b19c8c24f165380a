"""shift.* mutations on a hand-built store: rules block, stale versions conflict, publish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from core.cache import Cache, open_cache
from core.models import Outbox, Shift
from core.mutations import Conflict, Rejected, ScopeDenied, apply_local
from core.scheduling.mutations import plan_copy_week, publish_findings
from core.scheduling.week import load_week
from tests.core.scheduling_fixtures import WEEK, Shop, at, build_shop, iso

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
MON, TUE = WEEK, WEEK + dt.timedelta(days=1)


@pytest.fixture
def cache(tmp_path: Path):
    c = open_cache(tmp_path / "s.db")
    yield c
    c.close()


@pytest.fixture
def shop(cache: Cache) -> Shop:
    return build_shop(cache)


def run(cache: Cache, shop: Shop, name: str, args: dict, base_version: int | None = None):
    with cache.session() as s:
        return apply_local(s, shop.actor, name, args, base_version=base_version, now=NOW)


def create(cache, shop, id_, staff, day, h1, h2, role=None, m1=0, m2=0):
    args = {
        "id": id_,
        "store_id": shop.store_id,
        "staff_id": staff,
        "role": role or "",
        "start_at": iso(day, h1, m1),
        "end_at": iso(day, h2, m2),
        "note": "",
    }
    if role is None:
        args.pop("role")
    return run(cache, shop, "shift.create/1", args)


def row(cache, id_) -> Shift | None:
    with cache.session() as s:
        return s.get(Shift, id_)


def outbox_names(cache) -> list[str]:
    with cache.session() as s:
        return [o.name for o in s.scalars(select(Outbox).order_by(Outbox.mutation_id))]


def test_create_writes_draft_and_outbox(cache, shop) -> None:
    changes = create(cache, shop, "s1", shop.sales, MON, 9, 17)
    assert changes.touches("shifts", "outbox")
    r = row(cache, "s1")
    assert (r.status, r.version, r.role, r.updated_by) == ("draft", 1, "sales", 7)
    assert r.start_at == dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    assert outbox_names(cache) == ["shift.create/1"]


def test_hard_rule_blocks_and_changes_nothing(cache, shop) -> None:
    create(cache, shop, "s1", shop.manager, MON, 13, 22)
    with pytest.raises(Rejected) as e:
        create(cache, shop, "s2", shop.manager, TUE, 8, 16)  # 10 h rest
    assert e.value.reason_code == "rest"
    assert "王店长" in e.value.message and "10" in e.value.message and "11" in e.value.message
    assert row(cache, "s2") is None
    assert outbox_names(cache) == ["shift.create/1"]
    with pytest.raises(Rejected) as e:
        create(cache, shop, "s3", shop.sales, MON, 9, 19)  # availability ends 18:00
    assert e.value.reason_code == "availability"
    with pytest.raises(Rejected) as e:
        create(cache, shop, "s4", shop.manager, MON, 12, 14)
    assert e.value.reason_code == "overlap"


def test_exactly_min_rest_is_accepted(cache, shop) -> None:
    create(cache, shop, "a", shop.manager, MON, 13, 22)
    create(cache, shop, "b", shop.manager, TUE, 9, 17)
    assert row(cache, "b") is not None


def test_weekly_maximum_from_contract(cache, shop) -> None:
    # Sales: 20 h contract + 4 h allowance = 24 h; Mon-Thu 6 h each = 24 h is allowed.
    for i in range(4):
        create(cache, shop, f"d{i}", shop.sales, WEEK + dt.timedelta(days=i), 9, 15)
    week = _week(cache, shop)
    assert [v.rule for v in week.violations if v.staff_ids == (shop.sales,)] == ["overtime"]
    with pytest.raises(Rejected) as e:
        create(cache, shop, "d4", shop.sales, WEEK + dt.timedelta(days=4), 9, 9, m2=30)
    assert e.value.reason_code == "weekly_max"


def test_bad_input_is_refused(cache, shop) -> None:
    with pytest.raises(Rejected) as e:
        create(cache, shop, "x", shop.manager, MON, 12, 10)
    assert e.value.reason_code == "bad_input"
    with pytest.raises(Rejected):
        run(
            cache,
            shop,
            "shift.create/1",
            {
                "id": "y",
                "store_id": shop.store_id,
                "staff_id": shop.manager,
                "start_at": "2026-11-30T09:00",
                "end_at": "2026-11-30T12:00",
            },
        )
    with pytest.raises(Rejected) as e:
        create(cache, shop, "z", shop.manager, MON, 9, 12, role="pilot")
    assert "pilot" in e.value.message


def test_scope_is_enforced(cache, shop) -> None:
    with pytest.raises(ScopeDenied):
        run(
            cache,
            shop,
            "shift.create/1",
            {
                "id": "o",
                "store_id": shop.other_store_id,
                "staff_id": shop.manager,
                "start_at": iso(MON, 9),
                "end_at": iso(MON, 12),
            },
        )


def test_update_with_base_version_bumps_and_stale_conflicts(cache, shop) -> None:
    create(cache, shop, "s1", shop.cashier, MON, 9, 17)
    run(
        cache,
        shop,
        "shift.update/1",
        {"id": "s1", "start_at": iso(MON, 10), "end_at": iso(MON, 18)},
        1,
    )
    r = row(cache, "s1")
    assert r.version == 2 and r.start_at.hour == 2
    with pytest.raises(Conflict) as e:
        run(cache, shop, "shift.update/1", {"id": "s1", "note": "早到"}, 1)
    assert e.value.entity == "shift" and e.value.entity_id == "s1"
    assert e.value.theirs["version"] == 2 and e.value.theirs["start_at"].startswith(
        "2026-11-30T02:00"
    )
    with pytest.raises(Conflict):
        run(cache, shop, "shift.delete/1", {"id": "s1"}, 1)
    run(cache, shop, "shift.delete/1", {"id": "s1"}, 2)
    assert row(cache, "s1") is None
    run(cache, shop, "shift.delete/1", {"id": "s1"}, 2)  # a retried delete is a no-op
    with pytest.raises(Conflict) as e:
        run(cache, shop, "shift.update/1", {"id": "s1", "note": "x"}, 2)
    assert e.value.theirs["deleted"] is True


def test_update_revalidates_rules(cache, shop) -> None:
    create(cache, shop, "a", shop.manager, MON, 9, 17)
    create(cache, shop, "b", shop.cashier, MON, 9, 17)
    with pytest.raises(Rejected) as e:  # moving b onto the manager overlaps a
        run(cache, shop, "shift.update/1", {"id": "b", "staff_id": shop.manager}, 1)
    assert e.value.reason_code == "overlap"
    assert row(cache, "b").staff_id == shop.cashier and row(cache, "b").version == 1


def _full_week(cache, shop) -> None:
    """Manager opens every day (Mon-Fri 6 h, weekend 4 h = 38 h); the keyholder closes
    Mon-Fri (40 h); the cashier closes the weekend working as keyholder."""
    for i in range(7):
        d = WEEK + dt.timedelta(days=i)
        create(cache, shop, f"o{i}", shop.manager, d, 9, 15 if i < 5 else 13)
        if i < 5:
            create(cache, shop, f"c{i}", shop.keyholder, d, 14, 22)
        else:
            create(cache, shop, f"c{i}", shop.cashier, d, 16, 22, role="keyholder")


def _week(cache, shop):
    with cache.session() as s:
        return load_week(s, shop.store_id, WEEK, forecast={})


def test_publish_requires_coverage_then_publishes(cache, shop) -> None:
    create(cache, shop, "o0", shop.manager, MON, 9, 17)
    with pytest.raises(Rejected) as e:
        run(
            cache,
            shop,
            "shift.publish/1",
            {"store_id": shop.store_id, "week_start": WEEK.isoformat()},
        )
    assert e.value.reason_code == "coverage_close"
    assert "closing" in e.value.message
    assert row(cache, "o0").status == "draft"
    run(cache, shop, "shift.delete/1", {"id": "o0"}, 1)
    _full_week(cache, shop)
    with cache.session() as s:
        assert not [v for v in publish_findings(s, shop.store_id, WEEK) if v.hard]
    changes = run(
        cache, shop, "shift.publish/1", {"store_id": shop.store_id, "week_start": WEEK.isoformat()}
    )
    assert len(changes.tables["shifts"]) == 14
    week = _week(cache, shop)
    assert week.published_count == 14 and week.draft_count == 0
    assert {s.version for s in week.shifts} == {2}
    # Editing a published shift makes it a draft again until the next publish.
    run(cache, shop, "shift.update/1", {"id": "o0", "note": "换班"}, 2)
    assert row(cache, "o0").status == "draft"
    with pytest.raises(Rejected):
        run(
            cache,
            shop,
            "shift.publish/1",
            {"store_id": shop.store_id, "week_start": TUE.isoformat()},
        )


def test_copy_week_skips_hard_breaks_and_reports(cache, shop) -> None:
    _full_week(cache, shop)
    nxt = WEEK + dt.timedelta(days=7)
    # Next Monday the keyholder already works a night that leaves no rest before 14:00.
    create(cache, shop, "night", shop.keyholder, nxt, 0, 6)
    ids = {f"{k}{i}": f"n{k}{i}" for i in range(7) for k in "oc"}
    with cache.session() as s:
        plan = plan_copy_week(s, shop.store_id, WEEK, nxt, ids)
    assert len(plan.items) == 14
    assert [i.source_id for i in plan.skipped] == ["c0"]
    assert plan.skipped[0].problems[0].rule == "rest"
    run(
        cache,
        shop,
        "shift.copy_week/1",
        {
            "store_id": shop.store_id,
            "source_week": WEEK.isoformat(),
            "target_week": nxt.isoformat(),
            "new_ids": ids,
        },
    )
    assert row(cache, "nc0") is None
    copied = row(cache, "no3")
    assert copied.status == "draft" and copied.start_at == row(cache, "o3").start_at + dt.timedelta(
        days=7
    )
    # Copying again creates nothing: every id exists and every slot is taken.
    with cache.session() as s:
        again = plan_copy_week(s, shop.store_id, WEEK, nxt, ids)
    assert not again.created


def test_load_week_uses_the_traffic_forecast(cache, shop) -> None:
    """Wired to core.traffic.forecast: a steady 50 visitors at Monday noon for eight weeks
    means 5 people needed (target STAR 10) at noon next Monday, the floor of 2 elsewhere."""
    from core.models import HourlyTraffic

    with cache.session() as s:
        for weeks_back in range(1, 9):
            monday = WEEK - dt.timedelta(days=7 * weeks_back)
            for hour in range(9, 22):
                s.add(
                    HourlyTraffic(
                        store_id=shop.store_id,
                        hour_start=at(monday, hour).astimezone(dt.UTC),
                        visitors=50 if hour == 12 else 10,
                        transactions=5,
                        sales_fen=10000,
                    )
                )
    with cache.session() as s:
        week = load_week(s, shop.store_id, WEEK)
    assert week.demand.forecast_available
    noon = week.demand.hour(MON, 12)
    assert noon.forecast == pytest.approx(50, rel=0.05) and noon.required == 5
    assert week.demand.hour(MON, 15).required == 2


def test_affected_shift_ids_for_sync_repair(cache, shop) -> None:
    from core.scheduling.mutations import affected_shift_ids

    _full_week(cache, shop)
    with cache.session() as s:
        week = affected_shift_ids(
            s, "shift.publish/1", {"store_id": shop.store_id, "week_start": WEEK.isoformat()}
        )
        assert sorted(week) == sorted([f"o{i}" for i in range(7)] + [f"c{i}" for i in range(7)])
        assert affected_shift_ids(s, "shift.copy_week/1", {"new_ids": {"a": "x", "b": "y"}}) == [
            "x",
            "y",
        ]
        assert affected_shift_ids(s, "shift.update/1", {"id": "o1"}) == ["o1"]
        assert affected_shift_ids(s, "shift.publish/1", {"store_id": 999, "week_start": "x"}) == []
