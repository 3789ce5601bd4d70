"""KPIs against the file's targets, and a person's review of a rollback (needed or not)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lastgood.clock import utcnow
from lastgood.server.api.params import DURATION_FORMS, AppName, Id, since
from lastgood.server.auth import Operator, Viewer
from lastgood.server.deps import State
from lastgood.service.kpis import KpisResult, RollbackReview, kpis_report, review_rollback

router = APIRouter(tags=["kpis"])


class ReviewBody(BaseModel):
    unnecessary: bool = Field(description="True: the rollback was not needed (it counts as a false rollback).")
    note: str = Field(default="", max_length=2000)


@router.get("/apps/{app}/kpis")
def get_kpis(
    app: AppName,
    state: State,
    caller: Viewer,
    env: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    since_: Annotated[str, Query(alias="since", max_length=32, description=f"How far back: {DURATION_FORMS}.")] = "90d",
) -> KpisResult:
    """Time to detect, decide and restore, success and false rollback rates, data-loss incidents; real
    incidents and drills apart, overall, per environment and per component kind."""
    ctx = state.apps.app_context(app, caller.user)
    if env is not None:
        state.apps.env_context(app, env, caller.user)  # 404 for an unknown environment
    return kpis_report(ctx, env, since(since_, utcnow()))


@router.post("/rollbacks/{rollback_id}/review")
def post_review(rollback_id: Id, body: ReviewBody, state: State, caller: Operator) -> RollbackReview:
    """Record, as the caller, whether the rollback was needed; reviewing again replaces the verdict."""
    app, _ = state.apps.find_rollback(rollback_id)
    return review_rollback(state.apps.app_context(app, caller.user), rollback_id, body.unnecessary, body.note)
