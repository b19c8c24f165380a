"""Scoped snapshot pages are linear overall: a scope of many pages walks the primary key.

Driven from a scope index (a supervisor's shifts by ``store_id``, visits by their rep), a
page read every remaining in-scope row and sorted it to keep the first ``limit``: an
initial sync grew with the square of the scope (1,000-row pages, the desktop's, at the
demo region x10 never ended in useful time). The walk form of the filter leaves the key
as the only usable index: one pass over the table for all pages. Checked without timing:
by the query plans, and by counting SQLite VM steps over all pages of a scope.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect

from central.app import snapshot_page_sql
from central.db import init_central_schema, make_central_engine
from central.scope import unrestricted, walk_pk
from core.mutations import Actor
from sync.protocol import SYNCED_TABLE_NAMES, pk_columns, table, wire_columns
from tests.sync.harness import build_world

SUP = Actor(
    user_id=2,
    name="sup1",
    role="supervisor",
    store_ids=frozenset({1, 2}),
    region_ids=frozenset({1}),
)
MGR = Actor(user_id=3, name="mgr1", role="store_manager", store_ids=frozenset({1}))
DIALECT = sqlite_dialect.dialect()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "central.db"
    eng = make_central_engine(f"sqlite:///{path}")
    init_central_schema(eng)
    build_world(eng, extra_shifts=600)
    eng.dispose()
    return path


def _sql(name: str, actor: Actor, after: bool, walk: bool) -> str:
    tbl = table(name)
    return snapshot_page_sql(DIALECT, name, actor, wire_columns(tbl), pk_columns(tbl), after, walk)


def _pages(con: sqlite3.Connection, name: str, actor: Actor, limit: int, walk: bool) -> list:
    pkc = pk_columns(table(name))
    cols = wire_columns(table(name))
    idx = [cols.index(c) for c in pkc]
    rows: list = []
    key = None
    while True:
        page = con.execute(
            _sql(name, actor, key is not None, walk), [*(key or []), limit]
        ).fetchall()
        rows.extend(page)
        if len(page) < limit:
            return rows
        key = [page[-1][i] for i in idx]


@pytest.mark.parametrize("actor", [SUP, MGR], ids=["supervisor", "manager"])
def test_walk_plan_follows_the_key_without_sorting(db: Path, actor: Actor) -> None:
    con = sqlite3.connect(db)
    for name in SYNCED_TABLE_NAMES:
        if unrestricted(name, actor):
            continue
        pkc = pk_columns(table(name))
        plan = con.execute(
            "EXPLAIN QUERY PLAN " + _sql(name, actor, True, True), [0] * len(pkc) + [10]
        ).fetchall()
        details = [r[3] for r in plan]
        assert not any("TEMP B-TREE" in d for d in details), (name, details)
        # a parent's key set built on every page would cost the parent's scope per page
        assert not any("LIST SUBQUERY" in d for d in details), (name, details)
        top = next(r[3] for r in plan if r[1] == 0)
        assert top.startswith(f"SEARCH {name} USING"), (name, details)
        assert "INTEGER PRIMARY KEY (rowid>?)" in top or (
            f"sqlite_autoindex_{name}_1" in top and ">" in top
        ), (name, details)


@pytest.mark.parametrize("actor", [SUP, MGR], ids=["supervisor", "manager"])
def test_both_plans_return_the_same_pages(db: Path, actor: Actor) -> None:
    con = sqlite3.connect(db)
    for name in SYNCED_TABLE_NAMES:
        whole = _pages(con, name, actor, 100_000, walk=False)
        assert _pages(con, name, actor, 7, walk=True) == whole, name
        assert _pages(con, name, actor, 7, walk=False) == whole, name


def _vm_steps(con: sqlite3.Connection, name: str, actor: Actor, limit: int, walk: bool) -> int:
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    con.set_progress_handler(tick, 100)
    try:
        _pages(con, name, actor, limit, walk)
    finally:
        con.set_progress_handler(None, 0)
    return steps


def test_walked_pages_cost_about_one_pass_whatever_the_page_size(db: Path) -> None:
    con = sqlite3.connect(db)
    n = len(_pages(con, "shifts", SUP, 100_000, walk=False))
    assert n >= 400, "the supervisor's scope spans many small pages"
    big, small = n // 4, n // 40
    walked = _vm_steps(con, "shifts", SUP, small, True) / _vm_steps(con, "shifts", SUP, big, True)
    assert walked < 1.5  # 10x the pages, about the same work
    # the measure sees the quadratic plan: driven from the store index, 10x the pages
    # re-read and re-sort the rest of the scope each time
    driven = _vm_steps(con, "shifts", SUP, small, False) / _vm_steps(con, "shifts", SUP, big, False)
    assert driven > 3


def test_walk_decision() -> None:
    assert not walk_pk(in_scope=900, total=10**6, limit=1000)  # one page: by the index
    assert not walk_pk(in_scope=3000, total=10**6, limit=1000)  # few pages of a big table
    assert walk_pk(in_scope=200_000, total=530_000, limit=1000)  # a region's visits
    assert walk_pk(in_scope=200_000, total=530_000, limit=50_000)
    assert not walk_pk(in_scope=0, total=0, limit=1)


def test_server_pages_a_walked_scope_like_one_page(tmp_path: Path) -> None:
    from tests.central.test_snapshot_paging import _pages as http_pages
    from tests.sync.conftest import start_server

    srv = start_server(tmp_path, extra_shifts=600)
    try:
        whole = [i for page in http_pages(srv, "sup1", "shifts", 50_000) for i in page]
        assert len(whole) >= 400
        # 200-row pages of 1,200 in-scope rows out of 1,800: the walk plan
        assert walk_pk(len(whole), 1806, 200)
        paged = http_pages(srv, "sup1", "shifts", 200)
        assert len(paged) > 5
        assert [i for page in paged for i in page] == whole
    finally:
        srv.stop()
