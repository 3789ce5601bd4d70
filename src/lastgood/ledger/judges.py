"""Canary judges in the ledger: load one, and save it only over the version it was loaded at.

The save is a compare-and-set (`UPDATE ... WHERE key AND version`), so a guard and a deploy judging the same
canary never both feed a period: the second to save changes nothing and is told to reload. Two first saves
racing on an absent row meet at the primary key; the loser is told the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lastgood.ledger.tables import CanaryJudgeRow, DeploymentRow

UNFINISHED = ("running", "paused")


@dataclass(frozen=True)
class StoredJudge:
    state: dict[str, Any]
    next_start: datetime
    version: int


def load(session: Session, key: str) -> StoredJudge | None:
    row = session.get(CanaryJudgeRow, key, populate_existing=True)
    if row is None:
        return None
    return StoredJudge(dict(row.state), row.next_start, row.version)


def save(
    session: Session,
    key: str,
    app: str,
    env: str,
    state: dict[str, Any],
    next_start: datetime,
    expected: int,
    now: datetime,
) -> bool:
    """Write the judge when the stored version is `expected` (0: none yet); True when written."""
    if expected == 0:
        try:
            with session.begin_nested():
                session.add(
                    CanaryJudgeRow(
                        key=key, app=app, env=env, state=state, next_start=next_start, version=1, updated_at=now
                    )
                )
        except IntegrityError:
            return False
        return True
    result = session.execute(
        update(CanaryJudgeRow)
        .where(CanaryJudgeRow.key == key, CanaryJudgeRow.version == expected)
        .values(state=state, next_start=next_start, version=expected + 1, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def deployment_for(session: Session, app: str, env: str, component: str, canary: str, baseline: str) -> str | None:
    """The unfinished deployment shifting `component` from `baseline` to `canary`, if one is (its judge is the
    canary's judge, for a guard too)."""
    query = select(DeploymentRow.id).filter_by(app=app, env=env, component=component)
    query = query.filter_by(to_version=canary, from_version=baseline).where(DeploymentRow.status.in_(UNFINISHED))
    return session.scalars(query.order_by(DeploymentRow.created_at.desc())).first()
