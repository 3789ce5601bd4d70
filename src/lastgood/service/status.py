"""One environment at a glance: the live release, who holds it now, the last rollback, an active stop."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from lastgood.engine.stop import active_stop
from lastgood.ledger import store
from lastgood.ledger.tables import EmergencyStopRow, ReleaseRow, RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import current_holder
from lastgood.service.models import Holder, IsoTime, ReleaseSummary, release_summary
from lastgood.service.watching import GuardHealth


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


class EnvironmentStatus(BaseModel):
    app: str
    env: str
    live: ReleaseSummary | None
    holder: Holder | None
    last_rollback: RollbackSummary | None
    active_stop: StopSummary | None
    guard: GuardHealth | None = None  # the team service's guard of the live release (server only)


def environment_status(ctx: EnvContext) -> EnvironmentStatus:
    """Read from the ledger only; nothing in AWS is asked."""
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        rollbacks = store.list_rollbacks(session, ctx.app, ctx.env, limit=1)
        last = _rollback(session, rollbacks[0]) if rollbacks else None
    holder = current_holder(ctx)
    stop = active_stop(ctx)  # each opens its own session, outside the one above: the write lock is not re-entrant
    return EnvironmentStatus(
        app=ctx.app,
        env=ctx.env,
        live=release_summary(live, live.id) if live else None,
        holder=Holder.model_validate(holder) if holder else None,
        last_rollback=last,
        active_stop=_stop(stop) if stop else None,
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
