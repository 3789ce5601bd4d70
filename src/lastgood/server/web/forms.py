"""The dashboard's forms, posted as the signed-in user (the CSRF token checked by `auth.current_caller`): roll
back, resume, approve, deny, the emergency stop and its release, a deployment's promote and abort. Each calls
the service layer (rollbacks through `server.background`, as the API does) and goes on to the page that shows
the result; an error is shown as a page saying what happened and that nothing was changed where that is so."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from lastgood.server.auth import Approver, Caller, Operator
from lastgood.server.background import start_resume, start_rollback
from lastgood.server.confirm import check_phrase
from lastgood.server.deps import State
from lastgood.server.web.render import PageRoute, page
from lastgood.service import dashboard
from lastgood.service import stop as emergency
from lastgood.service.deploy import act
from lastgood.service.manual import manual_trigger
from lastgood.service.rollbacks import RollbackRequest, approve_rollback, deny_rollback, runs_when_approved

ACT_WAIT = 30.0  # seconds a running `deploy` process has to act on a promote or abort

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form(max_length=2000)]
Optional = Annotated[str | None, Form(max_length=256)]


def _env_url(app: str, env: str) -> str:
    return f"/apps/{app}/environments/{env}"


def _notice(request: Request, caller: Caller, title: str, message: str, back: str) -> Response:
    return page(request, "message.html", caller, title=title, message=message, back=back)


@router.post("/apps/{app}/environments/{env}/rollback")
def roll_back(
    request: Request,
    app: str,
    env: str,
    state: State,
    caller: Operator,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
    confirm: Optional = None,
    to: Optional = None,
    severity: Optional = None,
    trigger: Optional = None,
) -> Response:
    ctx = state.apps.env_context(app, env, caller.user)  # an unknown app or environment: 404 before any job
    if trigger:  # a manual trigger the file does not allow: 400 on the page, before any job
        manual_trigger(ctx.runbook, trigger, severity or None, caller.name)
    wanted = RollbackRequest(to=to or None, reason=reason, severity=severity or None, manual_trigger=trigger or None)
    outcome = start_rollback(state, app, env, caller.name, wanted, confirm)
    if outcome.id is None:
        return _notice(
            request, caller, f"{env}: {outcome.status}", outcome.message or "nothing to roll back", _env_url(app, env)
        )
    return RedirectResponse(f"/rollbacks/{outcome.id}", status_code=303)


@router.post("/rollbacks/{rollback_id}/resume")
def resume(rollback_id: str, state: State, caller: Operator) -> Response:
    app, env = state.apps.find_rollback(rollback_id)
    start_resume(state, app, env, caller.name, rollback_id)
    return RedirectResponse(f"/rollbacks/{rollback_id}", status_code=303)


@router.post("/rollbacks/{rollback_id}/approve")
def approve(rollback_id: str, state: State, caller: Approver) -> Response:
    """The requester's own approval is refused (403, on the page); the last approval needed starts it."""
    app, env = state.apps.find_rollback(rollback_id)
    ctx = state.apps.env_context(app, env, caller.user)
    approve_rollback(ctx, rollback_id, token=None, run=False, authenticated=True)
    if runs_when_approved(ctx, rollback_id):
        start_resume(state, app, env, caller.name, rollback_id)
    return RedirectResponse(f"/rollbacks/{rollback_id}", status_code=303)


@router.post("/rollbacks/{rollback_id}/deny")
def deny(
    rollback_id: str, state: State, caller: Approver, reason: Annotated[str, Form(min_length=1, max_length=2000)]
) -> Response:
    app, env = state.apps.find_rollback(rollback_id)
    deny_rollback(state.apps.env_context(app, env, caller.user), rollback_id, reason)
    return RedirectResponse(f"/rollbacks/{rollback_id}", status_code=303)


@router.post("/apps/{app}/environments/{env}/stop")
def stop(request: Request, app: str, env: str, state: State, caller: Operator, confirm: Optional = None) -> Response:
    """Emergency stop: traffic cut where the file allows (refused while another operation holds the environment)."""
    ctx = state.apps.env_context(app, env, caller.user)
    check_phrase(ctx.runbook, env, confirm, f"stop {env}'s traffic", phrase=f"stop-{env}")  # as the API and CLI
    outcome = emergency.stop(ctx)
    failed = "; ".join(f"{c}: {why}" for c, why in outcome.failed.items())
    message = f"stop {outcome.id}: {outcome.status}; cut: {', '.join(outcome.done) or 'nothing'}"
    return _notice(
        request,
        caller,
        f"{env}: emergency stop",
        message + (f"; failed: {failed}" if failed else ""),
        _env_url(app, env),
    )


@router.post("/apps/{app}/environments/{env}/stop/release")
def release_stop(request: Request, app: str, env: str, state: State, caller: Operator) -> Response:
    outcome = emergency.release(state.apps.env_context(app, env, caller.user))
    message = f"stop {outcome.id}: {outcome.status}; restored: {', '.join(outcome.done) or 'nothing'}"
    return _notice(request, caller, f"{env}: stop released", message, _env_url(app, env))


@router.post("/deployments/{deployment_id}/{what}")
def promote_or_abort(deployment_id: str, what: str, state: State, caller: Operator) -> Response:
    if what not in ("promote", "abort"):
        raise dashboard.UnknownDeployment(f"a deployment can be promoted or aborted, not {what!r}")
    for app, runbook in state.apps.runbooks.items():
        where = dashboard.deployment_where(runbook, deployment_id)
        if where is not None and where[0] == app:
            view = dashboard.deployment_view(runbook, deployment_id)
            ctx = state.apps.env_context(app, where[1], caller.user)
            act(ctx, view.deployment.component, what, force=False, wait=ACT_WAIT)
            return RedirectResponse(f"/deployments/{deployment_id}", status_code=303)
    raise dashboard.UnknownDeployment(f"no deployment {deployment_id!r} in the apps this server serves")
