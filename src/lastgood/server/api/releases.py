"""Releases of an environment: list (a page, with the total), record one, mark one bad."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lastgood.server.api.params import AppName, EnvName, Label
from lastgood.server.auth import Operator, Viewer
from lastgood.server.deps import State
from lastgood.service import releases
from lastgood.service.releases import MarkedBad, RecordedRelease, ReleaseList

router = APIRouter(tags=["releases"])


class RecordBody(BaseModel):
    version: str = Field(min_length=1, max_length=256, description="The new release's label, e.g. v42.")


class MarkBadBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why: recorded with the release.")
    confirm_live: bool = Field(default=False, description="Needed to mark the live release bad.")


@router.get("/apps/{app}/environments/{env}/releases")
def list_releases(
    app: AppName,
    env: EnvName,
    state: State,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReleaseList:
    """Newest first, the live one and the bad ones flagged; `total` counts them all, up to 10,000 or the end of
    the page (past it, `total_exact` is false)."""
    return releases.list_releases(state.apps.env_context(app, env, caller.user), limit, offset)


@router.post("/apps/{app}/environments/{env}/releases", status_code=201)
def record_release(app: AppName, env: EnvName, body: RecordBody, state: State, caller: Operator) -> RecordedRelease:
    """Read every component's live state from AWS and store it as a release, which becomes the live one.
    A label already recorded is bad input (400): releases are immutable."""
    return releases.record(state.apps.env_context(app, env, caller.user), body.version)


@router.post("/apps/{app}/environments/{env}/releases/{label}/bad")
def mark_bad(app: AppName, env: EnvName, label: Label, body: MarkBadBody, state: State, caller: Operator) -> MarkedBad:
    """Never roll back to this release automatically. The live release only with `confirm_live: true`:
    otherwise 409, naming it, and nothing is changed."""
    ctx = state.apps.env_context(app, env, caller.user)
    return releases.mark_bad(ctx, label, body.reason, live_confirmed=body.confirm_live)
