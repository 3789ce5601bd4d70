"""Watching one step: the file's triggers every period (and the canary judge with `canary:`), until the step
has been judged for long enough, a trigger or the judge aborts it, or a person asks to promote or abort.

Between evaluations the watch sleeps in slices of at most `SLICE` seconds, reading the row's request flag
and the stop event each time, so a promote, an abort or Ctrl-C takes effect within a slice, not a period.
"""

from __future__ import annotations

import threading
from typing import Any

from lastgood.engine.deploy import rows
from lastgood.engine.deploy.listener import DeployListener
from lastgood.guard.canary import CanaryWatch
from lastgood.guard.loop import Guard
from lastgood.judge.base import TriggerVerdict
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease
from lastgood.runtime.notifications import notify_alert

SLICE = 0.25

# What a watch ends with besides a reason to abort.
HEALTHY, PROMOTE, ABORT, PAUSE, ELSEWHERE = "healthy", "promote", "abort", "pause", "elsewhere"


class StepWatch:
    def __init__(
        self,
        ctx: EnvContext,
        guard: Guard,
        canary: CanaryWatch | None,
        listener: DeployListener,
        lease: Lease | None,
        stop: threading.Event,
    ) -> None:
        self.ctx, self.guard, self.canary, self.listener = ctx, guard, canary, listener
        self.lease, self.stop = lease, stop

    def run(self, deployment_id: str, index: int, percent: float, judged_for: float) -> str:
        """HEALTHY, PROMOTE, ABORT (a person), PAUSE (Ctrl-C), ELSEWHERE (finished by another), or why it failed."""
        deadline = self.ctx.clock.now().timestamp() + judged_for
        interval = self.guard.interval if self.canary is None else min(self.guard.interval, self.canary.canary.period)
        step = _Step(deployment_id, index, percent)
        while True:
            interrupted = self._interrupted(deployment_id)
            if interrupted is not None:
                return interrupted
            verdicts = self.guard.evaluate() if self.guard.triggers else []
            remaining = deadline - self.ctx.clock.now().timestamp()
            outcome = self._judge(step, verdicts, remaining)
            if outcome is not None:
                return outcome
            self._sleep(deployment_id, max(min(interval, remaining), 0.05))

    def _interrupted(self, deployment_id: str) -> str | None:
        if self.stop.is_set():
            return PAUSE
        row = rows.get(self.ctx, deployment_id)
        if row.status != "running":
            return ELSEWHERE  # `lastgood promote/abort --force` finished it from another process
        if row.requested == PAUSE:  # `lastgood pause ID` from anywhere
            return PAUSE
        return row.requested if row.requested in (PROMOTE, ABORT) else None

    def _sleep(self, deployment_id: str, seconds: float) -> None:
        """Sleep `seconds` of the clock, in slices, waking early for a request or the stop event."""
        end = self.ctx.clock.now().timestamp() + seconds
        while (left := end - self.ctx.clock.now().timestamp()) > 0:
            self.ctx.clock.sleep(min(SLICE, left))
            if self._interrupted(deployment_id) is not None:
                return

    def _judge(self, step: _Step, verdicts: list[TriggerVerdict], remaining: float) -> str | None:
        fired = next((v for v in verdicts if v.fires_rollback), None)
        now = self.ctx.clock.now().timestamp()
        canary = self.canary
        if canary is not None:
            self._canary_update(canary, fired is not None, step)
            if canary.state == "rollback":
                reason = canary.reason(step.percent)
                self._decide(step, "canary-rollback", verdicts, reason)
                return reason
        if fired is not None:
            reason = f"trigger {fired.trigger} ({fired.severity}) fired at {step.percent:g}%: {fired.detail}"
            step.fired_since = now if step.fired_since is None else step.fired_since
            if canary is not None and canary.state == "not-the-cause":
                if not step.alerted:  # once per episode of the trigger firing
                    step.alerted = True
                    self._not_the_cause(step, verdicts, fired, canary)
            elif canary is None or now - step.fired_since >= canary.patience or remaining <= 0:
                if canary is not None:
                    reason += f" (the canary judge could not compare the versions: {canary.detail()})"
                self._decide(step, "fired", verdicts, reason)
                return reason
        else:
            step.fired_since, step.alerted = None, False
        if remaining <= 0 and (fired is None or step.alerted):
            return self._step_over(step, verdicts)
        return None

    def _step_over(self, step: _Step, verdicts: list[TriggerVerdict]) -> str:
        broken = [f"{v.trigger}: {v.detail}" for v in verdicts if v.action == "rollback" and v.state == "error"]
        if self.canary is not None and self.canary.state == "blind":
            broken.append(self.canary.blind_message())
        if broken:
            reason = f"cannot judge the step at {step.percent:g}%: " + "; ".join(broken)
            self._decide(step, "unjudgeable", verdicts, reason)
            return reason
        if step.alerted:
            why = f"not the release at {step.percent:g}%: both versions are equally bad; going on"
            self._decide(step, "not-the-cause", verdicts, why)
        else:
            self._decide(step, "healthy", verdicts, f"healthy at {step.percent:g}%")
        return HEALTHY

    def _canary_update(self, canary: CanaryWatch, absolute_firing: bool, step: _Step) -> None:
        for reading in canary.update(self.ctx.clock.now(), absolute_firing):
            if reading.interval is None:
                self.listener.message(
                    f"canary: no data for the period at {reading.start:%H:%M:%S} ({'; '.join(reading.missing)}); "
                    "not judged"
                )
        if canary.blind_started:  # once per episode: the next good period ends it
            self._blind(step, canary)
        self.listener.canary(canary.to_dict())

    def _blind(self, step: _Step, canary: CanaryWatch) -> None:
        why = canary.blind_message(step.percent)
        with rows.editing(self.ctx, step.deployment_id, self.lease) as (session, row):
            rows.event(self.ctx, session, row, "deploy-alert", why, {"canary": canary.to_dict()})
        self.listener.message(f"alert: {why}")
        notify_alert(
            self.ctx,
            "canary-blind",
            step.deployment_id,
            issue=why,
            action="none by lastgood yet: the rollback triggers still act; look at the per-version metrics",
            details=[canary.detail()],
        )

    def _not_the_cause(
        self, step: _Step, verdicts: list[TriggerVerdict], fired: TriggerVerdict, canary: CanaryWatch
    ) -> None:
        """An alert, not a rollback: the absolute trigger fires, yet the canary is no worse than the baseline."""
        why = (
            f"trigger {fired.trigger} fired at {step.percent:g}%, but both versions are equally bad: not the release "
            f"(canary judge: {canary.detail()})"
        )
        with rows.editing(self.ctx, step.deployment_id, self.lease) as (session, row):
            rows.event(
                self.ctx, session, row, "deploy-alert", why, {"trigger": fired.to_dict(), "canary": canary.to_dict()}
            )
        self.listener.message(f"alert: {why}")
        notify_alert(
            self.ctx,
            "not-the-cause",
            step.deployment_id,
            issue=f"trigger {fired.trigger} fired during deployment {step.deployment_id} at {step.percent:g}%: "
            f"{fired.detail}",
            action="none by lastgood: both versions are equally bad, so the release did not cause it; "
            "look at what they share (a dependency, the data, the network)",
            details=[canary.detail()],
        )
        self._decide(step, "not-the-cause", verdicts, why)

    def _decide(self, step: _Step, verdict: str, verdicts: list[TriggerVerdict], why: str) -> None:
        decision: dict[str, Any] = {
            "step": step.index,
            "percent": step.percent,
            "at": self.ctx.clock.now().isoformat(),
            "decision": verdict,
            "reason": why,
            "verdicts": [v.to_dict() for v in verdicts],
            "canary": self.canary.to_dict() if self.canary is not None else None,
        }
        with rows.editing(self.ctx, step.deployment_id, self.lease) as (session, row):
            row.decisions = [*row.decisions, redact(decision)]
            rows.event(self.ctx, session, row, "deploy-judged", f"at {step.percent:g}%: {verdict} ({why})", decision)
        self.listener.judged(decision)


class _Step:
    """One step's watch: which step, and the episode of a firing trigger."""

    def __init__(self, deployment_id: str, index: int, percent: float) -> None:
        self.deployment_id, self.index, self.percent = deployment_id, index, percent
        self.fired_since: float | None = None
        self.alerted = False
