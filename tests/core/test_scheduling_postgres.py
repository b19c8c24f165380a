"""On PostgreSQL (the production server database), two workers racing to plan overlapping
shifts for one person: the store row lock makes the second see the first, so exactly one
wins and the other is refused with the overlap explanation."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cache import init_schema, make_engine
from core.models import Shift
from core.mutations import Rejected, get
from tests.core.scheduling_fixtures import WEEK, build_shop, iso

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL (initdb) is not installed")
    # PostgreSQL refuses to run as root: use the postgres account when we are root.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = tempfile.mkdtemp(prefix="sd-pg-")
    os.chmod(base, 0o777)
    data = os.path.join(base, "data")
    port = _free_port()
    try:
        subprocess.run(
            [*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *as_user,
                pg_ctl,
                "-D",
                data,
                "-o",
                f"-p {port} -k {base} -c listen_addresses=''",
                "-l",
                os.path.join(base, "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        try:
            yield f"postgresql+psycopg://postgres@/postgres?host={base}&port={port}"
        finally:
            subprocess.run(
                [*as_user, pg_ctl, "-D", data, "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


class _Db:
    """What build_shop needs of a Cache: a transactional session."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.factory.begin() as s:
            yield s


def test_racing_overlapping_creates_one_wins(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        init_schema(engine)
        db = _Db(sessionmaker(engine, expire_on_commit=False))
        shop = build_shop(db)  # type: ignore[arg-type]
        handler = get("shift.create/1").handler
        first_done, results = threading.Event(), {}

        def args(id_: str, h1: int, h2: int) -> dict:
            return {
                "id": id_,
                "store_id": shop.store_id,
                "staff_id": shop.manager,
                "start_at": iso(WEEK, h1),
                "end_at": iso(WEEK, h2),
            }

        def first() -> None:
            with db.session() as s:
                handler(s, args("a", 9, 17), shop.actor, None, NOW)
                first_done.set()
                threading.Event().wait(0.6)  # hold the transaction open: the race window
            results["a"] = "ok"

        def second() -> None:
            first_done.wait(10)
            try:
                with db.session() as s:
                    handler(s, args("b", 12, 20), shop.actor, None, NOW)
                results["b"] = "ok"
            except Rejected as e:
                results["b"] = e

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results["a"] == "ok"
        assert isinstance(results["b"], Rejected) and results["b"].reason_code == "overlap"
        with db.session() as s:
            assert s.scalars(select(Shift.id)).all() == ["a"]
    finally:
        engine.dispose()
