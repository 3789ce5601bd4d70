"""The audit log: verify the hash chain, read the newest entries."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from lastgood.ledger import audit
from lastgood.ledger.tables import EventRow
from lastgood.service.models import IsoTime
from lastgood.service.session import AppContext


class AuditVerification(BaseModel):
    ok: bool
    entries: int
    problem: str | None
    event_id: int | None
    checkpoint: str | None = None  # EVENT_ID:SHA256 of the newest entry verified: `--from` it next time
    since: str | None = None  # the checkpoint this run started from


class AuditEntry(BaseModel):
    id: int
    at: IsoTime
    actor: str
    env: str
    type: str
    message: str


class AuditLog(BaseModel):
    entries: list[AuditEntry]


def verify(ctx: AppContext, since: str | None = None) -> AuditVerification:
    """Every entry's hash and link checked (from a checkpoint `EVENT_ID:SHA256` on, when given), read in
    chunks; the first edited or deleted entry is named. A bad checkpoint is BadInput (exit 2)."""
    start = audit.Checkpoint.parse(since) if since else None
    with ctx.session() as session:
        report = audit.verify(session, start)
    return AuditVerification(
        ok=report.ok,
        entries=report.entries,
        problem=report.problem,
        event_id=report.event_id,
        checkpoint=str(report.checkpoint) if report.checkpoint else None,
        since=str(start) if start else None,
    )


def log(ctx: AppContext, limit: int = 50, only_app: bool = False) -> AuditLog:
    """The newest `limit` entries, oldest of them first; `only_app`: of the context's app alone (a ledger
    that several apps share)."""
    query = select(EventRow).where(EventRow.app == ctx.app) if only_app else select(EventRow)
    with ctx.session() as session:
        rows = list(session.scalars(query.order_by(EventRow.id.desc()).limit(limit)))
    entries = [
        AuditEntry(id=r.id, at=r.at, actor=r.actor, env=r.env, type=r.type, message=r.message) for r in reversed(rows)
    ]
    return AuditLog(entries=entries)
