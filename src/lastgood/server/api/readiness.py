"""Rollback readiness: can the live and the previous release still be rolled back to?"""

from __future__ import annotations

from fastapi import APIRouter

from lastgood.server.api.params import AppName, EnvName
from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.service.readiness import Readiness, readiness

router = APIRouter(tags=["readiness"])


@router.get("/apps/{app}/environments/{env}/readiness")
def get_readiness(app: AppName, env: EnvName, state: State, caller: Viewer) -> Readiness:
    """ok / at-risk / impossible per component, for the live release and the one a rollback returns to."""
    return readiness(state.apps.env_context(app, env, caller.user))
