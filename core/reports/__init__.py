"""Weekly business review packs (周经营复盘): gather the numbers, then draw the PDF."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.tasks import TaskState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PackResult:
    path: Path
    pages: int
    scope_name: str
    week: str


def build_pack(
    session: Session,
    out: str | os.PathLike[str],
    *,
    store: str | None = None,
    region: str | None = None,
    week: str,
    lang: str = "zh_CN",
    author_role: str = "store_manager",
    state: TaskState | None = None,
) -> PackResult:
    """Build the pack for one store or region and ISO week into ``out`` (atomic write).

    Raises ``ScopeNotFound`` / ``ValueError`` (bad week) before anything is written and
    ``Cancelled`` when ``state`` is cancelled (no file is left behind).
    """
    from core.reports.gather import gather_pack
    from core.reports.render import render_pack

    state = state or TaskState()
    data = gather_pack(
        session,
        store=store,
        region=region,
        week=week,
        author_role=author_role,
        lang=lang,
        state=state,
    )
    pages = render_pack(data, out, lang=lang, state=state)
    return PackResult(Path(out), pages, data.scope_name, data.week_label)
