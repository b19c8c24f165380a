"""Who may read which rows: one scope rule per synced table, used for snapshot, pull and rows.

A rule says how a row is tied to the organisation:

* ``REF`` — reference data every signed-in user reads (regions, SKUs, holidays, rules);
* ``Store(col)`` — the row belongs to the store in ``col``;
* ``RegionStore(region_col, store_col)`` — reps, customers, alerts: visible to the
  supervisors of the region and to the managers of the store (if any);
* ``OwnUser(col)`` — users and their scope rows: only your own;
* ``Via(fk, parent)`` — the row inherits the scope of its parent row (a visit note is as
  visible as its visit, which is as visible as its rep).

The same rule produces a SQL filter for snapshot pages and the scope keys stamped on each
change-log row at commit (store_id, region_id, user_id), which the pull filters on — so
snapshot and pull agree on what a user sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, Table, exists, false, or_, select, true
from sqlalchemy.orm import Session

from core.models import UserRole
from core.mutations import Actor
from sync.protocol import SYNCED_TABLE_NAMES, table


@dataclass(frozen=True)
class Ref:
    pass


@dataclass(frozen=True)
class Store:
    col: str


@dataclass(frozen=True)
class RegionStore:
    region_col: str
    store_col: str


@dataclass(frozen=True)
class OwnUser:
    col: str


@dataclass(frozen=True)
class Via:
    fk: str
    parent: str


Rule = Ref | Store | RegionStore | OwnUser | Via

REF = Ref()

RULES: dict[str, Rule] = {
    "regions": REF,
    "holidays": REF,
    "skus": REF,
    "sku_affinity": REF,
    "promotion_rules": REF,
    "stores": Store("id"),
    "users": OwnUser("id"),
    "user_scopes": OwnUser("user_id"),
    "staff": Store("store_id"),
    "staff_availability": Via("staff_id", "staff"),
    "shifts": Store("store_id"),
    "hourly_traffic": Store("store_id"),
    "store_skus": Store("store_id"),
    "inventory_lots": Store("store_id"),
    "daily_sku_sales": Store("store_id"),
    "promotion_proposals": Store("store_id"),
    "promotion_decisions": Via("proposal_id", "promotion_proposals"),
    "reps": RegionStore("region_id", "store_id"),
    "customers": RegionStore("region_id", "store_id"),
    "customer_monthly_stats": Via("customer_id", "customers"),
    "visits": Via("rep_id", "reps"),
    "visit_notes": Via("visit_id", "visits"),
    "gps_points": Via("rep_id", "reps"),
    "opportunities": Via("rep_id", "reps"),
    "opportunity_stage_events": Via("opportunity_id", "opportunities"),
    "alerts": RegionStore("region_id", "store_id"),
}

_missing = set(SYNCED_TABLE_NAMES) - set(RULES)
if _missing:  # a new table must get a scope rule before it can be synced
    raise RuntimeError(f"no scope rule for synced tables {sorted(_missing)}")


def is_admin(actor: Actor) -> bool:
    return actor.role == UserRole.ADMIN.value


def _pk_col(tbl: Table) -> Any:
    cols = list(tbl.primary_key.columns)
    if len(cols) != 1:
        raise RuntimeError(f"Via parent {tbl.name} needs a single-column key")
    return cols[0]


def _opaque(col: Any) -> Any:
    """``col`` as an expression no index serves (``col + 0``, ``col || ''``): same values."""
    return col + ("" if isinstance(col.type, String) else 0)


def row_filter(
    table_name: str, actor: Actor, tbl: Table | None = None, *, walk: bool = False
) -> ColumnElement[bool]:
    """SQL condition selecting the rows of ``table_name`` that ``actor`` may read.

    ``walk``: the same condition in a form the planner cannot drive from a scope index
    (columns wrapped in no-op arithmetic, a ``Via`` parent found by its key per row with a
    correlated EXISTS rather than as a key set read whole on each page), so it walks the
    primary key and checks each row in constant work. A snapshot page uses it when its
    scope spans many pages (see :func:`walk_pk`). Correlated to ``tbl``: compile it
    inside a SELECT from that table.
    """
    tbl = tbl if tbl is not None else table(table_name)
    rule = RULES[table_name]
    if is_admin(actor) or isinstance(rule, Ref):
        return true()

    def col(name: str) -> Any:
        return _opaque(tbl.c[name]) if walk else tbl.c[name]

    if isinstance(rule, Store):
        return col(rule.col).in_(sorted(actor.store_ids)) if actor.store_ids else false()
    if isinstance(rule, RegionStore):
        conds = []
        if actor.store_ids:
            conds.append(col(rule.store_col).in_(sorted(actor.store_ids)))
        if actor.region_ids:
            conds.append(col(rule.region_col).in_(sorted(actor.region_ids)))
        return or_(*conds) if conds else false()
    if isinstance(rule, OwnUser):
        return col(rule.col) == actor.user_id
    parent = table(rule.parent)
    if walk:  # per row: its parent by key, then the parent's scope the same way
        return (
            exists()
            .where(_pk_col(parent) == tbl.c[rule.fk], row_filter(rule.parent, actor, walk=True))
            .correlate(tbl)
        )
    return col(rule.fk).in_(select(_pk_col(parent)).where(row_filter(rule.parent, actor)))


def unrestricted(table_name: str, actor: Actor) -> bool:
    """True when ``actor`` reads every row of ``table_name`` (no scope filter at all)."""
    return is_admin(actor) or isinstance(RULES[table_name], Ref)


def walk_pk(in_scope: int, total: int, limit: int) -> bool:
    """Should the pages of a scope of ``in_scope`` rows (of ``total``) walk the primary key?

    Driven from the scope's index, a page reads every in-scope row after its key and keeps
    the first ``limit`` in key order, so p pages read about ``in_scope * (p + 1) / 2`` rows
    (quadratic in the scope); walking the key reads each row of the table once over all
    pages. A scope of one page always uses its index; otherwise the cheaper of the two,
    a row read by the scope's index counting double (fetched out of key order, then
    sorted: measured at about twice a walked row's cost on SQLite).
    """
    if in_scope <= limit:
        return False
    pages = -(-in_scope // limit)
    return in_scope * (pages + 1) > total


@dataclass(frozen=True)
class ScopeKeys:
    ref: bool = False
    store_id: int | None = None
    region_id: int | None = None
    user_id: int | None = None


def scope_keys(
    session: Session,
    table_name: str,
    row: dict[str, Any],
    memo: dict[tuple[str, Any], ScopeKeys] | None = None,
) -> ScopeKeys:
    """The keys stamped on a change-log row (resolving ``Via`` parents in this transaction).

    ``memo`` keeps the parents already resolved, for a caller that stamps many rows at one
    point of a transaction (a GPS import's thousands of points share one rep).
    """
    rule = RULES[table_name]
    if isinstance(rule, Ref):
        return ScopeKeys(ref=True)
    if isinstance(rule, Store):
        return ScopeKeys(store_id=row.get(rule.col))
    if isinstance(rule, RegionStore):
        return ScopeKeys(store_id=row.get(rule.store_col), region_id=row.get(rule.region_col))
    if isinstance(rule, OwnUser):
        return ScopeKeys(user_id=row.get(rule.col))
    parent = table(rule.parent)
    fk = row.get(rule.fk)
    if fk is None:
        return ScopeKeys()
    if memo is not None and (rule.parent, fk) in memo:
        return memo[(rule.parent, fk)]
    found = session.execute(select(parent).where(_pk_col(parent) == fk)).mappings().first()
    # orphan: visible to admins only
    keys = ScopeKeys() if found is None else scope_keys(session, rule.parent, dict(found), memo)
    if memo is not None:
        memo[(rule.parent, fk)] = keys
    return keys


def visible(keys: ScopeKeys, actor: Actor) -> bool:
    return (
        is_admin(actor)
        or keys.ref
        or (keys.store_id is not None and keys.store_id in actor.store_ids)
        or (keys.region_id is not None and keys.region_id in actor.region_ids)
        or (keys.user_id is not None and keys.user_id == actor.user_id)
    )
