"""Holding an environment: at most one rollback, deployment, stop or drill at a time, across processes and hosts.

The `holds` row is claimed in one transaction: created when absent, taken over when its lease has expired,
refused otherwise. SQLite serialises the transaction (BEGIN IMMEDIATE); on PostgreSQL the row is locked
FOR UPDATE, and two first claims racing on an absent row meet at the primary key (the loser retries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from lastgood.ledger.tables import HoldRow


@dataclass(frozen=True)
class Claim:
    operation: str
    subject: str
    actor: str
    via: str
    host: str
    pid: int
    token: str


def claim(
    session: Session, app: str, env: str, wanted: Claim, now: datetime, ttl: float
) -> tuple[HoldRow | None, dict[str, object] | None]:
    """Take the environment for `wanted`: (None, the expired claim taken over or None) when taken, else
    (the live holder, None) and nothing changed."""
    row = session.get(HoldRow, (app, env), with_for_update=True, populate_existing=True)
    previous = None
    if row is None:
        row = HoldRow(app=app, env=env, since=now)
        session.add(row)
    elif row.expires_at > now and row.token != wanted.token:
        return row, None
    else:
        previous = describe(row, now) if row.token != wanted.token else None
        row.since = now
    row.operation, row.subject, row.actor, row.via = wanted.operation, wanted.subject, wanted.actor, wanted.via
    row.host, row.pid, row.token = wanted.host, wanted.pid, wanted.token
    row.heartbeat_at, row.expires_at = now, now + timedelta(seconds=ttl)
    session.flush()
    return None, previous


def describe(row: HoldRow, now: datetime) -> dict[str, object]:
    """A claim as people and the API see it: what, who, where, since when, how alive."""
    return {
        "operation": row.operation,
        "id": row.subject,
        "actor": row.actor,
        "via": row.via,
        "host": row.host,
        "pid": row.pid,
        "since": row.since.isoformat(),
        "heartbeat_age_seconds": round((now - row.heartbeat_at).total_seconds(), 1),
        "lease_expires_in_seconds": round((row.expires_at - now).total_seconds(), 1),
    }


def renew(session: Session, app: str, env: str, token: str, now: datetime, ttl: float) -> bool:
    """Extend the lease; False when the claim is no longer ours (expired and taken over)."""
    query = (
        update(HoldRow)
        .where(HoldRow.app == app, HoldRow.env == env, HoldRow.token == token)
        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl))
    )
    return bool(session.execute(query).rowcount)  # type: ignore[attr-defined]


def holds(session: Session, app: str, env: str, token: str) -> bool:
    query = select(HoldRow.token).where(HoldRow.app == app, HoldRow.env == env, HoldRow.token == token)
    return session.scalar(query) is not None


def let_go(session: Session, app: str, env: str, token: str) -> None:
    session.execute(delete(HoldRow).where(HoldRow.app == app, HoldRow.env == env, HoldRow.token == token))


def holder(session: Session, app: str, env: str) -> HoldRow | None:
    return session.get(HoldRow, (app, env))


def holder_of(session: Session, subject: str) -> HoldRow | None:
    return session.scalar(select(HoldRow).where(HoldRow.subject == subject))
