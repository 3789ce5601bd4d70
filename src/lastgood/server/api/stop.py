"""The emergency stop of an environment and its release, each holding the environment while it acts."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from lastgood.server.api.params import AppName, EnvName, duration
from lastgood.server.auth import Operator
from lastgood.server.confirm import check_phrase
from lastgood.server.deps import State
from lastgood.service import stop as emergency
from lastgood.service.stop import StopOutcome

router = APIRouter(tags=["stop"])

MAX_WAIT = 600.0


class StopBody(BaseModel):
    confirm: str | None = Field(
        default=None, max_length=256, description="A protected environment's typed phrase: stop-ENV."
    )
    wait: str | None = Field(
        default=None, max_length=32, description="Queue this long behind the operation holding the environment."
    )

    @field_validator("wait")
    @classmethod
    def _wait(cls, wait: str | None) -> str | None:
        if wait is not None:
            try:
                duration("wait", wait, MAX_WAIT)
            except Exception as error:  # BadInput, as a validation error (422) here
                raise ValueError(str(error)) from None
        return wait


def _wait(body: StopBody | None) -> float | None:
    return duration("wait", body.wait, MAX_WAIT) if body is not None and body.wait is not None else None


@router.post("/apps/{app}/environments/{env}/stop")
def post_stop(app: AppName, env: EnvName, state: State, caller: Operator, body: StopBody | None = None) -> StopOutcome:
    """Cut all traffic: API Gateway stages throttled to 0, kill-switch flags off, each state saved. A protected
    environment needs `confirm: stop-ENV`. 409 while another operation holds the environment, or when it is
    already stopped; 400 when nothing in the file can be stopped."""
    ctx = state.apps.env_context(app, env, caller.user)
    check_phrase(ctx.runbook, env, body.confirm if body else None, f"stop {env}", phrase=f"stop-{env}")
    return emergency.stop(ctx, _wait(body))


@router.post("/apps/{app}/environments/{env}/stop/release")
def post_release(
    app: AppName, env: EnvName, state: State, caller: Operator, body: StopBody | None = None
) -> StopOutcome:
    """Undo the active stop exactly, from the states it saved. 409 when there is no active stop, or while
    another operation holds the environment."""
    ctx = state.apps.env_context(app, env, caller.user)
    return emergency.release(ctx, _wait(body))
