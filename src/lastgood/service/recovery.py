"""What a dead process left running: rollbacks and deployments whose owner's lease has expired.

A rollback left `running` is resumed (the caller runs `resume_rollback`: finished steps are skipped, the one
that was running is applied again, which reads first), and so is one that a server's shutdown interrupted (its
newest event says `server-stopped`: a restart is not a person deciding to stop it). A deployment left `running`
is paused where its last step left the traffic, so that a person promotes, aborts or resumes it, and the guard
watching its release judges the canary in flight meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from lastgood.domain.states import DeploymentStatus, RollbackStatus
from lastgood.engine.deploy import finish, rows
from lastgood.engine.deploy.listener import QuietDeployListener
from lastgood.engine.deploy.models import DeployResult
from lastgood.errors import EnvironmentHeld
from lastgood.ledger import store
from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import DeploymentRow, EventRow, HoldRow, RollbackRow
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
    return found + _stopped_by_server(ledger, apps, now)


SERVER_STOPPED = "server-stopped"


def note_server_stop(ctx: EnvContext, rollback_id: str) -> None:
    """The server interrupted this rollback by shutting down: the next server start resumes it."""
    with ctx.session() as session:
        message = "interrupted by the server's shutdown: the next server start resumes it"
        store.add_event(session, ctx.app, ctx.env, SERVER_STOPPED, message, ctx.clock.now(), rollback_id)


def _stopped_by_server(ledger: Ledger, apps: list[str], now: datetime) -> list[Orphan]:
    newest = (
        select(EventRow.rollback_id, func.max(EventRow.id).label("last"))
        .where(EventRow.rollback_id.is_not(None), EventRow.app.in_(apps))
        .group_by(EventRow.rollback_id)
        .subquery()
    )
    query = (
        select(RollbackRow.app, RollbackRow.env, RollbackRow.id)
        .join(newest, newest.c.rollback_id == RollbackRow.id)
        .join(EventRow, EventRow.id == newest.c.last)
        .outerjoin(HoldRow, and_(HoldRow.app == RollbackRow.app, HoldRow.env == RollbackRow.env))
        .where(RollbackRow.app.in_(apps), RollbackRow.status == RollbackStatus.INTERRUPTED)
        .where(EventRow.type == SERVER_STOPPED)
        .where(or_(HoldRow.app.is_(None), HoldRow.expires_at <= now))
    )
    with ledger.session() as session:
        return [Orphan(app, env, id_, "rollback") for app, env, id_ in session.execute(query)]


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
