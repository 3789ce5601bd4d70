"""Escalation steps, stakeholder updates and acknowledgements of rollbacks, each claimed once in the ledger.

A claim is an INSERT on (rollback, key): a second worker or guard that claims the same step meets the key
(IntegrityError, in its own savepoint) and sends nothing, as guard_periods does for periods.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lastgood.ledger.tables import EscalationRow, RollbackRow

ACK = "ack"


def claim(session: Session, rollback: RollbackRow, key: str, by: str, now: datetime, note: str | None = None) -> bool:
    """True when this caller claimed `key` for the rollback; False when someone had."""
    try:
        with session.begin_nested():
            session.add(
                EscalationRow(
                    rollback_id=rollback.id,
                    key=key,
                    app=rollback.app,
                    env=rollback.env,
                    claimed_by=by,
                    claimed_at=now,
                    note=note,
                )
            )
    except IntegrityError:
        return False
    return True


def claims_of(session: Session, rollback_id: str) -> list[EscalationRow]:
    query = select(EscalationRow).where(EscalationRow.rollback_id == rollback_id).order_by(EscalationRow.claimed_at)
    return list(session.scalars(query))


def acknowledgement(session: Session, rollback_id: str) -> EscalationRow | None:
    return session.get(EscalationRow, (rollback_id, ACK))


def acknowledged(session: Session, rollback_ids: list[str]) -> dict[str, EscalationRow]:
    if not rollback_ids:
        return {}
    query = select(EscalationRow).where(EscalationRow.rollback_id.in_(rollback_ids), EscalationRow.key == ACK)
    return {row.rollback_id: row for row in session.scalars(query)}
