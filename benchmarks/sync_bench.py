"""Figure 2: initial sync (snapshot) from a real ``storedesk-central`` on loopback, and
incremental sync of 1,000 changes.

Initial sync: each run is a new, empty client cache; ``SyncEngine.sync_once()`` (sign in,
snapshot pages, pull to the head, verify checksums) as ``admin`` (the whole demo data set)
is timed, and ``rows/s = snapshot rows ÷ seconds``. Baseline, same run: the very rows the
client received (read back from its cache, untimed), written with ``sqlite3``
``executemany`` into an empty file created with the same schema, in one transaction.

Incremental: another client (``sup_sh`` on its own client id) pushes 1,000
``visit_note.add/1`` mutations through ``/v1/sync/push``; then the timed client's
``sync_once()`` pulls them. Baseline: the same call with nothing to pull (its fixed cost).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DEMO_PASSWORD,
    Figure,
    central_db,
    central_server,
    copy_db,
    median,
    say,
)

SYNC_USER = "admin"
WRITER = "sup_sh"
CHANGES = 1_000


async def _initial(url: str, path: Path) -> tuple[float, int, Any]:
    import httpx

    from core.cache import open_cache
    from sync.engine import PasswordAuth, SyncEngine

    cache = open_cache(path)
    client = httpx.AsyncClient(timeout=httpx.Timeout(120.0))
    eng = SyncEngine(
        cache, url, token_provider=PasswordAuth(SYNC_USER, DEMO_PASSWORD), client=client
    )
    try:
        t0 = time.perf_counter()
        res = await eng.sync_once()
        took = time.perf_counter() - t0
        return took, res.snapshot_rows, res
    finally:
        await client.aclose()
        cache.close()


def _raw_sqlite_baseline(synced: Path, folder: Path) -> tuple[float, int]:
    """Time a bulk insert of the rows the client received into an empty same-schema file."""
    from core.cache import open_cache
    from sync import local

    cache = open_cache(synced)
    try:
        plan = local.read_state(cache).snapshot_tables
    finally:
        cache.close()
    target = folder / "raw.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    open_cache(target).close()  # the same schema (tables, indexes) as the client's cache
    src = sqlite3.connect(synced)
    con = sqlite3.connect(target, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=OFF")
    n = 0
    took = 0.0
    con.execute("BEGIN")
    for name, columns in plan:
        have = {r[1] for r in src.execute(f'PRAGMA table_info("{name}")')}
        cols = ", ".join(f'"{c}"' for c in columns if c in have)
        width = sum(1 for c in columns if c in have)
        con.execute(f'DELETE FROM "{name}"')  # open_cache may seed reference rows
        sql = f'INSERT INTO "{name}" ({cols}) VALUES ({", ".join("?" * width)})'
        cur = src.execute(f'SELECT {cols} FROM "{name}"')
        while True:
            rows = cur.fetchmany(100_000)  # read untimed, in bounded chunks (×10 is big)
            if not rows:
                break
            t0 = time.perf_counter()
            con.executemany(sql, rows)
            took += time.perf_counter() - t0
            n += len(rows)
    t0 = time.perf_counter()
    con.execute("COMMIT")
    took += time.perf_counter() - t0
    con.close()
    src.close()
    return took, n


async def _push_notes(url: str, visit_ids: list[str], n: int) -> None:
    """Another desktop (the writer) pushes ``n`` visit notes through the real push API."""
    import httpx

    from sync.protocol import PROTOCOL_HEADER, PROTOCOL_VERSION

    hdrs = {PROTOCOL_HEADER: str(PROTOCOL_VERSION), "Accept": "application/json"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as c:
        r = await c.post(
            url + "/v1/auth/login",
            json={"username": WRITER, "password": DEMO_PASSWORD},
            headers=hdrs,
        )
        r.raise_for_status()
        hdrs["Authorization"] = "Bearer " + r.json()["token"]
        client_id = "bench-" + uuid.uuid4().hex[:16]
        muts = [
            {
                "id": i + 1,
                "name": "visit_note.add/1",
                "args": {
                    "id": uuid.uuid4().hex,
                    "visit_id": visit_ids[i % len(visit_ids)],
                    "text": f"benchmark note {i + 1}: 复查陈列与价签",
                },
            }
            for i in range(n)
        ]
        for k in range(0, n, 500):
            r = await c.post(
                url + "/v1/sync/push",
                json={"client_id": client_id, "mutations": muts[k : k + 500]},
                headers=hdrs,
            )
            r.raise_for_status()
            bad = [x for x in r.json()["results"] if x["status"] != "applied"]
            if bad:
                raise RuntimeError(f"writer's notes refused: {bad[:2]}")


def _writer_visits(synced: Path) -> list[str]:
    """Visit ids inside the writer's region (上海区), from the synced client cache."""
    con = sqlite3.connect(synced)
    try:
        rows = con.execute(
            "SELECT v.id FROM visits v JOIN reps r ON r.id = v.rep_id "
            "JOIN regions g ON g.id = r.region_id WHERE g.code = 'SH' ORDER BY v.id LIMIT 200"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


async def _incremental(
    url: str, path: Path, runs: int
) -> tuple[list[float], list[float], list[int]]:
    import httpx

    from core.cache import open_cache
    from sync.engine import PasswordAuth, SyncEngine

    visit_ids = _writer_visits(path)
    cache = open_cache(path)
    client = httpx.AsyncClient(timeout=httpx.Timeout(120.0))
    eng = SyncEngine(
        cache, url, token_provider=PasswordAuth(SYNC_USER, DEMO_PASSWORD), client=client
    )
    times: list[float] = []
    idle: list[float] = []
    pulled: list[int] = []
    try:
        await eng.sync_once()  # sign in and settle
        for _ in range(runs):
            t0 = time.perf_counter()
            await eng.sync_once()
            idle.append(time.perf_counter() - t0)
            await _push_notes(url, visit_ids, CHANGES)
            t0 = time.perf_counter()
            res = await eng.sync_once()
            times.append(time.perf_counter() - t0)
            pulled.append(res.pulled)
    finally:
        await client.aclose()
        cache.close()
    return times, idle, pulled


def run(
    runs: int, cache_dir: Path, scales: tuple[int, ...] = (1,), incremental: bool = True
) -> tuple[list[Figure], dict]:
    figures: list[Figure] = []
    detail: dict[str, Any] = {}
    for scale in scales:
        src = central_db(cache_dir, scale)
        n_runs = runs if scale == 1 else max(1, min(runs, 2))
        with tempfile.TemporaryDirectory(prefix=f"bench-sync{scale}-") as tmp:
            folder = Path(tmp)
            server_db = copy_db(src, folder / "central.db")
            with central_server(server_db, folder / "server") as url:
                rates: list[float] = []
                secs: list[float] = []
                rows = 0
                last = None
                for i in range(n_runs):
                    path = folder / f"client{i}.db"
                    took, rows, res = asyncio.run(_initial(url, path))
                    secs.append(took)
                    rates.append(rows / took)
                    say(
                        f"  initial sync ×{scale} run {i + 1}/{n_runs}: {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s), verified={res.verified}"
                    )
                    if last is not None:
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{last}{suffix}").unlink(missing_ok=True)
                    last = path
                raw_rates: list[float] = []
                for i in range(n_runs):
                    took, n = _raw_sqlite_baseline(last, folder)
                    raw_rates.append(n / took)
                    say(
                        f"  raw sqlite insert ×{scale} run {i + 1}/{n_runs}: {n:,} rows in {took:.2f} s"
                    )
                rate, raw = median(rates), median(raw_rates)
                figures.append(
                    Figure(
                        f"sync_x{scale}",
                        f"2. Initial sync, region ×{scale} ({rows:,} rows)",
                        rate,
                        "rows/s",
                        raw,
                        "raw SQLite executemany",
                        ">=",
                        250_000,
                        samples=rates,
                        note=f"median {median(secs):.1f} s per sync; ratio target ≥ 0.25× raw",
                    )
                )
                figures.append(
                    Figure(
                        f"sync_x{scale}_ratio",
                        f"2. Initial sync ×{scale} ÷ raw SQLite",
                        rate,
                        "rows/s",
                        raw,
                        "raw SQLite executemany",
                        "ratio>=",
                        0.25,
                        samples=rates,
                    )
                )
                detail[f"x{scale}"] = {
                    "rows": rows,
                    "sync_s": secs,
                    "rows_per_s": rates,
                    "raw_rows_per_s": raw_rates,
                }
                if incremental and scale == 1:
                    times, idle, pulled = asyncio.run(_incremental(url, last, runs))
                    say(
                        f"  incremental: {[f'{t:.3f}' for t in times]} s for {pulled} rows; idle {[f'{t:.3f}' for t in idle]}"
                    )
                    figures.append(
                        Figure(
                            "incremental",
                            f"2. Incremental sync of {CHANGES:,} changes",
                            median(times),
                            "s",
                            median(idle),
                            "same sync with nothing to pull",
                            "<=",
                            0.5,
                            samples=times,
                            note=f"rows pulled per run: {pulled}",
                        )
                    )
                    detail["incremental"] = {"s": times, "idle_s": idle, "pulled": pulled}
    return figures, detail
