"""A promotion decision travels: one store's client decides offline, pushes, and every
client whose scope holds that store sees it after one sync cycle — against the real
central server on loopback (uvicorn in a thread), no mocks.

The server generates the proposals with :func:`core.promotions.engine.generate_proposals`
through a change-logged session, exactly as its timer job does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from central.auth import hash_password
from central.db import init_central_schema, make_central_engine, session_factory
from core.models import PromotionDecision, PromotionProposal, Region, Store, User, UserScope
from core.mutations import apply_local
from core.promotions.engine import generate_proposals
from core.promotions.queue import decision_sync_states, list_proposals, queue_rows
from core.timeutil import to_local
from tests.core.promotions_fixtures import NOW, add_lot, add_sku, rules, seed_org, sell, stock
from tests.sync.harness import PASSWORD, LiveServer, engine_for, new_client


def _world(url: str) -> dict[str, str]:
    """Stores 1, 2 (region 1) and 3 (region 2); a near-expiry lot in stores 1 and 3."""
    engine = make_central_engine(url)
    init_central_schema(engine)
    pw = hash_password(PASSWORD, n=2**10)
    factory = session_factory(engine)
    with factory() as s, s.begin():
        seed_org(s)
        s.add(Region(id=2, code="JS", name="江苏区"))
        s.flush()
        s.add(
            Store(id=3, region_id=2, code="JS001", name="南京店", province="江苏", city="南京",
                  lat=32.0, lon=118.8)
        )  # fmt: skip
        s.add_all(
            [
                User(id=21, username="sup_sh", display_name="张督导", role="supervisor"),
                User(id=13, username="mgr_js001", display_name="赵店长", role="store_manager"),
            ]
        )
        s.flush()
        s.add_all([UserScope(user_id=21, region_id=1), UserScope(user_id=13, store_id=3)])
        for u in s.scalars(select(User)):
            u.password_hash = pw
        rules(s)
        add_sku(s, 1, alert_days=5, name="酸奶")
        for store_id in (1, 3):
            stock(s, store_id, 1, safety=10, max_stock=60)
            add_lot(s, store_id, 1, qty=30, expiry_in=5)
            sell(s, store_id, 1, last7=14)
    with factory() as s, s.begin():
        made = generate_proposals(s, [1, 2, 3], NOW)
        ids = {p.store_id: p.id for p in made}
    engine.dispose()
    assert set(ids) == {1, 3}
    return {"S1": ids[1], "S3": ids[3]}


@pytest.fixture
def live(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'central.db'}"
    proposals = _world(url)
    srv = LiveServer(url).start()
    srv.proposals = proposals  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def test_decision_on_one_client_reaches_every_client_in_scope_after_one_cycle(live, tmp_path):
    pid = live.proposals["S1"]
    store_client = new_client(tmp_path, "mgr_sh001")
    region_client = new_client(tmp_path, "sup_sh")
    other_region = new_client(tmp_path, "mgr_js001")

    async def go():
        a = engine_for(store_client, live, "mgr_sh001")
        b = engine_for(region_client, live, "sup_sh")
        c = engine_for(other_region, live, "mgr_js001")
        for e in (a, b, c):
            await e.sync_once()
        # everyone in scope sees the pending proposal, the other region never does
        with region_client.session() as s:
            assert [r.id for r in queue_rows(s, [1, 2])] == [pid]
        with other_region.session() as s:
            assert s.get(PromotionProposal, pid) is None
        # the store manager decides (offline-first: applied locally with an outbox row)
        with store_client.session() as s:
            apply_local(
                s,
                a._actor(),
                "promotion.decide/1",
                {
                    "proposal_id": pid,
                    "decision_id": uuid.uuid4().hex,
                    "decision": "approve",
                    "discount_pct": 35,
                    "reason_code": None,
                    "comment": "端架陈列",
                },
                now=NOW + dt.timedelta(minutes=20),
            )
        with store_client.session() as s:
            assert decision_sync_states(s)[pid].state == "pending"
        ra = await a.sync_once()
        assert (ra.pushed, ra.conflicts) == (1, 0)
        with store_client.session() as s:
            assert decision_sync_states(s)[pid].state == "synced"
        # ONE sync cycle later the supervisor's client shows the active promotion
        await b.sync_once()
        await c.sync_once()
        for e in (a, b, c):
            await e.aclose()

    asyncio.run(go())
    with region_client.session() as s:
        dec = s.scalars(select(PromotionDecision)).one()
        assert (dec.proposal_id, dec.decision, dec.discount_pct) == (pid, "approve", 35)
        assert dec.decided_by_name == "王店长" and dec.comment == "端架陈列"
        [row] = list_proposals(s, [1, 2], statuses=("approved",))
        assert row.id == pid and row.status == "approved" and row.decided_discount == 35
        # the server stamps the decision with its own clock: the offer starts that day
        assert row.starts_on >= dt.date(2026, 11, 27) and row.ends_on >= row.starts_on
        assert queue_rows(s, [1, 2]) == []  # nothing left to decide there
    with other_region.session() as s:
        assert s.scalars(select(PromotionDecision)).all() == []
        assert s.get(PromotionProposal, pid) is None
        assert [r.id for r in queue_rows(s, [3])] == [live.proposals["S3"]]
    with live.session() as s:
        assert s.get(PromotionProposal, pid).status == "approved"
    for cache in (store_client, region_client, other_region):
        cache.close()


def test_lost_decision_comes_back_as_a_conflict_naming_the_winner(live, tmp_path):
    pid = live.proposals["S1"]
    manager = new_client(tmp_path, "mgr_sh001")
    supervisor = new_client(tmp_path, "sup_sh")

    def decide(cache, eng, decision, minutes):
        with cache.session() as s:
            apply_local(
                s,
                eng._actor(),
                "promotion.decide/1",
                {
                    "proposal_id": pid,
                    "decision_id": uuid.uuid4().hex,
                    "decision": decision,
                    "discount_pct": 30 if decision == "approve" else None,
                    "reason_code": None if decision == "approve" else "margin_too_low",
                    "comment": "",
                },
                now=NOW + dt.timedelta(minutes=minutes),
            )

    async def go():
        a = engine_for(manager, live, "mgr_sh001")
        b = engine_for(supervisor, live, "sup_sh")
        await a.sync_once()
        await b.sync_once()
        decide(manager, a, "approve", 5)  # both offline, both decide
        decide(supervisor, b, "reject", 9)
        ra = await a.sync_once()  # the manager's decision reaches the server first
        rb = await b.sync_once()
        await a.aclose()
        await b.aclose()
        return ra, rb

    ra, rb = asyncio.run(go())
    assert (ra.pushed, ra.conflicts, rb.conflicts) == (1, 0, 1)
    with supervisor.session() as s:
        [row] = [r for r in queue_rows(s, [1, 2]) if r.id == pid]
        assert row.sync is not None and row.sync.state == "conflict"
        assert row.sync.theirs["decided_by_name"] == "王店长"
        assert row.sync.theirs["decision"] == "approve"
        # the local rows now hold the winner's decision
        assert (row.decision, row.decided_discount, row.status) == ("approve", 30, "approved")
    pytest.importorskip("PySide6")
    from desktop.views.promotions import status_text

    with live.session() as s:  # the winner's time is the server's, not the client's clock
        won_at = s.scalars(select(PromotionDecision)).one().decided_at
    when = to_local(won_at).strftime("%m-%d %H:%M")
    assert status_text(row) == f"Conflict: 王店长 already approved it at {when}"
    manager.close()
    supervisor.close()
