"""Shared pieces of the benchmarks: figures and their table, cached demo data, processes.

Nothing here asserts a time: a figure is printed beside its baseline (measured in the
same run) and its target, with PASS/MISS, and the command exits 0 whatever the machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The demo data the benchmarks use (same as the test suite's: deterministic).
DEMO_SEED = 20261127
DEMO_TODAY = dt.date(2026, 11, 27)
DEMO_PASSWORD = "demo"
MIB = 1024 * 1024


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured figure, its baseline from the same run, and its target."""

    name: str
    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    #: "ratio<=", "ratio>=", "<=", ">=" against ``target``; "" = no target.
    target_kind: str = ""
    target: float | None = None
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if not self.target_kind or self.target is None:
            return ""
        x = self.ratio if self.target_kind.startswith("ratio") else self.value
        if x is None:
            return "n/a"
        ok = x <= self.target if self.target_kind.endswith("<=") else x >= self.target
        return "PASS" if ok else "MISS"

    def target_text(self) -> str:
        if not self.target_kind or self.target is None:
            return ""
        op = "≤" if self.target_kind.endswith("<=") else "≥"
        if self.target_kind.startswith("ratio"):
            return f"{op} {self.target:g}× baseline"
        return f"{op} {fmt(self.target, self.unit)}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["verdict"] = self.verdict
        return d


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.1f} ms"
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "s/page":
        return f"{value:.3f} s/page" if value >= 0.01 else f"{value * 1000:.2f} ms/page"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:g} {unit}"


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table (also readable in a terminal)."""
    head = ["figure", "value (median)", "baseline (same run)", "ratio", "target", ""]
    rows = [head, ["---"] * len(head)]
    for f in figures:
        base = fmt(f.baseline, f.unit) if f.baseline is not None else "—"
        if f.baseline_label:
            base += f" ({f.baseline_label})"
        r = f.ratio
        rows.append(
            [
                f.label,
                fmt(f.value, f.unit),
                base,
                f"{r:.2f}×" if r is not None else "—",
                f.target_text(),
                f.verdict,
            ]
        )
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --------------------------------------------------------------------------- data cache


def default_cache_dir() -> Path:
    env = os.environ.get("STOREDESK_BENCH_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("StoreDesk", "StoreDesk")) / "benchmarks"


def _generator_fingerprint() -> str:
    """Changes when the demo generator or the data model changes (the cache is rebuilt)."""
    h = hashlib.sha256()
    files = [
        *sorted((ROOT / "core" / "demo").glob("*.py")),
        ROOT / "core" / "models.py",
        ROOT / "central" / "models.py",
    ]
    for p in files:
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _atomic_build(target: Path, build: Callable[[Path], None]) -> Path:
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    build(tmp)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.replace(target)
    return target


def demo_client_db(cache_dir: Path) -> Path:
    """The desktop's demo cache (region ×1), generated once and kept in ``cache_dir``."""

    def build(path: Path) -> None:
        from core.cache import open_cache
        from core.demo import generate

        say(f"generating the demo region ×1 into {path} (once; cached)…")
        cache = open_cache(path)
        try:
            generate(cache.engine, scale=1, seed=DEMO_SEED, today=DEMO_TODAY)
        finally:
            cache.close()

    return _atomic_build(cache_dir / f"demo-client-x1-{_generator_fingerprint()}.db", build)


def central_db(cache_dir: Path, scale: int) -> Path:
    """A central server database seeded with the demo region ×``scale`` (cached)."""

    def build(path: Path) -> None:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from central.auth import hash_password
        from central.db import init_central_schema, make_central_engine
        from core.demo import generate
        from core.models import User

        say(f"generating the central demo region ×{scale} into {path} (once; cached)…")
        engine = make_central_engine(path)
        try:
            init_central_schema(engine)
            generate(engine, scale=scale, seed=DEMO_SEED, today=DEMO_TODAY)
            pw = hash_password(DEMO_PASSWORD)
            with Session(engine) as s, s.begin():
                for u in s.scalars(select(User).where(User.password_hash.is_(None))):
                    u.password_hash = pw
        finally:
            engine.dispose()

    return _atomic_build(cache_dir / f"central-x{scale}-{_generator_fingerprint()}.db", build)


def copy_db(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# --------------------------------------------------------------------------- processes


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment of a child process: headless Qt, its own user folders, no keyring."""
    env = dict(os.environ)
    env.update(
        {
            "QT_QPA_PLATFORM": env.get("QT_QPA_PLATFORM", "offscreen"),
            "QTWEBENGINE_CHROMIUM_FLAGS": env.get(
                "QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu --no-sandbox"
            ),
            "QTWEBENGINE_DISABLE_SANDBOX": "1",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_STATE_HOME": str(home / "state"),
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def central_server(db: Path, folder: Path) -> Iterator[str]:
    """``storedesk-central`` as a real process on 127.0.0.1 (stopped on exit)."""
    from central.process import central_process

    # The server's periodic promotion pass (first one 5 s after start) is switched off:
    # it is not sync work and would land inside a random run.
    with central_process(
        db,
        folder / "central.log",
        env=child_env(folder),
        cwd=ROOT,
        timeout=120,
        extra_args=("--generate-every", "0"),
    ) as url:
        yield url


# --------------------------------------------------------------------------- memory (/proc)


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM)."""
    return _status_kib(pid, "VmHWM")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


class TreeSampler:
    """Samples the summed RSS of a process tree every ``interval`` s (peak kept)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.peak_procs = 0
        self.main_hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = process_tree(self.pid)
            total = sum(rss_kib(p) for p in pids)
            if total > self.peak_kib:
                self.peak_kib, self.peak_procs = total, len(pids)
            self.main_hwm_kib = max(self.main_hwm_kib, peak_rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def dump_json(path: Path | None, payload: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
