"""Plan preview, rollbacks (request, detail, resume) and their approvals (approve, deny)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lastgood.server.auth import Approver, Operator, Viewer
from lastgood.server.background import start_resume, start_rollback
from lastgood.server.deps import State
from lastgood.service.escalation import AckOutcome, acknowledge
from lastgood.service.manual import manual_trigger
from lastgood.service.rollbacks import (
    RollbackOutcome,
    RollbackRequest,
    approve_rollback,
    deny_rollback,
    preview_plan,
    runs_when_approved,
)
from lastgood.service.views import RollbackDetail, rollback_detail

router = APIRouter(tags=["rollbacks"])


class RollbackBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why: recorded in the audit log and the report.")
    to: str | None = Field(default=None, max_length=256, description="The release to go back to (default: last good).")
    only: list[str] | None = Field(default=None, max_length=1000, description="Roll back only these components.")
    severity: str | None = Field(default=None, max_length=64, description="For the decision matrix.")
    trigger: str | None = Field(
        default=None,
        max_length=64,
        description="A manual trigger of the file (user-reports, ...): recorded as the rollback's trigger; its "
        "severity unless `severity` is given.",
    )
    confirm: str | None = Field(default=None, max_length=256, description="A protected environment's typed phrase.")
    allow_destructive: bool = Field(default=False, description="Run the steps the plan marks destructive.")


class DenyBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class PlanView(BaseModel):
    env: str
    plan: dict[str, Any]


@router.get("/apps/{app}/environments/{env}/plan")
def get_plan(
    app: str,
    env: str,
    state: State,
    caller: Viewer,
    to: str | None = Query(default=None, max_length=256),
    only: str | None = Query(default=None, max_length=4000, description="Comma-separated component names."),
) -> PlanView:
    """What a rollback would change now; changes nothing."""
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    plan = preview_plan(state.apps.env_context(app, env, caller.user), to, names)
    return PlanView(env=env, plan=plan.to_dict())


@router.post("/apps/{app}/environments/{env}/rollbacks", status_code=202, response_model=RollbackOutcome)
def post_rollback(app: str, env: str, body: RollbackBody, state: State, caller: Operator) -> JSONResponse:
    """Request a rollback as the caller: answered once it runs (202), or with its outcome when it did not
    start (awaiting approval, declined, nothing to do: 200); 409 while another operation holds the
    environment, naming the holder."""
    ctx = state.apps.env_context(app, env, caller.user)  # 404 for an unknown app or environment, before any job
    if body.trigger is not None:  # 400 naming the allowed ones, before any job
        manual_trigger(ctx.runbook, body.trigger, body.severity, caller.name)
    request = RollbackRequest(
        to=body.to,
        only=body.only,
        reason=body.reason,
        severity=body.severity,
        manual_trigger=body.trigger,
        allow_destructive=body.allow_destructive,
    )
    outcome = start_rollback(state, app, env, caller.name, request, body.confirm)
    code = 202 if outcome.status in ("running", "planning") else 200
    return JSONResponse(outcome.model_dump(mode="json"), status_code=code)


@router.get("/rollbacks/{rollback_id}")
def get_rollback(rollback_id: str, state: State, caller: Viewer) -> RollbackDetail:
    """Steps, timeline and the process running it now."""
    app, _ = state.apps.find_rollback(rollback_id)
    return rollback_detail(state.apps.runbook(app), rollback_id)


@router.post("/rollbacks/{rollback_id}/resume", status_code=202, response_model=RollbackOutcome)
def post_resume(rollback_id: str, state: State, caller: Operator) -> JSONResponse:
    """Finish a failed, interrupted or orphaned rollback, skipping finished steps; 409 while its owner lives."""
    app, env = state.apps.find_rollback(rollback_id)
    outcome = start_resume(state, app, env, caller.name, rollback_id)
    return JSONResponse(outcome.model_dump(mode="json"), status_code=202 if outcome.status == "running" else 200)


@router.post("/rollbacks/{rollback_id}/approve", response_model=RollbackOutcome)
def post_approve(rollback_id: str, state: State, caller: Approver) -> JSONResponse:
    """Approve as the caller (the requester's own approval is refused, 403); the last approval needed
    starts the rollback in the background (202)."""
    app, env = state.apps.find_rollback(rollback_id)
    ctx = state.apps.env_context(app, env, caller.user)
    outcome = approve_rollback(ctx, rollback_id, token=None, run=False, authenticated=True)
    if not runs_when_approved(ctx, rollback_id):
        return JSONResponse(outcome.model_dump(mode="json"), status_code=200)
    started = start_resume(state, app, env, caller.name, rollback_id)
    started.message, started.approvers = outcome.message + "; " + started.message, outcome.approvers
    return JSONResponse(started.model_dump(mode="json"), status_code=202 if started.status == "running" else 200)


class AckBody(BaseModel):
    note: str = Field(default="", max_length=2000)


@router.post("/rollbacks/{rollback_id}/ack")
def post_ack(rollback_id: str, state: State, caller: Operator, body: AckBody | None = None) -> AckOutcome:
    """Acknowledge an open or restored-unhealthy rollback as the caller: its escalation steps and stakeholder
    updates stop; 409 when it was acknowledged already."""
    app, env = state.apps.find_rollback(rollback_id)
    return acknowledge(state.apps.env_context(app, env, caller.user), rollback_id, body.note if body else "")


@router.post("/rollbacks/{rollback_id}/deny")
def post_deny(rollback_id: str, body: DenyBody, state: State, caller: Approver) -> RollbackOutcome:
    app, env = state.apps.find_rollback(rollback_id)
    return deny_rollback(state.apps.env_context(app, env, caller.user), rollback_id, body.reason)
