"""Following work by its id: which rollback, deployment or release an id names, and where that work is now.

`find_work` tells the kinds apart (`rb-...` a rollback, `dp-...` a deployment, anything else a release label);
`work_state` is one reading of a rollback or a deployment from the ledger, the same for `watch` (a reading per
change), `show` and the API. A reading is `done` when the work has ended; its `exit_code` is then the code the
command doing the work exits with (rollback: 0 succeeded, 1 failed, 3 denied, declined or superseded, 130
interrupted; deployment: 0 promoted, 1 aborted or failed, 130 paused).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lastgood.config.models import Runbook
from lastgood.domain.states import DeploymentStatus, RollbackStatus
from lastgood.errors import BadInput, UnknownDeployment, UnknownRelease
from lastgood.ledger import store
from lastgood.ledger.tables import DeploymentRow, EventRow, ReleaseRow, RollbackRow
from lastgood.service.models import IsoTime, ReleaseSummary, release_summary
from lastgood.service.session import ledger_for

Kind = Literal["rollback", "deployment", "release"]

ROLLBACK_EXIT = {
    RollbackStatus.SUCCEEDED: 0,
    RollbackStatus.FAILED: 1,
    RollbackStatus.DENIED: 3,
    RollbackStatus.DECLINED: 3,
    RollbackStatus.SUPERSEDED: 3,
    RollbackStatus.INTERRUPTED: 130,
    RollbackStatus.RESTORED_UNHEALTHY: 6,  # ExitCode.RESTORED_UNHEALTHY
}
DEPLOYMENT_EXIT = {
    DeploymentStatus.PROMOTED: 0,
    DeploymentStatus.ABORTED: 1,
    DeploymentStatus.FAILED: 1,
    DeploymentStatus.PAUSED: 130,
}


class WorkRef(BaseModel):
    kind: Kind
    id: str
    app: str
    env: str


class StepState(BaseModel):
    name: str  # a rollback's component, a deployment's share of traffic ("10%")
    status: str  # pending | running | succeeded | unchanged | failed | paused | done
    detail: str = ""


class WorkState(BaseModel):
    """One reading of a rollback or a deployment."""

    kind: Kind
    id: str
    app: str
    env: str
    status: str
    done: bool
    exit_code: int | None  # set once done
    summary: str
    steps: list[StepState]
    last_event: str | None
    updated_at: IsoTime | None


class ReleaseDetail(BaseModel):
    env: str
    release: ReleaseSummary
    components: list[str]
    rollbacks: list[str]  # ids of the rollbacks to or from it
    deployments: list[str]  # ids of the deployments of it


def find_work(runbook: Runbook, ref: str, env: str | None = None) -> WorkRef:
    """What `ref` names in the file's ledger; a release label needs `env` when several environments have it."""
    with ledger_for(runbook).session() as session:
        if ref.startswith("rb-"):
            row = store.get_rollback(session, ref)
            return WorkRef(kind="rollback", id=ref, app=row.app, env=row.env)
        if ref.startswith("dp-"):
            deployment = session.get(DeploymentRow, ref)
            if deployment is None:
                raise UnknownDeployment(f"no deployment {ref!r} (deployment ids look like dp-1a2b3c4d5e)")
            return WorkRef(kind="deployment", id=ref, app=deployment.app, env=deployment.env)
        return _release_ref(session, runbook, ref, env)


def _release_ref(session: Session, runbook: Runbook, label: str, env: str | None) -> WorkRef:
    envs = [env] if env is not None else list(runbook.environments)
    query = select(ReleaseRow.env).filter_by(app=runbook.app, label=label).where(ReleaseRow.env.in_(envs))
    found = sorted(session.scalars(query))
    if not found:
        where = env or ", ".join(envs)
        raise UnknownRelease(
            f"{label!r} is not a rollback (rb-...), a deployment (dp-...) or a release of {runbook.app} in {where}"
        )
    if len(found) > 1:
        raise BadInput(f"release {label!r} exists in {', '.join(found)}: name one with --env")
    return WorkRef(kind="release", id=label, app=runbook.app, env=found[0])


def work_state(runbook: Runbook, ref: WorkRef) -> WorkState:
    with ledger_for(runbook).session() as session:
        if ref.kind == "rollback":
            return _rollback_state(session, store.get_rollback(session, ref.id))
        if ref.kind == "deployment":
            row = session.get(DeploymentRow, ref.id)
            if row is None:
                raise UnknownDeployment(f"no deployment {ref.id!r}")
            return _deployment_state(session, row)
    raise BadInput(f"{ref.id} is a release: it has no progress to follow (lastgood show {ref.id})")


def release_detail(runbook: Runbook, ref: WorkRef) -> ReleaseDetail:
    with ledger_for(runbook).session() as session:
        release = store.get_release(session, ref.app, ref.env, ref.id)
        live = store.live_release(session, ref.app, ref.env)
        rollbacks = select(RollbackRow.id).filter_by(app=ref.app, env=ref.env)
        touching = or_(RollbackRow.to_release_id == release.id, RollbackRow.from_release_id == release.id)
        rollbacks = rollbacks.where(touching)
        deployments = select(DeploymentRow.id).filter_by(app=ref.app, env=ref.env, release_label=release.label)
        return ReleaseDetail(
            env=ref.env,
            release=release_summary(release, live.id if live else None),
            components=[f"{c.component} ({c.kind})" for c in release.components],
            rollbacks=list(session.scalars(rollbacks.order_by(RollbackRow.created_at))),
            deployments=list(session.scalars(deployments.order_by(DeploymentRow.created_at))),
        )


def _rollback_state(session: Session, row: RollbackRow) -> WorkState:
    steps = [StepState(name=s.component, status=s.status, detail=s.error or s.detail or "") for s in row.steps]
    finished = sum(1 for s in row.steps if s.status in ("succeeded", "unchanged"))
    events = store.events_of(session, row.id)
    exit_code = ROLLBACK_EXIT.get(RollbackStatus(row.status))
    summary = f"rollback {row.id} in {row.env}: {row.status}, {finished} of {len(steps)} steps done"
    if row.error:
        summary += f" ({row.error})"
    return WorkState(
        kind="rollback",
        id=row.id,
        app=row.app,
        env=row.env,
        status=row.status,
        done=exit_code is not None,
        exit_code=exit_code,
        summary=summary,
        steps=steps,
        last_event=events[-1].message if events else None,
        updated_at=events[-1].at if events else row.created_at,
    )


def _deployment_state(session: Session, row: DeploymentRow) -> WorkState:
    exit_code = DEPLOYMENT_EXIT.get(DeploymentStatus(row.status))
    summary = (
        f"deployment {row.id} in {row.env}: {row.status}, {row.weight * 100:g}% of {row.component} "
        f"on version {row.to_version}"
    )
    if row.message:
        summary += f" ({row.message})"
    last = _last_deployment_event(session, row)
    return WorkState(
        kind="deployment",
        id=row.id,
        app=row.app,
        env=row.env,
        status=row.status,
        done=exit_code is not None,
        exit_code=exit_code,
        summary=summary,
        steps=_deployment_steps(row),
        last_event=last.message if last else None,
        updated_at=row.updated_at,
    )


def _deployment_steps(row: DeploymentRow) -> list[StepState]:
    decided = {int(d["step"]): str(d["decision"]) for d in row.decisions}
    out = []
    for index, percent in enumerate(row.steps):
        if index in decided:
            status = "done" if decided[index] in ("healthy", "not-the-cause") else "failed"
        elif index == row.current_step and row.status in (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED):
            status = "running" if row.status == DeploymentStatus.RUNNING else "paused"
        elif row.status == DeploymentStatus.PROMOTED:
            status = "done"
        else:
            status = "pending"
        out.append(StepState(name=f"{float(percent):g}%", status=status, detail=decided.get(index, "")))
    return out


def _last_deployment_event(session: Session, row: DeploymentRow) -> EventRow | None:
    query = select(EventRow).filter_by(app=row.app, env=row.env).where(EventRow.at >= row.created_at)
    query = query.where(EventRow.type.like("deploy-%")).order_by(EventRow.id.desc()).limit(50)
    return next((e for e in session.scalars(query) if e.data.get("deployment") == row.id), None)


def follow(
    runbook: Runbook,
    ref: WorkRef,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[WorkState]:
    """A reading each time the work changes (the first at once), until one that is done."""
    last: WorkState | None = None
    while True:
        now = work_state(runbook, ref)
        if now != last:
            yield now
            last = now
        if now.done:
            return
        sleep(interval)
