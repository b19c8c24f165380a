"""Helpers for the field map GUI tests: a real AppContext of 上海区's supervisor on a demo copy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from core.cache import open_cache
from core.models import User
from core.mutations import actor_for_user
from tests.conftest import DEMO_TODAY


@contextmanager
def supervisor_map_context(demo_db: Path, folder: Path, day) -> Iterator[object]:
    """``sup_sh`` on a copy of the demo cache in *folder*, the selection on *day*.

    Sets the app up as it starts (fonts, theme and GC tuning, the map's URL schemes).
    """
    from desktop.app import create_application
    from desktop.context import AppContext, Selection
    from desktop.widgets.map_view import register_url_schemes

    create_application()
    register_url_schemes()
    path = folder / "demo.db"
    shutil.copyfile(demo_db, path)
    cache = open_cache(path)
    with cache.session() as s:
        user = s.scalars(select(User).where(User.username == "sup_sh")).one()
        actor = actor_for_user(s, user)
    region_id = next(iter(actor.region_ids))
    ctx = AppContext(cache, actor, DEMO_TODAY, Selection(None, region_id, day))
    try:
        yield ctx
    finally:
        ctx.shutdown()
        cache.close()
