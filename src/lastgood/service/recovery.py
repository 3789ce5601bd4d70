"""What a dead process left running: rollbacks and deployments whose owner's lease has expired.

A rollback left `running` is resumed (the caller runs `resume_rollback`: finished steps are skipped, the one
that was running is applied again, which reads first). A deployment left `running` is paused where its last
step left the traffic, so that a person promotes, aborts or resumes it, and the guard watching its release
judges the canary in flight meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from lastgood.domain.states import DeploymentStatus, RollbackStatus
from lastgood.engine.deploy import finish, rows
from lastgood.engine.deploy.listener import QuietDeployListener
from lastgood.engine.deploy.models import DeployResult
from lastgood.errors import EnvironmentHeld
from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import DeploymentRow, HoldRow, RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import hold


@dataclass(frozen=True)
class Orphan:
    app: str
    env: str
    id: str
    kind: str  # rollback | deploy


def orphans(ledger: Ledger, apps: list[str], now: datetime) -> list[Orphan]:
    """Rollbacks and deployments left `running` in `apps` whose environment nobody holds (the claim expired, or
    is gone): their process died. One whose environment another live operation holds waits for it to end."""
    found: list[Orphan] = []
    for table, kind, running in (
        (RollbackRow, "rollback", RollbackStatus.RUNNING),
        (DeploymentRow, "deploy", DeploymentStatus.RUNNING),
    ):
        query = (
            select(table.app, table.env, table.id)
            .outerjoin(HoldRow, and_(HoldRow.app == table.app, HoldRow.env == table.env))
            .where(table.app.in_(apps), table.status == running)
            .where(or_(HoldRow.app.is_(None), HoldRow.expires_at <= now))
        )
        with ledger.session() as session:
            found += [Orphan(app, env, id_, kind) for app, env, id_ in session.execute(query)]
    return found


def pause_orphaned_deployment(ctx: EnvContext, deployment_id: str) -> DeployResult | None:
    """Take the dead process's claim over and pause its deployment; None when someone else holds it now."""
    try:
        with hold(ctx, "deploy", deployment_id) as lease:
            if rows.get(ctx, deployment_id).status != DeploymentStatus.RUNNING:
                return None  # it ended between the look and the claim
            owner = lease.took_over
            who = f"{owner['actor']} (pid {owner['pid']} on {owner['host']})" if owner else "its deploy process"
            why = f"{who} is gone (its lease expired); paused by {ctx.actor.name}"
            return finish.pause(ctx, deployment_id, why, lease, QuietDeployListener())
    except EnvironmentHeld:
        return None
