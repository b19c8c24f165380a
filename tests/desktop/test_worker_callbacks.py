"""A worker's callbacks always arrive through the event loop, never inside submit()."""

from __future__ import annotations

from concurrent.futures import Future

from desktop.context import Worker


def test_a_job_finished_before_its_callback_is_added_still_answers_later(qtbot) -> None:
    worker = Worker("test", 1)
    finished: Future = Future()
    finished.set_result(5)
    real_submit = worker._pool.submit
    worker._pool.submit = lambda fn, *a: finished  # the job was done at once
    got: list[int] = []
    try:
        worker.submit(lambda: 5, on_result=got.append)
        assert got == []  # not run inside submit (the caller may not be ready for it)
        qtbot.waitUntil(lambda: got == [5], timeout=5_000)
    finally:
        worker._pool.submit = real_submit
        worker.shutdown()
