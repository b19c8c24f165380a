"""Server-only tables of the central API, on their own metadata.

They live on :data:`CentralBase` (not ``core.models.Base``) so a desktop cache, created
with ``Base.metadata.create_all``, never carries tokens, client bookkeeping or the change
log. The central database holds both metadatas (:func:`central.db.init_central_schema`).

* ``sync_clients`` — one row per desktop installation: the user it belongs to and the
  ``last_mutation_id`` applied, advanced in the same transaction as the mutation.
* ``mutation_results`` — the outcome of every applied mutation, so a retried push (the
  reply was lost) returns the original verdict instead of a bare "duplicate".
* ``auth_tokens`` — sign-in tokens, stored as SHA-256 hashes with an expiry.
* ``change_log`` + ``change_seq`` — what pull serves; see :mod:`central.changelog`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.models import UTCDateTime


class CentralBase(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012


class SyncClient(CentralBase):
    __tablename__ = "sync_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    last_mutation_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]


class MutationResult(CentralBase):
    __tablename__ = "mutation_results"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mutation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # applied | rejected | conflict
    payload: Mapped[str] = mapped_column(Text, default="{}")  # JSON of the result fields
    applied_at: Mapped[dt.datetime]


class AuthToken(CentralBase):
    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class ChangeSeq(CentralBase):
    """A single row: the highest change sequence number handed out (see changelog)."""

    __tablename__ = "change_seq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Lowest seq still kept; a pull cursor below it gets 410 (re-snapshot).
    floor: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeLog(CentralBase):
    """One changed row: an upsert with the full row, or a delete (tombstone) with its key."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_store", "store_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(8))  # upsert | delete
    pk: Mapped[str] = mapped_column(Text)  # JSON list of wire values
    row: Mapped[str | None] = mapped_column(Text)  # JSON list (table's wire columns), upserts
    #: Scope keys of the row at change time; all NULL and ``ref`` for reference tables.
    ref: Mapped[bool] = mapped_column(Boolean, default=False)
    store_id: Mapped[int | None] = mapped_column(Integer)
    region_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    committed_at: Mapped[dt.datetime]
