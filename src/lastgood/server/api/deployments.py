"""Progressive deployments: start one (in the background), read one, promote, abort, pause or resume it."""

from __future__ import annotations

import itertools

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from lastgood.config.durations import parse_duration
from lastgood.errors import UnknownDeployment
from lastgood.server.api.params import DURATION_FORMS, AppName, EnvName, Id
from lastgood.server.auth import Operator, Viewer
from lastgood.server.confirm import check_phrase
from lastgood.server.deploying import DeploymentStarted, DeploymentView, resume_deploy, start_deploy, view_of
from lastgood.server.deps import State
from lastgood.server.state import ServerState
from lastgood.service.deploy import DeployRequest, act_on, deployment, deployment_where

router = APIRouter(tags=["deployments"])

MAX_PAUSE = 24 * 3600.0
MAX_WAIT = 600.0


def _seconds(value: str, maximum: float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"not a duration; expected {DURATION_FORMS}") from None
    if seconds > maximum:
        raise ValueError(f"at most {maximum:g}s")
    return seconds


class DeployBody(BaseModel):
    component: str = Field(min_length=1, max_length=128, description="A weighted component of the file.")
    version: str = Field(
        min_length=1,
        max_length=512,
        description="A Lambda version, a state machine version, a target group, a record set's SetIdentifier.",
    )
    steps: list[float] = Field(
        default=[10.0, 50.0, 100.0],
        min_length=1,
        max_length=20,
        description="Increasing percentages of traffic in (0, 100]; 100 is added when missing.",
    )
    pause: str = Field(default="5m", max_length=32, description="How long each step is watched, e.g. 5m.")
    release: str | None = Field(default=None, min_length=1, max_length=256, description="Default: the version.")
    allow_bad: bool = Field(default=False, description="Deploy a version whose release was marked bad.")
    confirm: str | None = Field(default=None, max_length=256, description="A protected environment's typed phrase.")

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps):
            raise ValueError(f"each step is a percentage in (0, 100], got {steps}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"the percentages must increase, got {steps}")
        return steps if steps[-1] == 100 else [*steps, 100.0]

    @field_validator("pause")
    @classmethod
    def _pause(cls, pause: str) -> str:
        _seconds(pause, MAX_PAUSE)
        return pause


class ActBody(BaseModel):
    wait: str = Field(default="30s", max_length=32, description="How long to wait for the deployment to act.")
    force: bool = Field(default=False, description="Act here, when the deployment's own process is gone.")

    @field_validator("wait")
    @classmethod
    def _wait(cls, wait: str) -> str:
        _seconds(wait, MAX_WAIT)
        return wait


def find_deployment(state: ServerState, deployment_id: str) -> tuple[str, str]:
    """(app, environment) of a deployment of a served app; UnknownDeployment (404) otherwise."""
    for app, runbook in state.apps.runbooks.items():
        try:
            found_app, env = deployment_where(runbook, deployment_id)
        except UnknownDeployment:
            continue
        if found_app == app:
            return app, env
    raise UnknownDeployment(f"no deployment {deployment_id!r} in the apps this server serves")


@router.post("/apps/{app}/environments/{env}/deployments", status_code=202, response_model=DeploymentStarted)
def post_deployment(app: AppName, env: EnvName, body: DeployBody, state: State, caller: Operator) -> JSONResponse:
    """Shift a weighted component's traffic to `version` step by step, each step judged by the file's triggers
    (and the canary judge); answered once the first shift is made (202), or with the outcome when it ended
    first; 409 while another operation holds the environment, naming the holder."""
    ctx = state.apps.env_context(app, env, caller.user)  # 404 for an unknown app or environment, before any job
    check_phrase(ctx.runbook, env, body.confirm, f"deploy to {env}")
    ask = DeployRequest(
        component=body.component,
        version=body.version,
        steps=body.steps,
        pause_seconds=parse_duration(body.pause),
        label=body.release,
        allow_bad=body.allow_bad,
    )
    started = start_deploy(state, app, env, caller.name, ask)
    code = 202 if started.status in ("running", "starting") else 200
    return JSONResponse(started.model_dump(mode="json"), status_code=code)


@router.get("/deployments/{deployment_id}")
def get_deployment(deployment_id: Id, state: State, caller: Viewer) -> DeploymentView:
    """Where the deployment is: its step, the share of traffic, each step's decision."""
    app, env = find_deployment(state, deployment_id)
    return view_of(deployment(state.apps.env_context(app, env, caller.user), deployment_id))


def _act(state: ServerState, deployment_id: str, what: str, body: ActBody, caller: Operator) -> DeploymentView:
    app, env = find_deployment(state, deployment_id)
    ctx = state.apps.env_context(app, env, caller.user)
    return view_of(act_on(ctx, deployment_id, what, body.force, parse_duration(body.wait)))


@router.post("/deployments/{deployment_id}/promote")
def promote(deployment_id: Id, state: State, caller: Operator, body: ActBody | None = None) -> DeploymentView:
    """All traffic to the new version now, its release live; the running deployment acts within a second.
    409 when the deployment has finished."""
    return _act(state, deployment_id, "promote", body or ActBody(), caller)


@router.post("/deployments/{deployment_id}/abort")
def abort(deployment_id: Id, state: State, caller: Operator, body: ActBody | None = None) -> DeploymentView:
    """All traffic back on the old version (a verified rollback), the release marked bad. 409 when finished."""
    return _act(state, deployment_id, "abort", body or ActBody(), caller)


@router.post("/deployments/{deployment_id}/pause")
def pause(deployment_id: Id, state: State, caller: Operator, body: ActBody | None = None) -> DeploymentView:
    """No further shift and no promotion: the traffic stays where the current step put it; the running deployment
    pauses within a second (one whose process is gone is paused here). 409 when it is not running."""
    return _act(state, deployment_id, "pause", body or ActBody(), caller)


@router.post("/deployments/{deployment_id}/resume", status_code=202, response_model=DeploymentStarted)
def resume(deployment_id: Id, state: State, caller: Operator) -> JSONResponse:
    """A paused deployment goes on from its current step in the background (202 once that step is shifted
    again; 200 with the outcome when it ended first); 409 when it is finished or another operation holds the
    environment."""
    app, env = find_deployment(state, deployment_id)
    started = resume_deploy(state, app, env, caller.name, deployment_id)
    code = 202 if started.status in ("running", "starting") else 200
    return JSONResponse(started.model_dump(mode="json"), status_code=code)
