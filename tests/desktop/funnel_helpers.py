"""Helpers for the funnel and alerts GUI tests: an AppContext on a cache, as a supervisor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from core.cache import Cache
from core.models import Region, User
from core.mutations import actor_for_user


@contextmanager
def supervisor_context(cache: Cache, username: str, today: dt.date, qapp) -> Iterator[object]:
    """A real :class:`AppContext` for ``username`` on the first region in their scope."""
    from desktop.context import AppContext, Selection
    from desktop.theme import install_fonts, install_theme

    install_theme(qapp)
    install_fonts(qapp)
    with cache.session() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        actor = actor_for_user(s, user)
        region_id = min(actor.region_ids) if actor.region_ids else s.scalar(select(Region.id))
    ctx = AppContext(cache, actor, today, Selection(None, region_id, today))
    try:
        yield ctx
    finally:
        ctx.shutdown()
