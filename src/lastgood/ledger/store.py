"""Plain functions over a Session: releases, the live pointer, rollbacks, steps and the event timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only

from lastgood.config.messages import did_you_mean
from lastgood.domain.state import State, state_hash
from lastgood.errors import BadInput, UnknownRelease, UnknownRollback
from lastgood.ledger import audit
from lastgood.ledger.tables import (
    ApprovalRow,
    EnvironmentRow,
    EventRow,
    ReleaseComponentRow,
    ReleaseRow,
    RollbackRow,
    StepRow,
)
from lastgood.redact import redact


def record_release(
    session: Session,
    app: str,
    env: str,
    label: str,
    states: dict[str, tuple[str, State]],
    by: str,
    at: datetime,
) -> ReleaseRow:
    """Store a release and make it the live one."""
    if release_exists(session, app, env, label):
        raise BadInput(f"release {label!r} already exists in {env}; releases are immutable, use a new label")
    release = ReleaseRow(app=app, env=env, label=label, recorded_at=at, recorded_by=by, bad=False)
    for component, (kind, state) in states.items():
        release.components.append(
            ReleaseComponentRow(component=component, kind=kind, state=state, state_hash=state_hash(state))
        )
    session.add(release)
    session.flush()
    set_live(session, app, env, release.id)
    add_event(session, app, env, "release-recorded", f"release {label} recorded ({len(states)} components)", at)
    return release


def release_exists(session: Session, app: str, env: str, label: str) -> bool:
    """One lookup in the label's unique index, however many releases there are."""
    query = select(ReleaseRow.id).filter_by(app=app, env=env, label=label).limit(1)
    return session.scalar(query) is not None


def list_releases(
    session: Session, app: str, env: str, limit: int | None = None, offset: int = 0, bad: bool | None = None
) -> list[ReleaseRow]:
    """Newest first; a page of them with `limit` and `offset`; only those marked bad (or not) with `bad`."""
    query = select(ReleaseRow).filter_by(app=app, env=env).order_by(ReleaseRow.id.desc())
    if bad is not None:
        query = query.where(ReleaseRow.bad == bad)
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_releases(session: Session, app: str, env: str, at_most: int | None = None) -> int:
    """How many releases the environment has; with `at_most`, no more than that are counted (an index range
    that stops there, so the cost is bounded however many there are)."""
    query = select(ReleaseRow.id).filter_by(app=app, env=env).limit(at_most).subquery()
    return int(session.scalar(select(func.count()).select_from(query)) or 0)


HINT_LABELS = 1000
"""The newest labels a misspelt one is compared with: a hint, not a scan of every release."""


def get_release(session: Session, app: str, env: str, label: str) -> ReleaseRow:
    release = session.scalar(select(ReleaseRow).filter_by(app=app, env=env, label=label))
    if release is None:
        labels = list(
            session.scalars(
                select(ReleaseRow.label).filter_by(app=app, env=env).order_by(ReleaseRow.id.desc()).limit(HINT_LABELS)
            )
        )
        known = f" (known: {', '.join(labels[:10])})" if labels else " (none recorded yet)"
        hint = did_you_mean(label, labels) or known
        raise UnknownRelease(f"no release {label!r} in {app}/{env}{hint}")
    return release


def live_release(session: Session, app: str, env: str) -> ReleaseRow | None:
    row = session.get(EnvironmentRow, (app, env))
    if row is None or row.live_release_id is None:
        return None
    return session.get(ReleaseRow, row.live_release_id)


def set_live(session: Session, app: str, env: str, release_id: int) -> None:
    row = session.get(EnvironmentRow, (app, env))
    if row is None:
        session.add(EnvironmentRow(app=app, env=env, live_release_id=release_id))
    else:
        row.live_release_id = release_id


def mark_bad(session: Session, release: ReleaseRow, reason: str, at: datetime) -> None:
    release.bad = True
    release.bad_reason = reason
    release.marked_bad_at = at
    add_event(session, release.app, release.env, "release-marked-bad", f"release {release.label}: {reason}", at)


def rollback_target(session: Session, app: str, env: str) -> ReleaseRow | None:
    """The newest release not marked bad that is older than the live one."""
    live = live_release(session, app, env)
    if live is None:
        return None
    query = (
        select(ReleaseRow)
        .filter_by(app=app, env=env, bad=False)
        .where(ReleaseRow.id < live.id)
        .order_by(ReleaseRow.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def new_rollback_id() -> str:
    return "rb-" + uuid.uuid4().hex[:10]


def get_rollback(session: Session, rollback_id: str) -> RollbackRow:
    rollback = session.get(RollbackRow, rollback_id)
    if rollback is None:
        recent = list(session.scalars(select(RollbackRow.id).order_by(RollbackRow.created_at.desc()).limit(5)))
        hint = did_you_mean(rollback_id, recent) or (f" (recent: {', '.join(recent)})" if recent else "")
        raise UnknownRollback(f"no rollback {rollback_id!r}{hint}")
    return rollback


def list_rollbacks(session: Session, app: str, env: str, limit: int = 20) -> list[RollbackRow]:
    query = select(RollbackRow).filter_by(app=app, env=env).order_by(RollbackRow.created_at.desc()).limit(limit)
    return list(session.scalars(query))


def rollback_approvals(session: Session, rollback_id: str) -> list[ApprovalRow]:
    query = select(ApprovalRow).filter_by(rollback_id=rollback_id).order_by(ApprovalRow.id)
    return list(session.scalars(query))


def get_step(session: Session, rollback_id: str, component: str) -> StepRow:
    step = session.scalar(select(StepRow).filter_by(rollback_id=rollback_id, component=component))
    if step is None:
        raise UnknownRollback(f"rollback {rollback_id} has no step for {component!r}")
    return step


def get_steps(session: Session, rollback_id: str, components: list[str]) -> list[StepRow]:
    """The steps with what their transitions read (component, status, attempts): the JSON columns a batch of
    transitions only overwrites or never touches are not loaded and decoded (loaded on access if read)."""
    query = (
        select(StepRow)
        .where(StepRow.rollback_id == rollback_id, StepRow.component.in_(components))
        .options(load_only(StepRow.component, StepRow.status, StepRow.attempts))
    )
    steps = list(session.scalars(query))
    if len(steps) != len(set(components)):
        missing = set(components) - {s.component for s in steps}
        raise UnknownRollback(f"rollback {rollback_id} has no step for {sorted(missing)}")
    return steps


def add_event(
    session: Session,
    app: str,
    env: str,
    type: str,
    message: str,
    at: datetime,
    rollback_id: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Append to the timeline, which is also the audit chain. Secret values are masked first."""
    audit.append(session, new_event(session, app, env, type, message, at, rollback_id, data, actor))


def new_event(
    session: Session,
    app: str,
    env: str,
    type: str,
    message: str,
    at: datetime,
    rollback_id: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
) -> EventRow:
    """An event for `add_events`, secret values masked, signed by the session's actor unless `actor` is given."""
    return EventRow(
        app=app,
        env=env,
        rollback_id=rollback_id,
        at=at,
        type=type,
        message=redact(message),
        data=redact(data or {}),
        actor=actor or session.info.get("actor") or "lastgood",
    )


def add_events(session: Session, rows: list[EventRow]) -> None:
    """Append several events to the timeline in one go: the chain's head is read once."""
    audit.append_all(session, rows)


def events_of(session: Session, rollback_id: str) -> list[EventRow]:
    query = select(EventRow).filter_by(rollback_id=rollback_id).order_by(EventRow.id)
    return list(session.scalars(query))


def events_since(session: Session, app: str, env: str, after_id: int = 0) -> list[EventRow]:
    query = select(EventRow).filter_by(app=app, env=env).where(EventRow.id > after_id).order_by(EventRow.id)
    return list(session.scalars(query))
