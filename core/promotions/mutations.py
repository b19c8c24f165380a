"""``promotion.decide/1``: approve or reject a proposal; the first decision wins.

Also ``promotion_rule.update/1`` ``{rule_id, text, min_discount_pct, max_discount_pct,
enabled}`` with ``base_version`` (the rule editor's save).

Args ``{proposal_id, decision_id, decision: approve|reject, discount_pct, reason_code,
comment}``. The same handler runs on the desktop (optimistically, with the outbox row)
and on the central server (authoritatively). Outcomes:

* the actor's scope must include the proposal's store (``ScopeDenied``);
* an approval's discount must lie within the rule's bounds, a rejection needs a reason
  code (``Rejected``);
* if the proposal already carries a decision with another ``decision_id`` the edit lost the
  race: ``Conflict`` naming who decided and when. Replaying the *same* decision id is a
  no-op, so a retried push never turns into a conflict with itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import N_, _
from core.models import (
    PromotionDecision,
    PromotionProposal,
    PromotionRule,
    ProposalStatus,
    Store,
)
from core.mutations import Actor, Changes, Conflict, Rejected, ScopeDenied, mutation
from core.promotions.engine import local_today
from core.promotions.language import RuleSyntaxError, parse_rule

#: Reason codes offered when rejecting (English source labels, translated at display time).
REJECT_REASONS: dict[str, str] = {
    "margin_too_low": N_("Margin too low"),
    "stock_already_moved": N_("Stock already moved or sold"),
    "transfer_instead": N_("Transfer to another store instead"),
    "quality_issue": N_("Quality issue: write off"),
    "promo_calendar": N_("Clashes with the promotion calendar"),
    "other": N_("Other (see comment)"),
}


def _when(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@mutation("promotion.decide")
def decide(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    proposal_id = str(args.get("proposal_id", ""))
    decision_id = str(args.get("decision_id", ""))
    decision = args.get("decision")
    proposal = session.get(PromotionProposal, proposal_id)
    if proposal is None:
        raise Rejected("not_found", _("This promotion proposal no longer exists."))
    actor.require_store(proposal.store_id)
    if not decision_id:
        raise Rejected("bad_request", _("A decision needs an id."))
    if decision not in ("approve", "reject"):
        raise Rejected("bad_request", _("A decision is either approve or reject."))

    existing = session.scalar(
        select(PromotionDecision).where(PromotionDecision.proposal_id == proposal_id)
    )
    if existing is not None:
        if existing.id == decision_id:
            return Changes()  # a replay of this very decision
        verb = _("approved") if existing.decision == "approve" else _("rejected")
        raise Conflict(
            "promotion_decision",
            proposal_id,
            _("{name} already {verb} this proposal at {when}.").format(
                name=existing.decided_by_name or str(existing.decided_by),
                verb=verb,
                when=_when(existing.decided_at),
            ),
            theirs={
                "decided_by_name": existing.decided_by_name,
                "decided_at": existing.decided_at.isoformat(),
                "decision": existing.decision,
                "discount_pct": existing.discount_pct,
                "decision_id": existing.id,
            },
        )
    if proposal.status != ProposalStatus.PENDING.value:
        raise Rejected(
            "not_pending",
            _("This proposal is {status} and can no longer be decided.").format(
                status=proposal.status
            ),
        )

    rule = session.get(PromotionRule, proposal.rule_id)
    lo = rule.min_discount_pct if rule else 0
    hi = rule.max_discount_pct if rule else 95
    discount: int | None = None
    reason = args.get("reason_code") or None
    if decision == "approve":
        raw = args.get("discount_pct", proposal.discount_pct)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or int(raw) != raw:
            raise Rejected("bad_discount", _("The discount must be a whole percentage."))
        discount = int(raw)
        if not lo <= discount <= hi:
            raise Rejected(
                "discount_out_of_bounds",
                _("A discount of {pct}% is outside this rule's bounds ({lo}%–{hi}%).").format(
                    pct=discount, lo=lo, hi=hi
                ),
                min=lo,
                max=hi,
            )
    elif reason not in REJECT_REASONS:
        raise Rejected("reason_required", _("Choose a reason for rejecting."))

    session.add(
        PromotionDecision(
            id=decision_id,
            proposal_id=proposal_id,
            decision=decision,
            discount_pct=discount,
            reason_code=reason,
            comment=str(args.get("comment") or "")[:2000],
            decided_by=actor.user_id,
            decided_by_name=actor.name,
            decided_at=now,
        )
    )
    if decision == "approve":
        proposal.status = ProposalStatus.APPROVED.value
        store = session.get(Store, proposal.store_id)
        day = local_today(now, store.timezone if store else "Asia/Shanghai")
        if proposal.starts_on is None or proposal.starts_on < day:
            proposal.starts_on = day
        if proposal.ends_on is None or proposal.ends_on < proposal.starts_on:
            proposal.ends_on = proposal.starts_on
    else:
        proposal.status = ProposalStatus.REJECTED.value
    proposal.version += 1
    session.flush()
    return Changes().add("promotion_decisions", decision_id).add("promotion_proposals", proposal_id)


@mutation("promotion_rule.update")
def update_rule(
    session: Session,
    args: dict[str, Any],
    actor: Actor,
    base_version: int | None,
    now: dt.datetime,
) -> Changes:
    """Edit a rule's text/bounds/enabled flag. Rules apply to every store, so only
    supervisors and admins may edit; the text must parse; a stale edit is a Conflict."""
    if actor.role not in ("supervisor", "admin"):
        raise ScopeDenied(_("Only supervisors and administrators may edit promotion rules."))
    rule = session.get(PromotionRule, int(args.get("rule_id", 0)))
    if rule is None:
        raise Rejected("not_found", _("This promotion rule no longer exists."))
    if base_version is not None and base_version != rule.version:
        raise Conflict(
            "promotion_rule",
            str(rule.id),
            _("Someone changed this rule since you opened it."),
            theirs={"text": rule.text, "version": rule.version, "enabled": rule.enabled},
        )
    text = str(args.get("text", rule.text))
    try:
        parsed = parse_rule(text)
    except RuleSyntaxError as e:
        raise Rejected("bad_rule", e.message()) from None
    lo = int(args.get("min_discount_pct", rule.min_discount_pct))
    hi = int(args.get("max_discount_pct", rule.max_discount_pct))
    if not 0 <= lo <= hi <= 90:
        raise Rejected("bad_bounds", _("Discount bounds must satisfy 0 ≤ minimum ≤ maximum ≤ 90."))
    rule.text = text
    rule.template = parsed.action
    rule.min_discount_pct = lo
    rule.max_discount_pct = hi
    if "enabled" in args:
        rule.enabled = bool(args["enabled"])
    rule.version += 1
    session.flush()
    return Changes().add("promotion_rules", rule.id)
