"""Apps and environments: what is live, who holds it, the last rollback."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.server.state import ServerState
from lastgood.service.access import User
from lastgood.service.status import EnvironmentStatus, environment_status
from lastgood.service.watching import stored_health

router = APIRouter(tags=["apps"])


class AppSummary(BaseModel):
    app: str
    environments: list[str]


class AppList(BaseModel):
    apps: list[AppSummary]


class EnvironmentList(BaseModel):
    app: str
    environments: list[EnvironmentStatus]


def environment_view(state: ServerState, app: str, env: str, user: User) -> EnvironmentStatus:
    """The environment's status, with the server's guard of its live release when one watches it."""
    status = environment_status(state.apps.env_context(app, env, user))
    status.guard = stored_health(state.apps.ledger_of(app), app, env)
    return status


@router.get("/apps")
def list_apps(state: State, caller: Viewer) -> AppList:
    """Every app the server serves and its environments."""
    return AppList(apps=[AppSummary(app=a, environments=state.apps.environments(a)) for a in state.apps.runbooks])


@router.get("/apps/{app}")
def get_app(app: str, state: State, caller: Viewer) -> AppSummary:
    return AppSummary(app=app, environments=state.apps.environments(app))


@router.get("/apps/{app}/environments")
def list_environments(app: str, state: State, caller: Viewer) -> EnvironmentList:
    """Every environment of the app: live release, holder, last rollback, active stop, the server's guard.
    Reads the ledger only."""
    views = [environment_view(state, app, env, caller.user) for env in state.apps.environments(app)]
    return EnvironmentList(app=app, environments=views)


@router.get("/apps/{app}/environments/{env}")
def get_environment(app: str, env: str, state: State, caller: Viewer) -> EnvironmentStatus:
    """The live release, the operation holding the environment, the last rollback, an active stop, and the
    server's guard of the live release (`guard`: what it watches until when, its last evaluation and lag, each
    trigger's last verdict, errors)."""
    return environment_view(state, app, env, caller.user)
