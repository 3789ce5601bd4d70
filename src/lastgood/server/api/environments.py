"""Apps and environments: what is live, who holds it, the last rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.server.state import ServerState
from lastgood.service.access import User
from lastgood.service.status import EnvironmentStatus, environment_status

router = APIRouter(tags=["apps"])


class AppSummary(BaseModel):
    app: str
    environments: list[str]


class AppList(BaseModel):
    apps: list[AppSummary]


class EnvironmentView(EnvironmentStatus):
    """The environment's status; `guard`: the always-on guard's health of it, when a guard watches it."""

    guard: dict[str, Any] | None = None


class EnvironmentList(BaseModel):
    app: str
    environments: list[EnvironmentView]


def environment_view(state: ServerState, app: str, env: str, user: User) -> EnvironmentView:
    status = environment_status(state.apps.env_context(app, env, user))
    return EnvironmentView(**status.model_dump())


@router.get("/apps")
def list_apps(state: State, caller: Viewer) -> AppList:
    """Every app the server serves and its environments."""
    return AppList(apps=[AppSummary(app=a, environments=state.apps.environments(a)) for a in state.apps.runbooks])


@router.get("/apps/{app}")
def get_app(app: str, state: State, caller: Viewer) -> AppSummary:
    return AppSummary(app=app, environments=state.apps.environments(app))


@router.get("/apps/{app}/environments")
def list_environments(app: str, state: State, caller: Viewer) -> EnvironmentList:
    """Every environment of the app: live release, holder, last rollback, active stop. Reads the ledger only."""
    views = [environment_view(state, app, env, caller.user) for env in state.apps.environments(app)]
    return EnvironmentList(app=app, environments=views)


@router.get("/apps/{app}/environments/{env}")
def get_environment(app: str, env: str, state: State, caller: Viewer) -> EnvironmentView:
    """The live release, the operation holding the environment, the last rollback, an active stop."""
    return environment_view(state, app, env, caller.user)
