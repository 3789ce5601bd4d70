"""The ledger's events as a live feed: what happened after the last event a watcher has seen, and where a
rollback's steps stand now. Reads only; the dashboard's Server-Sent Events poll these."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, select

from lastgood.config.models import Runbook
from lastgood.ledger import store
from lastgood.ledger.tables import EventRow, RollbackRow
from lastgood.service.models import IsoTime
from lastgood.service.session import ledger_for

BATCH = 200


class FeedEvent(BaseModel):
    id: int
    at: IsoTime
    app: str
    env: str
    rollback_id: str | None
    type: str
    message: str
    actor: str


class StepState(BaseModel):
    component: str
    status: str
    attempts: int
    error: str | None


class RollbackProgress(BaseModel):
    id: str
    status: str
    error: str | None
    steps: list[StepState]


def latest_event_id(runbook: Runbook) -> int:
    """The newest event's id in the file's ledger (0 when empty): a watcher that starts now sends what follows."""
    with ledger_for(runbook).session() as session:
        return int(session.scalar(select(func.max(EventRow.id))) or 0)


def events_after(
    runbook: Runbook, after_id: int, env: str | None = None, rollback_id: str | None = None, limit: int = BATCH
) -> list[FeedEvent]:
    """The app's events with ids above `after_id`, oldest first, of one environment or one rollback if given."""
    if rollback_id is not None:  # its events are its app's: the rollback id alone picks its index
        query = select(EventRow).where(EventRow.rollback_id == rollback_id, EventRow.id > after_id)
    else:
        query = select(EventRow).where(EventRow.app == runbook.app, EventRow.id > after_id)
    if env is not None:
        query = query.where(EventRow.env == env)
    with ledger_for(runbook).session() as session:
        rows = session.scalars(query.order_by(EventRow.id).limit(limit))
        return [
            FeedEvent(
                id=r.id,
                at=r.at,
                app=r.app,
                env=r.env,
                rollback_id=r.rollback_id,
                type=r.type,
                message=r.message,
                actor=r.actor,
            )
            for r in rows
        ]


def rollback_progress(runbook: Runbook, rollback_id: str) -> RollbackProgress:
    """The rollback's status and each step's, in plan order (UnknownRollback when there is none)."""
    with ledger_for(runbook).session() as session:
        row: RollbackRow = store.get_rollback(session, rollback_id)
        steps = [
            StepState(component=s.component, status=s.status, attempts=s.attempts, error=s.error) for s in row.steps
        ]
        return RollbackProgress(id=row.id, status=row.status, error=row.error, steps=steps)
