"""Test harness: the REAL central server over loopback, a small hand-made world, faults.

* :class:`LiveServer` runs ``central.app.create_app`` under uvicorn in a thread on a free
  port (restartable on the same port and database, to test "server restart mid-pull").
* :class:`Faults` is an ASGI middleware we control in front of the app: it can let the
  server do its work (commit!) and then lose the reply (connection cut mid-response),
  answer 5xx after the commit, answer garbage, or delay — the network misbehaving outside
  our control. Our own components are never mocked.
* :func:`build_world` writes a tiny organisation with hand-checkable contents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from central.app import create_app
from central.auth import hash_password
from central.db import init_central_schema, make_central_engine
from core.cache import Cache, open_cache
from core.models import (
    Customer,
    GpsPoint,
    Holiday,
    HourlyTraffic,
    PromotionProposal,
    PromotionRule,
    Region,
    Rep,
    Shift,
    Sku,
    Staff,
    Store,
    User,
    UserScope,
    Visit,
)
from sync.engine import PasswordAuth, SyncEngine

PASSWORD = "pw-test-1"
T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 Shanghai


# --------------------------------------------------------------------------- world


@dataclass
class World:
    regions: dict[str, int] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)
    staff: dict[str, int] = field(default_factory=dict)
    shifts: dict[str, str] = field(default_factory=dict)
    visits: dict[str, str] = field(default_factory=dict)
    proposals: dict[str, str] = field(default_factory=dict)


def build_world(engine: Engine, *, extra_shifts: int = 0) -> World:
    """Regions R1 (stores S1, S2) and R2 (S3); users admin, sup1 (R1), mgr1 (S1), mgr3 (S3)."""
    w = World()
    pw = hash_password(PASSWORD, n=2**10)  # cheap KDF cost for tests; format is the same
    with Session(engine) as s, s.begin():
        s.add_all(
            [
                Region(id=1, code="R1", name="上海区"),
                Region(id=2, code="R2", name="江苏区"),
                Holiday(date=dt.date(2026, 10, 1), name="国庆节"),
                Sku(id=1, code="K1", name="牛奶", category="dairy", price_fen=1200, cost_fen=800),
                PromotionRule(id=1, code="X", name="clear", text="t", template="markdown"),
            ]
        )
        s.flush()
        for sid, code, rid in ((1, "S1", 1), (2, "S2", 1), (3, "S3", 2)):
            s.add(
                Store(
                    id=sid,
                    region_id=rid,
                    code=code,
                    name=f"店{code}",
                    province="沪",
                    city="上海",
                    lat=31.2,
                    lon=121.4,
                )
            )
            w.stores[code] = sid
        w.regions = {"R1": 1, "R2": 2}
        s.flush()
        for i, (code, sid) in enumerate(w.stores.items(), start=1):
            s.add(Staff(id=i, store_id=sid, name=f"员工{code}", role="sales"))
            w.staff[code] = i
        s.flush()
        n = 0
        for code, sid in w.stores.items():
            for k in range(2 + extra_shifts):
                n += 1
                sh_id = f"sh{code}{k}"
                start = T0 + dt.timedelta(days=k, hours=0)
                s.add(
                    Shift(
                        id=sh_id,
                        store_id=sid,
                        staff_id=w.staff[code],
                        role="sales",
                        start_at=start,
                        end_at=start + dt.timedelta(hours=8),
                        status="published",
                    )
                )
                if k < 2:
                    w.shifts[f"{code}-{k}"] = sh_id
        people = ((1, "P1", 1), (2, "P3", 3))
        for rid, code, sid in people:
            region = 1 if sid == 1 else 2
            s.add(
                Rep(
                    id=rid,
                    region_id=region,
                    store_id=sid,
                    code=code,
                    name=f"代表{code}",
                    home_lat=31.2,
                    home_lon=121.4,
                )
            )
        s.flush()
        for rid, code, sid in people:
            region = 1 if sid == 1 else 2
            s.add(
                Customer(
                    id=rid,
                    region_id=region,
                    store_id=sid,
                    rep_id=rid,
                    name=f"客户{code}",
                    tier="A",
                    lat=31.2,
                    lon=121.4,
                )
            )
        s.flush()
        for i in range(5):  # a datetime in a composite key: exercises keyset paging
            s.add(
                GpsPoint(
                    rep_id=1, ts=T0 + dt.timedelta(seconds=30 * i), lat=31.2 + i / 1e4, lon=121.4
                )
            )
            s.add(HourlyTraffic(store_id=1, hour_start=T0 + dt.timedelta(hours=i), visitors=10 + i,
                                transactions=3, sales_fen=12345, units=None))  # fmt: skip
        for rid, code in ((1, "S1"), (2, "S3")):
            vid = f"visit{code}"
            s.add(Visit(id=vid, rep_id=rid, customer_id=rid, check_in_at=T0))
            w.visits[code] = vid
        for code in ("S1", "S3"):
            pid = f"prop{code}"
            s.add(
                PromotionProposal(
                    id=pid,
                    store_id=w.stores[code],
                    sku_id=1,
                    rule_id=1,
                    template="markdown",
                    discount_pct=20,
                    generated_at=T0,
                )
            )
            w.proposals[code] = pid
        users = [
            (1, "admin", "admin", []),
            (2, "sup1", "supervisor", [("region", 1)]),
            (3, "mgr1", "store_manager", [("store", 1)]),
            (4, "mgr3", "store_manager", [("store", 3)]),
            (5, "mgr1b", "store_manager", [("store", 1)]),
        ]
        for uid, name, role, scopes in users:
            s.add(
                User(id=uid, username=name, display_name=name.upper(), role=role, password_hash=pw)
            )
            s.flush()
            for kind, ref in scopes:
                s.add(
                    UserScope(
                        user_id=uid,
                        store_id=ref if kind == "store" else None,
                        region_id=ref if kind == "region" else None,
                    )
                )
    return w


# --------------------------------------------------------------------------- faults


class Faults:
    """ASGI middleware: per path, a queue of faults to inject on the next matching requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rules: list[tuple[str, str, Any]] = []
        self.seen: list[str] = []
        self.hold: Hold | None = None
        self._lock = threading.Lock()

    def add(self, path: str, kind: str, arg: Any = None, times: int = 1) -> None:
        """kind: drop_reply | error_after | error_before | garbage | replace | rewrite | delay
        | slow_reply (the server does its work and commits, the reply leaves ``arg`` s later).

        ``path`` may end with ``?text``: the rule then matches only requests whose query
        string contains ``text`` (e.g. ``/v1/sync/snapshot?table=shifts``).
        """
        with self._lock:
            self.rules.extend([(path, kind, arg)] * times)

    @contextmanager
    def holding(self, path: str, budget: int, rows: Callable[[bytes], int]) -> Iterator[Hold]:
        """Serve ``path`` until its replies held ``budget`` rows, then park it (:class:`Hold`).

        Requests to ``path`` go to the hold instead of the fault rules. On exit the parked
        requests are let through (their client is gone by then) and the hold removed.
        """
        hold = Hold(path, budget, rows)
        self.hold = hold
        try:
            yield hold
        finally:
            self.hold = None
            hold.release()

    def _take(self, path: str, query: str = "") -> tuple[str, Any] | None:
        with self._lock:
            for i, (p, kind, arg) in enumerate(self.rules):
                want, _sep, part = p.partition("?")
                if path == want and part in query:
                    del self.rules[i]
                    return kind, arg
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.seen.append(scope["path"])
        hold = self.hold
        if hold is not None and scope["path"] == hold.path:
            return await hold(self.app, scope, receive, send)
        rule = self._take(scope["path"], scope.get("query_string", b"").decode())
        if rule is None:
            return await self.app(scope, receive, send)
        kind, arg = rule
        captured: list[dict] = []

        async def swallow(msg: dict) -> None:
            captured.append(msg)

        if kind == "error_before":
            return await _reply(send, arg or 503, b'{"detail":"injected"}')
        if kind == "delay":
            await asyncio.sleep(arg)
            return await self.app(scope, receive, send)
        await self.app(scope, receive, swallow)  # the server does its work and commits
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if kind == "drop_reply":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"100000")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"last', "more_body": True})
            raise ConnectionAbortedError("injected: reply lost")
        if kind == "error_after":
            return await _reply(send, arg or 502, b"<html>bad gateway</html>")
        if kind == "slow_reply":  # (the client may have given up meanwhile)
            await asyncio.sleep(arg)
            for msg in captured:
                await send(msg)
            return None
        if kind == "garbage":
            return await _reply(send, 200, arg if arg is not None else b"{not json")
        if kind == "replace":
            return await _reply(send, 200, json.dumps(arg(json.loads(body))).encode())
        if kind == "rewrite":  # the server's reply, bytes in, bytes out
            return await _reply(send, 200, arg(body))
        raise ValueError(kind)


class Hold:
    """Answers requests to ``path`` until their replies held ``budget`` rows, then parks the
    next ones: no answer until :meth:`release`.

    The client gets exactly the rows that take it past a chosen point and cannot get any
    further, so a test that kills it "at 95 %" kills it there, whatever the machine's
    speed (instead of racing the end of the download). ``rows(body)`` counts the rows of
    one successful reply; ``served`` and ``parked`` are for the test to read.
    """

    def __init__(self, path: str, budget: int, rows: Callable[[bytes], int]) -> None:
        self.path = path
        self.budget = budget
        self.rows = rows
        self.served = 0
        self.parked = 0
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    async def __call__(self, app: Any, scope: dict, receive: Callable, send: Callable) -> None:
        if self.served >= self.budget and not self._released.is_set():
            self.parked += 1
            while not self._released.is_set():
                await asyncio.sleep(0.01)
            return await app(scope, receive, send)
        captured: list[dict] = []

        async def keep(msg: dict) -> None:
            captured.append(msg)

        await app(scope, receive, keep)
        start = next(m for m in captured if m["type"] == "http.response.start")
        if start["status"] == 200:
            body = b"".join(
                m.get("body", b"") for m in captured if m["type"] == "http.response.body"
            )
            self.served += self.rows(body)
        for m in captured:
            await send(m)


async def _reply(send: Callable, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The central app under uvicorn, in a thread, on 127.0.0.1:<free port>."""

    def __init__(self, db_url: str, *, port: int | None = None) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: Faults | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.engine: Engine | None = None

    def start(self) -> LiveServer:
        self.engine = make_central_engine(self.db_url)
        init_central_schema(self.engine)
        self.app = create_app(self.engine, init_schema=False)
        self.faults = Faults(self.app)
        config = uvicorn.Config(
            self.faults,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(10)
            self._server = None
        if self.engine is not None:
            self.engine.dispose()

    def restart(self) -> None:
        self.stop()
        self.start()

    def session(self) -> Session:
        assert self.engine is not None
        return Session(self.engine)


def new_client(tmp_path: Path, name: str) -> Cache:
    return open_cache(tmp_path / f"{name}.db")


def engine_for(cache: Cache, server: LiveServer, user: str, **kw: Any) -> SyncEngine:
    kw.setdefault("client", httpx.AsyncClient(timeout=httpx.Timeout(10.0)))
    return SyncEngine(cache, server.url, token_provider=PasswordAuth(user, PASSWORD), **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
