"""Default promotion rules and the demo's promotion step.

``seed_promotions(session, today)`` is called by ``core.demo.generate`` after the
inventory and sales exist. It writes the default rules, replays the proposal runs of 12
and 8 days ago and decides those proposals (as each store's manager would have) so the history tab
and the weekly review pack have outcomes to show, then runs today's generation so the
queue holds fresh pending proposals.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import (
    PromotionDecision,
    PromotionProposal,
    PromotionRule,
    ProposalStatus,
    Store,
    User,
    UserScope,
)
from core.promotions.engine import generate_proposals
from core.promotions.mutations import REJECT_REASONS


@dataclass(frozen=True)
class DefaultRule:
    code: str
    name: str
    text: str
    template: str
    min_pct: int
    max_pct: int
    enabled: bool = True


DEFAULT_RULES: tuple[DefaultRule, ...] = (
    DefaultRule(
        "NEAR_EXPIRY",
        "临期降价 Near-expiry markdown",
        "当 已到临期预警日 且 到期前预计销量 < 批次数量 时 触发 临期降价",
        "markdown",
        10,
        50,
    ),
    DefaultRule(
        "HOT_LOW_GIFT",
        "热销缺货清仓加赠 Clearance + gift",
        "当 库存 < 安全库存 且 近7日销量环比 > 40% 时 触发 清仓加赠品",
        "clearance_gift",
        5,
        20,
    ),
    DefaultRule(
        "OVERSTOCK_SLOW",
        "Overstock, slow seller",
        "WHEN stock > max_stock AND cover_days > 60 THEN markdown",
        "markdown",
        10,
        30,
        enabled=False,
    ),
)

#: 23:00 in Shanghai: the demo's data is complete "as of" the evening of its last day.
_EVENING_SHANGHAI_UTC = dt.time(15, 0, tzinfo=dt.UTC)


def seed_rules(session: Session) -> list[PromotionRule]:
    """Insert the default rules that are missing (by code); never overwrite an edited rule."""
    have = {r.code: r for r in session.scalars(select(PromotionRule))}
    out = []
    for d in DEFAULT_RULES:
        row = have.get(d.code)
        if row is None:
            row = PromotionRule(
                code=d.code,
                name=d.name,
                text=d.text,
                template=d.template,
                min_discount_pct=d.min_pct,
                max_discount_pct=d.max_pct,
                enabled=d.enabled,
            )
            session.add(row)
        out.append(row)
    session.flush()
    return out


def _managers(session: Session) -> dict[int, tuple[int, str]]:
    """store id -> (user id, display name) of a store manager scoped to it."""
    out: dict[int, tuple[int, str]] = {}
    for scope, user in session.execute(
        select(UserScope, User)
        .join(User, User.id == UserScope.user_id)
        .where(UserScope.store_id.is_not(None), User.role == "store_manager")
    ):
        out.setdefault(scope.store_id, (user.id, user.display_name))
    return out


def seed_promotions(
    session: Session, today: dt.date, *, history_days: tuple[int, ...] = (12, 8)
) -> dict[str, int]:
    """Rules, decided runs ``history_days`` ago (decided during the last complete week, so
    the weekly review pack has outcomes to show; older than the 7-day re-proposal block,
    so they never hide today's proposals), and today's pending proposals."""
    seed_rules(session)
    store_ids = list(session.scalars(select(Store.id).order_by(Store.id)))
    managers = _managers(session)
    r = random.Random(f"promotions:{today.isoformat()}")
    reasons = sorted(REJECT_REASONS)
    history: list[PromotionProposal] = []
    decided = 0
    for days_ago in history_days:
        past = dt.datetime.combine(today - dt.timedelta(days=days_ago), _EVENING_SHANGHAI_UTC)
        run = generate_proposals(session, store_ids, past)
        history += run
        for p in sorted(run, key=lambda p: p.id):
            if r.random() < 0.15:
                continue  # left undecided: expires when its window passes
            user_id, name = managers.get(p.store_id, (0, "店长"))
            approve = r.random() < 0.75
            session.add(
                PromotionDecision(
                    id=f"seed{p.id[:28]}",
                    proposal_id=p.id,
                    decision="approve" if approve else "reject",
                    discount_pct=p.discount_pct if approve else None,
                    reason_code=None if approve else r.choice(reasons),
                    comment="",
                    decided_by=user_id,
                    decided_by_name=name,
                    decided_at=p.generated_at + dt.timedelta(hours=r.uniform(9.5, 20)),
                )
            )
            p.status = ProposalStatus.APPROVED.value if approve else ProposalStatus.REJECTED.value
            p.version += 1
            decided += 1
        session.flush()
    now = dt.datetime.combine(today, _EVENING_SHANGHAI_UTC)
    fresh = generate_proposals(session, store_ids, now)
    return {
        "promotion_rules": len(DEFAULT_RULES),
        "promotion_history": len(history),
        "promotion_decisions": decided,
        "promotion_proposals_pending": len(fresh),
    }
