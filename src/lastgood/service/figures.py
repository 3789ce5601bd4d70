"""Figures from the ledger for the server's /metrics: rollbacks by outcome, rollback and step durations,
notification failures. Read at scrape time, so what the CLI and other servers did counts too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import EventRow, RollbackRow, StepRow


@dataclass(frozen=True)
class Count:
    labels: tuple[str, ...]
    value: int


@dataclass(frozen=True)
class Duration:
    labels: tuple[str, ...]
    seconds: float


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return max(0.0, (end - start).total_seconds()) if start is not None and end is not None else 0.0


def rollback_outcomes(ledger: Ledger, apps: list[str]) -> list[Count]:
    """(app, env, status) -> how many rollbacks."""
    query = (
        select(RollbackRow.app, RollbackRow.env, RollbackRow.status, func.count())
        .where(RollbackRow.app.in_(apps))
        .group_by(RollbackRow.app, RollbackRow.env, RollbackRow.status)
    )
    with ledger.session() as session:
        return [Count((app, env, status), int(n)) for app, env, status, n in session.execute(query)]


def rollback_durations(ledger: Ledger, apps: list[str]) -> list[Duration]:
    """(app, env, status): seconds from start to finish of every finished rollback."""
    query = select(
        RollbackRow.app, RollbackRow.env, RollbackRow.status, RollbackRow.started_at, RollbackRow.finished_at
    ).where(RollbackRow.app.in_(apps), RollbackRow.started_at.is_not(None), RollbackRow.finished_at.is_not(None))
    with ledger.session() as session:
        return [
            Duration((app, env, status), _seconds(start, end))
            for app, env, status, start, end in session.execute(query)
        ]


def step_durations(ledger: Ledger, apps: list[str]) -> list[Duration]:
    """(app, kind, status): seconds of every finished step."""
    query = (
        select(RollbackRow.app, StepRow.kind, StepRow.status, StepRow.started_at, StepRow.finished_at)
        .join(RollbackRow, RollbackRow.id == StepRow.rollback_id)
        .where(RollbackRow.app.in_(apps), StepRow.started_at.is_not(None), StepRow.finished_at.is_not(None))
    )
    with ledger.session() as session:
        return [
            Duration((app, kind, status), _seconds(start, end))
            for app, kind, status, start, end in session.execute(query)
        ]


def notification_failures(ledger: Ledger, apps: list[str]) -> list[Count]:
    """(app, env) -> notifications that failed after their retries (`notify-failed` in the timeline)."""
    query = (
        select(EventRow.app, EventRow.env, func.count())
        .where(EventRow.app.in_(apps), EventRow.type == "notify-failed")
        .group_by(EventRow.app, EventRow.env)
    )
    with ledger.session() as session:
        return [Count((app, env), int(n)) for app, env, n in session.execute(query)]
