"""Guard periods and guard health in the ledger, shared by every replica.

A period is judged by whoever claims it first: the claim is an INSERT on the period's primary key (app, env,
release, period end), so a second worker's claim meets the key and judges nothing. Each environment's latest
`GuardHealth` is kept in `guard_watches`, so an API replica shows what a worker saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lastgood.ledger.tables import GuardPeriodRow, GuardWatchRow


def claim(session: Session, app: str, env: str, release_id: int, period_end: datetime, by: str, now: datetime) -> None:
    """Add the claim; the caller commits, and a second claim of the same period fails there (IntegrityError)."""
    session.add(
        GuardPeriodRow(app=app, env=env, release_id=release_id, period_end=period_end, claimed_by=by, claimed_at=now)
    )
    session.flush()


@dataclass(frozen=True)
class Claim:
    app: str
    env: str
    release_id: int
    period_end: datetime


def claim_many(session: Session, claims: list[Claim], by: str, now: datetime) -> set[Claim]:
    """Claim many periods in one statement (INSERT ... ON CONFLICT DO NOTHING RETURNING): the ones this caller
    claimed; a period another process claimed first is left out."""
    if not claims:
        return set()
    rows = [
        {"app": c.app, "env": c.env, "release_id": c.release_id, "period_end": c.period_end}
        | {"claimed_by": by, "claimed_at": now}
        for c in claims
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    row = GuardPeriodRow
    statement = insert(row).values(rows).on_conflict_do_nothing().returning(row.app, row.env, row.release_id)
    won = {(app, env, release) for app, env, release in session.execute(statement)}
    return {c for c in claims if (c.app, c.env, c.release_id) in won}


def finish_many(session: Session, finished: list[tuple[Claim, str]], now: datetime) -> None:
    """Each claimed period's outcome, in one executemany."""
    if finished:
        values = [
            {"app": c.app, "env": c.env, "release_id": c.release_id, "period_end": c.period_end}
            | {"finished_at": now, "outcome": outcome}
            for c, outcome in finished
        ]
        session.execute(update(GuardPeriodRow), values)


def finish(
    session: Session, app: str, env: str, release_id: int, period_end: datetime, outcome: str, now: datetime
) -> None:
    session.execute(
        update(GuardPeriodRow)
        .where(
            GuardPeriodRow.app == app,
            GuardPeriodRow.env == env,
            GuardPeriodRow.release_id == release_id,
            GuardPeriodRow.period_end == period_end,
        )
        .values(finished_at=now, outcome=outcome)
    )


def last_periods(session: Session, apps: list[str]) -> dict[tuple[str, str, int], datetime]:
    """The newest claimed period of every watched release of `apps`, in one query."""
    rows = session.execute(
        select(GuardPeriodRow.app, GuardPeriodRow.env, GuardPeriodRow.release_id, func.max(GuardPeriodRow.period_end))
        .where(GuardPeriodRow.app.in_(apps))
        .group_by(GuardPeriodRow.app, GuardPeriodRow.env, GuardPeriodRow.release_id)
    )
    return {(app, env, release): end for app, env, release, end in rows}


def periods_of(session: Session, app: str, env: str) -> list[tuple[int, datetime, str, str | None]]:
    """(release, period end, who judged it, outcome) of every period of one environment, oldest first."""
    rows = session.execute(
        select(GuardPeriodRow.release_id, GuardPeriodRow.period_end, GuardPeriodRow.claimed_by, GuardPeriodRow.outcome)
        .where(GuardPeriodRow.app == app, GuardPeriodRow.env == env)
        .order_by(GuardPeriodRow.period_end)
    )
    return [(r, end, by, outcome) for r, end, by, outcome in rows]


@dataclass(frozen=True)
class StoredWatch:
    app: str
    env: str
    release_id: int
    status: str
    health: dict[str, Any]
    updated_at: datetime


def save_watch(
    session: Session, app: str, env: str, release_id: int, status: str, health: dict[str, Any], now: datetime
) -> None:
    row = session.get(GuardWatchRow, (app, env), with_for_update=True)
    if row is None:
        session.add(
            GuardWatchRow(app=app, env=env, release_id=release_id, status=status, health=health, updated_at=now)
        )
    elif row.release_id < release_id or (row.release_id == release_id and row.status == "watching"):
        # an older release's last word never overwrites a newer one's, nor a late period the watch's end
        row.release_id, row.status, row.health, row.updated_at = release_id, status, health, now


def save_watches(session: Session, saved: list[tuple[str, str, int, str, dict[str, Any]]], now: datetime) -> None:
    """`save_watch` for many environments (app, env, release, status, health) in one locking read and one flush."""
    if not saved:
        return
    keys = sorted((app, env) for app, env, *_ in saved)  # locked in one order: two batches never deadlock
    rows = {
        (row.app, row.env): row
        for row in session.scalars(
            select(GuardWatchRow)
            .where(tuple_(GuardWatchRow.app, GuardWatchRow.env).in_(keys))
            .order_by(GuardWatchRow.app, GuardWatchRow.env)
            .with_for_update()
        )
    }
    for app, env, release_id, status, health in saved:
        row = rows.get((app, env))
        if row is None:
            session.add(
                GuardWatchRow(app=app, env=env, release_id=release_id, status=status, health=health, updated_at=now)
            )
        elif row.release_id < release_id or (row.release_id == release_id and row.status == "watching"):
            row.release_id, row.status, row.health, row.updated_at = release_id, status, health, now


def watches_of(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StoredWatch]:
    """The stored watches of many environments, in one query."""
    if not keys:
        return {}
    rows = session.scalars(
        select(GuardWatchRow)
        .where(tuple_(GuardWatchRow.app, GuardWatchRow.env).in_(keys))
        .execution_options(populate_existing=True)
    )
    return {(row.app, row.env): _stored(row) for row in rows}


def watch_of(session: Session, app: str, env: str) -> StoredWatch | None:
    row = session.get(GuardWatchRow, (app, env), populate_existing=True)
    return _stored(row) if row is not None else None


def watches(session: Session, apps: list[str]) -> dict[tuple[str, str], StoredWatch]:
    rows = session.scalars(select(GuardWatchRow).where(GuardWatchRow.app.in_(apps)))
    return {(row.app, row.env): _stored(row) for row in rows}


def _stored(row: GuardWatchRow) -> StoredWatch:
    return StoredWatch(row.app, row.env, row.release_id, row.status, dict(row.health), row.updated_at)
