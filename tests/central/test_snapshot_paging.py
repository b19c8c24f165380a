"""Snapshot pages advance under an OR scope filter (regression found by the benchmarks).

A supervisor's customers/alerts filter is ``region_id = R OR store_id IN (...)``; the
SQLite fast path appended the keyset bound with ``AND`` without parentheses, so
``region OR (store AND key > after)`` returned page 1 again for every later page and the
desktop's first sync (1,000-row pages) never ended.
"""

from __future__ import annotations

import json

import httpx
import pytest

from sync.protocol import PROTOCOL_HEADER
from tests.sync.conftest import start_server
from tests.sync.harness import PASSWORD


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    s = start_server(tmp_path_factory.mktemp("central-paging"))
    yield s
    s.stop()


def _pages(srv, user: str, table: str, limit: int) -> list[list]:
    r = httpx.post(srv.url + "/v1/auth/login", json={"username": user, "password": PASSWORD})
    r.raise_for_status()
    h = {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: "1"}
    token = httpx.get(srv.url + "/v1/sync/snapshot/start", headers=h).json()["token"]
    pages: list[list] = []
    after = None
    for _ in range(10):  # a correct pager ends long before this
        params = {"token": token, "table": table, "limit": limit}
        if after is not None:
            params["after"] = json.dumps(after)
        page = httpx.get(srv.url + "/v1/sync/snapshot", params=params, headers=h).json()
        pages.append([row[0] for row in page["rows"]])
        after = page["next_after"]
        if after is None:
            return pages
    raise AssertionError(f"snapshot of {table} never ended: {pages}")


@pytest.mark.parametrize("user", ["sup1", "mgr1", "admin"])
def test_one_row_pages_list_each_customer_once(srv, user: str) -> None:
    whole = [i for page in _pages(srv, user, "customers", 1000) for i in page]
    paged = _pages(srv, user, "customers", 1)
    flat = [i for page in paged for i in page]
    assert whole, "the user sees at least one customer"
    assert flat == whole  # same rows, same order, none repeated
    assert all(len(p) <= 1 for p in paged)
