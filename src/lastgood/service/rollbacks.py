"""Rolling back: request (plan, decide, create, approvals, run), resume, approve, deny; one story for every caller.

Every rollback that runs holds its environment (`runtime.lease`): a second request is refused naming the
holder, or waits; a guard that fires meanwhile joins the running rollback instead of filing another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from lastgood.config.models import Runbook
from lastgood.domain.states import DONE_STEP, ROLLBACK_TRANSITIONS, UNFINISHED_ROLLBACK, RollbackStatus, transition
from lastgood.engine.approvals import approve as record_approval
from lastgood.engine.approvals import deny as record_denial
from lastgood.engine.approvals import sign_token
from lastgood.engine.decide import Decision, apply_decision, decide
from lastgood.engine.executor import Executor, Listener, RollbackResult, check_runnable
from lastgood.engine.planner import Plan, build_plan
from lastgood.errors import BadInput, EnvironmentHeld, ExitCode, Refused
from lastgood.ledger import holds, store
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease, hold
from lastgood.service.manual import manual_trigger, record_manual_trigger
from lastgood.service.plans import SavedPlan, check_against

__all__ = [  # Decision and Plan are the engine's types the callers' hooks receive
    "Confirm",
    "Decision",
    "Hooks",
    "Plan",
    "RollbackOutcome",
    "RollbackRequest",
    "approval_token",
    "approve_rollback",
    "deny_rollback",
    "join_running",
    "new_rollback_id",
    "preview_plan",
    "request_rollback",
    "resume_rollback",
    "runs_when_approved",
    "supersede_unfinished",
]

Confirm = Callable[[Plan, Decision], None]  # raises Refused when the person says no
EXIT_CODES = {
    "succeeded": 0,
    "nothing-to-do": 0,
    "planned": 0,
    "failed": 1,
    "interrupted": 130,
    "restored-unhealthy": int(ExitCode.RESTORED_UNHEALTHY),
}


class RollbackRequest(BaseModel):
    to: str | None = None
    only: list[str] | None = None
    reason: str = ""
    severity: str | None = None
    confirmed: bool = False  # --yes: the typed confirmation was skipped on purpose
    allow_destructive: bool = False
    wait: float | None = None  # seconds to queue behind the operation holding the environment
    automated: bool = False  # requested by the guard, not a person
    detected_at: datetime | None = None
    trigger: dict[str, Any] | None = None
    manual_trigger: str | None = None  # `--trigger NAME`: a manual trigger of the file (service/manual.py)
    id: str | None = None  # chosen by the caller (the guard records its event under it first)
    expect_from: str | None = None  # the release the caller judged: if it is no longer live, do nothing
    saved_plan: SavedPlan | None = None  # `rollback --plan FILE`: refused unless planning now gives the same


class RollbackOutcome(BaseModel):
    env: str
    status: str  # nothing-to-do | declined | awaiting-approval | planned | succeeded | failed | interrupted | joined
    id: str | None = None
    message: str = ""
    plan: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    result: RollbackResult | None = None
    approvers: list[str] = []
    trigger: dict[str, Any] | None = None  # what fired: a guard's verdict, or a person's manual trigger

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 3)

    def flat(self) -> dict[str, Any]:
        """The outcome with the run's result at the top level, as scripts read it."""
        data = self.model_dump(mode="json", exclude={"result"})
        return data | (self.result.to_dict() if self.result is not None else {})


class Hooks:
    """What a caller sees and says along the way: the plan, the decision, a confirmation, progress, a stop."""

    def __init__(
        self,
        confirm: Confirm | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        on_start: Callable[[str, int], None] | None = None,
        listener: Listener | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.confirm = confirm or (lambda plan, decision: None)
        self.on_plan = on_plan or (lambda plan: None)
        self.on_decision = on_decision or (lambda decision: None)
        self.on_start = on_start or (lambda rollback_id, steps: None)
        self.listener = listener
        self.stop = stop or threading.Event()


def new_rollback_id() -> str:
    return store.new_rollback_id()


def preview_plan(
    ctx: EnvContext, to: str | None = None, only: list[str] | None = None, severity: str | None = None
) -> Plan:
    """What a rollback would change; changes nothing. The estimate is held to `severity`'s target."""
    return build_plan(ctx, to, only, severity=severity)


def request_rollback(ctx: EnvContext, request: RollbackRequest, hooks: Hooks | None = None) -> RollbackOutcome:
    """Hold the environment, plan, decide, confirm, create, apply the approvals matrix and run."""
    hooks = hooks or Hooks()
    request = _with_manual_trigger(ctx, request)
    rollback_id = request.id or store.new_rollback_id()
    with hold(ctx, "rollback", rollback_id, request.wait) as lease:
        plan = build_plan(ctx, request.to, request.only, severity=request.severity)
        if request.saved_plan is not None:
            check_against(request.saved_plan, plan)
        if request.expect_from is not None and plan.from_release != request.expect_from:
            live = plan.from_release or "(unrecorded)"
            message = f"{request.expect_from} is no longer live ({live} is): it was rolled back already"
            return RollbackOutcome(env=ctx.env, status="stale", message=message)
        hooks.on_plan(plan)
        if plan.blocked:
            raise Refused(f"{plan.blocked}. Nothing was changed.")
        if not plan.steps:
            return RollbackOutcome(env=ctx.env, status="nothing-to-do", plan=plan.to_dict())
        decision = decide(ctx, request.severity, automated=request.automated)
        hooks.on_decision(decision)
        roles = set() if request.automated else set(ctx.actor.roles)
        if decision.rolls_back_now(roles):
            _check_destructive(plan, request)
            hooks.confirm(plan, decision)
        if hooks.stop.is_set():
            return RollbackOutcome(
                env=ctx.env,
                status="interrupted",
                message="interrupted before the rollback was created: nothing was changed",
            )
        supersede_unfinished(ctx, rollback_id)
        Executor(ctx).create(plan, request.reason, requested_by=ctx.actor.name, rollback_id=rollback_id)
        _record_overrides(ctx, rollback_id, request, plan)
        if request.manual_trigger is not None and request.trigger is not None:
            record_manual_trigger(ctx, rollback_id, request.trigger)
        status = apply_decision(ctx, rollback_id, decision, roles, request.detected_at, request.trigger)
        outcome = RollbackOutcome(
            env=ctx.env,
            status=status,
            id=rollback_id,
            plan=plan.to_dict(),
            decision=decision.to_dict(),
            trigger=request.trigger,
        )
        if status != RollbackStatus.PLANNED or decision.method == "planned-rollback":
            return _not_run(outcome, decision, status)
        hooks.on_start(rollback_id, len(plan.steps))
        return _run(ctx, lease, rollback_id, hooks, outcome)


def resume_rollback(
    ctx: EnvContext, rollback_id: str, wait: float | None = None, hooks: Hooks | None = None
) -> RollbackOutcome:
    """Finish a failed, interrupted or orphaned rollback; refused while its owner's lease is live."""
    hooks = hooks or Hooks()
    try:
        with hold(ctx, "rollback", rollback_id, wait) as lease:
            if lease.took_over is not None:
                why = f"taken over from {_who(lease.took_over)}, whose lease expired"
                _event(ctx, "lease-taken-over", why, rollback_id)
            hooks.on_start(rollback_id, _remaining_steps(ctx, rollback_id))
            outcome = RollbackOutcome(env=ctx.env, status="running", id=rollback_id)
            return _run(ctx, lease, rollback_id, hooks, outcome)
    except EnvironmentHeld as held:
        if held.holder.get("id") != rollback_id:
            raise
        raise EnvironmentHeld(_owner_alive(rollback_id, held.holder), held.holder) from None


def _remaining_steps(ctx: EnvContext, rollback_id: str) -> int:
    """The steps left to run; refused first (nothing started, no one told it runs) when it may not run."""
    with ctx.session() as session:
        rollback = store.get_rollback(session, rollback_id)
        check_runnable(session, rollback)
        return sum(1 for s in rollback.steps if s.status not in DONE_STEP)


def _owner_alive(rollback_id: str, holder: dict[str, Any]) -> str:
    return (
        f"rollback {rollback_id} is being run by {_who(holder)} via {holder['via']}, last heartbeat "
        f"{holder['heartbeat_age_seconds']}s ago; if that process is gone, its lease expires in "
        f"{holder['lease_expires_in_seconds']}s and resume may take it over. Nothing was changed."
    )


def approve_rollback(
    ctx: EnvContext,
    rollback_id: str,
    token: str | None,
    run: bool = True,
    hooks: Hooks | None = None,
    authenticated: bool = False,
) -> RollbackOutcome:
    """Record the actor's approval; the last approval needed starts the rollback (unless `run` is False).
    `authenticated`: the server proved the actor's identity, which stands in for a signed token."""
    approval = record_approval(ctx, rollback_id, ctx.actor.name, token, authenticated)
    message = f"{rollback_id}: approved by {', '.join(approval.approvers)} ({approval.approvals} of {approval.needed})"
    with ctx.session() as session:
        method = store.get_rollback(session, rollback_id).method or "rollback"
    outcome = RollbackOutcome(
        env=ctx.env, status=approval.status, id=rollback_id, message=message, approvers=approval.approvers
    )
    if not approval.complete or not run or method == "planned-rollback":
        return outcome
    resumed = resume_rollback(ctx, rollback_id, hooks=hooks)
    resumed.message, resumed.approvers = message + "; " + resumed.message, approval.approvers
    return resumed


def runs_when_approved(ctx: EnvContext, rollback_id: str) -> bool:
    """Whether an approved rollback runs now (a planned rollback waits for its window: `resume` runs it)."""
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        return row.status == RollbackStatus.PLANNED and (row.method or "rollback") != "planned-rollback"


def approval_token(runbook: Runbook, rollback_id: str, approver: str) -> str:
    """The signed token `approver` presents to approve on a protected environment (needs policy.approval_key)."""
    key = runbook.policy.approval_key
    if not key:
        raise BadInput("policy.approval_key is not set in the file (e.g. approval_key: ${LASTGOOD_APPROVAL_KEY})")
    return sign_token(key, rollback_id, approver)


def deny_rollback(ctx: EnvContext, rollback_id: str, reason: str) -> RollbackOutcome:
    record_denial(ctx, rollback_id, ctx.actor.name, reason)
    return RollbackOutcome(env=ctx.env, status="denied", id=rollback_id, message=f"{rollback_id}: denied")


def join_running(ctx: EnvContext, trigger: dict[str, Any], reason: str) -> str | None:
    """A guard that fires while a rollback of its environment runs: its trigger is recorded on that rollback."""
    with ctx.session() as session:
        holder = holds.holder(session, ctx.app, ctx.env)
        if holder is None or holder.operation != "rollback" or holder.expires_at <= ctx.clock.now():
            return None
        store.add_event(
            session,
            ctx.app,
            ctx.env,
            "trigger-joined",
            f"{reason} (joined the running rollback)",
            ctx.clock.now(),
            holder.subject,
            trigger,
        )
        return holder.subject


def supersede_unfinished(ctx: EnvContext, new_id: str) -> None:
    """Rollbacks left failed, interrupted or orphaned are closed: resuming one after a newer rollback would
    move the environment back to a stale target."""
    with ctx.session() as session:
        for row in store.list_rollbacks(session, ctx.app, ctx.env, 50):
            if row.status in UNFINISHED_ROLLBACK and row.id != new_id:
                transition(row, RollbackStatus.SUPERSEDED, ROLLBACK_TRANSITIONS)
                row.error = f"superseded by {new_id}, requested by {ctx.actor.name}"
                store.add_event(session, ctx.app, ctx.env, "rollback-superseded", row.error, ctx.clock.now(), row.id)


def _run(ctx: EnvContext, lease: Lease, rollback_id: str, hooks: Hooks, outcome: RollbackOutcome) -> RollbackOutcome:
    result = Executor(ctx, hooks.listener, lease=lease, stopping=hooks.stop).run(rollback_id)
    outcome.status, outcome.result, outcome.message = result.status, result, result.summary()
    return outcome


def _not_run(outcome: RollbackOutcome, decision: Decision, status: str) -> RollbackOutcome:
    rollback_id = outcome.id
    if status == RollbackStatus.DECLINED:
        outcome.message = f"decision: fix forward, no rollback ({decision.reason}); recorded as {rollback_id}"
    elif status == RollbackStatus.AWAITING_APPROVAL:
        who = ", ".join(decision.roles) or "anyone"
        outcome.message = (
            f"rollback {rollback_id} awaits {decision.approvals_needed} approval(s) from: {who}. "
            f"Approve with: lastgood approve {rollback_id}"
        )
    else:
        outcome.status = "planned"
        outcome.message = (
            f"rollback {rollback_id} is planned, not run: run it in its window with lastgood resume {rollback_id}"
        )
    return outcome


def _with_manual_trigger(ctx: EnvContext, request: RollbackRequest) -> RollbackRequest:
    """A named manual trigger sets the request's severity (the decision matrix reads it as a fired trigger's),
    its trigger record and, unless given, its reason; an unknown name or severity stops here (exit 2)."""
    if request.manual_trigger is None:
        return request
    trigger = manual_trigger(ctx.runbook, request.manual_trigger, request.severity, ctx.actor.name)
    reason = request.reason or f"manual trigger {trigger['trigger']} ({trigger['severity']})"
    update = {"severity": trigger["severity"], "trigger": trigger, "reason": reason}
    return request.model_copy(update=update | {"detected_at": request.detected_at or ctx.clock.now()})


def _check_destructive(plan: Plan, request: RollbackRequest) -> None:
    if plan.destructive_steps and request.confirmed and not request.allow_destructive:
        raise Refused(
            f"the plan has destructive steps ({', '.join(plan.destructive_steps)}): --yes is not enough, "
            "add --allow-destructive. Nothing was changed."
        )


def _record_overrides(ctx: EnvContext, rollback_id: str, request: RollbackRequest, plan: Plan) -> None:
    """Skipped safeguards go into the audit log."""
    overrides = []
    if request.confirmed and not request.automated and ctx.runbook.environment(ctx.env).protected:
        overrides.append("--yes skipped the typed confirmation of a protected environment")
    if request.allow_destructive and plan.destructive_steps:
        overrides.append("--allow-destructive ran steps the plan marks destructive")
    for text in overrides:
        _event(ctx, "override", text, rollback_id)


def _event(ctx: EnvContext, type_: str, message: str, rollback_id: str | None) -> None:
    with ctx.session() as session:
        store.add_event(session, ctx.app, ctx.env, type_, message, ctx.clock.now(), rollback_id)


def _who(holder: dict[str, Any]) -> str:
    return f"{holder['actor']} (host {holder['host']} pid {holder['pid']})"
