"""Deployments started from the server: the job runs the whole deployment (hold, start, every step judged,
promote or abort); the request that started it answers once the first shift is made, or with the outcome
when it ended first, or with the refusal (held: 409; a version marked bad, an unfinished deployment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from lastgood.errors import LastgoodError
from lastgood.judge.base import TriggerVerdict
from lastgood.server.jobs import NoBackgroundWork, job
from lastgood.server.started import Waiters
from lastgood.server.state import ServerState
from lastgood.service.deploy import Deployer, Deployment, DeployRequest, DeployResult, new_deployment_id
from lastgood.sources.cloudwatch import CloudWatchSource

START_TIMEOUT = 60.0  # the start reads every component's live state and records the release


class DeploymentView(Deployment):
    """A deployment; with the abort's rollback once it has one, and the command that resumes a paused one."""

    rollback: dict[str, Any] | None = None
    resume: str | None = None


def view_of(deployment: Deployment | DeployResult) -> DeploymentView:
    if not isinstance(deployment, DeployResult):
        deployment = DeployResult.of_deployment(deployment)
    return DeploymentView.model_validate(deployment.to_dict())


class DeploymentStarted(BaseModel):
    id: str
    env: str
    status: str
    message: str
    deployment: DeploymentView | None


_waiters: Waiters[DeploymentView] = Waiters("deployments", DeploymentView)


class _FirstShift:
    """Tells the waiting request once the deployment has made its first shift."""

    def __init__(self, deployment_id: str) -> None:
        self.deployment_id = deployment_id

    def shifted(self, deployment: Deployment, step: int, percent: float) -> None:
        _waiters.signal(self.deployment_id, view_of(deployment))

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        pass

    def judged(self, decision: dict[str, Any]) -> None:
        pass

    def canary(self, state: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@job("deploy")
def deploy_job(state: ServerState, app: str, env: str, user: str, deployment_id: str, request: dict[str, Any]) -> Any:
    ctx = state.apps.env_context(app, env, user)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws), listener=_FirstShift(deployment_id), stop=state.stopping)
    return _signalled(deployment_id, lambda: deployer.deploy(DeployRequest.model_validate(request), deployment_id))


@job("resume-deployment")
def resume_job(state: ServerState, app: str, env: str, user: str, deployment_id: str) -> Any:
    """A paused deployment (or one whose process died) goes on from its current step, in this job."""
    ctx = state.apps.env_context(app, env, user)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws), listener=_FirstShift(deployment_id), stop=state.stopping)
    return _signalled(deployment_id, lambda: deployer.resume(deployment_id))


def _signalled(deployment_id: str, run: Callable[[], DeployResult]) -> Any:
    """Run the deployment, telling the waiting request of its end or its error (the first shift is told by
    `_FirstShift`)."""
    try:
        result = run()
    except LastgoodError as error:
        _waiters.signal(deployment_id, error=error)
        raise
    except Exception as error:
        _waiters.signal(deployment_id, error=LastgoodError(f"the deployment failed: {type(error).__name__}"))
        raise
    _waiters.signal(deployment_id, view_of(result))
    return result.to_dict()


def resume_deploy(state: ServerState, app: str, env: str, user: str, deployment_id: str) -> DeploymentStarted:
    """Resume as `user` in the background; answer once the current step is shifted again (or it ended)."""
    if state.jobs is None:
        raise NoBackgroundWork()
    with _waiters.waiting(deployment_id) as started:
        key = f"resume-deployment:{deployment_id}"
        state.jobs.submit("resume-deployment", key=key, app=app, env=env, user=user, deployment_id=deployment_id)
        view = started.wait(START_TIMEOUT)
    if view is None:
        return DeploymentStarted(id=deployment_id, env=env, status="starting", message="resuming", deployment=None)
    return DeploymentStarted(id=view.id, env=env, status=str(view.status), message=view.message, deployment=view)


def start_deploy(state: ServerState, app: str, env: str, user: str, ask: DeployRequest) -> DeploymentStarted:
    """Deploy as `user` in the background; answer once the first shift is made (or the deployment ended)."""
    if state.jobs is None:
        raise NoBackgroundWork()
    deployment_id = new_deployment_id()
    with _waiters.waiting(deployment_id) as started:
        state.jobs.submit(
            "deploy",
            key=f"deploy:{deployment_id}",
            app=app,
            env=env,
            user=user,
            deployment_id=deployment_id,
            request=ask.model_dump(mode="json"),
        )
        view = started.wait(START_TIMEOUT)
    if view is None:
        starting = "still starting"
        return DeploymentStarted(id=deployment_id, env=env, status="starting", message=starting, deployment=None)
    shown = f"{view.weight * 100:g}% of {view.component} on version {view.to_version}"
    message = shown if view.status == "running" else view.message
    return DeploymentStarted(id=view.id, env=env, status=str(view.status), message=message, deployment=view)
