"""The server's promotion timer: proposals appear without anyone asking, as change-logged
rows a desktop pulls, and running it again (or from a second process) adds nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.app import create_app
from central.cli import build_parser
from central.db import init_central_schema, make_central_engine, session_factory
from central.jobs import ProposalTimer, generate_now
from central.models import ChangeLog
from core.models import PromotionProposal
from tests.core.promotions_fixtures import NOW, add_lot, add_sku, rules, seed_org, sell, stock


def _world(tmp_path: Path):
    engine = make_central_engine(f"sqlite:///{tmp_path / 'central.db'}")
    init_central_schema(engine)
    factory = session_factory(engine)
    with factory() as s, s.begin():
        seed_org(s)
        rules(s)
        add_sku(s, 1, alert_days=5, name="酸奶")
        stock(s, 1, 1, safety=10, max_stock=60)
        add_lot(s, 1, 1, qty=30, expiry_in=5)
        sell(s, 1, 1, last7=14)
    return engine, factory


def _proposals(factory) -> list[tuple[str, int]]:
    with factory() as s:
        return s.execute(select(PromotionProposal.id, PromotionProposal.store_id)).all()


def test_timer_generates_change_logged_proposals_once(tmp_path):
    engine, factory = _world(tmp_path)
    with factory() as s:
        seq_before = s.scalar(select(func.count()).select_from(ChangeLog))

    async def run() -> ProposalTimer:
        timer = ProposalTimer(
            factory, dt.timedelta(seconds=0.05), first_after=dt.timedelta(0), clock=lambda: NOW
        )
        timer.start()
        for _ in range(200):
            await asyncio.sleep(0.02)
            if timer.runs >= 3:
                break
        await timer.stop()
        return timer

    timer = asyncio.run(run())
    assert timer.runs >= 3 and timer.last_error is None
    made = _proposals(factory)
    assert [store for _id, store in made] == [1]  # the near-expiry lot of store 1, once
    assert timer.added == 1
    with factory() as s:
        logged = s.scalars(
            select(ChangeLog.pk).where(ChangeLog.table_name == "promotion_proposals")
        ).all()
        assert s.scalar(select(func.count()).select_from(ChangeLog)) > seq_before
    assert any(made[0][0] in str(pk) for pk in logged)  # desktops will pull it
    # A second server process running the same job adds nothing.
    assert generate_now(factory, None, NOW) == 0
    engine.dispose()


def test_app_lifespan_starts_and_stops_the_timer(tmp_path):
    engine, _factory = _world(tmp_path)
    app = create_app(engine, init_schema=False, generate_every=dt.timedelta(seconds=0.05))
    timer = app.state.proposal_timer
    timer.first_after = dt.timedelta(0)
    with TestClient(app) as client:
        assert client.get("/v1/health").status_code == 200
        for _ in range(200):
            if timer.runs:
                break
            time.sleep(0.02)
        assert timer.runs >= 1 and timer.last_error is None
    assert timer._task is None  # stopped with the app
    assert create_app(engine, init_schema=False).state.proposal_timer is None
    engine.dispose()


@pytest.mark.parametrize("value", ["-1", "abc", "2000"])
def test_cli_refuses_a_bad_period(value, capsys):
    from central.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--generate-every", value, "--db", "sqlite://"])
    assert e.value.code == 2
    assert "--generate-every" in capsys.readouterr().err


def test_cli_period_default_and_off():
    assert build_parser().parse_args([]).generate_every == 10
    assert build_parser().parse_args(["--generate-every", "0"]).generate_every == 0


def test_stop_waits_for_the_pass_in_progress(tmp_path):
    """Shutting the server down mid-pass waits for that pass (it ends at its next store),
    so the engine is never disposed under a running generation."""
    engine, factory = _world(tmp_path)
    entered = threading.Event()

    def slow_clock() -> dt.datetime:
        entered.set()
        time.sleep(0.4)
        return NOW

    async def run() -> ProposalTimer:
        timer = ProposalTimer(
            factory, dt.timedelta(hours=1), first_after=dt.timedelta(0), clock=slow_clock
        )
        timer.start()
        while not entered.is_set():
            await asyncio.sleep(0.01)
        await timer.stop()
        return timer

    timer = asyncio.run(run())
    assert timer._running is None
    assert timer.runs == 1  # the pass finished before stop() returned
    engine.dispose()
