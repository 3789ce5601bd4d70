"""Ending a deployment's run: promote (all traffic on the new version, its release live), abort (back to the
previous release through the planner and the executor: a recorded, verified rollback; the release marked bad),
or pause (traffic left where it is, resumable). And resuming: the paused or orphaned row running again.

The abort's rollback runs inside the deployment's hold on the environment: the executor claims nothing itself.
"""

from __future__ import annotations

from lastgood.domain.states import DeploymentStatus, RollbackStatus
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.listener import DeployListener
from lastgood.engine.deploy.models import Deployment, DeployResult
from lastgood.engine.deploy.shift import apply_share
from lastgood.engine.executor import Executor, Listener, RollbackResult
from lastgood.engine.planner import build_plan
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease

DONE = {DeploymentStatus.PROMOTED, DeploymentStatus.ABORTED, DeploymentStatus.FAILED}


def promote(
    ctx: EnvContext, deployment: Deployment, why: str, lease: Lease | None, listener: DeployListener
) -> DeployResult:
    if deployment.status in DONE:
        return DeployResult.of_deployment(deployment)
    apply_share(ctx, deployment, 100.0)
    with rows.editing(ctx, deployment.id, lease) as (session, row):
        release = store.get_release(session, ctx.app, ctx.env, row.release_label)
        store.set_live(session, ctx.app, ctx.env, release.id)
        rows.move(row, DeploymentStatus.PROMOTED)
        row.weight, row.finished_at, row.current_step = 1.0, ctx.clock.now(), len(row.steps) - 1
        row.message = f"{row.component} is on version {row.to_version}: {why}; release {release.label} is live"
        rows.event(ctx, session, row, "deploy-promoted", row.message)
        done = Deployment.of(row)
    listener.message(done.message)
    return DeployResult.of_deployment(done)


def abort(
    ctx: EnvContext,
    deployment: Deployment,
    why: str,
    lease: Lease | None,
    listener: DeployListener,
    rollback_listener: Listener | None = None,
) -> DeployResult:
    """Back to the previous release's state for this component, as a verified rollback; the release is bad."""
    if deployment.status in DONE:
        return DeployResult.of_deployment(deployment)
    listener.message(f"aborting {deployment.id}: {why}")
    rollback = _roll_back(ctx, deployment, why, rollback_listener)
    ok = rollback is None or rollback.status == RollbackStatus.SUCCEEDED
    with rows.editing(ctx, deployment.id, lease) as (session, row):
        rows.move(row, DeploymentStatus.ABORTED if ok else DeploymentStatus.FAILED)
        row.finished_at = ctx.clock.now()
        row.rollback_id = rollback.id if rollback else None
        if ok:
            row.weight = 0.0
            row.message = f"{row.component} is back on version {row.from_version}: {why}"
            release = store.get_release(session, ctx.app, ctx.env, row.release_label)
            if row.previous_release is not None:
                previous = store.get_release(session, ctx.app, ctx.env, row.previous_release)
                store.set_live(session, ctx.app, ctx.env, previous.id)
            if not release.bad:
                store.mark_bad(session, release, f"deployment {row.id} aborted: {why}", ctx.clock.now())
        else:
            assert rollback is not None
            row.message = f"the abort's rollback failed ({why}): {rollback.summary()}"
        rows.event(ctx, session, row, "deploy-aborted" if ok else "deploy-failed", row.message)
        done = Deployment.of(row)
    listener.message(done.message)
    return DeployResult.of_deployment(done, rollback)


def _roll_back(
    ctx: EnvContext, deployment: Deployment, why: str, rollback_listener: Listener | None
) -> RollbackResult | None:
    if deployment.previous_release is None:
        apply_share(ctx, deployment, 0.0)
        return None
    plan = build_plan(ctx, to=deployment.previous_release, only=[deployment.component])
    if not plan.steps:
        return None
    executor = Executor(ctx, rollback_listener)
    who = deployment.requested_by or "lastgood-deploy"
    rollback_id = executor.create(plan, reason=f"deployment {deployment.id} aborted: {why}", requested_by=who)
    return executor.run(rollback_id)


def pause(ctx: EnvContext, deployment_id: str, why: str, lease: Lease | None, listener: DeployListener) -> DeployResult:
    """Stop where it is: no further shift, the traffic split as the last step left it."""
    with rows.editing(ctx, deployment_id, lease) as (session, row):
        rows.move(row, DeploymentStatus.PAUSED)
        if row.requested == "pause":  # answered; a promote or abort request stands for whoever goes on
            row.requested = None
        paused = Deployment.of(row)
        row.message = (
            f"paused at {row.weight * 100:g}% of {row.component} on version {row.to_version} ({why}); "
            f"go on: {paused.resume_command()}, or: lastgood promote {row.env} / lastgood abort {row.env}"
        )
        rows.event(ctx, session, row, "deploy-paused", row.message)
        paused = Deployment.of(row)
    listener.message(paused.message)
    return DeployResult.of_deployment(paused)


def resume(ctx: EnvContext, deployment_id: str, lease: Lease, took_over: str | None) -> Deployment:
    """The paused or orphaned deployment runs again in this process (which holds the environment)."""
    with rows.editing(ctx, deployment_id, lease) as (session, row):
        was = row.status
        rows.move(row, DeploymentStatus.RUNNING)
        row.message = ""
        if row.requested == "pause":  # asked of a process that died before it paused
            row.requested = None
        whence = f"{was}" + (f"; its owner {took_over} is gone" if took_over else "")
        rows.event(ctx, session, row, "deploy-resumed", f"resumed by {ctx.actor.name} (was {whence})")
        return Deployment.of(row)
