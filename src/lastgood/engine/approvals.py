"""Approving and denying rollbacks that wait for people, with the two-person rule and signed tokens."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from lastgood.domain.states import ROLLBACK_TRANSITIONS, RollbackStatus, transition
from lastgood.errors import BadInput, NotPermitted, Refused
from lastgood.ledger import store
from lastgood.ledger.tables import ApprovalRow
from lastgood.runtime.context import EnvContext


@dataclass(frozen=True)
class ApprovalOutcome:
    rollback_id: str
    status: str
    approvals: int
    needed: int
    approvers: list[str]

    @property
    def complete(self) -> bool:
        return self.status == RollbackStatus.PLANNED


def sign_token(key: str, rollback_id: str, who: str) -> str:
    """The token a person presents to approve a rollback of a protected environment."""
    return hmac.new(key.encode(), f"{rollback_id}:{who}".encode(), hashlib.sha256).hexdigest()


def _check_token(ctx: EnvContext, rollback_id: str, who: str, token: str | None, authenticated: bool) -> bool:
    policy = ctx.runbook.policy
    if not (policy.signed_approvals and ctx.runbook.environment(ctx.env).protected):
        return False
    if authenticated:  # the server verified who this is (its token, a session, Slack's signature)
        return True
    assert policy.approval_key is not None  # the policy model requires it with signed_approvals
    if not token or not hmac.compare_digest(token, sign_token(policy.approval_key, rollback_id, who)):
        raise NotPermitted(f"{ctx.env} is protected: approving needs a valid signed token for {who} (--token)")
    return True


def approve(
    ctx: EnvContext, rollback_id: str, who: str, token: str | None = None, authenticated: bool = False
) -> ApprovalOutcome:
    """`authenticated`: the caller proved `who` (the server), so no signed token is asked for."""
    roles = ctx.runbook.policy.roles_of(who)
    now = ctx.clock.now()
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        if row.status != RollbackStatus.AWAITING_APPROVAL:
            raise Refused(f"rollback {rollback_id} is {row.status}, not awaiting approval")
        wanted = set(row.approver_roles or [])
        if wanted and not roles & wanted:
            raise NotPermitted(f"{who} holds none of the roles that may approve: {', '.join(sorted(wanted))}")
        if who == row.requested_by:  # the two-person rule: whoever asks for a rollback cannot also approve it
            raise NotPermitted(f"{who} requested this rollback and two people must approve: ask someone else")
        given = [a for a in store.rollback_approvals(session, rollback_id) if a.decision == "approve"]
        if who in {a.who for a in given}:
            raise Refused(f"{who} has already approved rollback {rollback_id}")
        signed = _check_token(ctx, rollback_id, who, token, authenticated)
        session.add(
            ApprovalRow(
                rollback_id=rollback_id, who=who, decision="approve", roles=sorted(roles), at=now, signed=signed
            )
        )
        approvers = [a.who for a in given] + [who]
        store.add_event(
            session,
            ctx.app,
            ctx.env,
            "approved",
            f"approved by {who} ({len(approvers)} of {row.approvals_needed})",
            now,
            rollback_id,
            {"who": who, "roles": sorted(roles), "signed": signed},
            actor=who,
        )
        if len(approvers) >= row.approvals_needed:
            transition(row, RollbackStatus.PLANNED, ROLLBACK_TRANSITIONS)
            row.approved_at = now
        return ApprovalOutcome(rollback_id, row.status, len(approvers), row.approvals_needed, approvers)


def deny(ctx: EnvContext, rollback_id: str, who: str, reason: str) -> None:
    if not reason.strip():
        raise BadInput("--reason: say why the rollback is denied")
    now = ctx.clock.now()
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        if row.status != RollbackStatus.AWAITING_APPROVAL:
            raise Refused(f"rollback {rollback_id} is {row.status}, not awaiting approval")
        session.add(
            ApprovalRow(
                rollback_id=rollback_id,
                who=who,
                decision="deny",
                roles=sorted(ctx.runbook.policy.roles_of(who)),
                at=now,
                reason=reason,
            )
        )
        transition(row, RollbackStatus.DENIED, ROLLBACK_TRANSITIONS)
        row.finished_at = now
        store.add_event(
            session, ctx.app, ctx.env, "denied", f"denied by {who}: {reason}", now, rollback_id, {"who": who}, actor=who
        )
