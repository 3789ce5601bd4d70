"""Deployments read by id, for callers that are not the deploying process (the API): where one is, what it is."""

from __future__ import annotations

from sqlalchemy import select

from lastgood.config.models import Runbook
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.models import Deployment
from lastgood.errors import UnknownDeployment
from lastgood.ledger.tables import DeploymentRow
from lastgood.runtime.context import EnvContext
from lastgood.service.session import ledger_for


def new_deployment_id() -> str:
    return rows.new_id()


def deployment_where(runbook: Runbook, deployment_id: str) -> tuple[str, str]:
    """(app, environment) of a deployment in the file's ledger, which other apps may share."""
    with ledger_for(runbook).session() as session:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise UnknownDeployment(f"no deployment {deployment_id!r}")
        return row.app, row.env


def deployment(ctx: EnvContext, deployment_id: str) -> Deployment:
    with ctx.session() as session:
        row = session.get(DeploymentRow, deployment_id)
        if row is None or (row.app, row.env) != (ctx.app, ctx.env):
            raise UnknownDeployment(f"no deployment {deployment_id!r} in {ctx.app}/{ctx.env}")
        return Deployment.of(row)


def deployments(ctx: EnvContext, limit: int = 20, offset: int = 0) -> list[Deployment]:
    """The environment's deployments, newest first."""
    with ctx.session() as session:
        query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env).order_by(DeploymentRow.created_at.desc())
        return [Deployment.of(r) for r in session.scalars(query.limit(limit).offset(offset))]
