"""Server-side jobs: the promotion rule engine, on request and on a timer.

Near-expiry proposals must reach every store within minutes of the stock situation that
calls for them, without anyone pressing a button. :class:`ProposalTimer` runs
:func:`generate_now` for every store every few minutes inside the server process (started
and stopped with the ASGI app's lifespan). Generation is idempotent — a proposal's id is
derived from (store, SKU, lot, rule, day) and a store's open proposals block duplicates —
so several server processes on one database may all run the timer: a lost race on the
same proposal is a primary-key clash that rolls back only that store's short transaction.
New proposals are ordinary changes in the change log; desktops receive them by pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable

from sqlalchemy import false, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from central.models import SyncClient
from core.models import Store

log = logging.getLogger("storedesk.central.jobs")

DEFAULT_GENERATE_EVERY = dt.timedelta(minutes=10)


def generate_now(
    factory: sessionmaker[Session],
    store_ids: Iterable[int] | None,
    now: dt.datetime,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Run every enabled promotion rule on ``store_ids`` (all stores if None); returns how
    many proposals were added.

    One short transaction per store: the SQLite write lock is never held for a whole
    region's pass (pushes wait only for one store), and a clash with another server
    process on one store's proposal loses only that store's work for this pass (it is
    logged; the other process made the same proposals). ``stop`` ends the pass between
    stores.
    """
    from core.promotions.engine import generate_proposals

    if store_ids is None:
        with factory() as s:
            ids = list(s.scalars(select(Store.id).order_by(Store.id)))
    else:
        ids = sorted(store_ids)
    added = 0
    for store_id in ids:
        if stop is not None and stop.is_set():
            break
        try:
            with factory() as s, s.begin():
                if s.get_bind().dialect.name == "sqlite":
                    # Take the write lock before reading, so no other writer slips in between.
                    s.execute(update(SyncClient).where(false()).values(last_mutation_id=0))
                added += len(generate_proposals(s, [store_id], now))
        except IntegrityError:
            log.info("store %s: proposals made by another server process meanwhile", store_id)
    return added


class ProposalTimer:
    """Generates proposals for all stores every ``every``; the first run is ``first_after``
    after start. ``clock`` gives the aware UTC "now" (tests pass a fixed one)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        every: dt.timedelta,
        *,
        first_after: dt.timedelta = dt.timedelta(seconds=5),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if every <= dt.timedelta(0):
            raise ValueError("every must be positive")
        self.factory = factory
        self.every = every
        self.first_after = first_after
        self.clock = clock
        self.runs = 0
        self.added = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Future[int] | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="proposal-timer")

    async def stop(self, timeout: float = 30.0) -> None:
        """Cancel the timer and wait (up to ``timeout`` s) for a pass in progress, which
        stops at its next store, so the engine is never disposed under it."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running is not None and not self._running.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._running), timeout)
        self._running = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_after.total_seconds())
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            self._running = loop.run_in_executor(None, self.run_once)
            await asyncio.shield(self._running)
            await asyncio.sleep(self.every.total_seconds())

    def run_once(self) -> int:
        """One pass over all stores; errors are logged and retried on the next tick."""
        try:
            added = generate_now(self.factory, None, self.clock(), stop=self._stop)
        except OperationalError as e:  # the database was busy or away: next tick
            self.last_error = type(e).__name__
            log.warning("promotion generation skipped this tick: %s", type(e).__name__)
            return 0
        except Exception as e:  # keep the server serving; say what happened
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("promotion generation failed")
            return 0
        self.runs += 1
        self.added += added
        self.last_error = None
        if added:
            log.info("promotion rules added %d proposal(s)", added)
        return added
