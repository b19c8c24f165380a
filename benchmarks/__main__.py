"""``uv run python -m benchmarks``: StoreDesk's speed against its limits, in one run.

Every figure is printed beside a baseline measured in the same run (so a slow or busy
machine moves both), as the median of ``--runs`` runs, with its target and PASS/MISS.
The command never fails because a figure misses its target (exit 0); it exits 1 only
when a benchmark could not run at all.

    uv run python -m benchmarks                 # everything, region ×1, 3 runs (a few minutes)
    uv run python -m benchmarks --quick         # 1 run each
    uv run python -m benchmarks --only start --only map --runs 5
    uv run python -m benchmarks --scale10       # adds the initial sync of region ×10
    uv run python -m benchmarks --json out.json # figures + details as JSON

Names for ``--only``: start, sync (initial + incremental), stall (sync, map, report),
map, pack, memory. Generated demo databases are cached in ``--cache-dir`` (default: the
user cache folder, ``STOREDESK_BENCH_CACHE`` overrides) and rebuilt when the generator
or the data model changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, default_cache_dir, say, table

NAMES = ("start", "sync", "stall", "map", "pack", "memory")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="StoreDesk figures beside same-run baselines, with targets (never fails on a slow machine).",
    )
    p.add_argument("--quick", action="store_true", help="one run of each figure")
    p.add_argument("--runs", type=int, default=None, help="runs per figure (default 3)")
    p.add_argument("--only", action="append", choices=NAMES, help="run only these (repeatable)")
    p.add_argument("--scale10", action="store_true", help="also sync the demo region ×10")
    p.add_argument("--cache-dir", type=Path, default=None, help="where generated data is kept")
    p.add_argument("--demo-db", type=Path, default=None, help="use this demo cache (region ×1)")
    p.add_argument("--json", type=Path, default=None, help="write figures and details here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    only = set(args.only or NAMES)
    cache_dir = args.cache_dir or default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    failures: list[str] = []
    t_all = time.perf_counter()
    say(f"StoreDesk benchmarks: {runs} run(s) each; data cache {cache_dir}")

    def step(name: str, fn: Any) -> None:
        say(f"[{name}]")
        t0 = time.perf_counter()
        try:
            figs, detail = fn()
            figures.extend(figs)
            details[name] = detail
        except Exception as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
            traceback.print_exc()
        say(f"[{name}] {time.perf_counter() - t0:.0f} s")

    if "start" in only:
        from benchmarks import start

        step("start", lambda: start.run(runs, cache_dir, args.demo_db))
    if "sync" in only:
        from benchmarks import sync_bench

        scales = (1, 10) if args.scale10 else (1,)
        step("sync", lambda: sync_bench.run(runs, cache_dir, scales))
    app_parts = []
    if "stall" in only:
        app_parts += ["sync", "map", "pack"]
    app_parts += [p for p in ("map", "pack", "memory") if p in only and p not in app_parts]
    if app_parts:
        from benchmarks import app_bench

        step("app", lambda: app_bench.run(runs, cache_dir, tuple(app_parts), args.demo_db))

    order = {"start": 0, "sync": 1, "incremental": 2, "stall": 3, "map": 4, "pack": 5}
    figures.sort(key=lambda f: order.get(f.name.split("_")[0], 6))  # stable: keeps run order
    if "stall" not in only:
        figures = [f for f in figures if not f.name.startswith("stall")]
    print()
    print(
        f"StoreDesk benchmarks — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()} ({platform.machine()}, Python {platform.python_version()}), "
        f"median of {runs} run(s)"
    )
    print()
    print(table(figures))
    notes = [f"- {f.label}: {f.note}" for f in figures if f.note]
    start_detail = details.get("start") or {}
    if start_detail:
        notes.append(
            "- Heavy modules imported at start (must be none of QtWebEngine/reportlab/folium): "
            + (", ".join(sorted({_pkg(m) for m in start_detail["heavy_at_start"]})) or "none")
        )
        notes.append(
            "- Packages imported at start beyond the bare window's: "
            + ", ".join(start_detail["extra_vs_bare"])
        )
        notes.append(
            f"- Start phases (last app run, s after imports): {start_detail['app_phases']}"
        )
        manager = start_detail.get("manager")
        if manager:
            notes.append(
                "- Store manager's start: heavy modules "
                + (", ".join(sorted({_pkg(m) for m in manager["heavy_at_start"]})) or "none")
                + "; packages beyond the bare window's: "
                + ", ".join(manager["extra_vs_bare"])
                + f"; phases (last run, s after imports): {manager['app_phases']}"
            )
    if notes:
        print()
        print("\n".join(notes))
    missed = [f.label for f in figures if f.verdict == "MISS"]
    print()
    print(
        f"{len(figures)} figures, {len(missed)} missed target(s); "
        f"{time.perf_counter() - t_all:.0f} s in all. Benchmarks never fail on a slow machine."
    )
    if failures:
        print("Could not run: " + "; ".join(failures))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": runs, "figures": [f.as_dict() for f in figures], "details": details},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
    return 1 if failures else 0


def _pkg(module: str) -> str:
    return module if module.startswith("PySide6.") else module.split(".")[0]


if __name__ == "__main__":
    sys.exit(main())
