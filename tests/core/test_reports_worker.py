"""Packs drawn in a child process: same PDF, progress, cancel, a dying child, no reportlab here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.reports.gather import gather_pack
from core.reports.model import PackData
from core.reports.worker import RenderChildError, RenderWorker, RenderWorkerDied
from core.tasks import Cancelled, TaskState

ROOT = Path(__file__).resolve().parents[2]
WEEK = "2026-W47"


@pytest.fixture(scope="module")
def region_data(demo_db_template: Path) -> PackData:
    from core.cache import open_cache

    cache = open_cache(demo_db_template)
    try:
        with cache.session() as s:
            return gather_pack(s, region="SH", week=WEEK, author_role="supervisor", lang="zh_CN")
    finally:
        cache.close()


@pytest.fixture
def worker():
    w = RenderWorker()
    yield w
    w.stop()


def test_child_draws_the_pack_and_reports_progress(worker, region_data, tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    state = TaskState(on_progress=lambda f, m: seen.append((f, m)))
    worker.start()
    child = worker.pid
    assert child is not None and child != os.getpid()
    pages = worker.render(region_data, tmp_path / "a.pdf", lang="zh_CN", state=state)
    reader = PdfReader(tmp_path / "a.pdf")
    assert pages == len(reader.pages) >= 5
    # the static map is drawn by the child from the plain visits gathered here
    assert any(page.images for page in reader.pages)
    assert seen and seen[-1][0] == 1.0 and state.fraction == 1.0
    # the same child draws the next one (no new start-up)
    worker.render(region_data, tmp_path / "b.pdf", lang="en")
    assert worker.pid == child
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "b.pdf"]


def test_cancel_stops_the_child_build_and_writes_nothing(
    worker, region_data, tmp_path: Path
) -> None:
    state = TaskState(on_progress=lambda f, m: state.cancel())  # at the first progress
    with pytest.raises(Cancelled):
        worker.render(region_data, tmp_path / "x.pdf", state=state)
    assert list(tmp_path.iterdir()) == []
    # the child is still usable after a cancelled build
    assert worker.render(region_data, tmp_path / "y.pdf") > 0


def test_a_child_that_dies_mid_build_is_an_error_and_leaves_no_file(
    worker, region_data, tmp_path: Path
) -> None:
    def kill(_f: float, _m: str) -> None:
        os.kill(worker.pid, signal.SIGKILL)

    with pytest.raises(RenderWorkerDied):
        worker.render(region_data, tmp_path / "x.pdf", state=TaskState(on_progress=kill))
    assert list(tmp_path.iterdir()) == []
    assert worker.render(region_data, tmp_path / "y.pdf") > 0  # a new child


def test_stop_during_a_build_lets_it_finish_then_the_child_leaves(
    worker, region_data, tmp_path: Path
) -> None:
    worker.start()
    child = worker.pid
    result: dict[str, int] = {}
    started = threading.Event()
    t = threading.Thread(
        target=lambda: result.setdefault(
            "pages",
            worker.render(
                region_data, tmp_path / "a.pdf", state=TaskState(lambda f, m: started.set())
            ),
        )
    )
    t.start()
    assert started.wait(60)
    worker.stop()  # never blocks the caller
    t.join(120)
    assert result["pages"] > 0 and (tmp_path / "a.pdf").is_file()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        _wait_gone(child)


def _wait_gone(pid: int) -> None:
    import time

    for _ in range(100):
        os.kill(pid, 0)  # raises once the child is gone and reaped
        time.sleep(0.05)


def test_gathered_data_is_plain_and_small(region_data) -> None:
    import pickle

    assert region_data.map_visits and region_data.map_png is None
    assert "_field_map" not in vars(region_data)  # the field map objects stay behind
    assert len(pickle.dumps(region_data)) < 200_000


def test_the_calling_process_never_imports_reportlab(demo_db: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from core.cache import open_cache
        from core.reports.gather import gather_pack
        from core.reports.worker import RenderWorker

        if __name__ == "__main__":
            cache = open_cache({str(demo_db)!r})
            with cache.session() as s:
                data = gather_pack(s, region="SH", week={WEEK!r}, author_role="supervisor")
            w = RenderWorker()
            print(w.render(data, {str(tmp_path / "s.pdf")!r}))
            w.stop()
            print(sorted(m for m in sys.modules if m.split(".")[0] in ("reportlab", "PIL")))
        """
    )
    (tmp_path / "main.py").write_text(script)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "main.py")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    pages, modules = out.stdout.splitlines()[-2:]
    assert int(pages) > 0 and modules == "[]"
    assert (tmp_path / "s.pdf").read_bytes()[:5] == b"%PDF-"


class NeedsTwoArgs(Exception):
    """Pickles, but cannot be rebuilt from its args (unpickling raises TypeError)."""

    def __init__(self, store: str, code: int) -> None:
        super().__init__(f"store {store} failed with {code}")


class HoldsALock(Exception):
    """Cannot be pickled at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class ExplodingPack:
    """Stands for a PackData in the child: reading any field raises ``error()``."""

    def __init__(self, error: str) -> None:
        self.error = error

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if self.error == "needs_args":
            raise NeedsTwoArgs("SH001", 7)
        if self.error == "lock":
            raise HoldsALock("the lock went missing")
        raise ValueError("a plain failure")


@pytest.mark.parametrize(
    ("error", "type_name", "message"),
    [
        ("needs_args", "NeedsTwoArgs", "store SH001 failed with 7"),
        ("lock", "HoldsALock", "the lock went missing"),
    ],
)
def test_a_child_error_that_cannot_be_rebuilt_says_what_it_was(
    worker, region_data, tmp_path: Path, error: str, type_name: str, message: str
) -> None:
    with pytest.raises(RenderChildError) as info:
        worker.render(ExplodingPack(error), tmp_path / "x.pdf")  # type: ignore[arg-type]
    e = info.value
    assert e.type_name == f"{__name__}.{type_name}" and e.message == message
    assert str(e) == f"{e.type_name}: {message}"
    assert "Traceback" in e.child_traceback and "__getattr__" in e.child_traceback
    assert f"{type_name}: {message}" in e.child_traceback
    assert list(tmp_path.iterdir()) == []
    assert worker.render(region_data, tmp_path / "y.pdf") > 0  # the child is still usable


def test_a_child_error_that_can_be_rebuilt_is_raised_as_itself(worker, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a plain failure") as info:
        worker.render(ExplodingPack("plain"), tmp_path / "x.pdf")  # type: ignore[arg-type]
    notes = "".join(getattr(info.value, "__notes__", []))
    assert "render child" in notes and "__getattr__" in notes
