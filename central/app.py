"""The StoreDesk central API (FastAPI): sign-in, push, pull, snapshot, verify, health.

Every endpoint except ``/v1/health`` and ``/v1/auth/login`` needs ``Authorization: Bearer``.
Scope is enforced here for every read and write (see :mod:`central.scope`); asking for a
store outside your scope is answered with 403 and changes nothing. Endpoint functions are
plain ``def`` so FastAPI runs them on its thread pool, never blocking the event loop with
database work. The server keeps no state between requests: the client's
``last_mutation_id``, the change sequence and the tokens all live in the database, so any
number of processes can serve one database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import (
    Engine,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import NullType

from central import auth, changelog
from central.db import init_central_schema, make_central_engine, session_factory
from central.jobs import ProposalTimer, generate_now
from central.models import ChangeLog, MutationResult, SyncClient
from central.scope import is_admin, row_filter, scope_keys, unrestricted, visible, walk_pk
from core import mutations
from core.models import PromotionProposal, Store, User
from core.mutations import Actor, Conflict, Rejected, ScopeDenied
from sync.protocol import (
    MAX_PAGE_ROWS,
    MAX_PUSH_BYTES,
    MIN_PROTOCOL_VERSION,
    PAGE_MEDIA_TYPE,
    PAGE_TABLE,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    SYNCED_TABLE_NAMES,
    GapError,
    Health,
    LoginRequest,
    LoginResponse,
    MutationIn,
    MutationOutcome,
    PullResponse,
    PushRequest,
    PushResponse,
    RowsRequest,
    RowsResponse,
    SnapshotPage,
    SnapshotPageInfo,
    SnapshotStart,
    SnapshotTableInfo,
    TableSum,
    UserInfo,
    VerifyResponse,
    checksum_form,
    encode_page,
    from_wire,
    page_connection,
    page_from_rows,
    pk_columns,
    row_checksum_terms,
    table,
    table_checksum,
    to_wire,
    wire_columns,
)

log = logging.getLogger("storedesk.central")

DEFAULT_PULL_LIMIT = 2000
DEFAULT_SNAPSHOT_LIMIT = 20_000


@dataclass(frozen=True)
class Principal:
    user: UserInfo
    actor: Actor


def _json(payload: Any, status: int = 200) -> Response:
    # ASCII escapes: the C encoder's fastest path (snapshot pages are mostly numbers).
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(content=body, status_code=status, media_type="application/json")


def _user_info(user: User, actor: Actor) -> UserInfo:
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        store_ids=sorted(actor.store_ids),
        region_ids=sorted(actor.region_ids),
    )


def _qi(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _insert_ignore(session: Session, model: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


class _Abort(Exception):
    def __init__(self, outcome: MutationOutcome) -> None:
        self.outcome = outcome


class _Gap(Exception):
    def __init__(self, expected: int) -> None:
        self.expected = expected


def _failure(mid: int, e: Exception) -> MutationOutcome:
    if isinstance(e, Conflict):
        return MutationOutcome(
            id=mid,
            status="conflict",
            reason_code="conflict",
            message=e.message,
            entity=e.entity,
            entity_id=str(e.entity_id),
            theirs=json.loads(json.dumps(e.theirs, default=to_wire)),
        )
    if isinstance(e, ScopeDenied):
        return MutationOutcome(
            id=mid, status="rejected", reason_code="forbidden", message=e.message
        )
    if isinstance(e, Rejected):
        return MutationOutcome(
            id=mid, status="rejected", reason_code=e.reason_code, message=e.message
        )
    return MutationOutcome(
        id=mid,
        status="rejected",
        reason_code="invalid_mutation",
        message=f"{type(e).__name__}: {e}"[:500],
    )


def principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The signed-in user and their resolved scope, from the bearer token."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            401, "sign in first", headers={"WWW-Authenticate": 'Bearer realm="storedesk"'}
        )
    token = authorization.split(" ", 1)[1].strip()
    with factory() as s:
        user = auth.user_for_token(s, token)
        if user is None:
            raise HTTPException(
                401,
                "your session has expired: sign in again",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        actor = mutations.actor_for_user(s, user)
        return Principal(_user_info(user, actor), actor)


Auth = Annotated[Principal, Depends(principal)]
StoreFilter = Annotated[list[int] | None, Query(alias="store_id")]
#: The client's protocol (the middleware has refused unsupported ones); none: the latest.
ProtocolVersion = Annotated[str | None, Header(alias=PROTOCOL_HEADER)]


def _checksum_form(protocol: str | None) -> int:
    return checksum_form(int(protocol) if protocol and protocol.isdigit() else PROTOCOL_VERSION)


class _Abandoned(Exception):
    """A background checksum job whose result nobody will take any more."""


def _scope_sums(
    factory: sessionmaker[Session],
    is_sqlite: bool,
    actor: Actor,
    form: int,
    stop: threading.Event | None = None,
) -> tuple[int, dict[str, TableSum]]:
    """(head, per-table counts and checksums of ``actor``'s scope), in one read snapshot.

    ``form``: how rows are checksummed (:func:`sync.protocol.row_checksum_terms`).
    ``stop``: set when the result is no longer wanted; checked before each table
    (raises :class:`_Abandoned`).
    """
    sums: dict[str, TableSum] = {}
    with factory() as s, s.begin():
        if not is_sqlite:  # one snapshot for the head and every table
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        head, _floor = changelog.head_and_floor(s)
        for name in SYNCED_TABLE_NAMES:
            if stop is not None and stop.is_set():
                raise _Abandoned(name)
            tbl = table(name)
            cols = wire_columns(tbl)
            if is_sqlite:
                where = row_filter(name, actor).compile(
                    dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True}
                )
                raw = s.connection().connection.driver_connection
                rows = raw.execute(  # type: ignore[union-attr]
                    f"SELECT {', '.join(_qi(c) for c in cols)} FROM {_qi(name)} WHERE ({where})"
                )
            else:
                q = select(*[type_coerce(tbl.c[c], NullType()).label(c) for c in cols]).where(
                    row_filter(name, actor, tbl)
                )
                result = s.execute(q.execution_options(yield_per=20_000))
                rows = (tuple(to_wire(v) for v in r) for r in result)
            n, crc = row_checksum_terms(rows, form)
            sums[name] = TableSum(count=n, checksum=table_checksum(n, crc))
    return head, sums


@dataclass
class _SumsJob:
    future: Future[tuple[int, dict[str, TableSum]]]
    stop: threading.Event
    user_id: int


class _SumsCache:
    """Scope checksums computed in the background from a snapshot start, for its verify.

    :meth:`prefetch` (at ``/v1/sync/snapshot/start``) queues the scope's sums at the
    current head for one worker thread, which computes them while the client downloads
    the pages. The first verify of that scope at that same head takes them (each result
    is used once); any other verify computes its sums then, as it always did. Nothing is
    kept beyond that one use, so a write that bypassed the change log (the head did not
    move) is still seen by the next verify.

    A verify never waits behind other clients' jobs: if its own job has not started yet
    (other scopes' jobs queued before it), the job is cancelled and the verify computes
    its sums on its own request thread at once; a job already running is waited for.
    Each user keeps at most :attr:`PER_USER` jobs (a newer snapshot start drops their
    oldest) and the process :attr:`KEEP`. A dropped job is cancelled if queued and stops
    before its next table if running, so the work for a verify that never comes here —
    behind a load balancer, it may reach another process, which computes its own sums —
    is bounded by those limits.
    """

    KEEP = 16
    PER_USER = 2

    def __init__(self, compute: Any) -> None:
        self._compute = compute  # (actor, form, stop: threading.Event | None) -> sums
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scope-sums")
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], _SumsJob] = {}

    @staticmethod
    def _key(actor: Actor, form: int, head: int) -> tuple[Any, ...]:
        return (actor.user_id, actor.role, actor.store_ids, actor.region_ids, form, head)

    def _drop(self, key: tuple[Any, ...]) -> None:
        job = self._entries.pop(key)
        job.stop.set()
        job.future.cancel()

    def prefetch(self, actor: Actor, form: int, head: int) -> None:
        key = self._key(actor, form, head)
        with self._lock:
            if key in self._entries:
                return
            stop = threading.Event()
            try:
                fut = self._pool.submit(self._compute, actor, form, stop)
            except RuntimeError:  # shutting down
                return
            self._entries[key] = _SumsJob(fut, stop, actor.user_id)
            mine = [k for k, job in self._entries.items() if job.user_id == actor.user_id]
            for old in mine[: -self.PER_USER]:  # snapshots restarted before their verify
                self._drop(old)
            while len(self._entries) > self.KEEP:  # snapshots abandoned before their verify
                self._drop(next(iter(self._entries)))

    def get(self, actor: Actor, form: int, head: int) -> tuple[int, dict[str, TableSum]]:
        with self._lock:
            job = self._entries.pop(self._key(actor, form, head), None)
        if job is not None and not job.future.cancel():  # running or done: take it
            try:
                seq, tables = job.future.result()
                if seq == head:
                    return seq, tables
            except Exception:
                log.exception("precomputed checksums failed; computing them again")
        return self._compute(actor, form, None)

    def close(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._drop(key)
        self._pool.shutdown(wait=False, cancel_futures=True)


def snapshot_page_sql(
    dialect: Any,
    name: str,
    actor: Actor,
    cols: list[str],
    pkc: list[str],
    after: bool,
    walk: bool,
) -> str:
    """A snapshot page as plain SQLite SQL: parameters are the ``after`` key (when
    ``after``), then the row limit; scope ids are integers, rendered inline.

    ``walk``: the scope filter in its :func:`central.scope.row_filter` ``walk`` form.
    """
    tbl = table(name)
    # compiled inside a SELECT from the table, so a correlated EXISTS (walk) refers to it
    stmt = (
        select(literal_column("1")).select_from(tbl).where(row_filter(name, actor, tbl, walk=walk))
    )
    where = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    where = where.split("\nWHERE ", 1)[1]
    # parenthesised: a scope filter with OR (region OR store) must not swallow the
    # keyset bound appended with AND
    sql = f"SELECT {', '.join(_qi(c) for c in cols)} FROM {_qi(name)} WHERE ({where})"
    if after:
        sql += f" AND ({', '.join(map(_qi, pkc))}) > ({', '.join('?' * len(pkc))})"
    return sql + f" ORDER BY {', '.join(map(_qi, pkc))} LIMIT ?"


class _PagePlans:
    """Whether a scoped table's snapshot pages walk its primary key (:func:`walk_pk`).

    Decided from the scope's row count and the table's, each counted once per snapshot
    token (``snapshot/start`` hands in the scope counts it computes anyway) and kept for
    a few snapshots; a page that finds none (a restarted server) counts them itself. The
    counts only choose a query plan: either plan returns the same rows in the same order.
    """

    KEEP = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[Any, ...], int] = OrderedDict()

    @staticmethod
    def _scope(actor: Actor, token: int, name: str) -> tuple[Any, ...]:
        return ("scope", actor.user_id, actor.role, actor.store_ids, actor.region_ids, token, name)

    def _put(self, key: tuple[Any, ...], n: int) -> None:
        with self._lock:
            self._counts[key] = n
            self._counts.move_to_end(key)
            while len(self._counts) > self.KEEP:
                self._counts.popitem(last=False)

    def _count(self, key: tuple[Any, ...], compute: Any) -> int:
        with self._lock:
            n = self._counts.get(key)
        if n is None:
            n = int(compute() or 0)
            self._put(key, n)
        return n

    def remember(self, actor: Actor, token: int, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            if not unrestricted(name, actor):
                self._put(self._scope(actor, token, name), n)

    def walk(self, s: Session, name: str, actor: Actor, token: int, limit: int) -> bool:
        if unrestricted(name, actor):
            return False  # no filter: the plain query already walks the key
        tbl = table(name)
        in_scope = self._count(
            self._scope(actor, token, name),
            lambda: s.scalar(
                select(func.count()).select_from(tbl).where(row_filter(name, actor, tbl))
            ),
        )
        if in_scope <= limit:
            return False
        total = self._count(
            ("table", token, name), lambda: s.scalar(select(func.count()).select_from(tbl))
        )
        return walk_pk(in_scope, total, limit)


def _python_type(coltype: Any) -> type | None:
    try:
        return coltype.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


def _key_values(name: str, tbl: Any, pkc: list[str], key: list[Any]) -> list[Any]:
    """A wire key of ``name`` as the values its key columns bind; 422 for one they cannot hold."""
    if len(key) != len(pkc):
        raise HTTPException(422, f"a key of {name} has {len(pkc)} values ({', '.join(pkc)})")
    values = []
    for v, c in zip(key, pkc, strict=True):
        coltype = tbl.c[c].type
        try:
            value = from_wire(v, coltype)
        except (ValueError, TypeError) as e:
            raise HTTPException(422, f"key {key!r} of {name}: {c} is not valid ({e})") from None
        py = _python_type(coltype)
        if value is None or (
            py in (int, str) and (not isinstance(value, py) or isinstance(value, bool))
        ):
            kind = py.__name__ if py else "value"
            raise HTTPException(422, f"key {key!r} of {name}: {c} must be a {kind}")
        values.append(value)
    return values


def create_app(
    db: str | Engine,
    *,
    token_ttl: dt.timedelta = auth.TOKEN_TTL,
    init_schema: bool = True,
    retention: dt.timedelta = dt.timedelta(days=30),
    generate_every: dt.timedelta | None = None,
) -> FastAPI:
    """The ASGI app over ``db`` (URL, SQLite path or an Engine).

    With ``generate_every`` the promotion rule engine runs for all stores on that period
    while the app is up (:class:`central.jobs.ProposalTimer`; ``app.state.proposal_timer``).

    Change-log rows older than ``retention`` are pruned now and then (about one push in
    a hundred does it, so no process needs a timer); a desktop whose cursor is older gets
    410 and snapshots again after pushing its outbox.
    """
    engine = db if isinstance(db, Engine) else make_central_engine(db)
    if init_schema:
        init_central_schema(engine)
    factory: sessionmaker[Session] = session_factory(engine)
    mutations.load_all()
    is_sqlite = engine.dialect.name == "sqlite"

    timer = ProposalTimer(factory, generate_every) if generate_every else None
    sums = _SumsCache(lambda actor, form, stop: _scope_sums(factory, is_sqlite, actor, form, stop))
    plans = _PagePlans()
    # A file database: snapshot pages are built by SQLite itself from the file.
    db_file = engine.url.database if is_sqlite else None
    if db_file in (None, "", ":memory:") or "mode=memory" in str(engine.url):
        db_file = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if timer is not None:
            timer.start()
        try:
            yield
        finally:
            sums.close()
            if timer is not None:
                await timer.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="StoreDesk central API",
        version=str(PROTOCOL_VERSION),
        description="Sync (push/pull/snapshot) for StoreDesk desktops. "
        f"Clients send `{PROTOCOL_HEADER}: {PROTOCOL_VERSION}`.",
    )
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.proposal_timer = timer
    app.state.scope_sums = sums

    @app.middleware("http")
    async def protocol_and_log(request: Request, call_next: Any) -> Response:
        t0 = time.perf_counter()
        raw = request.headers.get(PROTOCOL_HEADER)
        response: Response
        length = request.headers.get("content-length")
        if raw is not None and (
            not raw.isdigit() or not MIN_PROTOCOL_VERSION <= int(raw) <= PROTOCOL_VERSION
        ):
            newer = raw.isdigit() and int(raw) > PROTOCOL_VERSION
            response = JSONResponse(
                status_code=426,
                content={
                    "detail": (
                        "This server is older than your StoreDesk; ask your administrator to "
                        "update the central server."
                        if newer
                        else "Your StoreDesk is too old for this server: please update StoreDesk."
                    ),
                    "protocol": PROTOCOL_VERSION,
                    "min_protocol": MIN_PROTOCOL_VERSION,
                },
            )
        elif request.url.path == "/v1/sync/push" and (
            length is None or not length.isdigit() or int(length) > MAX_PUSH_BYTES
        ):
            # The body is read whole before validation: refuse a huge one unread.
            response = JSONResponse(
                status_code=411 if length is None else 413,
                content={"detail": f"a push must declare its length, at most {MAX_PUSH_BYTES}"},
            )
        else:
            response = await call_next(request)
        response.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION)
        # Path and status only: never headers (tokens) nor bodies (passwords).
        log.info(
            "%s %s -> %d (%.1f ms)",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - t0) * 1000,
        )
        return response

    def narrowed(p: Principal, store_ids: list[int] | None) -> Actor:
        """The actor limited to ``store_ids`` (403 if any is outside the user's scope)."""
        if not store_ids:
            return p.actor
        outside = [s for s in store_ids if not p.actor.can_store(s)]
        if outside:
            raise HTTPException(403, f"store {outside[0]} is outside your scope")
        return replace(
            p.actor, role="narrowed", store_ids=frozenset(store_ids), region_ids=frozenset()
        )

    # ----------------------------------------------------------------------- public

    @app.get("/v1/health", response_model=Health, tags=["meta"])
    def health() -> Health:
        return Health(
            status="ok",
            protocol=PROTOCOL_VERSION,
            min_protocol=MIN_PROTOCOL_VERSION,
            server_time=dt.datetime.now(dt.UTC),
        )

    @app.post("/v1/auth/login", response_model=LoginResponse, tags=["auth"])
    def login(body: LoginRequest) -> LoginResponse:
        with factory() as s, s.begin():
            user = auth.authenticate(s, body.username, body.password)
            if user is None:
                raise HTTPException(401, "wrong user name or password")
            actor = mutations.actor_for_user(s, user)
            info = _user_info(user, actor)
        with factory() as s, s.begin():  # a write-only transaction (no read-then-write race)
            token, expires = auth.issue_token(s, user, ttl=token_ttl)
        return LoginResponse(token=token, expires_at=expires, user=info)

    @app.get("/v1/me", response_model=UserInfo, tags=["auth"])
    def me(p: Auth) -> UserInfo:
        return p.user

    # ----------------------------------------------------------------------- push

    def _lock_client(s: Session, client_id: str, now: dt.datetime) -> int:
        # First statement of the transaction and a write: takes the row lock (PostgreSQL)
        # or the database write lock (SQLite) before anything is read.
        return int(
            s.execute(
                update(SyncClient)
                .where(SyncClient.client_id == client_id)
                .values(last_seen_at=now)
                .returning(SyncClient.last_mutation_id)
            ).scalar_one()
        )

    def _record(
        s: Session, client_id: str, m: MutationIn, o: MutationOutcome, now: dt.datetime
    ) -> None:
        s.execute(
            update(SyncClient)
            .where(SyncClient.client_id == client_id)
            .values(last_mutation_id=m.id)
        )
        payload = o.model_dump(exclude={"id", "status", "replayed"}, exclude_none=True)
        s.add(
            MutationResult(
                client_id=client_id,
                mutation_id=m.id,
                name=m.name,
                status=o.status,
                payload=json.dumps(payload, ensure_ascii=False),
                applied_at=now,
            )
        )

    def _replayed(s: Session, client_id: str, mid: int) -> MutationOutcome:
        r = s.get(MutationResult, (client_id, mid))
        if r is None:
            return MutationOutcome(id=mid, status="applied", replayed=True)
        return MutationOutcome(id=mid, status=r.status, replayed=True, **json.loads(r.payload))

    def _apply_one(client_id: str, user_id: int, m: MutationIn) -> MutationOutcome:
        now = dt.datetime.now(dt.UTC)
        try:
            with factory() as s, s.begin():
                last = _lock_client(s, client_id, now)
                if m.id <= last:
                    return _replayed(s, client_id, m.id)
                if m.id != last + 1:
                    raise _Gap(last + 1)
                user = s.get(User, user_id)
                assert user is not None
                actor = mutations.actor_for_user(s, user)
                try:
                    spec = mutations.get(m.name)
                    spec.handler(s, dict(m.args), actor, m.base_version, now)
                    s.flush()
                except OperationalError:
                    raise  # transient (lock timeout, serialisation failure): retry later
                except (mutations.MutationError, IntegrityError, DBAPIError, Exception) as e:
                    raise _Abort(_failure(m.id, e)) from e
                outcome = MutationOutcome(id=m.id, status="applied")
                _record(s, client_id, m, outcome, now)
                return outcome
        except _Abort as abort:
            # The handler's transaction is rolled back entirely; record the verdict alone.
            with factory() as s, s.begin():
                last = _lock_client(s, client_id, now)
                if m.id <= last:  # a concurrent delivery recorded it meanwhile
                    return _replayed(s, client_id, m.id)
                _record(s, client_id, m, abort.outcome, now)
                log.info(
                    "mutation %s #%d %s: %s",
                    m.name,
                    m.id,
                    abort.outcome.status,
                    abort.outcome.reason_code,
                )
                return abort.outcome

    @app.post(
        "/v1/sync/push",
        response_model=PushResponse,
        responses={409: {"model": GapError}},
        tags=["sync"],
    )
    def push(body: PushRequest, p: Auth) -> Any:
        ids = [m.id for m in body.mutations]
        if ids and ids != list(range(ids[0], ids[0] + len(ids))):
            raise HTTPException(422, "mutation ids in one push must be consecutive")
        now = dt.datetime.now(dt.UTC)
        with factory() as s, s.begin():
            # Write first (insert-if-absent), so two first pushes of one client never race
            # between a read and a write.
            s.execute(
                _insert_ignore(s, SyncClient).values(
                    client_id=body.client_id,
                    user_id=p.user.id,
                    # A client never seen starts where its outbox starts (ids are never
                    # reused, so a cache that changed user or server keeps counting).
                    last_mutation_id=ids[0] - 1 if ids else 0,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            client_user = s.scalar(
                select(SyncClient.user_id).where(SyncClient.client_id == body.client_id)
            )
        if client_user != p.user.id:
            raise HTTPException(403, "this client id belongs to another user")
        results: list[MutationOutcome] = []
        for m in body.mutations:
            try:
                results.append(_apply_one(body.client_id, p.user.id, m))
            except _Gap as gap:
                return JSONResponse(
                    status_code=409,
                    content=GapError(
                        expected=gap.expected,
                        message=f"mutation {m.id} arrived before {gap.expected}",
                    ).model_dump(),
                )
            except OperationalError as e:
                log.warning("push: transient database error: %s", type(e).__name__)
                return JSONResponse(
                    status_code=503,
                    content={"detail": "the server is busy; try again", "done": len(results)},
                    headers={"Retry-After": "2"},
                )
        with factory() as s:
            last = s.scalar(
                select(SyncClient.last_mutation_id).where(SyncClient.client_id == body.client_id)
            )
        if random.random() < 0.01:
            with factory() as s, s.begin():
                changelog.prune_older_than(s, now - retention)
        return PushResponse(last_mutation_id=int(last or 0), results=results)

    # ----------------------------------------------------------------------- pull

    @app.get(
        "/v1/sync/pull",
        response_model=PullResponse,
        responses={410: {"description": "cursor too old: push, then snapshot again"}},
        tags=["sync"],
    )
    def pull(
        p: Auth,
        cursor: Annotated[int, Query(ge=0)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = DEFAULT_PULL_LIMIT,
        store_ids: StoreFilter = None,
    ) -> Response:
        actor = narrowed(p, store_ids)
        with factory() as s, s.begin():
            head, floor = changelog.head_and_floor(s)  # read first: see changelog docstring
            if cursor < floor or cursor > head:
                raise HTTPException(410, "cursor expired: snapshot again")
            q = (
                select(
                    ChangeLog.seq, ChangeLog.table_name, ChangeLog.op, ChangeLog.pk, ChangeLog.row
                )
                .where(ChangeLog.seq > cursor, ChangeLog.seq <= head)
                .order_by(ChangeLog.seq)
                .limit(limit)
            )
            if not is_admin(actor):
                conds: list[Any] = [ChangeLog.ref.is_(True), ChangeLog.user_id == actor.user_id]
                if actor.store_ids:
                    conds.append(ChangeLog.store_id.in_(sorted(actor.store_ids)))
                if actor.region_ids:
                    conds.append(ChangeLog.region_id.in_(sorted(actor.region_ids)))
                q = q.where(or_(*conds) if conds else false())
            rows = s.execute(q).all()
        changes = []
        tables: dict[str, list[str]] = {}
        for seq, name, op, pk, row in rows:
            if name not in tables:
                tables[name] = wire_columns(table(name))
            changes.append(
                {
                    "seq": seq,
                    "table": name,
                    "op": op,
                    "pk": json.loads(pk),
                    "row": None if row is None else json.loads(row),
                }
            )
        full = len(rows) == limit
        next_cursor = rows[-1][0] if full else head
        return _json(
            {
                "cursor": cursor,
                "next_cursor": next_cursor,
                "has_more": full and next_cursor < head,
                "columns": tables,
                "changes": changes,
            }
        )

    # ----------------------------------------------------------------------- snapshot

    @app.get("/v1/sync/snapshot/start", response_model=SnapshotStart, tags=["sync"])
    def snapshot_start(
        p: Auth, store_ids: StoreFilter = None, protocol: ProtocolVersion = None
    ) -> SnapshotStart:
        actor = narrowed(p, store_ids)
        infos = []
        with factory() as s, s.begin():
            head, _floor = changelog.head_and_floor(s)
            for n in SYNCED_TABLE_NAMES:
                tbl = table(n)
                count = s.scalar(
                    select(func.count()).select_from(tbl).where(row_filter(n, actor, tbl))
                )
                infos.append(
                    SnapshotTableInfo(
                        name=n, columns=wire_columns(tbl), pk=pk_columns(tbl), count=int(count or 0)
                    )
                )
        # The verify that ends this snapshot needs the scope's checksums at this head:
        # computed now, in the background, while the client downloads the pages.
        sums.prefetch(actor, _checksum_form(protocol), head)
        if is_sqlite:
            plans.remember(actor, head, {i.name: i.count for i in infos})
        return SnapshotStart(token=head, tables=infos)

    def _raw_select(name: str, actor: Actor, walk: bool) -> Any:
        tbl = table(name)
        cols = wire_columns(tbl)
        return select(*[type_coerce(tbl.c[c], NullType()).label(c) for c in cols]).where(
            row_filter(name, actor, tbl, walk=walk)
        )

    def _sqlite_page(
        s: Session,
        name: str,
        actor: Actor,
        cols: list[str],
        pkc: list[str],
        key: list[Any] | None,
        limit: int,
        walk: bool,
    ) -> list[Any]:
        """SQLite fast path: its stored form *is* the wire form, so rows go out untouched.

        The driver's tuples are serialised as they come (no Row objects, no per-value
        conversion); the keyset bound is the wire key itself, compared with stored text.
        """
        sql = snapshot_page_sql(engine.dialect, name, actor, cols, pkc, key is not None, walk)
        raw = s.connection().connection.driver_connection
        params = [*(key or []), limit]
        return raw.execute(sql, params).fetchall()  # type: ignore[union-attr]

    def _sqlite_page_db(
        name: str,
        actor: Actor,
        cols: list[str],
        pkc: list[str],
        key: list[Any] | None,
        limit: int,
        walk: bool,
    ) -> sqlite3.Connection:
        """The page built by SQLite from the database file: one CREATE TABLE … AS SELECT.

        The stored form is the wire form, so values are copied untouched and never pass
        through Python. The scope filter's unqualified table names resolve to the attached
        file (the page database holds no synced table).
        """
        con = page_connection()
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("ATTACH DATABASE ? AS src", (db_file,))
        sql = snapshot_page_sql(
            engine.dialect, name, actor, cols, pkc, key is not None, walk
        ).replace(f" FROM {_qi(name)} WHERE ", f" FROM src.{_qi(name)} WHERE ", 1)
        params = [*(key or []), limit]
        con.execute(f"CREATE TABLE main.{PAGE_TABLE} AS {sql}", params)
        con.execute("DETACH DATABASE src")
        return con

    def _page_response(
        token: int,
        name: str,
        cols: list[str],
        pkc: list[str],
        page_db: sqlite3.Connection,
        limit: int,
    ) -> Response:
        try:
            count = page_db.execute(f"SELECT count(*) FROM {PAGE_TABLE}").fetchone()[0]
            next_after = None
            if count == limit:
                last = page_db.execute(
                    f"SELECT {', '.join(map(_qi, pkc))} FROM {PAGE_TABLE} "
                    "ORDER BY rowid DESC LIMIT 1"
                ).fetchone()
                next_after = list(last)
            info = SnapshotPageInfo(
                token=token, table=name, columns=cols, count=count, next_after=next_after
            )
            body = encode_page(info, page_db)
        finally:
            page_db.close()
        return Response(content=body, media_type=PAGE_MEDIA_TYPE)

    @app.get(
        "/v1/sync/snapshot",
        response_model=SnapshotPage,
        responses={410: {"description": "snapshot token too old: start again"}},
        tags=["sync"],
    )
    def snapshot_page(
        p: Auth,
        token: Annotated[int, Query(ge=0)],
        table_name: Annotated[str, Query(alias="table")],
        after: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = DEFAULT_SNAPSHOT_LIMIT,
        store_ids: StoreFilter = None,
        page_format: Annotated[Literal["json", "sqlite"], Query(alias="format")] = "json",
    ) -> Response:
        actor = narrowed(p, store_ids)
        if table_name not in SYNCED_TABLE_NAMES:
            raise HTTPException(404, f"no synced table {table_name!r}")
        tbl = table(table_name)
        cols = wire_columns(tbl)
        pkc = pk_columns(tbl)
        key: list[Any] | None = None
        bound: list[Any] = []
        if after is not None:
            try:
                key = json.loads(after)
                if not isinstance(key, list) or len(key) != len(pkc):
                    raise ValueError
                bound = [
                    literal(from_wire(v, tbl.c[c].type), tbl.c[c].type)
                    for v, c in zip(key, pkc, strict=True)
                ]
            except (ValueError, TypeError):
                raise HTTPException(422, "bad 'after' key") from None
        with factory() as s, s.begin():
            _head, floor = changelog.head_and_floor(s)
            if token < floor:
                raise HTTPException(410, "snapshot expired: start again")
            # SQLite: a scope of many pages walks the key (one pass over the table for all
            # its pages); a small one reads its rows by the scope's index. Same rows either
            # way. PostgreSQL's planner weighs the LIMIT with real statistics and already
            # picks the key walk for a large scope (the walk form would hide its estimates).
            walk = is_sqlite and plans.walk(s, table_name, actor, token, limit)
            if page_format == "sqlite" and db_file is not None:
                page_db = _sqlite_page_db(table_name, actor, cols, pkc, key, limit, walk)
            elif page_format == "json" and is_sqlite:
                rows = _sqlite_page(s, table_name, actor, cols, pkc, key, limit, walk)
            else:
                q = _raw_select(table_name, actor, walk)
                if key is not None:
                    q = q.where(tuple_(*[tbl.c[c] for c in pkc]) > tuple_(*bound))
                q = q.order_by(*[tbl.c[c] for c in pkc]).limit(limit)
                if page_format == "sqlite":
                    page_db = page_from_rows(
                        cols, ([to_wire(v) for v in r] for r in s.execute(q).all())
                    )
                else:
                    rows = [[to_wire(v) for v in r] for r in s.execute(q).all()]
        if page_format == "sqlite":
            return _page_response(token, table_name, cols, pkc, page_db, limit)
        idx = [cols.index(c) for c in pkc]
        next_after = [rows[-1][i] for i in idx] if len(rows) == limit else None
        return _json(
            {
                "token": token,
                "table": table_name,
                "columns": cols,
                "rows": rows,
                "next_after": next_after,
            }
        )

    @app.get("/v1/sync/verify", response_model=VerifyResponse, tags=["sync"])
    def verify(
        p: Auth, store_ids: StoreFilter = None, protocol: ProtocolVersion = None
    ) -> VerifyResponse:
        """Counts and checksums of everything in scope, with the sequence they reflect.

        The verify that ends an initial sync finds them computed already: the snapshot
        start began computing them in the background (:class:`_SumsCache`).
        """
        actor = narrowed(p, store_ids)
        with factory() as s:
            head, _floor = changelog.head_and_floor(s)
        seq, tables = sums.get(actor, _checksum_form(protocol), head)
        return VerifyResponse(seq=seq, tables=tables)

    @app.post("/v1/sync/rows", response_model=RowsResponse, tags=["sync"])
    def rows(body: RowsRequest, p: Auth) -> RowsResponse:
        """Current server rows by key (a client repairs its optimistic rows after a refusal).

        A row outside the caller's scope is answered as ``missing``, like a key nobody has:
        a refusal for it would tell which keys exist elsewhere (with ``gps_points`` keys,
        whether another store's rep had a fix at an instant). Every key is checked before
        any is looked up; one that its columns cannot hold is a 422.
        """
        if body.table not in SYNCED_TABLE_NAMES:
            raise HTTPException(404, f"no synced table {body.table!r}")
        tbl = table(body.table)
        cols = wire_columns(tbl)
        pkc = pk_columns(tbl)
        keys = [_key_values(body.table, tbl, pkc, key) for key in body.pks]
        found: list[list[Any]] = []
        missing: list[list[Any]] = []
        with factory() as s, s.begin():
            for key, values in zip(body.pks, keys, strict=True):
                cond = [tbl.c[c] == v for v, c in zip(values, pkc, strict=True)]
                row = s.execute(select(tbl).where(*cond)).mappings().first()
                if row is None or not visible(scope_keys(s, body.table, dict(row)), p.actor):
                    missing.append(key)
                    continue
                found.append([to_wire(row[c]) for c in cols])
        return RowsResponse(table=body.table, columns=cols, rows=found, missing=missing)

    # ----------------------------------------------------------------------- business reads

    @app.post("/v1/promotions/generate", tags=["promotions"])
    def generate_promotions(p: Auth, store_ids: StoreFilter = None) -> dict[str, Any]:
        """Run the promotion rule engine now for the caller's stores (or ``store_id`` ones).

        New proposals are ordinary changes: they reach the desktops through pull. The
        answer says how many were added and when each store's queue was last generated.
        """
        actor = narrowed(p, store_ids)
        with factory() as s:
            ids = sorted(
                actor.store_ids if not is_admin(actor) else set(s.scalars(select(Store.id)).all())
            )
        if not ids:
            raise HTTPException(403, "you have no stores")
        added = generate_now(factory, ids, dt.datetime.now(dt.UTC))
        with factory() as s:
            last = dict(
                s.execute(
                    select(PromotionProposal.store_id, func.max(PromotionProposal.generated_at))
                    .where(PromotionProposal.store_id.in_(ids))
                    .group_by(PromotionProposal.store_id)
                ).all()
            )
        return {
            "added": added,
            "generated_at": {str(k): v.isoformat() for k, v in last.items() if v is not None},
        }

    @app.get("/v1/stores/{store_id}", tags=["stores"])
    def store_info(store_id: int, p: Auth) -> dict[str, Any]:
        """One store, with when its promotion proposals were last generated."""
        if not p.actor.can_store(store_id):
            raise HTTPException(403, f"store {store_id} is outside your scope")
        with factory() as s:
            st = s.get(Store, store_id)
            if st is None:
                raise HTTPException(404, "no such store")
            generated = s.scalar(
                select(func.max(PromotionProposal.generated_at)).where(
                    PromotionProposal.store_id == store_id
                )
            )
            return {
                "id": st.id,
                "code": st.code,
                "name": st.name,
                "region_id": st.region_id,
                "proposals_generated_at": generated.isoformat() if generated else None,
            }

    return app
