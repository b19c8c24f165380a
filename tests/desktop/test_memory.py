"""Freed heap memory goes back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

from desktop.memory import _malloc_trim, release_free_memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _malloc_trim() is None, reason="glibc only"
)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_free_pages_in_the_middle_of_the_heap_are_returned() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, n = 64 * 1024, 640  # below the mmap threshold: on the heap, 40 MiB
    blocks = [libc.malloc(size) for _ in range(n)]
    for b in blocks:
        ctypes.memset(b, 1, size)
    for b in blocks[:-1]:  # the last one keeps the heap's top in use
        libc.free(b)
    before = rss_kib()
    t = release_free_memory()
    assert t is not None
    t.join(10)
    after = rss_kib()
    libc.free(blocks[-1])
    assert before - after > 30 * 1024, (before, after)


def test_a_burst_of_requests_is_one_trim_once_quiet() -> None:
    import time

    from desktop.memory import _trimmer, release_free_memory_soon

    start = _trimmer.trims
    for _ in range(50):
        release_free_memory_soon(1.0)  # (a quiet second: more than a busy box's pause)
    assert _trimmer.trims == start  # not yet: still asked for
    deadline = time.monotonic() + 10
    while _trimmer.trims == start and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert _trimmer.trims == start + 1


def test_the_trim_thread_ends_once_quiet() -> None:
    """No thread lingers after the trim (the desktop tests fail on threads left running)."""
    import threading
    import time

    from desktop.memory import _trimmer, release_free_memory_soon

    start = _trimmer.trims
    release_free_memory_soon(0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        _trimmer.trims == start
        or any(t.name == "storedesk-malloc-trim" for t in threading.enumerate())
    ):
        time.sleep(0.05)
    assert _trimmer.trims == start + 1
    assert not [t for t in threading.enumerate() if t.name == "storedesk-malloc-trim"]
    release_free_memory_soon(0.05)  # a later request starts a new one
    deadline = time.monotonic() + 5
    while _trimmer.trims == start + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _trimmer.trims == start + 2
