"""The deterministic East China demo region (the app's embedded default dataset).

``generate(engine, scale=, seed=, today=)`` writes into an engine whose schema exists
(:func:`core.cache.init_schema`): 3 regions (上海区 / 江苏区 / 浙江区), ~83 stores with staff
and 15 weeks of rota, 13 weeks of hourly traffic with holidays and counter outages, SKUs,
assortments, 35 days of SKU sales, expiry lots, 127 reps, ~3,000 customers with monthly
stats, 13 weeks of visits, GPS fixes every ~30 s for the last 7 days, ~6,000 opportunities
with stage history, and the demo users. Same seed + today + scale → identical rows.

Why bulk inserts and epoch seconds: region ×1 is ~0.9 M rows (×10: 8.7 M); building
tuples with numpy and plain Python and handing them to one ``executemany`` per table
inside ONE transaction keeps it to seconds, where the ORM unit of work would take minutes.

Other features add their own seeding step at the end of :func:`generate` (promotions,
alerts), each a clearly named call that receives the session-free connection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, func, insert, inspect, select

from core.demo._base import Gen, to_datetime
from core.i18n import _
from core.models import Meta, Region
from core.tasks import TaskState

#: Password of every demo account on a central server seeded with the demo region.
DEMO_PASSWORD = "demo"
#: The seed used when none is given (the same as the test suite's).
DEFAULT_SEED = 20261127

#: Keys written into ``meta`` so the app knows which "today" the data was built for.
META_TODAY = "demo_today"
META_AS_OF = "demo_as_of"
META_SEED = "demo_seed"
META_SCALE = "demo_scale"
#: JSON ground truth (deliberately suspicious visits, outages, planted stock conditions).
META_TRUTH = "demo_truth"

__all__ = [
    "DEFAULT_SEED",
    "DEMO_PASSWORD",
    "DemoSummary",
    "cli_demo",
    "demo_truth",
    "generate",
]


@dataclass
class DemoSummary:
    """What a generation wrote: rows per table, in insertion order."""

    seed: int
    scale: int
    today: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())

    def format(self) -> str:
        """A short aligned table of row counts (what ``storedesk demo`` prints)."""
        width = max(len(t) for t in self.counts) if self.counts else 10
        lines = [
            _("Demo region ×{scale}, seed {seed}, history ending {today}").format(
                scale=self.scale, seed=self.seed, today=self.today.isoformat()
            )
        ]
        lines += [f"  {table:<{width}}  {n:>10,}" for table, n in self.counts.items()]
        lines.append(f"  {_('total'):<{width}}  {self.total_rows:>10,}")
        lines.append(_("generated in {seconds:.1f} s").format(seconds=self.seconds))
        return "\n".join(lines)


def shanghai_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def generate(
    engine: Engine,
    *,
    scale: int = 1,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    progress: TaskState | None = None,
) -> DemoSummary:
    """Write the demo region into ``engine`` (schema created, no regions yet)."""
    from core.demo import field_sales, funnel, inventory, org, traffic

    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}")
    today = today or shanghai_today()
    started = time.perf_counter()
    if not inspect(engine).has_table("regions"):
        raise ValueError("the database has no StoreDesk schema (run init_schema first)")
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(Region)).scalar_one():
            raise ValueError("the database already holds regions; the demo needs an empty one")
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size=-65536")
        gen = Gen(conn=conn, seed=seed, scale=scale, today=today, progress=progress)
        gen.step(0.0, _("Generating stores, staff and users"))
        organisation = org.generate_org(gen)
        gen.step(0.08, _("Generating the rota"))
        org.generate_shifts(gen, organisation)
        gen.step(0.15, _("Generating foot traffic"))
        traffic.generate_traffic(gen, organisation)
        gen.step(0.3, _("Generating stock and sales"))
        inventory.generate_inventory(gen, organisation)
        gen.step(0.45, _("Generating reps and customers"))
        people = field_sales.generate_reps_and_customers(gen, organisation)
        gen.step(0.5, _("Generating visits and GPS tracks"))
        visits = field_sales.plan_visits(gen, people)
        gen.step(0.75, _("Generating the sales funnel"))
        funnel.generate_funnel(gen, people, visits)
        field_sales.write_visits_and_tracks(gen, people, visits)
        gen.step(0.955, _("Generating promotion proposals"))
        seed_promotions_step(gen)  # needs stock, sales and users
        gen.step(0.96, _("Evaluating overdue alerts"))
        seed_alerts_step(gen)  # after every data step: alerts read them all
        gen.step(0.97, _("Saving"))
        _write_meta(gen)
        build_gps_blocks_step(gen)
    summary = DemoSummary(
        seed=seed, scale=scale, today=today, counts=dict(gen.counts),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    if progress is not None:
        progress.progress(1.0, _("Demo region ready"))
    return summary


def build_gps_blocks_step(gen: Gen) -> None:
    """A desktop cache keeps the fixes as per-hour blocks too (:mod:`core.trajectory.gps_blocks`):
    the triggers marked every hour written stale; build them now, not at the first read."""
    from core.trajectory import gps_blocks

    if gen.sqlite:
        raw = gps_blocks.driver_connection(gen.conn)
        if raw is not None:
            gps_blocks.rebuild_stale(raw)


def seed_alerts_step(gen: Gen) -> None:
    """Raise the overdue alerts of the demo's last day (owner: core.alerts)."""
    from sqlalchemy.orm import Session

    from core.alerts.engine import seed_alerts

    with Session(bind=gen.conn, join_transaction_mode="create_savepoint") as session:
        gen.counts["alerts"] = seed_alerts(session, gen.today)
        session.commit()


def seed_promotions_step(gen: Gen) -> None:
    """Default promotion rules, a decided history and today's proposals (owner: core.promotions)."""
    from sqlalchemy.orm import Session

    from core.promotions.seed import seed_promotions

    with Session(bind=gen.conn, join_transaction_mode="create_savepoint") as session:
        gen.counts.update(seed_promotions(session, gen.today))
        session.commit()


def _write_meta(gen: Gen) -> None:
    values = {
        META_TODAY: gen.today.isoformat(),
        META_AS_OF: to_datetime(gen.as_of).isoformat(),
        META_SEED: str(gen.seed),
        META_SCALE: str(gen.scale),
        META_TRUTH: json.dumps(gen.truth, ensure_ascii=False, sort_keys=True),
    }
    gen.conn.execute(delete(Meta).where(Meta.key.in_(list(values))))
    gen.conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in values.items()])


def demo_truth(engine: Engine) -> dict[str, Any]:
    """The generator's ground truth for a demo file ({} for other data).

    Keys: ``suspicious_visits`` {visit_id: far_checkin|short_dwell|teleport},
    ``outages`` [[store_id, first_hour_utc_iso, hours, kind]], ``low_stock_rising``
    [[store_id, sku_id]], ``near_expiry_lots`` [lot_id], ``growing_customers`` [id],
    ``low_turnover_customers`` [id].
    """
    with engine.connect() as conn:
        value = conn.execute(select(Meta.value).where(Meta.key == META_TRUTH)).scalar()
    return json.loads(value) if value else {}


# --------------------------------------------------------------------------- CLI


def cli_demo(args: Any) -> int:
    """``storedesk demo --out FILE [--scale N] [--seed S] [--today D] [--force]``.

    Writes into a temporary file beside FILE and renames it at the end, so an interrupted
    run never leaves a half-written demo file where the app would pick it up.
    """
    from core.cache import open_cache

    out = Path(args.out)
    prog = "storedesk demo"
    if out.is_dir():
        print(f"{prog}: " + _("error: {path} is a folder").format(path=out), file=sys.stderr)
        return 2
    if out.exists() and not args.force:
        print(
            f"{prog}: " + _("error: {path} exists (use --force to overwrite it)").format(path=out),
            file=sys.stderr,
        )
        return 2
    parent = out.resolve().parent
    if not parent.is_dir():
        print(
            f"{prog}: " + _("error: folder {path} does not exist").format(path=parent),
            file=sys.stderr,
        )
        return 2
    seed = DEFAULT_SEED if args.seed is None else args.seed
    tmp = parent / f".{out.name}.{os.getpid()}.tmp"
    _remove_db(tmp)
    state = TaskState(_print_progress) if sys.stderr.isatty() else None
    try:
        cache = open_cache(tmp)
        try:
            summary = generate(
                cache.engine, scale=args.scale, seed=seed, today=args.today, progress=state
            )
            with cache.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            cache.close()
        for suffix in ("-wal", "-shm"):
            Path(str(out) + suffix).unlink(missing_ok=True)
        os.replace(tmp, out)
    except KeyboardInterrupt:
        _remove_db(tmp)
        print(f"\n{prog}: " + _("interrupted; nothing was written"), file=sys.stderr)
        return 130
    except BaseException:
        _remove_db(tmp)
        raise
    if state is not None:
        print(file=sys.stderr)
    print(summary.format())
    print(_("written to {path}").format(path=out))
    return 0


def _print_progress(fraction: float, message: str) -> None:
    print(f"\r{fraction:4.0%}  {message:<40}", end="", file=sys.stderr, flush=True)


def _remove_db(path: Path) -> None:
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        p.unlink(missing_ok=True)
