"""Initial sync of the demo region ×1 from ``storedesk-central --demo`` (a real subprocess).

Measures rows/s on loopback beside a raw SQLite ``executemany`` of the same rows (the
baseline of DESIGN §8), checks counts/checksums, and that a supervisor receives only
their region. Figures are printed and written to ``test-artifacts/sync_demo_rate.txt``;
nothing here is a timed assertion.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.cache import open_cache
from core.demo import DEMO_PASSWORD
from core.models import Store
from sync.engine import PasswordAuth, SyncEngine
from sync.protocol import SYNCED_TABLE_NAMES, table, wire_columns
from tests.sync.harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def raw_insert_rate(central_db: Path, tmp: Path) -> tuple[int, float]:
    c = open_cache(tmp / "raw.db")
    c.close()
    src, dst = sqlite3.connect(central_db), sqlite3.connect(tmp / "raw.db")
    data = {}
    for n in SYNCED_TABLE_NAMES:
        cols = wire_columns(table(n))
        data[n] = (cols, src.execute(f"SELECT {', '.join(cols)} FROM {n}").fetchall())
    t = time.perf_counter()
    total = 0
    for n, (cols, rows) in data.items():
        dst.executemany(
            f"INSERT INTO {n} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows
        )
        total += len(rows)
    dst.commit()
    return total, time.perf_counter() - t


@pytest.mark.slow
def test_demo_region_initial_sync_rate(demo_db_template, tmp_path, artifacts):
    central_db = tmp_path / "central.db"
    shutil.copyfile(demo_db_template, central_db)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "--db", str(central_db), "--port", str(port), "--demo",
         "--log-level", "warning", "--generate-every", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        banner = []
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line)
            if "/docs" in line:
                break
        text = "".join(banner)
        assert "sup_sh" in text and f"password: {DEMO_PASSWORD}" in text, text
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(url + "/v1/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)

        async def sync(user: str, cache_path: Path):
            cache = open_cache(cache_path)
            phases: dict[str, float] = {}
            eng = SyncEngine(cache, url, token_provider=PasswordAuth(user, DEMO_PASSWORD))
            t0 = time.perf_counter()
            eng.listeners.append(lambda ev: phases.setdefault(ev.phase, time.perf_counter() - t0))
            r = await eng.sync_once()
            await eng.aclose()
            return cache, r, phases.get("verify", r.seconds)

        cache, r, load_s = asyncio.run(sync("admin", tmp_path / "admin.db"))
        assert r.verified is True and r.snapshot_rows > 500_000
        cache.close()
        sup, rs, _ = asyncio.run(sync("sup_sh", tmp_path / "sup.db"))
        assert rs.verified is True and 0 < rs.snapshot_rows < r.snapshot_rows
        with sup.session() as s:
            assert {code[:2] for code in s.scalars(select(Store.code))} == {"SH"}
            assert s.scalar(select(func.count()).select_from(Store)) > 10
        sup.close()
    finally:
        proc.terminate()
        proc.wait(20)
    n_raw, raw_s = raw_insert_rate(central_db, tmp_path)
    report = (
        f"demo region x1 initial sync (admin, loopback, server subprocess): {r.snapshot_rows:,} rows\n"
        f"  download+load: {load_s:.2f} s = {r.snapshot_rows / load_s:,.0f} rows/s\n"
        f"  with checksum verification: {r.seconds:.2f} s = {r.rows_per_second:,.0f} rows/s\n"
        f"  raw SQLite executemany of the same rows: {n_raw / raw_s:,.0f} rows/s "
        f"(sync/raw = {(r.snapshot_rows / load_s) / (n_raw / raw_s):.2f})\n"
        f"  supervisor sup_sh: {rs.snapshot_rows:,} rows in {rs.seconds:.2f} s\n"
    )
    print(report)
    (artifacts / "sync_demo_rate.txt").write_text(report, encoding="utf-8")
