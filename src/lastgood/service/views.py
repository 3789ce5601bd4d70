"""Read-only views of rollbacks for every caller: a rollback's detail, its environment, the unfinished ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from lastgood.config.models import Runbook
from lastgood.domain.states import UNFINISHED_ROLLBACK
from lastgood.ledger import escalations, holds, store
from lastgood.ledger.holds import describe
from lastgood.report.model import trigger_summary
from lastgood.runtime.context import EnvContext
from lastgood.service.checklists import ChecklistView, checklist_views
from lastgood.service.models import Holder
from lastgood.service.session import ledger_for

__all__ = [
    "EventView",
    "RollbackDetail",
    "StepView",
    "rollback_detail",
    "rollback_env",
    "rollback_where",
    "trigger_summary",
    "unfinished_rollbacks",
]


class StepView(BaseModel):
    component: str
    action: str
    before: str = Field(serialization_alias="from")
    after: str = Field(serialization_alias="to")
    status: str
    attempts: int
    detail: str | None
    error: str | None
    output: dict[str, Any] | None


class EventView(BaseModel):
    at: datetime
    type: str
    message: str
    actor: str


class RollbackDetail(BaseModel):
    id: str
    env: str
    status: str
    requested_by: str
    reason: str
    error: str | None
    severity: str | None = None
    trigger: dict[str, Any] | None = None  # what fired: a guard's verdict, or a manual trigger (`manual: true`)
    owner: Holder | None  # the process running it now, with its lease
    steps: list[StepView]
    timeline: list[EventView]
    checklist: list[ChecklistView] = Field(default_factory=list)  # the file's checklists, else the built-in list
    validation: dict[str, Any] | None = None  # the validate: block's last results (passed, checks)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    escalations: list[dict[str, Any]] = []  # each escalation step and stakeholder update sent: key, at, by


def rollback_where(runbook: Runbook, rollback_id: str) -> tuple[str, str]:
    """(app, environment) of a rollback in the file's ledger, which other apps may share."""
    with ledger_for(runbook).session() as session:
        row = store.get_rollback(session, rollback_id)
        return row.app, row.env


def rollback_env(runbook: Runbook, rollback_id: str) -> str:
    with ledger_for(runbook).session() as session:
        return store.get_rollback(session, rollback_id).env


def rollback_detail(runbook: Runbook, rollback_id: str) -> RollbackDetail:
    with ledger_for(runbook).session() as session:
        row = store.get_rollback(session, rollback_id)
        hold = holds.holder_of(session, rollback_id)
        events = store.events_of(session, rollback_id)
        claims = escalations.claims_of(session, rollback_id)
        ack = next((c for c in claims if c.key == escalations.ACK), None)
        now = datetime.now(UTC)
        owner = Holder.model_validate(describe(hold, now)) if hold is not None and hold.expires_at > now else None
        return RollbackDetail(
            id=row.id,
            env=row.env,
            status=row.status,
            requested_by=row.requested_by,
            reason=row.reason,
            error=row.error,
            severity=row.severity,
            trigger=row.trigger,
            owner=owner,
            steps=[
                StepView(
                    component=s.component,
                    action=s.action,
                    before=s.before,
                    after=s.after,
                    status=s.status,
                    attempts=s.attempts,
                    detail=s.detail,
                    error=s.error,
                    output=s.output,
                )
                for s in row.steps
            ],
            timeline=[EventView(at=e.at, type=e.type, message=e.message, actor=e.actor) for e in events],
            validation=next(
                (e.data for e in reversed(events) if e.type in ("validation-passed", "validation-failed")), None
            ),
            acknowledged_by=ack.claimed_by if ack else None,
            acknowledged_at=ack.claimed_at if ack else None,
            escalations=[
                {"key": c.key, "at": c.claimed_at.isoformat(), "by": c.claimed_by, "note": c.note}
                for c in claims
                if c.key != escalations.ACK
            ],
            checklist=checklist_views(session, rollback_id, runbook.checklists),
        )


def unfinished_rollbacks(ctx: EnvContext) -> list[tuple[str, str]]:
    with ctx.session() as session:
        rows = store.list_rollbacks(session, ctx.app, ctx.env, 5)
        return [(r.id, r.status) for r in rows if r.status in UNFINISHED_ROLLBACK]
