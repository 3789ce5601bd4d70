"""Escalation and stakeholder updates of open rollbacks, until someone acknowledges (`lastgood ack ID`).

A rollback is open while it runs, awaits approval, failed or was interrupted, and once restored-unhealthy. From
its creation (the incident's start), each of the file's escalation steps for its severity (`policy.escalation`,
`after` without an acknowledgement) is sent once to its channels, and a stakeholder update every
`policy.updates[severity]`. Each is claimed in the ledger before it is sent (`ledger/escalations.py`), so the
server's replicas and a `lastgood guard` process can all keep the timers: whoever claims a step sends it.
Time is the context's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from lastgood.config.durations import format_duration
from lastgood.config.policy import EscalationStep
from lastgood.domain.states import ESCALATING_ROLLBACK
from lastgood.errors import Refused, UnknownRollback
from lastgood.ledger import escalations, store
from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import RollbackRow
from lastgood.notify import message_from_rollback
from lastgood.runtime import notifications
from lastgood.runtime.context import EnvContext

SCAN_LIMIT = 50  # an environment's newest rollbacks looked at per tick
# A rollback left open and unacknowledged for a day after its last change (finished, started or created) is no
# longer escalated: a server started on an old ledger does not page anyone about last month's failed rollback.
GIVE_UP_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class Due:
    key: str  # escalation:N | update:N
    step: EscalationStep | None  # None: a stakeholder update
    note: str


class AckOutcome(BaseModel):
    id: str
    env: str
    status: str
    acknowledged_by: str
    acknowledged_at: datetime
    message: str


def severity_of(ctx: EnvContext, row: RollbackRow) -> str:
    return row.severity or ctx.runbook.policy.default_severity


def due_notices(ctx: EnvContext, row: RollbackRow, now: datetime) -> list[Due]:
    """What is due for this rollback now: every escalation step whose time has come, and the latest update."""
    policy = ctx.runbook.policy
    severity = severity_of(ctx, row)
    elapsed = (now - row.created_at).total_seconds()
    last_change = row.finished_at or row.started_at or row.created_at
    if (now - last_change).total_seconds() > GIVE_UP_AFTER:
        return []
    due = [
        Due(f"escalation:{index}", step, f"after {format_duration(step.after)} without acknowledgement")
        for index, step in enumerate(policy.escalation)
        if step.severity in (None, severity) and elapsed >= step.after
    ]
    every = policy.updates.get(severity)  # type: ignore[call-overload]
    if every and elapsed >= every:
        number = int(elapsed // every)
        due.append(Due(f"update:{number}", None, f"update {number}, every {format_duration(every)}"))
    return due


def escalate(ctx: EnvContext, rollback_id: str) -> list[str]:
    """Claim and send what is due for one rollback; the keys this caller sent."""
    now = ctx.clock.now()
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        if row.status not in ESCALATING_ROLLBACK or escalations.acknowledgement(session, rollback_id) is not None:
            return []
        claimed = [
            d for d in due_notices(ctx, row, now) if escalations.claim(session, row, d.key, ctx.actor.name, now, d.note)
        ]
        status = row.status
    for due in claimed:
        _send(ctx, rollback_id, due, status)
    return [d.key for d in claimed]


def tick(ctx: EnvContext) -> list[str]:
    """Escalate every open rollback of the environment; what was sent, as `ID:key`."""
    with ctx.session() as session:
        ids = [
            r.id for r in store.list_rollbacks(session, ctx.app, ctx.env, SCAN_LIMIT) if r.status in ESCALATING_ROLLBACK
        ]
    return [f"{rid}:{key}" for rid in ids for key in escalate(ctx, rid)]


def open_rollbacks(ledger: Ledger, apps: list[str]) -> list[tuple[str, str, str]]:
    """(app, env, id) of every open, unacknowledged rollback of `apps`: what the server's timer looks at."""
    with ledger.session() as session:
        query = select(RollbackRow.app, RollbackRow.env, RollbackRow.id).where(
            RollbackRow.app.in_(apps), RollbackRow.status.in_(list(ESCALATING_ROLLBACK))
        )
        rows = [(app, env, rid) for app, env, rid in session.execute(query)]
        acked = escalations.acknowledged(session, [rid for _, _, rid in rows])
    return [row for row in rows if row[2] not in acked]


def acknowledge(ctx: EnvContext, rollback_id: str, note: str = "") -> AckOutcome:
    """The actor takes the incident: no further escalation step or update is sent for it."""
    now = ctx.clock.now()
    with ctx.session() as session:
        row = _rollback(session, ctx, rollback_id)
        earlier = escalations.acknowledgement(session, rollback_id)
        if earlier is not None:
            raise Refused(
                f"rollback {rollback_id} was acknowledged already by {earlier.claimed_by} at "
                f"{earlier.claimed_at.isoformat()}; nothing was changed"
            )
        escalations.claim(session, row, escalations.ACK, ctx.actor.name, now, note or None)
        message = f"{rollback_id} acknowledged by {ctx.actor.name}: escalation and updates stop"
        store.add_event(session, ctx.app, ctx.env, "rollback-acknowledged", message, now, rollback_id, {"note": note})
        status = row.status
    ctx.dispatch.stop_updates(rollback_id)
    return AckOutcome(
        id=rollback_id, env=ctx.env, status=status, acknowledged_by=ctx.actor.name, acknowledged_at=now, message=message
    )


def escalation_view(ctx: EnvContext, rollback_id: str) -> dict[str, Any]:
    """What `show` and the API print: the acknowledgement, and each step or update sent (when, by whom)."""
    with ctx.session() as session:
        claims = escalations.claims_of(session, rollback_id)
    ack = next((c for c in claims if c.key == escalations.ACK), None)
    return {
        "acknowledged_by": ack.claimed_by if ack else None,
        "acknowledged_at": ack.claimed_at.isoformat() if ack else None,
        "sent": [
            {"key": c.key, "at": c.claimed_at.isoformat(), "by": c.claimed_by, "note": c.note}
            for c in claims
            if c.key != escalations.ACK
        ],
    }


def _rollback(session: Any, ctx: EnvContext, rollback_id: str) -> RollbackRow:
    row = store.get_rollback(session, rollback_id)
    if row.app != ctx.app or row.env != ctx.env:
        raise UnknownRollback(f"rollback {rollback_id} belongs to {row.app}/{row.env}, not {ctx.app}/{ctx.env}")
    return row


def _send(ctx: EnvContext, rollback_id: str, due: Due, status: str) -> None:
    facts = {**notifications.facts(ctx, rollback_id), "status": status}
    if due.step is None:
        message = message_from_rollback("status-update", facts, details=[due.note])
        notifications.send(ctx, message, rollback_id, due.key)
        return
    lines = notifications.contact_lines(ctx, due.step)
    message = message_from_rollback("escalation", facts, details=[due.note, *lines])
    notifications.send(ctx, message, rollback_id, due.key, channels=tuple(due.step.channels))
