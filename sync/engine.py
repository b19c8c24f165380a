"""The client sync engine: push the outbox, then pull (or snapshot), over httpx, no Qt.

Usage (desktop shell, CLI and tests alike)::

    engine = SyncEngine(cache, "https://central.example", token_provider=PasswordAuth(u, p),
                        run_db=my_db_worker_submit)          # default: asyncio.to_thread
    result = await engine.sync_once(TaskState(on_progress))  # push, then pull/snapshot
    asyncio.create_task(engine.run_forever())                # timer + poke() + reconnect
    engine.poke()                                            # after a local edit
    engine.status                                            # EngineStatus for the status bar

Every database step is a plain synchronous function of :mod:`sync.local` handed to
``run_db(fn, *args)``; the coroutine itself only awaits the network. Every reply is read
with a size cap and validated with the pydantic models of :mod:`sync.protocol` before
anything is written: a malformed or hostile reply raises :class:`ProtocolError` and the
step applies nothing. Cancellation (``TaskState.cancel()`` or :meth:`cancel`) is checked
between pages; each page is its own transaction, so a cancelled or killed sync resumes.

Retry policy of :meth:`run_forever`: after a failure the next attempt waits
``min(cap, base * 2**failures)`` scaled by a random factor in [0.5, 1.5] (exponential
backoff with jitter, so a fleet of desktops does not reconnect in lock-step after an
outage); a :meth:`poke` does not shorten a backoff caused by a server error, but a
successful health probe (the network is back) triggers a sync at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from core.cache import Cache
from core.i18n import _
from core.mutations import Actor
from core.tasks import Cancelled, TaskState
from core.trajectory.gps_import import MUTATION as GPS_IMPORT
from core.trajectory.gps_import import gps_point_keys
from sync import local
from sync.protocol import (
    MAX_PAGE_ROWS,
    MAX_RESPONSE_BYTES,
    MIN_SERVER_PROTOCOL,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    GapError,
    Health,
    LoginRequest,
    LoginResponse,
    MutationIn,
    PullResponse,
    PushRequest,
    PushResponse,
    RowsRequest,
    RowsResponse,
    SnapshotPageInfo,
    SnapshotStart,
    UserInfo,
    VerifyResponse,
    decode_page,
    encode_datetime,
    mutation_protocol,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------- errors


class SyncError(Exception):
    """A sync step failed; ``str(e)`` is a translated sentence for the user."""

    retryable = False


class OfflineError(SyncError):
    retryable = True


class ServerError(SyncError):
    retryable = True


class AuthError(SyncError):
    pass


class UpdateRequired(SyncError):
    pass


class EditsHeld(UpdateRequired):
    """The server speaks an older protocol: everything was synchronised except the edits
    from the first one that protocol does not know (kept in the outbox, in order).

    ``result`` is the sync's result (what was pushed and pulled); ``server_protocol`` the
    protocol the server speaks."""

    def __init__(self, message: str, result: SyncResult, server_protocol: int) -> None:
        super().__init__(message)
        self.result = result
        self.server_protocol = server_protocol


class ProtocolError(SyncError):
    """The server's reply was malformed; nothing from it was applied."""

    retryable = True


class CursorExpired(SyncError):
    pass


class ScopeError(SyncError):
    pass


class VerificationFailed(SyncError):
    pass


# --------------------------------------------------------------------------- auth


class TokenProvider(Protocol):
    async def __call__(self, client: httpx.AsyncClient, base_url: str, refresh: bool) -> str: ...


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self, client: httpx.AsyncClient, base_url: str, refresh: bool) -> str:
        if refresh:
            raise AuthError(_("Your session has expired: sign in again."))
        return self.token


class PasswordAuth:
    """Signs in with a user name and password; keeps the token until it expires."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._token: str | None = None
        self._expires: dt.datetime | None = None
        self.user: UserInfo | None = None

    async def __call__(self, client: httpx.AsyncClient, base_url: str, refresh: bool) -> str:
        now = dt.datetime.now(dt.UTC)
        if self._token and not refresh and self._expires and self._expires > now:
            return self._token
        body = LoginRequest(username=self.username, password=self._password).model_dump()
        resp, _protocol = await _send_negotiated(
            client, "POST", base_url + "/v1/auth/login", json=body
        )
        if resp[0] == 401:
            raise AuthError(_("Wrong user name or password."))
        _raise_for(resp)
        login = _parse(LoginResponse, resp[1])
        self._token, self._expires, self.user = login.token, login.expires_at, login.user
        return login.token


async def current_user(client: httpx.AsyncClient, base_url: str, token: str) -> UserInfo:
    """Who ``token`` signs in (``GET /v1/me``): checks a remembered token at start.

    AuthError when the token is no longer valid; the engine's errors otherwise. Speaks an
    older server's protocol as the engine does (see :func:`_send_negotiated`).
    """
    resp, _protocol = await _send_negotiated(
        client,
        "GET",
        base_url.rstrip("/") + "/v1/me",
        headers={"Authorization": f"Bearer {token}"},
        cap=1 << 20,
    )
    if resp[0] == 401:
        raise AuthError(_("Your session has expired: sign in again."))
    _raise_for(resp)
    return _parse(UserInfo, resp[1])


# --------------------------------------------------------------------------- transport

_HDRS = {PROTOCOL_HEADER: str(PROTOCOL_VERSION), "Accept": "application/json"}


def _headers(protocol: int | None) -> dict[str, str]:
    """Our request headers, naming ``protocol`` (None: this StoreDesk's own)."""
    return _HDRS if protocol is None else {**_HDRS, PROTOCOL_HEADER: str(protocol)}


def _fallback_protocol(resp: tuple[int, bytes], current: int | None) -> int | None:
    """After a 426 from a server older than us that we can still talk to: its protocol.

    ``None`` when the request is not to be retried (another answer, a server too old, one
    newer than us, or the protocol we just spoke).
    """
    if resp[0] != 426:
        return None
    server = _server_protocol(resp[1])
    ours = PROTOCOL_VERSION if current is None else current
    if server is None or not MIN_SERVER_PROTOCOL <= server < PROTOCOL_VERSION or server == ours:
        return None
    return server


async def _send_negotiated(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    protocol: int | None = None,
    headers: dict[str, str] | None = None,
    resend: bool = True,
    **kwargs: Any,
) -> tuple[tuple[int, bytes], int]:
    """:func:`_send` in ``protocol`` (default ours); once more in an older server's protocol
    when it answers 426 naming one we still speak. Returns the answer and the protocol.

    ``resend=False`` (a body built for the protocol it was sent in, e.g. a push that may
    hold mutations the older protocol does not know): not sent again; the 426 is returned
    with the older protocol, for the caller to build the request again in it.
    """
    for _attempt in range(2):
        resp = await _send(
            client, method, url, headers={**_headers(protocol), **(headers or {})}, **kwargs
        )
        older = _fallback_protocol(resp, protocol)
        if older is None:
            break
        log.info("server at %s speaks protocol %d: speaking it", url, older)
        protocol = older
        if not resend:
            break
    return resp, PROTOCOL_VERSION if protocol is None else protocol


async def _send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    params: Any = None,
    json: Any = None,
    content: bytes | None = None,
    cap: int = MAX_RESPONSE_BYTES,
) -> tuple[int, bytes]:
    """One request; the body is read with a size cap. Network trouble -> OfflineError.

    ``content``: a JSON body already encoded (off the event loop), instead of ``json``.
    """
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    try:
        async with client.stream(
            method, url, headers=headers, params=params, json=json, content=content
        ) as r:
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise ProtocolError(_("The server sent a reply that is too large."))
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_bytes():  # decoded: the cap also stops zip bombs
                size += len(chunk)
                if size > cap:
                    raise ProtocolError(_("The server sent a reply that is too large."))
                chunks.append(chunk)
            return r.status_code, b"".join(chunks)
    except httpx.TimeoutException as e:
        raise OfflineError(_("The server did not answer in time.")) from e
    except httpx.TransportError as e:
        raise OfflineError(_("Cannot reach the server: {detail}").format(detail=e)) from e


def _detail(body: bytes) -> str:
    try:
        d = json.loads(body)
        return str(d.get("detail", ""))[:300] if isinstance(d, dict) else ""
    except ValueError:
        return ""


def _server_protocol(body: bytes) -> int | None:
    """The protocol a 426 answer says the server speaks (``None`` if it does not say)."""
    try:
        d = json.loads(body)
    except ValueError:
        return None
    p = d.get("protocol") if isinstance(d, dict) else None
    return p if isinstance(p, int) and not isinstance(p, bool) else None


def _raise_for(resp: tuple[int, bytes]) -> None:
    status, body = resp
    if status < 400:
        return
    if status == 426:
        server = _server_protocol(body)
        if server is not None and server < PROTOCOL_VERSION:
            # A newer desktop (new mutations) against a server not updated yet: nothing
            # was sent, and updating the desktop would not help.
            raise UpdateRequired(
                _(
                    "The server is older than this StoreDesk (protocol {server}, this "
                    "StoreDesk needs {mine}): ask your administrator to update the central "
                    "server. Your edits are kept on this computer."
                ).format(server=server, mine=PROTOCOL_VERSION)
            )
        raise UpdateRequired(
            _(
                "This StoreDesk is too old for the server: please update StoreDesk. ({detail})"
            ).format(detail=_detail(body))
        )
    if status == 401:
        raise AuthError(_("Your session has expired: sign in again."))
    if status == 403:
        raise ScopeError(
            _("The server refused: {detail}").format(detail=_detail(body) or "forbidden")
        )
    if status == 410:
        raise CursorExpired(_("The local data is too old to update; it will be downloaded again."))
    if status >= 500:
        raise ServerError(
            _("The server had a problem (HTTP {status}); will retry.").format(status=status)
        )
    raise SyncError(
        _("The server refused the request (HTTP {status}): {detail}").format(
            status=status, detail=_detail(body)
        )
    )


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))[:80]
        raise ProtocolError(
            _("The server sent an invalid reply ({what}); nothing was changed.").format(
                what=f"{model.__name__}: {where} {first.get('msg', '')}".strip()
            )
        ) from None


# --------------------------------------------------------------------------- results & status


@dataclass
class SyncResult:
    pushed: int = 0
    rejected: int = 0
    conflicts: int = 0
    pulled: int = 0
    #: tables the pull or snapshot wrote rows of (screens refresh on these; see Changes)
    pulled_tables: set[str] = field(default_factory=set)
    snapshot: bool = False
    snapshot_rows: int = 0
    verified: bool | None = None
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)

    #: edits not sent because the server speaks an older protocol (see EditsHeld)
    held: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.snapshot_rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EngineStatus:
    online: bool | None  # None: not tried yet
    running: bool
    pending: int
    conflicts: int
    last_success: dt.datetime | None
    last_error: str


@dataclass(frozen=True)
class SyncEvent:
    """A progress event: ``phase`` is push | snapshot | pull | verify | done | error."""

    phase: str
    fraction: float
    message: str


RunDb = Callable[..., Awaitable[Any]]


async def _to_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


REPAIR_KEYS: dict[str, list[tuple[str, str]]] = {
    "shift.create/1": [("shifts", "id")],
    "shift.update/1": [("shifts", "id")],
    "shift.delete/1": [("shifts", "id")],
    "visit_note.add/1": [("visit_notes", "id")],
    "promotion.decide/1": [
        ("promotion_proposals", "proposal_id"),
        ("promotion_decisions", "decision_id"),
    ],
    "alert.snooze/1": [("alerts", "alert_id")],
}
"""For a refused mutation: which local rows to re-read from the server (table, arg name)."""

#: Outbox JSON per push request. A GPX import queues mutations of about 130 KB each, so a
#: count alone (``push_batch``) could make one request of many megabytes and a server
#: transaction per mutation that outlasts the client's timeout.
PUSH_BYTES = 1_000_000


def _push_request(
    cache: Cache, client_id: str, limit: int, max_bytes: int, protocol: int | None = None
) -> tuple[list[local.OutboxItem], bytes, int]:
    """The next push: its outbox items, the request body (encoded on the DB worker) and,
    when nothing can be sent, how many pending edits wait for a newer server.

    A megabyte of GPS points takes 20-40 ms to encode as JSON; on the event loop (the
    desktop's UI thread) that would be a visible stall. Speaking an older server's
    ``protocol``, the batch ends before the first edit that protocol does not know (edits
    go in order: none after it is sent either).
    """
    items = _outbox_batch(cache, limit, max_bytes)
    held = 0
    if protocol is not None:
        known = [mutation_protocol(i.name) <= protocol for i in items]
        if not all(known):
            items = items[: known.index(False)]
            if not items:
                held = local.read_state(cache).pending
    req = PushRequest(
        client_id=client_id,
        mutations=[
            MutationIn(id=i.mutation_id, name=i.name, args=i.args, base_version=i.base_version)
            for i in items
        ],
    )
    return items, req.model_dump_json().encode(), held


def _outbox_batch(cache: Cache, limit: int, max_bytes: int) -> list[local.OutboxItem]:
    """The next pending mutations, in order, up to ``limit`` of them and ``max_bytes`` of args.

    Runs on the DB worker (the sizes cost a JSON encoding). At least one item is always
    returned, however large, so a big mutation is never stuck.
    """
    items = local.pending_outbox(cache, limit)
    size = 0
    for n, item in enumerate(items):
        size += len(json.dumps(item.args, separators=(",", ":")))
        if n and size > max_bytes:
            return items[:n]
    return items


def _repair_keys(item: local.OutboxItem) -> dict[str, list[list[Any]]]:
    """Keys (wire form) of the local rows a refused mutation may have written."""
    keys: dict[str, list[list[Any]]] = {}
    for tbl, arg in REPAIR_KEYS.get(item.name, []):
        if item.args.get(arg) is not None:
            keys.setdefault(tbl, []).append([item.args[arg]])
    if item.name == GPS_IMPORT:
        keys["gps_points"] = [
            [rep_id, encode_datetime(ts)] for rep_id, ts in gps_point_keys(item.args)
        ]
    return keys


class SyncEngine:
    def __init__(
        self,
        cache: Cache,
        base_url: str,
        *,
        token_provider: TokenProvider,
        client: httpx.AsyncClient | None = None,
        run_db: RunDb | None = None,
        pull_limit: int = 2000,
        snapshot_limit: int = MAX_PAGE_ROWS,
        push_batch: int = 100,
        push_bytes: int = PUSH_BYTES,
        timeout: float = 30.0,
        verify: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.cache = cache
        self.base_url = base_url.rstrip("/")
        self.token_provider = token_provider
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
        self.run_db: RunDb = run_db or _to_thread
        self.pull_limit = min(pull_limit, MAX_PAGE_ROWS)
        self.snapshot_limit = min(snapshot_limit, MAX_PAGE_ROWS)
        self.push_batch = push_batch
        self.push_bytes = push_bytes
        self.verify = verify
        self.max_response_bytes = max_response_bytes
        self.listeners: list[Callable[[SyncEvent], None]] = []
        self.user: UserInfo | None = None
        self._token: str | None = None
        self._poke = asyncio.Event()
        self._stop = False
        self._lock = asyncio.Lock()
        self._state: TaskState | None = None
        self._online: bool | None = None
        self._running = False
        self._last_error = ""
        self._counts = (0, 0, None)
        #: the protocol spoken with the server: None is ours; an older server's after it
        #: answered 426 naming it (tried again from ours at each sync)
        self._protocol: int | None = None
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        # One thread checks snapshot pages and sums their rows (pure Python, GIL-bound:
        # more threads would only fight over the GIL with the event loop).
        self._page_pool: ThreadPoolExecutor | None = None
        # The server's verify answer, asked as soon as the last snapshot page is in.
        self._early_verify: asyncio.Future[bytes] | None = None

    # ------------------------------------------------------------------ public API

    @property
    def status(self) -> EngineStatus:
        pending, conflicts, last = self._counts
        return EngineStatus(self._online, self._running, pending, conflicts, last, self._last_error)

    async def refresh_status(self) -> EngineStatus:
        st = await self.run_db(local.read_state, self.cache)
        self._counts = (st.pending, st.conflicts, st.last_sync_at)
        return self.status

    def poke(self) -> None:
        """A local edit was made: sync soon."""
        self._poke.set()

    def cancel(self) -> None:
        """Cancel the running sync (at the next page boundary) and stop :meth:`run_forever`."""
        self._stop = True
        self._poke.set()
        if self._state is not None:
            self._state.cancel()

    async def aclose(self) -> None:
        if self._page_pool is not None:
            self._page_pool.shutdown(wait=False)
            self._page_pool = None
        if self._own_client:
            await self.client.aclose()

    async def sync(self, state: TaskState | None = None) -> SyncResult:
        return await self.sync_once(state)

    async def sync_once(self, state: TaskState | None = None) -> SyncResult:
        """Push the outbox, then pull (snapshotting first when there is no cursor)."""
        async with self._lock:
            self._state = state or TaskState()
            self._running = True
            t0 = time.perf_counter()
            result = SyncResult()
            ended = False  # succeeded, or the task itself was cancelled (the app quits)
            self._protocol = None
            try:
                await self._sign_in()
                await self._push(result)
                await self._pull_or_snapshot(result)
                await self.run_db(local.mark_success, self.cache, self.now())
                if result.held:
                    raise EditsHeld(self._held_message(result.held), result, self._protocol or 0)
                self._online, self._last_error = True, ""
                self._emit("done", 1.0, _("Synchronised."))
                ended = True
                return result
            except asyncio.CancelledError:
                ended = True
                raise
            except (ValueError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as e:
                # A reply that passed validation but cannot be applied (bad key, non-scalar
                # value): its transaction rolled back, so nothing was changed.
                err = ProtocolError(
                    _(
                        "The server sent data this StoreDesk cannot apply ({detail}); nothing was changed."
                    ).format(detail=str(e)[:200])
                )
                self._online, self._last_error = True, str(err)
                self._emit("error", 0.0, str(err))
                raise err from e
            except local.StaleWrite as e:
                err = ServerError(_("Another synchronisation changed the local data; will retry."))
                self._last_error = str(err)
                raise err from e
            except OfflineError as e:
                self._online, self._last_error = False, str(e)
                self._emit("error", 0.0, str(e))
                raise
            except Cancelled:
                self._emit("error", 0.0, _("Synchronisation cancelled."))
                raise
            except SyncError as e:
                self._online, self._last_error = True, str(e)
                self._emit("error", 0.0, str(e))
                raise
            finally:
                if self._early_verify is not None:
                    self._early_verify.cancel()
                    with contextlib.suppress(BaseException):
                        await self._early_verify
                    self._early_verify = None
                if not ended:
                    await self._indexes_back()
                result.seconds = time.perf_counter() - t0
                self._running = False
                self._state = None
                try:
                    await self.refresh_status()
                except Exception:  # status is cosmetic; never mask the real outcome
                    log.exception("refresh_status failed")

    async def run_forever(
        self, interval: float = 300.0, *, backoff_base: float = 2.0, backoff_cap: float = 300.0
    ) -> None:
        """Sync on poke, on a timer and when the network comes back, until :meth:`cancel`."""
        self._stop = False
        failures = 0
        while not self._stop:
            try:
                await self.sync_once()
                failures = 0
                wait = interval
            except (Cancelled, asyncio.CancelledError):
                if self._stop:
                    return
                raise
            except SyncError as e:
                if not e.retryable and not isinstance(e, CursorExpired):
                    log.warning("sync stopped until the next edit: %s", e)
                    failures = 0
                    wait = interval
                else:
                    failures += 1
                    wait = min(backoff_cap, backoff_base * 2**failures) * random.uniform(0.5, 1.5)
            if self._online is False:
                await self._wait_reconnect(wait)
            elif failures:
                await self._sleep(wait)  # backing off from a server error: pokes wait too
            else:
                await self._wait_poke(wait)

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop and time.monotonic() < deadline:
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    async def _wait_poke(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poke.wait(), timeout)
        self._poke.clear()

    async def _wait_reconnect(self, timeout: float) -> None:
        """Offline: probe /v1/health every few seconds; return as soon as it answers."""
        deadline = time.monotonic() + timeout
        while not self._stop and time.monotonic() < deadline:
            try:
                if await self.health():
                    return
            except SyncError:
                pass
            await self._wait_poke(min(5.0, max(0.1, deadline - time.monotonic())))

    async def health(self) -> bool:
        resp, _protocol = await _send_negotiated(
            self.client, "GET", self.base_url + "/v1/health", cap=65536
        )
        _raise_for(resp)
        _parse(Health, resp[1])
        return True

    # ------------------------------------------------------------------ plumbing

    def _emit(self, phase: str, fraction: float, message: str) -> None:
        ev = SyncEvent(phase, fraction, message)
        for cb in list(self.listeners):
            try:
                cb(ev)
            except Exception:
                log.exception("sync listener failed")

    def _progress(self, phase: str, fraction: float, message: str) -> None:
        self._emit(phase, fraction, message)
        if self._state is not None:
            self._state.progress(fraction, message)  # raises Cancelled if asked

    async def _indexes_back(self) -> None:
        """A sync that stopped (cancelled, failed, offline) with a snapshot load unfinished
        — this one, or one a killed app left — leaves the partial cache with all its
        indexes, so queries over it stay fast while offline (:func:`local.build_missing_indexes`)."""
        try:
            built = await self.run_db(local.build_missing_indexes, self.cache)
        except Exception:  # never hides the error that stopped the sync
            log.exception("could not rebuild the indexes of an unfinished snapshot")
            return
        if built:
            log.info("snapshot not finished: %d indexes built for the partial cache", len(built))

    async def _sign_in(self) -> None:
        self._token = await self.token_provider(self.client, self.base_url, False)
        info = _parse(UserInfo, await self._call("GET", "/v1/me", cap=1 << 20))
        self.user = info
        scope = json.dumps([info.role, info.store_ids, info.region_ids])
        await self.run_db(local.bind_server, self.cache, self.base_url, info.id, scope)

    def _actor(self) -> Actor | None:
        u = self.user
        if u is None:
            return None
        return Actor(u.id, u.display_name, u.role, frozenset(u.store_ids), frozenset(u.region_ids))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        cap: int | None = None,
        ok: tuple[int, ...] = (),
        resend: bool = True,
    ) -> bytes:
        """A signed request; one token refresh on 401; raises for error statuses.

        ``resend``: see :func:`_send_negotiated` (False: a 426 naming an older protocol we
        speak switches ``_protocol`` to it and raises :class:`_Status` when 426 is in ``ok``).
        """
        for attempt in range(2):
            resp, protocol = await _send_negotiated(
                self.client,
                method,
                self.base_url + path,
                protocol=self._protocol,
                resend=resend,
                headers={"Authorization": f"Bearer {self._token}"},
                params=params,
                json=json,
                content=content,
                cap=min(cap or self.max_response_bytes, self.max_response_bytes),
            )
            self._protocol = None if protocol == PROTOCOL_VERSION else protocol
            if resp[0] == 401 and attempt == 0:
                self._token = await self.token_provider(self.client, self.base_url, True)
                continue
            if resp[0] in ok:
                raise _Status(resp[0], resp[1])
            _raise_for(resp)
            return resp[1]
        raise AuthError(_("Your session has expired: sign in again."))

    # ------------------------------------------------------------------ push

    async def _push(self, result: SyncResult) -> None:
        client_id = await self.run_db(local.ensure_client_id, self.cache)
        limit = self.push_batch
        while True:
            items, request, held = await self.run_db(
                _push_request, self.cache, client_id, limit, self.push_bytes, self._protocol
            )
            if not items:
                result.held = held
                return
            self._progress("push", 0.0, _("Sending {n} edits…").format(n=len(items)))
            built_for = self._protocol
            try:
                # never resent as it is under an older protocol: it was built for this one
                body = await self._call(
                    "POST", "/v1/sync/push", content=request, ok=(409, 413, 426), resend=False
                )
            except _Status as st:
                if st.status == 426:
                    if self._protocol != built_for:  # an older server: build it for its protocol
                        continue
                    _raise_for((st.status, st.body))
                if st.status == 413:  # too large for the server or a proxy on the way
                    if len(items) > 1:
                        limit = len(items) // 2
                        continue
                    client_id = await self._withdraw_too_large(items[0], result)
                    continue
                gap = _parse(GapError, st.body)
                raise SyncError(
                    _(
                        "The server expects edit #{expected} but this computer's next edit is "
                        "#{have}; contact support before editing further."
                    ).format(expected=gap.expected, have=items[0].mutation_id)
                ) from None
            resp = _parse(PushResponse, body)
            sent = {i.mutation_id: i for i in items}
            ids = [r.id for r in resp.results]
            if ids != [i.mutation_id for i in items[: len(ids)]]:
                raise ProtocolError(_("The server answered for edits it was not sent."))
            await self.run_db(local.record_push_results, self.cache, resp.results, self.now())
            refused: list[local.OutboxItem] = []
            for r in resp.results:
                if r.status == "applied":
                    result.pushed += 1
                    continue
                if r.status == "conflict":
                    result.conflicts += 1
                else:
                    result.rejected += 1
                result.messages.append(r.message)
                refused.append(sent[r.id])
            if refused:
                await self._repair(refused)
            if len(ids) < len(items):
                raise ServerError(_("The server accepted only part of the edits; will retry."))

    def _held_message(self, held: int) -> str:
        return _(
            "The server is older than this StoreDesk (protocol {server}, this StoreDesk "
            "speaks {mine}). Everything else is synchronised, but {n} edits, starting with "
            "a GPS import, wait until your administrator updates the central server. They "
            "are kept on this computer and sent then, in order."
        ).format(server=self._protocol, mine=PROTOCOL_VERSION, n=held)

    async def _withdraw_too_large(self, item: local.OutboxItem, result: SyncResult) -> str:
        """An edit refused for its size alone: refused here, so the edits after it flow.

        The server never saw it, so its edit number would be a gap: the next edits go
        under a new client id, which the server starts at their first number (as after a
        change of user). Returns that id.
        """
        message = _(
            "Not sent: this edit is too large for the server to accept. Split it into "
            "smaller ones (for a GPS track, a shorter file) and try again."
        )
        client_id = await self.run_db(
            local.withdraw_unsendable, self.cache, item.mutation_id, message
        )
        result.rejected += 1
        result.messages.append(message)
        await self._repair([item])
        return client_id

    async def _repair(self, items: list[local.OutboxItem]) -> None:
        """Refused edits: replace their optimistic local rows by the server's.

        The rows of every edit refused in one push answer are read first and written in
        one transaction that re-applies the still-pending edits once: re-applying them
        after every 1000 keys of every refused edit (a refused 50,000-point import is 25
        mutations of 2 requests each) held the database worker for seconds.
        The server answers rows outside the user's scope as missing (their optimistic
        copies go); an older server answered 403, and those rows are left alone.
        """
        keys: dict[str, list[list[Any]]] = {}
        for item in items:
            for tbl, pks in _repair_keys(item).items():
                keys.setdefault(tbl, []).extend(pks)
            if item.name in ("shift.publish/1", "shift.copy_week/1"):
                ids = await self.run_db(local.affected_shift_keys, self.cache, item.name, item.args)
                keys.setdefault("shifts", []).extend([k] for k in ids)
        fetched: list[local.ServerRows] = []
        for tbl, all_pks in keys.items():
            pks = list({json.dumps(k): k for k in all_pks}.values())  # once each, in order
            for i in range(0, len(pks), 1000):
                req = RowsRequest(table=tbl, pks=pks[i : i + 1000])
                try:
                    body = await self._call("POST", "/v1/sync/rows", json=req.model_dump())
                except ScopeError:
                    log.info("repair of %s skipped: outside scope", tbl)
                    continue
                rows = _parse(RowsResponse, body)
                if rows.table != tbl:
                    raise ProtocolError(_("The server answered for another table."))
                fetched.append(local.ServerRows(tbl, rows.columns, rows.rows, rows.missing))
        if fetched:
            await self.run_db(
                local.apply_server_row_sets, self.cache, fetched, self._actor(), self.now()
            )

    # ------------------------------------------------------------------ pull & snapshot

    async def _pull_or_snapshot(self, result: SyncResult) -> None:
        st = await self.run_db(local.read_state, self.cache)
        if st.cursor is None:
            await self._snapshot(result, st)
        try:
            await self._pull(result)
        except CursorExpired:
            # The outbox was pushed above; start over from a fresh snapshot.
            await self.run_db(local.forget_cursor, self.cache)
            st = await self.run_db(local.read_state, self.cache)
            await self._snapshot(result, st)
            await self._pull(result)
        if result.snapshot and self.verify:
            await self._verify(result)

    async def _pull(self, result: SyncResult) -> None:
        while True:
            st = await self.run_db(local.read_state, self.cache)
            assert st.cursor is not None
            body = await self._call(
                "GET", "/v1/sync/pull", params={"cursor": st.cursor, "limit": self.pull_limit}
            )
            page = _parse(PullResponse, body)
            if page.cursor != st.cursor:
                raise ProtocolError(_("The server answered for another position."))
            n = await self.run_db(
                local.apply_pull_page,
                self.cache,
                page.cursor,
                page.next_cursor,
                page.columns,
                page.changes,
                self._actor(),
                self.now(),
            )
            result.pulled += n
            result.pulled_tables.update(c.table for c in page.changes)
            self._progress(
                "pull",
                1.0 if not page.has_more else 0.5,
                _("Receiving changes… {n}").format(n=f"{result.pulled:,}"),
            )
            if not page.has_more:
                return

    async def _snapshot(self, result: SyncResult, st: local.LocalState) -> None:
        result.snapshot = True
        if st.snapshot_token is None:
            start = _parse(SnapshotStart, await self._call("GET", "/v1/sync/snapshot/start"))
            tables = [(t.name, t.columns) for t in start.tables]
            total = sum(t.count for t in start.tables)
            await self.run_db(local.begin_snapshot, self.cache, start.token, tables, total)
            token, index, after, done = start.token, 0, None, 0
        else:  # resume where the last run stopped
            token, tables = st.snapshot_token, st.snapshot_tables
            index, after = st.snapshot_table_index, st.snapshot_after
            done, total = st.snapshot_done, st.snapshot_total
            await self.run_db(local.resume_snapshot, self.cache, token)
        result.pulled_tables.update(name for name, _columns in tables)
        self._progress("snapshot", done / total if total else 0.0, _("Downloading data…"))

        # Three stages run at once: the pages are downloaded one after the other (each
        # names the next), each page's checksum is computed on a worker thread as soon
        # as it arrives, and the DB worker loads the pages in order. The queue bounds the
        # pages held in memory.
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        loop = asyncio.get_running_loop()
        if self._page_pool is None:
            self._page_pool = ThreadPoolExecutor(1, thread_name_prefix="sync-pages")
        pool = self._page_pool

        async def download() -> None:
            i, key = index, after
            try:
                while i < len(tables):
                    page, data = await self._snapshot_page(token, i, tables[i], key)
                    sums = loop.run_in_executor(pool, local.page_checksum, data, tables[i][1])
                    await queue.put((i, page, data, sums))
                    i, key = (i + 1, None) if page.next_after is None else (i, page.next_after)
                if self.verify:
                    # The server's sums may still be computing: ask now, while the last
                    # pages are loaded and the indexes built (see _verify).
                    if self._early_verify is not None:
                        self._early_verify.cancel()
                    self._early_verify = asyncio.ensure_future(self._call("GET", "/v1/sync/verify"))
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # handed to the loader, which raises it
                await queue.put(e)

        downloader = asyncio.ensure_future(download()) if index < len(tables) else None
        try:
            while downloader is not None:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                i, page, data, sums_future = item
                sums = await sums_future
                if sums.count != page.count:
                    raise ProtocolError(
                        _("The server sent an invalid reply (row count); nothing was changed.")
                    )
                await self.run_db(
                    local.apply_snapshot_page,
                    self.cache,
                    token,
                    i,
                    tables[i][1],
                    data,
                    sums,
                    page.next_after,
                )
                done += page.count
                result.snapshot_rows += page.count
                index = i + 1 if page.next_after is None else i
                frac = done / total if total else index / len(tables)
                self._progress(
                    "snapshot",
                    min(frac, 0.99),
                    _("Downloading data… {n} rows").format(n=f"{done:,}"),
                )
        finally:
            if downloader is not None and not downloader.done():
                downloader.cancel()
                with contextlib.suppress(BaseException):
                    await downloader
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, tuple):
                    left[3].cancel()
                    with contextlib.suppress(BaseException):
                        await left[3]
        await self.run_db(local.finish_snapshot, self.cache, token, self._actor(), self.now())

    async def _snapshot_page(
        self, token: int, index: int, plan: tuple[str, list[str]], after: list[Any] | None
    ) -> tuple[SnapshotPageInfo, bytes]:
        """One page as a SQLite page file (protocol 2): its envelope and the file's bytes.

        Only the small envelope is parsed here, on the event loop. The file is checked and
        its rows' checksum terms computed on a worker thread
        (:func:`sync.local.page_checksum`); the DB worker then loads it with one
        ``INSERT … SELECT`` (:func:`sync.local.apply_snapshot_page`).
        """
        name, columns = plan
        params: dict[str, Any] = {
            "token": token,
            "table": name,
            "limit": self.snapshot_limit,
            "format": "sqlite",
        }
        if after is not None:
            params["after"] = json.dumps(after)
        try:
            body = await self._call("GET", "/v1/sync/snapshot", params=params)
        except CursorExpired:
            await self.run_db(local.forget_cursor, self.cache)
            raise
        try:
            page, data = decode_page(body)
        except (ValueError, ValidationError):
            raise ProtocolError(
                _("The server sent an invalid reply (snapshot page); nothing was changed.")
            ) from None
        if page.table != name or page.token != token or page.columns != columns:
            raise ProtocolError(_("The server sent a page of another table or snapshot."))
        if page.next_after is not None and not page.count:
            raise ProtocolError(_("The server sent an empty page that is not the last."))
        return page, data

    async def _verify(self, result: SyncResult) -> None:
        """Compare per-table counts and checksums with the server (pulling to its position)."""
        self._progress("verify", 0.99, _("Checking the downloaded data…"))
        for _attempt in range(3):
            st = await self.run_db(local.read_state, self.cache)
            plan = list(st.snapshot_tables or [])
            # Ours come from the sums kept while the pages were loaded; after pulled
            # changes, from reading every row again, at the same time as the server's.
            # The first answer may have been asked for before the last page was loaded:
            # it is compared only once our cursor has reached its sequence (below).
            mine = await self.run_db(local.snapshot_checksums, self.cache, plan)
            early, self._early_verify = self._early_verify, None
            if early is not None and mine is None:
                early.cancel()  # changes were pulled since it was asked: ask again
                early = None
            asked = early if early is not None else self._call("GET", "/v1/sync/verify")
            if mine is None:
                ver_body, mine = await asyncio.gather(
                    asked, self.run_db(local.local_checksums, self.cache, plan)
                )
            else:
                ver_body = await asked
            ver = _parse(VerifyResponse, ver_body)
            if st.cursor is not None and st.cursor < ver.seq:
                await self._pull(result)
                continue
            if st.pending:
                result.verified = None  # local edits not yet on the server: cannot compare
                return
            mine = {n: c for n, c in mine.items() if n in ver.tables}
            bad = [n for n, c in mine.items() if c != ver.tables[n].checksum]
            if not bad:
                result.verified = True
                return
            if st.cursor == ver.seq:
                await self.run_db(local.forget_cursor, self.cache)
                result.verified = False
                raise VerificationFailed(
                    _(
                        "The downloaded data does not match the server ({tables}); it will be downloaded again."
                    ).format(tables=", ".join(bad))
                )
        result.verified = None  # the server kept changing; the next sync checks again


class _Status(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
