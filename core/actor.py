"""Who is acting, and the refusals a mutation handler may raise (no SQLAlchemy).

Re-exported by :mod:`core.mutations`; kept apart so the app's start path (the demo
sign-in, the home screen's scope) needs no database library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who is acting, with their resolved scope (all stores they may see and change)."""

    user_id: int
    name: str
    role: str
    store_ids: frozenset[int]
    region_ids: frozenset[int] = frozenset()

    # "admin" is core.models.UserRole.ADMIN (tests/core/test_quickread.py holds them equal)

    def can_store(self, store_id: int | None) -> bool:
        return self.role == "admin" or (store_id is not None and store_id in self.store_ids)

    def can_region(self, region_id: int | None) -> bool:
        return self.role == "admin" or (region_id is not None and region_id in self.region_ids)

    def require_store(self, store_id: int | None) -> None:
        if not self.can_store(store_id):
            raise ScopeDenied(f"store {store_id} is outside the scope of {self.name}")


class MutationError(Exception):
    """Base of the refusals a handler may raise."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Rejected(MutationError):
    """A business rule refused the edit; the mutation id still advances."""

    code = "rejected"

    def __init__(self, reason_code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.reason_code = reason_code


class Conflict(MutationError):
    """Stale ``base_version`` or a lost first-wins race; ``theirs`` is the server's row."""

    code = "conflict"

    def __init__(
        self, entity: str, entity_id: str, message: str, theirs: dict[str, Any], **details: Any
    ) -> None:
        super().__init__(message, **details)
        self.entity = entity
        self.entity_id = entity_id
        self.theirs = theirs


class ScopeDenied(MutationError):
    code = "forbidden"
