"""The deployment's row in the ledger: read it, ask it to promote or abort, and change it under the lease.

Every status change goes through `domain.states.transition` with `DEPLOYMENT_TRANSITIONS`; every write of
the process that holds the environment checks its lease in the same transaction, so a process whose claim
expired and was taken over stops instead of writing over the new owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.domain.states import DEPLOYMENT_TRANSITIONS, UNFINISHED_DEPLOYMENT, DeploymentStatus, transition
from lastgood.engine.deploy.models import Deployment
from lastgood.errors import BadInput, Refused
from lastgood.ledger import store
from lastgood.ledger.tables import DeploymentRow
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease


def new_id() -> str:
    return "dp-" + uuid.uuid4().hex[:10]


def load(session: Session, deployment_id: str) -> DeploymentRow:
    row = session.get(DeploymentRow, deployment_id)
    if row is None:
        raise Refused(f"no deployment {deployment_id!r}")
    return row


def get(ctx: EnvContext, deployment_id: str) -> Deployment:
    with ctx.session() as session:
        return Deployment.of(load(session, deployment_id))


def unfinished(ctx: EnvContext, component: str | None = None) -> list[Deployment]:
    """Running or paused deployments in the environment (of `component`, when given), newest first."""
    with ctx.session() as session:
        query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env)
        query = query.where(DeploymentRow.status.in_([str(s) for s in UNFINISHED_DEPLOYMENT]))
        if component is not None:
            query = query.filter_by(component=component)
        return [Deployment.of(r) for r in session.scalars(query.order_by(DeploymentRow.created_at.desc()))]


def the_unfinished(ctx: EnvContext, component: str | None = None) -> Deployment:
    """The one running or paused deployment (of `component`, when given)."""
    rows = unfinished(ctx, component)
    if not rows:
        what = f" of {component}" if component else ""
        raise Refused(f"no deployment{what} is running or paused in {ctx.env}")
    if len(rows) > 1:
        names = ", ".join(f"{r.id} ({r.component}, {r.status})" for r in rows)
        raise BadInput(f"more than one deployment is unfinished in {ctx.env}: {names}; name one with --component")
    return rows[0]


def listing(ctx: EnvContext, limit: int = 20) -> list[Deployment]:
    with ctx.session() as session:
        query = select(DeploymentRow).filter_by(app=ctx.app, env=ctx.env)
        return [Deployment.of(r) for r in session.scalars(query.order_by(DeploymentRow.created_at.desc()).limit(limit))]


def request(ctx: EnvContext, deployment_id: str, what: str) -> Deployment:
    """A person asks the deployment to promote now, abort or pause: its running process acts within a poll slice
    (a paused one, when it is resumed, or whoever finishes it directly)."""
    assert what in ("promote", "abort", "pause")
    who = ctx.actor.name
    with ctx.session() as session:
        row = load(session, deployment_id)
        if row.status not in UNFINISHED_DEPLOYMENT:
            raise Refused(f"deployment {row.id} is {row.status}; nothing to {what}")
        if what == "pause" and row.status == DeploymentStatus.PAUSED:
            raise Refused(f"deployment {row.id} is paused already; go on with: lastgood resume {row.id}")
        row.requested, row.requested_by, row.updated_at = what, who, ctx.clock.now()
        message = f"deployment {row.id} ({row.component} -> version {row.to_version}): {what} requested by {who}"
        store.add_event(
            session, ctx.app, ctx.env, f"deploy-{what}-requested", message, ctx.clock.now(), data={"deployment": row.id}
        )
        return Deployment.of(row)


@contextmanager
def editing(ctx: EnvContext, deployment_id: str, lease: Lease | None) -> Iterator[tuple[Session, DeploymentRow]]:
    """A transaction on the row, refused (LeaseLost) when this process no longer holds the environment."""
    with ctx.session() as session:
        if lease is not None:
            lease.check(session)
        row = load(session, deployment_id)
        row.updated_at = ctx.clock.now()
        yield session, row


def move(row: DeploymentRow, to: DeploymentStatus) -> None:
    transition(row, to, DEPLOYMENT_TRANSITIONS)


def event(
    ctx: EnvContext,
    session: Session,
    row: DeploymentRow,
    type_: str,
    message: str,
    extra: dict[str, Any] | None = None,
) -> None:
    store.add_event(
        session,
        ctx.app,
        ctx.env,
        type_,
        f"deployment {row.id}: {message}",
        ctx.clock.now(),
        row.rollback_id,
        data={**data(row), **(extra or {})},
    )


def data(row: DeploymentRow) -> dict[str, Any]:
    return {
        "deployment": row.id,
        "component": row.component,
        "from_version": row.from_version,
        "to_version": row.to_version,
        "release": row.release_label,
        "weight": row.weight,
    }
