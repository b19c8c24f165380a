"""Central API: sign-in, tokens, scope enforcement on every endpoint (tried as the wrong user)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from central.auth import hash_password, verify_password
from central.models import AuthToken, ChangeLog
from core.models import Shift
from sync.protocol import (
    MIN_PROTOCOL_VERSION,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    encode_datetime,
)
from tests.sync.conftest import start_server
from tests.sync.harness import PASSWORD, T0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    s = start_server(tmp_path_factory.mktemp("central"))
    yield s
    s.stop()


def login(srv, user: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(srv.url + "/v1/auth/login", json={"username": user, "password": password})


def headers(srv, user: str) -> dict[str, str]:
    r = login(srv, user)
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["token"], PROTOCOL_HEADER: "1"}


def test_password_hashes_use_scrypt_with_salt():
    a, b = hash_password("x", n=2**10), hash_password("x", n=2**10)
    assert a != b and a.startswith("scrypt$1024$8$1$")
    assert (
        verify_password("x", a) and not verify_password("y", a) and not verify_password("x", None)
    )


def test_sign_in_gives_an_expiring_token_stored_only_as_a_hash(srv):
    assert login(srv, "sup1", "wrong").status_code == 401
    assert login(srv, "nobody").status_code == 401
    r = login(srv, "sup1")
    assert r.status_code == 200
    body = r.json()
    token = body["token"]
    assert body["user"]["store_ids"] == [1, 2] and body["user"]["region_ids"] == [1]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    with srv.session() as s:
        hashes = list(s.scalars(select(AuthToken.token_hash)))
    assert token not in hashes and len(hashes) >= 1
    assert httpx.get(srv.url + "/v1/me").status_code == 401
    assert (
        httpx.get(srv.url + "/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    me = httpx.get(srv.url + "/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "sup1"


def test_expired_token_is_refused(tmp_path: Path):
    import asyncio

    from central.app import create_app

    srv = start_server(tmp_path)
    srv.stop()
    app = create_app(srv.db_url, token_ttl=dt.timedelta(seconds=-1))

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            r = await c.post("/v1/auth/login", json={"username": "sup1", "password": PASSWORD})
            tok = r.json()["token"]
            return (await c.get("/v1/me", headers={"Authorization": f"Bearer {tok}"})).status_code

    assert asyncio.run(go()) == 401


def test_health_and_docs_need_no_token(srv):
    h = httpx.get(srv.url + "/v1/health")
    assert h.status_code == 200 and h.json()["protocol"] == PROTOCOL_VERSION == 3
    assert h.json()["min_protocol"] == MIN_PROTOCOL_VERSION == 1  # JSON pages still served
    assert httpx.get(srv.url + "/docs").status_code == 200
    assert "/v1/sync/push" in httpx.get(srv.url + "/openapi.json").json()["paths"]


# Every endpoint, asked by the manager of S3 about store S1 (region R1): 403, nothing changed.
CROSS_SCOPE = [
    ("GET", "/v1/stores/1", None, None),
    ("GET", "/v1/sync/snapshot/start", {"store_id": 1}, None),
    ("GET", "/v1/sync/snapshot", {"store_id": 1, "token": 0, "table": "shifts"}, None),
    ("GET", "/v1/sync/pull", {"store_id": 1, "cursor": 0}, None),
    ("GET", "/v1/sync/verify", {"store_id": 1}, None),
    ("POST", "/v1/promotions/generate", {"store_id": 1}, None),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), CROSS_SCOPE)
def test_every_read_endpoint_refuses_another_stores_data(srv, method, path, params, body):
    h = headers(srv, "mgr3")
    r = httpx.request(method, srv.url + path, params=params, json=body, headers=h)
    assert r.status_code == 403, r.text
    # ... and the supervisor of the other region too
    h2 = headers(srv, "sup1")
    if path == "/v1/stores/1":
        assert httpx.get(srv.url + "/v1/stores/3", headers=h2).status_code == 403
    ok = httpx.get(srv.url + "/v1/stores/3", headers=h)
    assert ok.status_code == 200 and "proposals_generated_at" in ok.json()


def _rows(srv, user: str, table: str, pks: list) -> httpx.Response:
    return httpx.post(
        srv.url + "/v1/sync/rows", json={"table": table, "pks": pks}, headers=headers(srv, user)
    )


# Keys of rows outside the asker's scope, each beside a key nobody has.
HIDDEN_ROWS = [
    ("mgr3", "gps_points", [1, encode_datetime(T0)], [1, encode_datetime(T0 + dt.timedelta(1))]),
    ("mgr3", "shifts", ["shS10"], ["shNOPE"]),
    ("mgr3", "visits", ["visitS1"], ["visitNOPE"]),
    ("mgr3", "users", [2], [999]),
    ("sup1", "visits", ["visitS3"], ["visitNOPE"]),
    ("sup1", "customers", [2], [999]),
]


@pytest.mark.parametrize(("user", "table", "hidden", "absent"), HIDDEN_ROWS)
def test_rows_outside_scope_are_answered_as_missing(srv, user, table, hidden, absent):
    """A row another store or region holds is answered exactly like a key nobody has, so
    /v1/sync/rows tells nobody which keys exist outside their scope."""
    both = _rows(srv, user, table, [hidden, absent])
    assert both.status_code == 200, both.text
    assert both.json()["rows"] == [] and both.json()["missing"] == [hidden, absent]
    one, other = _rows(srv, user, table, [hidden]), _rows(srv, user, table, [absent])
    assert (one.status_code, other.status_code) == (200, 200)
    assert {**one.json(), "missing": None} == {**other.json(), "missing": None}
    assert (one.json()["missing"], other.json()["missing"]) == ([hidden], [absent])


def test_rows_in_scope_are_still_answered(srv):
    key = [1, encode_datetime(T0)]
    for user in ("mgr1", "sup1", "admin"):
        r = _rows(srv, user, "gps_points", [key]).json()
        assert r["missing"] == [] and len(r["rows"]) == 1
        row = dict(zip(r["columns"], r["rows"][0], strict=True))
        assert (row["rep_id"], row["ts"]) == (1, key[1])
    assert len(_rows(srv, "sup1", "visits", [["visitS1"]]).json()["rows"]) == 1


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("gps_points", [1, "yesterday"]),
        ("gps_points", [1, 3.5]),
        ("gps_points", ["1", encode_datetime(T0)]),
        ("gps_points", [1]),
        ("visits", [7]),
        ("customers", ["x"]),
        ("customers", [None]),
    ],
)
def test_rows_refuses_a_malformed_key_with_422(srv, table, key):
    r = _rows(srv, "mgr1", table, [key])
    assert r.status_code == 422, r.text
    assert table in r.json()["detail"]


def test_writes_outside_scope_are_refused_and_change_nothing(srv):
    h = headers(srv, "mgr3")
    with srv.session() as s:
        before = s.get(Shift, "shS10").version
        log_before = len(s.scalars(select(ChangeLog.seq)).all())
    muts = [
        {
            "id": 1,
            "name": "shift.update/1",
            "args": {"id": "shS10", "note": "hack"},
            "base_version": before,
        },
        {
            "id": 2,
            "name": "visit_note.add/1",
            "args": {"id": "x1", "visit_id": "visitS1", "text": "hack"},
        },
        {
            "id": 3,
            "name": "promotion.decide/1",
            "args": {
                "proposal_id": "propS1",
                "decision_id": "d1",
                "decision": "approve",
                "discount_pct": 20,
            },
        },
    ]
    r = httpx.post(
        srv.url + "/v1/sync/push", json={"client_id": "mgr3-client", "mutations": muts}, headers=h
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["rejected"] * 3
    assert [x["reason_code"] for x in res] == ["forbidden"] * 3
    assert r.json()["last_mutation_id"] == 3  # refusals advance the id
    with srv.session() as s:
        assert s.get(Shift, "shS10").version == before
        assert len(s.scalars(select(ChangeLog.seq)).all()) == log_before


def test_snapshot_and_pull_contain_exactly_the_users_scope(srv):
    def tables(user):
        h = headers(srv, user)
        start = httpx.get(srv.url + "/v1/sync/snapshot/start", headers=h).json()
        out = {}
        for t in start["tables"]:
            page = httpx.get(
                srv.url + "/v1/sync/snapshot",
                params={"token": start["token"], "table": t["name"]},
                headers=h,
            ).json()
            cols = page["columns"]
            out[t["name"]] = [dict(zip(cols, r, strict=True)) for r in page["rows"]]
        return out

    mgr3, sup1 = tables("mgr3"), tables("sup1")
    assert {r["id"] for r in mgr3["stores"]} == {3}
    assert {r["store_id"] for r in mgr3["shifts"]} == {3}
    assert {r["id"] for r in mgr3["visits"]} == {"visitS3"}
    assert [r["username"] for r in mgr3["users"]] == ["mgr3"]
    assert "password_hash" not in mgr3["users"][0]
    assert {r["id"] for r in sup1["stores"]} == {1, 2}
    assert {r["id"] for r in sup1["reps"]} == {1}
    assert len(mgr3["skus"]) == len(sup1["skus"]) == 1  # reference data for everyone
    assert {r["id"] for r in mgr3["regions"]} == {1, 2}

    # a change in S1 reaches sup1's pull, not mgr3's
    h1 = headers(srv, "mgr1")
    httpx.post(
        srv.url + "/v1/sync/push",
        headers=h1,
        json={
            "client_id": "mgr1-client",
            "mutations": [
                {
                    "id": 1,
                    "name": "visit_note.add/1",
                    "args": {"id": "scoped", "visit_id": "visitS1", "text": "hi"},
                }
            ],
        },
    )
    for user, expect in (("sup1", True), ("mgr3", False), ("admin", True)):
        page = httpx.get(
            srv.url + "/v1/sync/pull", params={"cursor": 0}, headers=headers(srv, user)
        ).json()
        ids = [c["pk"][0] for c in page["changes"] if c["table"] == "visit_notes"]
        assert ("scoped" in ids) is expect, user


def test_retention_prunes_old_changes_and_old_cursors_get_410(srv):
    from central import changelog

    with srv.session() as s, s.begin():
        head, _ = changelog.head_and_floor(s)
        assert head > 0
        n = changelog.prune_older_than(s, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        assert n > 0 and changelog.head_and_floor(s) == (head, head)
    h = headers(srv, "sup1")
    assert httpx.get(srv.url + "/v1/sync/pull", params={"cursor": 0}, headers=h).status_code == 410
    ok = httpx.get(srv.url + "/v1/sync/pull", params={"cursor": head}, headers=h)
    assert ok.status_code == 200 and ok.json()["changes"] == []


def test_requests_are_logged_without_tokens_or_passwords(srv, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="storedesk.central"):
        r = login(srv, "sup1")
        token = r.json()["token"]
        httpx.get(srv.url + "/v1/me", headers={"Authorization": f"Bearer {token}"})
        login(srv, "sup1", "a-wrong-secret")
    text = caplog.text
    assert "POST /v1/auth/login -> 200" in text and "GET /v1/me -> 200" in text
    assert "-> 401" in text
    assert token not in text and PASSWORD not in text and "a-wrong-secret" not in text


def test_managers_run_the_rule_engine_for_their_stores(srv):
    r = httpx.post(srv.url + "/v1/promotions/generate", headers=headers(srv, "mgr1"), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added"] >= 0 and set(body["generated_at"]) <= {"1"}
    assert "1" in body["generated_at"]  # the hand-made proposal of S1
