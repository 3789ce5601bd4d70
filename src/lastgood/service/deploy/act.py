"""A person's promote or abort. While the deployment's own process holds the environment, the request is
written to its row and that process acts on it within a poll slice; this waits for the outcome. A paused
deployment, or one whose process is gone (no live claim), is finished here, under a hold of its own."""

from __future__ import annotations

import time

from lastgood.domain.states import DeploymentStatus
from lastgood.engine.deploy import finish, rows
from lastgood.engine.deploy.listener import DeployListener, QuietDeployListener
from lastgood.engine.deploy.models import Deployment, DeployResult
from lastgood.engine.executor import Listener
from lastgood.errors import Refused
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import current_holder, hold

POLL = 0.2


def act(
    ctx: EnvContext,
    component: str | None,
    what: str,
    force: bool,
    wait: float,
    listener: DeployListener | None = None,
    rollback_listener: Listener | None = None,
) -> DeployResult:
    """`what` is promote, abort or pause; `force` acts here (refused while the deploy process holds the
    environment). A paused deployment neither shifts nor promotes until it is resumed."""
    deployment = rows.the_unfinished(ctx, component)
    quiet = listener or QuietDeployListener()
    if what == "pause" and deployment.status == DeploymentStatus.PAUSED:
        raise Refused(f"deployment {deployment.id} is paused already; go on with: lastgood resume {deployment.id}")
    if _owned(ctx, deployment.id) and not force and deployment.status == DeploymentStatus.RUNNING:
        rows.request(ctx, deployment.id, what)
        quiet.message(f"{what} requested for deployment {deployment.id}; waiting for its `deploy` process")
        ended = _await(ctx, deployment, what, wait)
        if ended is not None:
            return ended
        quiet.message(f"the `deploy` process of {deployment.id} is gone (its lease expired): acting here")
    with hold(ctx, "deploy", deployment.id) as lease:
        if what == "pause":
            return finish.pause(ctx, deployment.id, f"paused by {ctx.actor.name}", lease, quiet)
        if what == "promote":
            return finish.promote(ctx, _asked(ctx, deployment.id, what), _why(ctx, what), lease, quiet)
        asked = _asked(ctx, deployment.id, what)
        return finish.abort(ctx, asked, _why(ctx, what), lease, quiet, rollback_listener)


def act_on(
    ctx: EnvContext, deployment_id: str, what: str, force: bool, wait: float, listener: DeployListener | None = None
) -> DeployResult:
    """`act` on the deployment named by id: refused (409) unless it is the unfinished one of its component."""
    named = rows.get(ctx, deployment_id)
    if named.status not in (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED):
        raise Refused(f"deployment {deployment_id} is {named.status}; nothing to {what}")
    return act(ctx, named.component, what, force, wait, listener)


def _asked(ctx: EnvContext, deployment_id: str, what: str) -> Deployment:
    return rows.request(ctx, deployment_id, what)


def _why(ctx: EnvContext, what: str) -> str:
    return f"{what}{'ed' if what == 'abort' else 'd'} by {ctx.actor.name} (directly)"


def _owned(ctx: EnvContext, deployment_id: str) -> bool:
    """Whether the deployment's own process holds the environment (its lease live)."""
    holder = current_holder(ctx)
    return holder is not None and holder["operation"] == "deploy" and holder["id"] == deployment_id


def _await(ctx: EnvContext, deployment: Deployment, what: str, wait: float) -> DeployResult | None:
    """The deployment once its process has acted; None when that process is gone (no live claim, still running)."""
    deadline = time.monotonic() + wait
    while True:
        current = rows.get(ctx, deployment.id)
        if current.status != DeploymentStatus.RUNNING:
            return DeployResult.of_deployment(current)
        if not _owned(ctx, deployment.id):  # it may have finished and let go just now: read once more
            current = rows.get(ctx, deployment.id)
            return None if current.status == DeploymentStatus.RUNNING else DeployResult.of_deployment(current)
        if time.monotonic() >= deadline:
            raise Refused(
                f"the `deploy` process of {deployment.id} has not acted on the {what} request within {wait:g}s "
                f"(the request stands); if that process is gone, run: lastgood {what} {deployment.env} "
                f"-c {deployment.component} --force"
            )
        time.sleep(POLL)
