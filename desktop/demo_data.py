"""Preparing the embedded demo region on first start (plain function, no Qt).

The demo lives in its own file (``<user data dir>/demo.db``) so that signing in to a real
server never mixes demo rows with real ones. Generation takes seconds, so the shell runs
:func:`ensure_demo_cache` on a worker thread with a :class:`core.tasks.TaskState`.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from pathlib import Path

import platformdirs

from core.cache import APP_AUTHOR, APP_NAME, Cache, open_cache
from core.i18n import _
from core.quickread import has_reference_data
from core.tasks import TaskState

log = logging.getLogger(__name__)


def default_demo_path() -> Path:
    d = Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    d.mkdir(parents=True, exist_ok=True)
    return d / "demo.db"


def ensure_demo_cache(
    path: Path, today: dt.date, state: TaskState, *, defer_integrity_check: bool = False
) -> Cache:
    """Open the demo cache, generating the demo region into it if it is empty.

    ``defer_integrity_check``: see :func:`core.cache.open_cache` (the caller then runs
    :meth:`core.cache.Cache.check_integrity`).
    """
    state.progress(0.0, _("Opening the demo data…"))
    cache = open_cache(path, defer_integrity_check=defer_integrity_check)
    generating = False
    try:
        with cache.reader() as conn:  # (no ORM before the first window: core.quickread)
            ready = has_reference_data(conn)
        if not ready:
            from core.demo import generate

            generating = True
            state.progress(0.02, _("Creating the demo region (a few seconds, first start only)…"))
            kwargs = {"scale": 1, "today": today}
            params = inspect.signature(generate).parameters
            for name in ("progress", "state"):
                if name in params:
                    kwargs[name] = state
                    break
            log.info("generating the demo region into %s (today=%s)", path, today)
            generate(cache.engine, **kwargs)
            state.check()
        state.progress(1.0, _("Demo data ready"))
        return cache
    except BaseException:
        cache.close()
        if generating:  # a half-generated demo must not look "ready" next time
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        raise
