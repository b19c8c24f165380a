"""Visit notes (沟通记录): the ``visit_note.add/1`` mutation and the read used by screens.

Notes are insert-only with client-generated ids, so two offline clients adding notes to
the same visit merge without conflict. Re-applying the same note (a retried push, or the
client re-applying its pending edits over freshly pulled rows) is a no-op; reusing an id
for different content is refused. The note's time is the applying side's clock — on the
server that is the server's clock, so a client whose clock is wrong cannot date notes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import _
from core.models import Rep, Visit, VisitNote
from core.mutations import Actor, Changes, Rejected, ScopeDenied, mutation

MAX_NOTE_CHARS = 2000


@dataclass(frozen=True)
class NoteView:
    id: str
    visit_id: str
    author_name: str
    text: str
    created_at: dt.datetime


def _require_visit_scope(session: Session, actor: Actor, visit: Visit) -> None:
    rep = session.get(Rep, visit.rep_id)
    if rep is None:
        raise Rejected("unknown_rep", _("The visit's sales rep no longer exists."))
    if not (actor.can_store(rep.store_id) or actor.can_region(rep.region_id)):
        raise ScopeDenied(f"visit {visit.id} is outside the scope of {actor.name}")


@mutation("visit_note.add")
def add_visit_note(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    try:
        note_id = str(args["id"])
        visit_id = str(args["visit_id"])
        text = str(args["text"]).strip()
    except KeyError as e:
        raise Rejected(
            "invalid_args", _("The note is incomplete ({field}).").format(field=e)
        ) from None
    if not text:
        raise Rejected("empty_note", _("A note cannot be empty."))
    if len(text) > MAX_NOTE_CHARS:
        raise Rejected(
            "note_too_long",
            _("A note can have at most {n} characters.").format(n=MAX_NOTE_CHARS),
        )
    if not note_id or len(note_id) > 32:
        raise Rejected("invalid_args", _("The note id is not valid."))
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise Rejected("unknown_visit", _("The visit this note belongs to does not exist."))
    _require_visit_scope(session, actor, visit)
    existing = session.get(VisitNote, note_id)
    if existing is not None:
        if existing.visit_id == visit_id and existing.text == text:
            return Changes()
        raise Rejected("duplicate_id", _("Another note already uses this id."))
    session.add(
        VisitNote(
            id=note_id,
            visit_id=visit_id,
            author_id=actor.user_id,
            author_name=actor.name,
            text=text,
            created_at=now,
        )
    )
    return Changes().add("visit_notes", note_id)


def notes_for_visit(session: Session, visit_id: str) -> list[NoteView]:
    rows = session.scalars(
        select(VisitNote).where(VisitNote.visit_id == visit_id).order_by(VisitNote.created_at)
    ).all()
    return [NoteView(n.id, n.visit_id, n.author_name, n.text, n.created_at) for n in rows]
