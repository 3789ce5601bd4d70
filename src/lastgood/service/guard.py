"""Guarding an environment: the guard watches, and a rollback trigger that holds files a rollback through the
same use case as a person's, as `lastgood-guard`. While a rollback of the environment runs, a firing guard
joins it (its trigger recorded on that rollback) instead of filing another."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from lastgood.domain.actor import GUARD
from lastgood.engine.executor import Listener
from lastgood.engine.readiness import guard_check
from lastgood.errors import EnvironmentHeld, Refused
from lastgood.guard.loop import Guard, GuardListener, GuardOutcome, QuietGuardListener, Response
from lastgood.judge.base import TriggerVerdict
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext
from lastgood.service import escalation
from lastgood.service.rollbacks import Hooks, RollbackRequest, join_running, request_rollback
from lastgood.sources.base import MetricSource

log = logging.getLogger("lastgood.guard")

_STATUS = {
    "succeeded": "rolled-back",
    "failed": "rollback-failed",
    "restored-unhealthy": "restored-unhealthy",
    "declined": "fix-forward",
    "awaiting-approval": "awaiting-approval",
    "planned": "planned",
    "interrupted": "interrupted",
    "nothing-to-do": "nothing-to-roll-back-to",
}


class RollbackResponder:
    """The guard's responder: request a rollback as `lastgood-guard`, or join the one running."""

    def __init__(
        self,
        ctx: EnvContext,
        listener: GuardListener | None = None,
        rollback_listener: Listener | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.ctx = replace(ctx, actor=GUARD)
        self.listener = listener
        self.rollback_listener = rollback_listener
        self.stop = stop or threading.Event()
        self.watched = _live_label(self.ctx)  # the release this guard judges

    def respond(self, fired: TriggerVerdict, detected_at: datetime) -> Response:
        reason = f"trigger {fired.trigger} ({fired.severity}): {fired.detail}"
        joined = join_running(self.ctx, fired.to_dict(), reason)
        if joined is not None:
            return Response("joined", f"{reason}; joined the running rollback {joined}")
        rollback_id = store.new_rollback_id()
        request = RollbackRequest(
            reason=reason,
            severity=fired.severity,
            automated=True,
            confirmed=True,
            detected_at=detected_at,
            trigger=fired.to_dict(),
            id=rollback_id,
            expect_from=self.watched,
        )
        hooks = Hooks(
            listener=self.rollback_listener,
            stop=self.stop,
            on_plan=lambda plan: self._fired(reason, rollback_id, fired),
            on_start=lambda rid, steps: self._started(rid, fired),
        )
        try:
            outcome = request_rollback(self.ctx, request, hooks)
        except EnvironmentHeld as held:
            joined = join_running(self.ctx, fired.to_dict(), reason)
            if joined is not None:
                return Response("joined", f"{reason}; joined the running rollback {joined}")
            return Response("held", f"{reason}; not rolled back: {held}")
        except Refused as refused:
            self._event("guard-fired", f"{reason}; {refused}", None, fired)
            return Response("nothing-to-roll-back-to", str(refused))
        if outcome.status == "stale":
            self._event("guard-fired", f"{reason}; {outcome.message}", None, fired)
            return Response("joined", outcome.message)
        status = _STATUS.get(outcome.status, outcome.status)
        message = outcome.message
        if outcome.result is None and outcome.decision is not None:
            message = (
                f"{outcome.decision['method']}: {outcome.decision['reason']}; rollback {outcome.id} is {outcome.status}"
            )
        return Response(status, message, outcome.result, outcome.decision)

    def _fired(self, reason: str, rollback_id: str, fired: TriggerVerdict) -> None:
        self._event("guard-fired", reason, rollback_id, fired)

    def _started(self, rollback_id: str, fired: TriggerVerdict) -> None:
        if self.listener is not None:
            self.listener.rollback_started(rollback_id, fired)

    def _event(self, type_: str, message: str, rollback_id: str | None, fired: TriggerVerdict) -> None:
        with self.ctx.session() as session:
            now = self.ctx.clock.now()
            store.add_event(session, self.ctx.app, self.ctx.env, type_, message, now, rollback_id, fired.to_dict())


class EscalatingListener:
    """Passes every period on, then sends what escalation steps and updates fell due (claimed once in the ledger,
    so a server guarding the same environment sends nothing twice). A failure here never stops the guard."""

    def __init__(self, ctx: EnvContext, inner: GuardListener) -> None:
        self.ctx = ctx
        self.inner = inner

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        self.inner.evaluated(verdicts)
        try:
            escalation.tick(self.ctx)
        except Exception:
            log.exception("escalation tick of %s/%s failed", self.ctx.app, self.ctx.env)

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        self.inner.rollback_started(rollback_id, verdict)


def _live_label(ctx: EnvContext) -> str | None:
    with ctx.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        return live.label if live is not None else None


def readiness_warnings(ctx: EnvContext, force: bool) -> list[str]:
    """Before watching: refused (exit 3) when rolling back to the previous release is impossible, unless
    `force`; otherwise what to warn about."""
    return guard_check(ctx, force)


def guard_for(
    ctx: EnvContext,
    source: MetricSource | Mapping[str, MetricSource] | None = None,
    listener: GuardListener | None = None,
    rollback_listener: Listener | None = None,
    stop: threading.Event | None = None,
) -> Guard:
    """A guard whose firing rollback triggers roll back through the service; every period it also keeps the
    escalation and update timers of the environment's open rollbacks (service/escalation.py)."""
    stop = stop or threading.Event()
    listener = EscalatingListener(ctx, listener or QuietGuardListener())
    responder = RollbackResponder(ctx, listener, rollback_listener, stop)
    return Guard(ctx, source, listener=listener, responder=responder, stop=stop)


def watch(
    ctx: EnvContext,
    duration: float,
    source: MetricSource | Mapping[str, MetricSource] | None = None,
    listener: GuardListener | None = None,
    stop: threading.Event | None = None,
) -> GuardOutcome:
    return guard_for(ctx, source, listener, stop=stop).run(duration)
