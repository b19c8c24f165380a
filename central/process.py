"""Run ``storedesk-central`` as a real child process on loopback (tests, benchmarks).

One place for "start it, wait until /v1/health answers, stop it however it ends", so the
desktop's server tests and the sync benchmarks exercise the same launch path a user runs.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def central_command(*args: str) -> list[str]:
    """The installed console script when present, else ``python -m central.cli``."""
    exe = Path(sys.executable).with_name("storedesk-central")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "central.cli"]
    return [*base, *args]


@contextlib.contextmanager
def central_process(
    db: str | Path,
    log_path: Path,
    *,
    demo: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 240.0,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Yield the base URL of a running ``storedesk-central``; terminate it on exit.

    ``extra_args`` are added to its command line (e.g. ``--generate-every 0``)."""
    import httpx

    port = free_port()
    cmd = central_command(
        *(["--demo"] if demo else []),
        "--db",
        str(db),
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra_args,
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(env) if env else None, cwd=cwd
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("storedesk-central exited: " + log_path.read_text()[-2000:])
                try:
                    if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("storedesk-central did not start")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
