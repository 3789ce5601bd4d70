"""Rollback readiness: whether rolling back to the live release, and to the one before it, is still possible."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from lastgood.engine.readiness import check_env
from lastgood.runtime.context import EnvContext

Status = Literal["ok", "at-risk", "impossible"]


class Check(BaseModel):
    status: Status
    detail: str


class ComponentReadiness(BaseModel):
    component: str
    kind: str
    status: Status
    checks: list[Check]


class ReleaseReadiness(BaseModel):
    label: str
    role: Literal["live", "previous"]
    status: Status
    components: list[ComponentReadiness]


class Readiness(BaseModel):
    """`ready`: a rollback now (to the previous release) needs nothing that is gone or about to go."""

    app: str
    env: str
    ready: bool
    releases: list[ReleaseReadiness]
    notes: list[str]


def readiness(ctx: EnvContext) -> Readiness:
    """Each kind's checks for the live and the previous release's recorded states. Reads only."""
    return Readiness.model_validate(check_env(ctx).to_dict())
