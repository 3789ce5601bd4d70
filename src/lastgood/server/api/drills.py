"""Rollback drills: start one (in the background), list them, read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from lastgood.server.api.params import AppName, EnvName, Id
from lastgood.server.auth import Operator, Viewer
from lastgood.server.deps import State
from lastgood.server.drilling import DrillStarted, start_drill
from lastgood.service.drill import DrillView, drill, drills

router = APIRouter(tags=["drills"])


class DrillList(BaseModel):
    env: str
    drills: list[DrillView]


@router.post("/apps/{app}/environments/{env}/drills", status_code=202, response_model=DrillStarted)
def post_drill(app: AppName, env: EnvName, state: State, caller: Operator) -> JSONResponse:
    """Record, make the file's bad change, let the guard catch it, roll back, compare times with the targets;
    answered once the drill holds the environment (202). 409 on a protected environment (unless the policy
    allows drills there) or while another operation holds it; 400 when the file has no triggers for it."""
    started = start_drill(state, app, env, caller.name)
    return JSONResponse(started.model_dump(mode="json"), status_code=202)


@router.get("/apps/{app}/environments/{env}/drills")
def list_drills(
    app: AppName,
    env: EnvName,
    state: State,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DrillList:
    """Newest first, running or finished."""
    return DrillList(env=env, drills=drills(state.apps.env_context(app, env, caller.user), limit, offset))


@router.get("/apps/{app}/environments/{env}/drills/{drill_id}")
def get_drill(app: AppName, env: EnvName, drill_id: Id, state: State, caller: Viewer) -> DrillView:
    return drill(state.apps.env_context(app, env, caller.user), drill_id)
