"""One environment at a glance: the live release, who holds it now, the last rollback, an active stop, and the
work in flight: deployments running or paused, rollbacks running, awaiting approval, planned or resumable."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.config.models import Runbook
from lastgood.domain.actor import Actor
from lastgood.domain.states import UNFINISHED_DEPLOYMENT, UNFINISHED_ROLLBACK, RollbackStatus
from lastgood.engine.stop import active_stop
from lastgood.ledger import escalations, store
from lastgood.ledger.tables import DeploymentRow, EmergencyStopRow, ReleaseRow, RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import current_holder
from lastgood.service.models import Holder, IsoTime, ReleaseSummary, release_summary
from lastgood.service.session import open_environment
from lastgood.service.watching import GuardHealth

# What a person may have to act on: approve it, run it in its window, resume it, or watch it.
OPEN_ROLLBACK = {RollbackStatus.AWAITING_APPROVAL, RollbackStatus.PLANNED} | UNFINISHED_ROLLBACK
OPEN_ROLLBACK |= {RollbackStatus.RESTORED_UNHEALTHY}  # until acknowledged: restored, the service still failing


class RollbackSummary(BaseModel):
    id: str
    status: str
    from_release: str | None
    to_release: str | None
    requested_by: str
    drill: bool
    created_at: IsoTime
    finished_at: IsoTime | None


class StopSummary(BaseModel):
    id: str
    created_at: IsoTime
    created_by: str
    components: list[str]


class DeploymentSummary(BaseModel):
    id: str
    component: str
    status: str
    from_version: str
    to_version: str
    release: str
    step: int  # 1-based; 0 before the first shift
    steps: int
    percent: float  # the share of traffic on the new version now
    requested: str | None  # a promote, abort or pause asked of its process and not answered yet
    started_by: str
    created_at: IsoTime


class EnvironmentStatus(BaseModel):
    app: str
    env: str
    live: ReleaseSummary | None
    holder: Holder | None
    last_rollback: RollbackSummary | None
    active_stop: StopSummary | None
    guard: GuardHealth | None = None  # the team service's guard of the live release (server only)
    deployments: list[DeploymentSummary] = []  # running or paused
    rollbacks: list[RollbackSummary] = []  # running, awaiting approval, planned, failed or interrupted (resumable)


def environment_status(ctx: EnvContext) -> EnvironmentStatus:
    """Read from the ledger only; nothing in AWS is asked."""
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        rollbacks = store.list_rollbacks(session, ctx.app, ctx.env, limit=1)
        last = _rollback(session, rollbacks[0]) if rollbacks else None
        open_rollbacks = [_rollback(session, row) for row in _open_rollbacks(session, ctx)]
        deployments = [_deployment(row) for row in _open_deployments(session, ctx)]
    holder = current_holder(ctx)
    stop = active_stop(ctx)  # each opens its own session, outside the one above: the write lock is not re-entrant
    return EnvironmentStatus(
        app=ctx.app,
        env=ctx.env,
        live=release_summary(live, live.id) if live else None,
        holder=Holder.model_validate(holder) if holder else None,
        last_rollback=last,
        active_stop=_stop(stop) if stop else None,
        deployments=deployments,
        rollbacks=open_rollbacks,
    )


def all_environments_status(runbook: Runbook, actor: Actor) -> list[EnvironmentStatus]:
    """Every environment of the file, in its order."""
    return [environment_status(open_environment(runbook, env, actor)) for env in runbook.environments]


def _open_rollbacks(session: Session, ctx: EnvContext) -> list[RollbackRow]:
    wanted = [str(s) for s in OPEN_ROLLBACK]
    query = select(RollbackRow).filter_by(app=ctx.app, env=ctx.env).where(RollbackRow.status.in_(wanted))
    rows = list(session.scalars(query.order_by(RollbackRow.created_at.desc()).limit(20)))
    unhealthy = [r.id for r in rows if r.status == RollbackStatus.RESTORED_UNHEALTHY]
    acked = escalations.acknowledged(session, unhealthy)
    return [r for r in rows if r.id not in acked]


def _open_deployments(session: Session, ctx: EnvContext) -> list[DeploymentRow]:
    wanted = [str(s) for s in UNFINISHED_DEPLOYMENT]
    query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env).where(DeploymentRow.status.in_(wanted))
    return list(session.scalars(query.order_by(DeploymentRow.created_at.desc()).limit(20)))


def _deployment(row: DeploymentRow) -> DeploymentSummary:
    return DeploymentSummary(
        id=row.id,
        component=row.component,
        status=row.status,
        from_version=row.from_version,
        to_version=row.to_version,
        release=row.release_label,
        step=row.current_step + 1,
        steps=len(row.steps),
        percent=round(row.weight * 100, 3),
        requested=row.requested,
        started_by=row.started_by,
        created_at=row.created_at,
    )


def _label(session: Session, release_id: int | None) -> str | None:
    release = session.get(ReleaseRow, release_id) if release_id is not None else None
    return release.label if release else None


def _rollback(session: Session, row: RollbackRow) -> RollbackSummary:
    return RollbackSummary(
        id=row.id,
        status=row.status,
        from_release=_label(session, row.from_release_id),
        to_release=_label(session, row.to_release_id),
        requested_by=row.requested_by,
        drill=row.drill,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _stop(row: EmergencyStopRow) -> StopSummary:
    return StopSummary(id=row.id, created_at=row.created_at, created_by=row.created_by, components=list(row.saved))
