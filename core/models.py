"""The one StoreDesk data model, shared by the local cache and the central server.

SQLAlchemy 2.0 typed declarative classes. Conventions that every module relies on:

* Money is integer fen (1 yuan = 100 fen), never float. Columns end in ``_fen``.
* Instants are stored in UTC (``UTCDateTime`` returns aware UTC datetimes); a store's
  local time zone (default Asia/Shanghai) is applied only for display and for
  "business day" arithmetic.
* Reference data (regions, stores, SKUs, customers, ...) has integer ids assigned by the
  central server. Rows a client may create offline (shifts, decisions, visits, visit notes,
  alerts) have text ids the client generates (``new_id()``), so two offline clients never
  collide.
* Mutable synced rows carry ``version`` (bumped by the server on every accepted change):
  the base of optimistic concurrency for shift edits.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Bumped whenever the schema changes; ``core.cache`` migrates older files on open.
SCHEMA_VERSION = 3

#: Written into ``meta`` so a file that is SQLite but not a StoreDesk cache is recognised.
APP_ID = "storedesk-cache"


def new_id() -> str:
    """A client-generated id for rows that may be created offline."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC; refuses naive input so local times never leak in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: StoreDesk stores aware UTC instants")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from a bulk path
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's documented class attribute
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class StoreFormat(enum.StrEnum):
    DIRECT = "direct"
    FRANCHISE = "franchise"


class StaffRole(enum.StrEnum):
    MANAGER = "manager"  # 店长
    KEYHOLDER = "keyholder"  # 值班主管 (can open/close the store)
    SALES = "sales"  # 导购
    CASHIER = "cashier"  # 收银
    STOCK = "stock"  # 理货


class ShiftStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class ProposalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Stage(enum.StrEnum):
    """Funnel stages in order; ``Stage.ORDER`` gives the index of each."""

    LEAD = "lead"
    VISIT = "visit"
    OPPORTUNITY = "opportunity"
    QUOTE = "quote"
    CONTRACT = "contract"
    PAYMENT = "payment"


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class UserRole(enum.StrEnum):
    STORE_MANAGER = "store_manager"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


# --------------------------------------------------------------------------- organisation


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")

    stores: Mapped[list[Store]] = relationship(back_populates="region")


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    province: Mapped[str] = mapped_column(String(32))
    city: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(256), default="")
    format: Mapped[str] = mapped_column(String(16), default=StoreFormat.DIRECT.value)
    lat: Mapped[float] = mapped_column(Float)  # WGS-84
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    opens_at: Mapped[dt.time] = mapped_column(Time, default=dt.time(9, 0))  # local time
    closes_at: Mapped[dt.time] = mapped_column(Time, default=dt.time(22, 0))
    area_m2: Mapped[int] = mapped_column(Integer, default=300)
    #: Comparable-store cluster (size/format/city tier) used by traffic benchmarks.
    cluster: Mapped[str] = mapped_column(String(32), default="")
    #: Target shopper-to-associate ratio (visitors per floor staff-hour), schema v2.
    target_star: Mapped[float] = mapped_column(Float, default=12.0)
    min_floor_staff: Mapped[int] = mapped_column(Integer, default=2)
    opened_on: Mapped[dt.date | None] = mapped_column(Date)

    region: Mapped[Region] = relationship(back_populates="stores")


class Holiday(Base):
    """Public holidays (法定节假日) that shift traffic; used by forecasts."""

    __tablename__ = "holidays"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # UserRole
    #: KDF hash; only the central server fills it, the local cache never holds secrets.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    scopes: Mapped[list[UserScope]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class UserScope(Base):
    """One store or one region a user may see and change."""

    __tablename__ = "user_scopes"
    __table_args__ = (
        CheckConstraint("(store_id IS NULL) != (region_id IS NULL)", name="one_scope_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))

    user: Mapped[User] = relationship(back_populates="scopes")


# --------------------------------------------------------------------------- staff & shifts


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # StaffRole
    contract_hours_week: Mapped[float] = mapped_column(Float, default=40.0)
    hourly_cost_fen: Mapped[int] = mapped_column(Integer, default=2500)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffAvailability(Base):
    """A weekly window (local time) in which a staff member can work."""

    __tablename__ = "staff_availability"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start: Mapped[dt.time] = mapped_column(Time)
    end: Mapped[dt.time] = mapped_column(Time)


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (
        Index("ix_shifts_store_start", "store_id", "start_at"),
        Index("ix_shifts_staff_start", "staff_id", "start_at"),
        CheckConstraint("end_at > start_at", name="shift_positive"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    role: Mapped[str] = mapped_column(String(16))  # StaffRole worked in this shift
    start_at: Mapped[dt.datetime]
    end_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default=ShiftStatus.DRAFT.value)
    note: Mapped[str] = mapped_column(String(256), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime | None]
    updated_by: Mapped[int | None] = mapped_column(Integer)  # user id


# --------------------------------------------------------------------------- traffic


class HourlyTraffic(Base):
    """One store-hour from the door counter and the POS. ``hour_start`` is UTC."""

    __tablename__ = "hourly_traffic"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    hour_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    visitors: Mapped[int] = mapped_column(Integer)
    transactions: Mapped[int] = mapped_column(Integer)
    sales_fen: Mapped[int] = mapped_column(BigInteger)
    units: Mapped[int | None] = mapped_column(Integer)  # sales lines, where the POS sends them
    source: Mapped[str] = mapped_column(String(16), default="counter")  # counter | import


# --------------------------------------------------------------------------- inventory


class Sku(Base):
    __tablename__ = "skus"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    category: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(8), default="件")
    price_fen: Mapped[int] = mapped_column(Integer)
    cost_fen: Mapped[int] = mapped_column(Integer)
    shelf_life_days: Mapped[int | None] = mapped_column(Integer)  # None: does not expire
    #: Days before expiry at which a lot enters the alert window (Odoo's alert_time).
    alert_days: Mapped[int] = mapped_column(Integer, default=7)


class StoreSku(Base):
    """A SKU in a store's assortment with its safety stock."""

    __tablename__ = "store_skus"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    safety_stock: Mapped[int] = mapped_column(Integer)
    max_stock: Mapped[int] = mapped_column(Integer)


class InventoryLot(Base):
    __tablename__ = "inventory_lots"
    __table_args__ = (
        Index("ix_lots_store_alert", "store_id", "alert_date"),
        Index("ix_lots_store_sku", "store_id", "sku_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    lot_code: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[dt.date] = mapped_column(Date)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    #: expiry_date - sku.alert_days, stored so "lots in alert" is an index range scan.
    alert_date: Mapped[dt.date | None] = mapped_column(Date)
    cost_fen: Mapped[int] = mapped_column(Integer)  # unit cost of this lot
    price_fen: Mapped[int] = mapped_column(Integer)  # current unit shelf price
    written_off_qty: Mapped[int] = mapped_column(Integer, default=0)


class DailySkuSales(Base):
    __tablename__ = "daily_sku_sales"
    __table_args__ = (Index("ix_daily_sales_sku_date", "sku_id", "date"),)

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # store-local business day
    units: Mapped[int] = mapped_column(Integer)
    revenue_fen: Mapped[int] = mapped_column(BigInteger)


class SkuAffinity(Base):
    """How often two SKUs are bought in one basket (lift > 1 means together more than chance)."""

    __tablename__ = "sku_affinity"

    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    other_sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), primary_key=True)
    baskets: Mapped[int] = mapped_column(Integer)
    lift: Mapped[float] = mapped_column(Float)


# --------------------------------------------------------------------------- promotions


class PromotionRule(Base):
    """A rule written in the readable rule language (see ``core.promotions``)."""

    __tablename__ = "promotion_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)  # e.g. 当 库存 < 安全库存 且 ... 时 触发 清仓加赠品
    template: Mapped[str] = mapped_column(String(32))  # markdown | clearance_gift
    min_discount_pct: Mapped[int] = mapped_column(Integer, default=10)
    max_discount_pct: Mapped[int] = mapped_column(Integer, default=50)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PromotionProposal(Base):
    __tablename__ = "promotion_proposals"
    __table_args__ = (Index("ix_proposals_store_status", "store_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("inventory_lots.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("promotion_rules.id"))
    template: Mapped[str] = mapped_column(String(32))
    discount_pct: Mapped[int] = mapped_column(Integer)  # proposed
    gift_sku_id: Mapped[int | None] = mapped_column(ForeignKey("skus.id"))
    status: Mapped[str] = mapped_column(String(16), default=ProposalStatus.PENDING.value)
    #: Urgency 0..100 (days to expiry, value at risk) for sorting the queue.
    urgency: Mapped[int] = mapped_column(Integer, default=0)
    value_at_risk_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The maths shown to the manager: on hand, days to expiry, 7/28-day sales,
    #: sell-through without/with offer, waste avoided, margin given up.
    maths: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    explanation: Mapped[str] = mapped_column(Text, default="")
    generated_at: Mapped[dt.datetime]
    starts_on: Mapped[dt.date | None] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PromotionDecision(Base):
    """The one decision on a proposal; the unique proposal id makes the first one win."""

    __tablename__ = "promotion_decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    proposal_id: Mapped[str] = mapped_column(
        ForeignKey("promotion_proposals.id"), unique=True, index=True
    )
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    discount_pct: Mapped[int | None] = mapped_column(Integer)
    reason_code: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[int] = mapped_column(Integer)  # user id
    decided_by_name: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[dt.datetime]


# --------------------------------------------------------------------------- field sales


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    home_lat: Mapped[float] = mapped_column(Float)
    home_lon: Mapped[float] = mapped_column(Float)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_rep", "rep_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"))
    name: Mapped[str] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(1))  # A | B | C
    segment: Mapped[str] = mapped_column(String(32), default="")
    contact: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime | None]


class CustomerMonthlyStats(Base):
    """Per-customer monthly purchases and inventory turnover (high-potential tags)."""

    __tablename__ = "customer_monthly_stats"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # first day of month
    purchases_fen: Mapped[int] = mapped_column(BigInteger)
    inventory_turnover: Mapped[float] = mapped_column(Float)  # turns per year


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        # customer_id too: the field map's heat (a region's visits of 4 weeks, by
        # customer) is answered from the index alone, without reading each visit's row
        Index("ix_visits_rep_checkin", "rep_id", "check_in_at", "customer_id"),
        Index("ix_visits_customer", "customer_id", "check_in_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rep_id: Mapped[int] = mapped_column(ForeignKey("reps.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    opportunity_id: Mapped[str | None] = mapped_column(ForeignKey("opportunities.id"))
    check_in_at: Mapped[dt.datetime]
    check_out_at: Mapped[dt.datetime | None]
    check_in_lat: Mapped[float | None] = mapped_column(Float)
    check_in_lon: Mapped[float | None] = mapped_column(Float)
    check_out_lat: Mapped[float | None] = mapped_column(Float)
    check_out_lon: Mapped[float | None] = mapped_column(Float)
    purpose: Mapped[str] = mapped_column(String(32), default="")
    photo_ref: Mapped[str | None] = mapped_column(String(256))
    voice_summary: Mapped[str] = mapped_column(Text, default="")


class VisitNote(Base):
    """Insert-only notes on a visit (沟通记录); client ids make them merge without conflict."""

    __tablename__ = "visit_notes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    visit_id: Mapped[str] = mapped_column(ForeignKey("visits.id"), index=True)
    author_id: Mapped[int] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


class GpsPoint(Base):
    __tablename__ = "gps_points"

    rep_id: Mapped[int] = mapped_column(ForeignKey("reps.id"), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    lat: Mapped[float] = mapped_column(Float)  # WGS-84
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float, default=10.0)
    source: Mapped[str] = mapped_column(String(8), default="app")  # app | gpx


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        Index("ix_opps_rep", "rep_id"),
        Index("ix_opps_customer", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("reps.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    title: Mapped[str] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    stage: Mapped[str] = mapped_column(String(16))  # current Stage
    status: Mapped[str] = mapped_column(String(8), default="open")  # open | won | lost
    opened_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    #: A booked next step (suppresses overdue alerts until it passes).
    next_step: Mapped[str] = mapped_column(String(128), default="")
    next_step_at: Mapped[dt.datetime | None]

    history: Mapped[list[OpportunityStageEvent]] = relationship(
        back_populates="opportunity", order_by="OpportunityStageEvent.entered_at"
    )


class OpportunityStageEvent(Base):
    """Stage history: the funnel is computed from these, never from the current stage."""

    __tablename__ = "opportunity_stage_events"
    __table_args__ = (Index("ix_stage_events_opp", "opportunity_id", "entered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[str] = mapped_column(ForeignKey("opportunities.id"))
    stage: Mapped[str] = mapped_column(String(16))
    entered_at: Mapped[dt.datetime]
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)

    opportunity: Mapped[Opportunity] = relationship(back_populates="history")


# --------------------------------------------------------------------------- alerts


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("kind", "subject_id", name="uq_alert_subject"),
        Index("ix_alerts_region_raised", "region_id", "raised_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))  # e.g. no_quote_48h, a_tier_unvisited
    severity: Mapped[str] = mapped_column(String(8), default="warning")  # info|warning|critical
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"))
    raised_at: Mapped[dt.datetime]
    due_at: Mapped[dt.datetime | None]
    escalated_at: Mapped[dt.datetime | None]
    snoozed_until: Mapped[dt.datetime | None]
    snooze_reason: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[dt.datetime | None]
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --------------------------------------------------------------------------- client-side sync


class Outbox(Base):
    """Local edits waiting to be pushed, written in the same transaction as the edit."""

    __tablename__ = "outbox"

    mutation_id: Mapped[int] = mapped_column(primary_key=True)  # per client, 1, 2, 3...
    name: Mapped[str] = mapped_column(String(64))  # versioned mutation name, e.g. shift.update/1
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    #: pending -> sent (acknowledged) | rejected (business rejection, reason kept)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str] = mapped_column(Text, default="")


class SyncState(Base):
    """Key/value sync bookkeeping: client_id, pull cursor, last success, server url."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SyncConflict(Base):
    """An edit the server refused as a conflict, kept until the user resolves it."""

    __tablename__ = "sync_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    mutation_id: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(32))  # shift | promotion_decision | ...
    entity_id: Mapped[str] = mapped_column(String(32))
    mine: Mapped[dict[str, Any]] = mapped_column(JSON)
    theirs: Mapped[dict[str, Any]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(16))  # mine | theirs


class Meta(Base):
    """File identity and schema version."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


#: Tables that only the desktop cache has (never synced from the server).
CLIENT_ONLY_TABLES = frozenset({"outbox", "sync_state", "sync_conflicts", "meta"})
