"""Whether, how and with whose approval to roll back: the runbooks' decision and authorization matrices.

`decide` reads the file's policy (pure lookups) and the age of the live release; `apply_decision` writes the
decision onto a planned rollback, moving it to awaiting-approval or declined as the matrices say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lastgood.config.durations import format_duration
from lastgood.config.policy import SEVERITIES
from lastgood.domain.states import ROLLBACK_TRANSITIONS, RollbackStatus, transition
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.ledger.tables import ApprovalRow, RollbackRow
from lastgood.runtime import notifications
from lastgood.runtime.context import EnvContext


@dataclass(frozen=True)
class Decision:
    severity: str
    method: str  # rollback | restore | planned-rollback | fix-forward
    reason: str
    release_age_seconds: float
    approvals_needed: int
    roles: list[str] = field(default_factory=list)
    automated: bool = False
    severity_default: bool = False  # neither asked for nor set by the file (policy.default_severity): lastgood's

    def approved_by_asking(self, requester_roles: set[str]) -> bool:
        """Where one approval suffices, a requester who holds an approving role approves by asking."""
        if self.approvals_needed != 1 or self.automated:
            return False
        return not self.roles or bool(requester_roles & set(self.roles))

    def rolls_back_now(self, requester_roles: set[str]) -> bool:
        approved = self.approvals_needed == 0 or self.approved_by_asking(requester_roles)
        return self.method in ("rollback", "restore") and approved

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "method": self.method,
            "reason": self.reason,
            "release_age_seconds": round(self.release_age_seconds, 1),
            "approvals_needed": self.approvals_needed,
            "roles": self.roles,
            "severity_default": self.severity_default,
        }


def decide(ctx: EnvContext, severity: str | None = None, automated: bool = False) -> Decision:
    policy = ctx.runbook.policy
    chosen = severity or policy.default_severity
    if chosen not in SEVERITIES:
        raise BadInput(f"--severity: {chosen!r} is not one of {', '.join(SEVERITIES)}")
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
    age = (ctx.clock.now() - live.recorded_at).total_seconds() if live else 0.0
    method, reason = policy.method_for(chosen, age, ctx.env)
    rule = policy.approval_for(chosen, ctx.env)
    needed = rule.count if rule else 0
    if automated and rule is not None and rule.automation:
        needed = 0  # the file lets automation act alone at this severity
    reason = f"{reason} (release live for {format_duration(age)})"
    defaulted = severity is None and "default_severity" not in policy.model_fields_set
    roles = list(rule.roles) if rule else []
    return Decision(chosen, method, reason, age, needed, roles, automated, severity_default=defaulted)


def apply_decision(
    ctx: EnvContext,
    rollback_id: str,
    decision: Decision,
    requester_roles: set[str],
    detected_at: datetime | None,
    trigger: dict[str, Any] | None = None,
) -> str:
    """Record the decision on a planned rollback; return its status afterwards."""
    now = ctx.clock.now()
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        row.severity, row.method, row.decision_reason = decision.severity, decision.method, decision.reason
        row.approvals_needed, row.approver_roles = decision.approvals_needed, decision.roles
        row.detected_at, row.decided_at, row.trigger = detected_at or now, now, trigger
        store.add_event(
            session,
            ctx.app,
            ctx.env,
            "decided",
            f"{decision.severity}{' (default severity)' if decision.severity_default else ''}: "
            f"{decision.method} — {decision.reason}",
            now,
            rollback_id,
            decision.to_dict(),
        )
        if decision.method == "fix-forward":
            transition(row, RollbackStatus.DECLINED, ROLLBACK_TRANSITIONS)
            return row.status
        if decision.approvals_needed:
            transition(row, RollbackStatus.AWAITING_APPROVAL, ROLLBACK_TRANSITIONS)
            _count_requester(session, row, decision, requester_roles, now)
            store.add_event(
                session,
                ctx.app,
                ctx.env,
                "approval-needed",
                f"{decision.approvals_needed} approval(s) needed from: {', '.join(decision.roles) or 'anyone'}",
                now,
                rollback_id,
            )
        else:
            row.approved_at = now
        status = row.status
    if status == RollbackStatus.AWAITING_APPROVAL:
        notifications.notify(ctx, "approval-needed", rollback_id, notifications.escalation_lines(ctx))
    return status


def _count_requester(session: Session, row: RollbackRow, decision: Decision, roles: set[str], now: datetime) -> None:
    if not decision.approved_by_asking(roles):
        return
    session.add(ApprovalRow(rollback_id=row.id, who=row.requested_by, decision="approve", roles=sorted(roles), at=now))
    transition(row, RollbackStatus.PLANNED, ROLLBACK_TRANSITIONS)
    row.approved_at = now
