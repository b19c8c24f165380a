"""traffic.import/1 syncs: the central server applies a pushed import, replays change nothing,
and a manager cannot import into another store."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select

from core.models import HourlyTraffic
from sync.protocol import PROTOCOL_HEADER
from tests.sync.conftest import start_server
from tests.sync.harness import PASSWORD


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    s = start_server(tmp_path_factory.mktemp("central-traffic"))
    yield s
    s.stop()


def _headers(srv, user: str) -> dict[str, str]:
    r = httpx.post(srv.url + "/v1/auth/login", json={"username": user, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: "1"}


def _rows(srv, store_id: int) -> int:
    with srv.session() as s:
        return s.scalar(
            select(func.count())
            .select_from(HourlyTraffic)
            .where(HourlyTraffic.store_id == store_id, HourlyTraffic.source == "import")
        )


def _mutation(mid: int, store_id: int) -> dict:
    hour = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
    return {
        "id": mid,
        "name": "traffic.import/1",
        "args": {
            "store_id": store_id,
            "rows": [
                {
                    "hour_start": (hour + dt.timedelta(hours=k)).isoformat(),
                    "visitors": 30 + k,
                    "transactions": 6,
                    "sales_fen": 48000,
                    "units": None,
                }
                for k in range(3)
            ],
        },
    }


def test_pushed_import_is_applied_once_and_scope_is_enforced(srv) -> None:
    h = _headers(srv, "mgr1")
    push = {"client_id": "mgr1-traffic", "mutations": [_mutation(1, 1), _mutation(2, 3)]}
    r = httpx.post(srv.url + "/v1/sync/push", json=push, headers=h)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["status"] for x in res][1] == "rejected"
    assert res[1]["reason_code"] == "forbidden"  # store 3 is not mgr1's
    assert res[0]["status"] != "rejected"
    assert _rows(srv, 1) == 3 and _rows(srv, 3) == 0

    again = httpx.post(srv.url + "/v1/sync/push", json=push, headers=h)  # a retried request
    assert again.status_code == 200
    assert _rows(srv, 1) == 3
