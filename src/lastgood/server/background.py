"""Rollbacks started from the server: the job runs the whole story (hold, plan, decide, create, run); the
request that started it answers as soon as the rollback has started, or with its outcome when it ended
before running (awaiting approval, declined, nothing to do) or was refused (held: 409)."""

from __future__ import annotations

from typing import Any

from lastgood.config.models import Runbook
from lastgood.errors import ConfirmationNeeded, LastgoodError, Refused, UnknownRollback
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import lease_seconds
from lastgood.server.jobs import NoBackgroundWork, job
from lastgood.server.started import Waiters
from lastgood.server.state import ServerState
from lastgood.service.recovery import note_server_stop
from lastgood.service.rollbacks import (
    Decision,
    Hooks,
    Plan,
    RollbackOutcome,
    RollbackRequest,
    new_rollback_id,
    request_rollback,
    resume_rollback,
)

START_TIMEOUT = 60.0  # the plan reads every component's live state first
SERVER_USER = "lastgood-server"  # the server itself, resuming what a dead process left


_waiters: Waiters[RollbackOutcome] = Waiters("rollbacks", RollbackOutcome)


def confirm_phrase(runbook: Runbook, env: str, given: str | None, allow_destructive: bool = False) -> Hooks:
    """Hooks whose confirmation is the request itself: on a protected environment, with its typed phrase;
    destructive steps only with `allow_destructive`."""
    environment = runbook.environment(env)

    def confirm(plan: Plan, decision: Decision) -> None:
        if plan.destructive_steps and not allow_destructive:
            raise Refused(
                f"the plan has destructive steps ({', '.join(plan.destructive_steps)}): send "
                "allow_destructive=true to run them. Nothing was changed."
            )
        if environment.protected and given != environment.phrase(env):
            phrase = environment.phrase(env)
            raise ConfirmationNeeded(
                f"{env} is protected: send confirm={phrase!r} to roll it back. Nothing was changed.",
                f"type '{phrase}' to roll back {env}",
            )

    return Hooks(confirm=confirm)


def start_rollback(
    state: ServerState, app: str, env: str, user: str, request: RollbackRequest, confirm: str | None
) -> RollbackOutcome:
    """File the rollback as `user` in the background; answer once it has started or ended."""
    rollback_id = request.id or new_rollback_id()
    request = request.model_copy(update={"id": rollback_id})
    with _waiters.waiting(rollback_id) as started:
        if state.jobs is None:
            raise NoBackgroundWork()
        state.jobs.submit(
            "request-rollback",
            key=f"rollback:{rollback_id}",
            app=app,
            env=env,
            user=user,
            request=request.model_dump(mode="json"),
            confirm=confirm,
        )
        outcome = started.wait(START_TIMEOUT)
        return outcome or RollbackOutcome(env=env, status="planning", id=rollback_id, message="still planning")


def _signal(rollback_id: str, outcome: RollbackOutcome | None = None, error: LastgoodError | None = None) -> None:
    _waiters.signal(rollback_id, outcome, error)


@job("request-rollback")
def request_rollback_job(
    state: ServerState, app: str, env: str, user: str, request: dict[str, Any], confirm: str | None
) -> dict[str, Any]:
    wanted = RollbackRequest.model_validate(request)
    assert wanted.id is not None
    rollback_id = wanted.id
    if _filed(state, rollback_id):  # run again after its worker died: finish what that worker started
        return resume_rollback_job(state, app, env, user, rollback_id, wait=lease_seconds() + 5)
    ctx = state.apps.env_context(app, env, user)
    hooks = confirm_phrase(ctx.runbook, env, confirm, wanted.allow_destructive)
    hooks.stop = state.stopping

    def on_start(started_id: str, steps: int) -> None:
        _signal(rollback_id, RollbackOutcome(env=env, status="running", id=started_id, message=f"{steps} steps"))

    hooks.on_start = on_start
    try:
        outcome = request_rollback(ctx, wanted, hooks)
    except LastgoodError as error:
        _signal(rollback_id, error=error)
        raise
    _signal(rollback_id, outcome)
    _note_shutdown(state, ctx, outcome)
    return outcome.flat()


def _note_shutdown(state: ServerState, ctx: EnvContext, outcome: RollbackOutcome) -> None:
    if outcome.status == "interrupted" and outcome.id is not None and state.stopping.is_set():
        note_server_stop(ctx, outcome.id)


def _filed(state: ServerState, rollback_id: str) -> bool:
    try:
        state.apps.find_rollback(rollback_id)
    except UnknownRollback:
        return False
    return True


@job("resume-rollback")
def resume_rollback_job(
    state: ServerState, app: str, env: str, user: str, rollback_id: str, wait: float | None = None
) -> dict[str, Any]:
    """Run (again) a rollback that is approved, interrupted, failed or orphaned; finished steps are skipped.
    `wait`: how long to wait for a dead owner's lease to expire."""
    ctx = state.apps.env_context(app, env, user, via="worker" if user == SERVER_USER else "api")
    hooks = Hooks(stop=state.stopping)
    hooks.on_start = lambda started_id, steps: _signal(
        rollback_id, RollbackOutcome(env=env, status="running", id=started_id, message=f"{steps} steps left")
    )
    try:
        outcome = resume_rollback(ctx, rollback_id, wait=wait, hooks=hooks)
    except LastgoodError as error:
        _signal(rollback_id, error=error)
        raise
    _signal(rollback_id, outcome)
    _note_shutdown(state, ctx, outcome)
    return outcome.flat()


def start_resume(state: ServerState, app: str, env: str, user: str, rollback_id: str) -> RollbackOutcome:
    """Resume in the background; answer once it runs (or was refused: its owner is alive, 409)."""
    with _waiters.waiting(rollback_id) as started:
        if state.jobs is None:
            raise NoBackgroundWork()
        submitted = state.jobs.submit(
            "resume-rollback", key=f"rollback:{rollback_id}", app=app, env=env, user=user, rollback_id=rollback_id
        )
        if submitted is None:
            return RollbackOutcome(env=env, status="running", id=rollback_id, message="already running here")
        outcome = started.wait(START_TIMEOUT)
        return outcome or RollbackOutcome(env=env, status="running", id=rollback_id, message="starting")
