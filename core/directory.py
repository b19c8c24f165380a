"""Who may see what: regions and stores in an actor's scope, and demo sign-in accounts.

The pickers, the sign-in dialog and the shell ask these plain functions; a store manager
only ever gets their own store(s), a supervisor their region's stores (scope comes from
:class:`core.mutations.Actor`, which the server enforces too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the dataclasses need no database library (the pickers import them at start)
    from sqlalchemy.orm import Session

    from core.actor import Actor


@dataclass(frozen=True)
class RegionInfo:
    id: int
    code: str
    name: str
    name_en: str
    timezone: str


@dataclass(frozen=True)
class StoreInfo:
    id: int
    code: str
    name: str
    region_id: int
    city: str
    timezone: str


@dataclass(frozen=True)
class DemoAccount:
    """A user of the demo cache that the demo sign-in can act as."""

    username: str
    display_name: str
    role: str
    store_codes: tuple[str, ...]
    region_codes: tuple[str, ...]


def regions_in_scope(session: Session, actor: Actor) -> list[RegionInfo]:
    from sqlalchemy import select

    from core.models import Region, Store, UserRole

    q = select(Region).order_by(Region.code)
    if actor.role != UserRole.ADMIN.value:
        region_ids = set(actor.region_ids)
        if actor.store_ids:
            region_ids |= set(
                session.scalars(select(Store.region_id).where(Store.id.in_(actor.store_ids))).all()
            )
        q = q.where(Region.id.in_(region_ids))
    return [RegionInfo(r.id, r.code, r.name, r.name_en, r.timezone) for r in session.scalars(q)]


def stores_in_scope(
    session: Session, actor: Actor, region_id: int | None = None
) -> list[StoreInfo]:
    from sqlalchemy import select

    from core.models import Store, UserRole

    q = select(Store).order_by(Store.code)
    if actor.role != UserRole.ADMIN.value:
        q = q.where(Store.id.in_(actor.store_ids))
    if region_id is not None:
        q = q.where(Store.region_id == region_id)
    return [
        StoreInfo(s.id, s.code, s.name, s.region_id, s.city, s.timezone) for s in session.scalars(q)
    ]


def demo_accounts(session: Session) -> list[DemoAccount]:
    """Active store managers and supervisors with the codes of what they look after."""
    from sqlalchemy import select

    from core.models import Region, Store, User, UserRole, UserScope

    users = session.scalars(
        select(User)
        .where(
            User.active.is_(True),
            User.role.in_([UserRole.STORE_MANAGER.value, UserRole.SUPERVISOR.value]),
        )
        .order_by(User.username)
    ).all()
    store_codes = dict(session.execute(select(Store.id, Store.code)).tuples().all())
    region_codes = dict(session.execute(select(Region.id, Region.code)).tuples().all())
    scopes: dict[int, list[UserScope]] = {}
    for sc in session.scalars(select(UserScope)):
        scopes.setdefault(sc.user_id, []).append(sc)
    out = []
    for u in users:
        mine = scopes.get(u.id, [])
        out.append(
            DemoAccount(
                username=u.username,
                display_name=u.display_name,
                role=u.role,
                store_codes=tuple(sorted(store_codes[s.store_id] for s in mine if s.store_id)),
                region_codes=tuple(sorted(region_codes[s.region_id] for s in mine if s.region_id)),
            )
        )
    return out


def actor_for_username(session: Session, username: str) -> Actor | None:
    from sqlalchemy import select

    from core.models import User
    from core.mutations import actor_for_user

    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    return actor_for_user(session, user) if user is not None else None


def demo_actor(session: Session, role: str, code: str) -> Actor | None:
    """The demo user who manages store ``code`` (role store_manager) or supervises region ``code``."""
    from core.models import UserRole

    for acc in demo_accounts(session):
        if acc.role != role:
            continue
        codes = acc.store_codes if role == UserRole.STORE_MANAGER.value else acc.region_codes
        if not code or code in codes:
            return actor_for_username(session, acc.username)
    return None


def has_reference_data(session: Session) -> bool:
    """True once the cache holds at least one store (demo generated or first sync done)."""
    from sqlalchemy import select

    from core.models import Store

    return session.scalar(select(Store.id).limit(1)) is not None


def data_last_day(session: Session, zone: str | None = None) -> dt.date | None:
    """The last local business day with traffic data (the demo's "today")."""
    from sqlalchemy import func, select

    from core.models import HourlyTraffic
    from core.timeutil import to_local

    last = session.scalar(select(func.max(HourlyTraffic.hour_start)))
    if last is None:
        return None
    if isinstance(last, str):  # aggregate over a TypeDecorator column comes back raw
        last = dt.datetime.fromisoformat(last)
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return to_local(last, zone).date()


@dataclass(frozen=True)
class DemoChoices:
    """What the demo sign-in offers: (code, label) per store manager and per supervisor."""

    stores: list[tuple[str, str]]
    regions: list[tuple[str, str]]


def demo_choices(session: Session) -> DemoChoices:
    from sqlalchemy import select

    from core.models import Region, Store, UserRole

    stores = {s.code: s.name for s in session.scalars(select(Store))}
    regions = {r.code: r.name for r in session.scalars(select(Region))}
    st: list[tuple[str, str]] = []
    rg: list[tuple[str, str]] = []
    for acc in demo_accounts(session):
        if acc.role == UserRole.STORE_MANAGER.value:
            for code in acc.store_codes:
                st.append((code, f"{code}  {stores.get(code, '')} — {acc.display_name}"))
        elif acc.role == UserRole.SUPERVISOR.value:
            for code in acc.region_codes:
                rg.append((code, f"{regions.get(code, code)} — {acc.display_name}"))
    return DemoChoices(sorted(set(st)), sorted(set(rg)))
