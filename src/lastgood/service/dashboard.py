"""Reads the dashboard's pages need beyond the other use cases: recent rollbacks, a rollback's approvals, the
deployments of an environment and one deployment's traffic over time. Ledger only; nothing in AWS is asked."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.config.models import Runbook
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.models import Deployment
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.ledger.tables import DeploymentRow, EventRow, ReleaseRow, RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.service.models import IsoTime
from lastgood.service.session import ledger_for
from lastgood.service.status import RollbackSummary


class UnknownDeployment(BadInput):
    """404 on the dashboard."""


class ApprovalView(BaseModel):
    who: str
    decision: str  # approve | deny
    roles: list[str]
    at: IsoTime
    reason: str


class Approvals(BaseModel):
    needed: int
    roles: list[str]  # an approver must hold one of these (the file's people); empty: anyone
    given: list[ApprovalView]


class TrafficPoint(BaseModel):
    at: IsoTime
    weight: float  # the share of traffic on the new version, 0..1
    type: str


class DeploymentView(BaseModel):
    app: str
    deployment: Deployment
    traffic: list[TrafficPoint]


def recent_rollbacks(ctx: EnvContext, limit: int = 10) -> list[RollbackSummary]:
    with ctx.session() as session:
        return [_summary(session, r) for r in store.list_rollbacks(session, ctx.app, ctx.env, limit)]


def _summary(session: Session, row: RollbackRow) -> RollbackSummary:
    def label(release_id: int | None) -> str | None:
        release = session.get(ReleaseRow, release_id) if release_id is not None else None
        return release.label if release else None

    return RollbackSummary(
        id=row.id,
        status=row.status,
        from_release=label(row.from_release_id),
        to_release=label(row.to_release_id),
        requested_by=row.requested_by,
        drill=row.drill,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def approvals(runbook: Runbook, rollback_id: str) -> Approvals:
    with ledger_for(runbook).session() as session:
        row = store.get_rollback(session, rollback_id)
        given = [
            ApprovalView(who=a.who, decision=a.decision, roles=list(a.roles), at=a.at, reason=a.reason)
            for a in store.rollback_approvals(session, rollback_id)
        ]
        return Approvals(needed=row.approvals_needed, roles=list(row.approver_roles or []), given=given)


def deployments(ctx: EnvContext, limit: int = 10) -> list[Deployment]:
    return rows.listing(ctx, limit)


def deployment_where(runbook: Runbook, deployment_id: str) -> tuple[str, str] | None:
    """(app, environment) of a deployment in the file's ledger, which other apps may share; None if absent."""
    with ledger_for(runbook).session() as session:
        row = session.get(DeploymentRow, deployment_id)
        return (row.app, row.env) if row is not None else None


def deployment_view(runbook: Runbook, deployment_id: str) -> DeploymentView:
    """The deployment and its traffic split over time (from its events: each shift records the new weight)."""
    with ledger_for(runbook).session() as session:
        row = session.get(DeploymentRow, deployment_id)
        if row is None or row.app != runbook.app:
            raise UnknownDeployment(f"no deployment {deployment_id!r} in app {runbook.app!r}")
        query = (
            select(EventRow)
            .where(EventRow.app == row.app, EventRow.env == row.env, EventRow.at >= row.created_at)
            .where(EventRow.type.startswith("deploy"))
            .order_by(EventRow.id)
        )
        traffic = [
            TrafficPoint(at=e.at, weight=float(e.data["weight"]), type=e.type)
            for e in session.scalars(query)
            if e.data.get("deployment") == deployment_id and isinstance(e.data.get("weight"), int | float)
        ]
        return DeploymentView(app=row.app, deployment=Deployment.of(row), traffic=traffic)
