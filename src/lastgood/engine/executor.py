"""Executing a rollback durably: every step is written to the ledger before and after it runs.

Steps start as soon as the steps they wait for are done, up to `concurrency` at a time. Each step applies
(idempotently), then polls verify until the component has reached its target. A process that dies leaves
steps RUNNING or PENDING; `run` on the same rollback (lastgood resume) skips what is done and reruns the rest.
"""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import insert
from sqlalchemy.orm import Session

from lastgood.checks.run import ValidationResult
from lastgood.config.models import Component
from lastgood.domain.states import DONE_STEP, ROLLBACK_TRANSITIONS, RollbackStatus, StepStatus, transition
from lastgood.engine.journal import Journal, StepOutcome
from lastgood.engine.planner import Plan, PlannedStep
from lastgood.engine.validating import validate_restore
from lastgood.errors import BadInput, LastgoodError, Refused
from lastgood.kinds import redeploy
from lastgood.kinds.base import Kind, KindContext, State
from lastgood.ledger import store
from lastgood.ledger.store import rollback_approvals
from lastgood.ledger.tables import ReleaseRow, RollbackRow, StepRow
from lastgood.redact import redact
from lastgood.runtime import notifications
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import Lease

POLL_SECONDS = 0.25
DRAIN_SECONDS = 20.0
PLAN_READS_FRESH_SECONDS = 60.0  # a rollback awaiting approval longer than this reads everything again
LEASE_MARGIN_SECONDS = 5.0  # a step starts without asking the database only while the lease has this much left


class Listener(Protocol):
    def step_started(self, component: str) -> None: ...
    def step_progress(self, component: str, message: str) -> None: ...
    def step_finished(self, component: str, status: str, detail: str) -> None: ...


class SilentListener:
    def step_started(self, component: str) -> None:
        pass

    def step_progress(self, component: str, message: str) -> None:
        pass

    def step_finished(self, component: str, status: str, detail: str) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    verify_interval: float | None = None  # None: each kind's own verify_interval_seconds

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class RollbackResult(BaseModel):
    id: str
    env: str
    status: str
    to_release: str
    from_release: str | None
    done: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    not_started: list[str] = Field(default_factory=list)
    in_flight: list[str] = Field(default_factory=list)  # interrupted while their call was out: outcome unknown
    seconds: float = 0.0
    validation: dict[str, Any] | None = None  # the validate: block's results, when it has checks

    @property
    def resume_command(self) -> str:
        return f"lastgood resume {self.id}"

    def summary(self) -> str:
        if self.status == RollbackStatus.SUCCEEDED:
            return f"rollback {self.id}: {self.env} is back on {self.to_release} ({len(self.done)} steps verified)"
        if self.status == RollbackStatus.RESTORED_UNHEALTHY:
            failed = [c for c in (self.validation or {}).get("checks", []) if not c["passed"]]
            lines = [
                f"rollback {self.id} restored-unhealthy: {self.env} is back on {self.to_release} "
                f"({len(self.done)} steps verified), but its validation failed:",
                *(f"  {c['name']} ({c['type']}): {c['detail']}" for c in failed),
                "nothing is rolled back again automatically; acknowledge with: lastgood ack " + self.id,
            ]
            return "\n".join(lines)
        parts = [f"rollback {self.id} {self.status}"]
        parts.append("done: " + (", ".join(self.done) or "nothing"))
        if self.failed:
            parts.append("failed: " + "; ".join(f"{c} ({e})" for c, e in self.failed.items()))
        if self.in_flight:
            parts.append("in flight when interrupted (resume checks them): " + ", ".join(self.in_flight))
        if self.not_started:
            parts.append("not started: " + ", ".join(self.not_started))
        if self.status == RollbackStatus.INTERRUPTED:
            parts.append(f"to finish it, run: {self.resume_command}")
        else:
            parts.append(f"fix the cause, then run: {self.resume_command}")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "status": self.status,
            "from_release": self.from_release,
            "to_release": self.to_release,
            "done": self.done,
            "failed": self.failed,
            "not_started": self.not_started,
            "in_flight": self.in_flight,
            "seconds": round(self.seconds, 3),
            "resume": None if self.status in _NOT_RESUMABLE else self.resume_command,
            "validation": self.validation,
        }


class _PlanReads:
    """The live states the plan read, kept in this process for the first run of the rollback it created (the
    service creates with one executor and runs with another) while they are fresh: apply may skip its own read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[datetime, dict[str, State]]] = {}

    def keep(self, rollback_id: str, states: dict[str, State], at: datetime) -> None:
        with self._lock:
            self._kept = {k: v for k, v in self._kept.items() if _fresh(v[0], at)}  # a rollback never run
            self._kept[rollback_id] = (at, states)

    def take(self, rollback_id: str, now: datetime) -> dict[str, State]:
        with self._lock:
            at, states = self._kept.pop(rollback_id, (now, {}))
        return states if _fresh(at, now) else {}


def _fresh(at: datetime, now: datetime) -> bool:
    return (now - at).total_seconds() <= PLAN_READS_FRESH_SECONDS


_plan_reads = _PlanReads()


_NOT_RESUMABLE = {RollbackStatus.SUCCEEDED, RollbackStatus.RESTORED_UNHEALTHY}


@dataclass(frozen=True)
class _Work:
    component: str
    kind: str
    target: State
    waits_for: tuple[str, ...]


class Executor:
    def __init__(
        self,
        ctx: EnvContext,
        listener: Listener | None = None,
        retry: RetryPolicy | None = None,
        lease: Lease | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        """`lease`: every write first checks the claim is still this process's; `stopping`: set by an interrupt,
        no new step starts and the calls in flight get DRAIN_SECONDS to finish and be recorded."""
        self.ctx = ctx
        self.listener: Listener = listener or SilentListener()
        self.retry = retry or RetryPolicy()
        # For crash-and-resume tests and drills: slow every step down so a process can be killed mid-way.
        self._step_delay = float(os.environ.get("LASTGOOD_TEST_STEP_DELAY", "0") or 0)
        self._rollback_id = ""
        self._known: dict[str, State] = {}
        self._journal: Journal | None = None
        self._lock = threading.Lock()
        self.lease = lease
        self.stopping = stopping or threading.Event()

    def _fence(self, session: Session) -> None:
        if self.lease is not None:
            self.lease.check(session)

    def create(
        self, plan: Plan, reason: str = "", requested_by: str | None = None, rollback_id: str | None = None
    ) -> str:
        rollback_id = rollback_id or store.new_rollback_id()
        _plan_reads.keep(rollback_id, {s.component: s.current for s in plan.steps if s.current}, self.ctx.clock.now())
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            rollback = RollbackRow(
                id=rollback_id,
                app=plan.app,
                env=plan.env,
                from_release_id=plan.from_release_id,
                to_release_id=plan.to_release_id,
                status=RollbackStatus.PLANNED,
                partial=plan.partial,
                reason=reason,
                requested_by=requested_by or self.ctx.actor.name,
                created_at=now,
            )
            session.add(rollback)
            session.flush()  # the rollback's row first: the steps refer to it
            if plan.steps:  # one INSERT of every row: the ORM's unit of work costs milliseconds per step
                session.execute(insert(StepRow), [_step_row(rollback_id, i, s) for i, s in enumerate(plan.steps)])
            store.add_event(
                session,
                plan.app,
                plan.env,
                "rollback-requested",
                f"rollback to {plan.to_release} requested by {rollback.requested_by}"
                + (f": {reason}" if reason else ""),
                now,
                rollback_id,
                {"steps": len(plan.steps), "to": plan.to_release, "from": plan.from_release},
            )
        return rollback_id

    def run(self, rollback_id: str) -> RollbackResult:
        self._rollback_id = rollback_id
        started = self.ctx.clock.now()
        self._known = _plan_reads.take(rollback_id, started)
        work = self._begin(rollback_id)
        notifications.notify(self.ctx, "rollback-started", rollback_id)
        notifications.start_updates(self.ctx, rollback_id)
        specs = {s.name: s for s in self.ctx.components()}
        done = set(work["done"])
        written = set(done)  # done in the ledger: what a waiting step may start on
        pending: dict[str, _Work] = {w.component: w for w in work["todo"]}
        failed: dict[str, str] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, self.ctx.concurrency))
        running: dict[Future[StepOutcome], str] = {}
        wake = threading.Event()  # a step finished or the journal committed
        self._journal = journal = Journal(self.ctx, rollback_id, self._fence, on_written=wake.set)
        try:
            while True:
                journal.check()
                written.update(journal.written_done())
                ready = [] if self.stopping.is_set() else self._ready(pending, written, len(running))
                if ready:
                    self._start(journal, [item.component for item in ready])
                for item in ready:
                    del pending[item.component]
                    spec = specs.get(redeploy.component_of(item.component))
                    future = pool.submit(self._execute, spec, item)
                    future.add_done_callback(lambda _: wake.set())
                    running[future] = item.component
                if not running:
                    if self.stopping.is_set() or not self._ready(pending, done, 0):
                        break
                    journal.flush()  # nothing runs; the next steps wait for a success to be committed
                    continue
                draining = self.stopping.is_set()
                finished = self._wait(running, draining, wake)
                outcomes = {running.pop(future): future.result() for future in finished}
                if outcomes:
                    self._finished(journal, outcomes)
                for component, outcome in outcomes.items():
                    if outcome.done:
                        done.add(component)
                    else:
                        failed[component] = outcome.error or outcome.detail
                if draining:
                    break
            journal.flush()  # every step's outcome is in the ledger before the rollback's
        finally:
            journal.close()
            pool.shutdown(wait=False, cancel_futures=True)
        in_flight = sorted(running.values())
        restored = not failed and not pending and not in_flight
        validation = validate_restore(self.ctx, rollback_id, self.stopping) if restored else None
        result = self._finish(rollback_id, done, failed, list(pending), started, in_flight, validation)
        self.ctx.dispatch.stop_updates(rollback_id)
        notifications.notify(self.ctx, f"rollback-{result.status}", rollback_id)
        return result

    def _wait(
        self, running: dict[Future[StepOutcome], str], draining: bool, wake: threading.Event
    ) -> set[Future[StepOutcome]]:
        """The steps finished now; returns early when the journal commits (a waiting step may start), and at
        least every POLL_SECONDS so an interrupt is seen. When draining after an interrupt, the calls in flight
        get DRAIN_SECONDS to finish, and those still out stay RUNNING with their attempt counted."""
        if draining:
            return wait(running, timeout=DRAIN_SECONDS)[0]
        wake.wait(POLL_SECONDS)
        wake.clear()  # before looking: a step finishing or a commit from now on wakes the next wait
        return {future for future in running if future.done()}

    def _ready(self, pending: dict[str, _Work], done: set[str], running: int) -> list[_Work]:
        room = max(1, self.ctx.concurrency) - running
        if room <= 0:
            return []
        ready = (w for w in pending.values() if all(dep in done for dep in w.waits_for))
        return list(islice(ready, room))  # stops at `room`: no scan of every pending step per finished one

    def _begin(self, rollback_id: str) -> dict[str, Any]:
        with self.ctx.session() as session:
            rollback = store.get_rollback(session, rollback_id)
            check_runnable(session, rollback)
            if rollback.env != self.ctx.env or rollback.app != self.ctx.app:
                where = f"{rollback.app}/{rollback.env}"
                raise BadInput(f"rollback {rollback_id} belongs to {where}, not {self.ctx.app}/{self.ctx.env}")
            self._fence(session)
            resuming = rollback.status != RollbackStatus.PLANNED
            transition(rollback, RollbackStatus.RUNNING, ROLLBACK_TRANSITIONS)
            rollback.error = None
            rollback.started_at = rollback.started_at or self.ctx.clock.now()
            done = [s.component for s in rollback.steps if s.status in DONE_STEP]
            todo = [
                _Work(s.component, s.kind, s.target, tuple(s.waits_for))
                for s in rollback.steps
                if s.status not in DONE_STEP
            ]
            store.add_event(
                session,
                rollback.app,
                rollback.env,
                "rollback-resumed" if resuming else "rollback-started",
                f"{'resumed' if resuming else 'started'}: {len(todo)} steps to run, {len(done)} already done",
                self.ctx.clock.now(),
                rollback_id,
            )
        return {"done": done, "todo": todo}

    def _start(self, journal: Journal, components: list[str]) -> None:
        """Hand the steps' start to the journal and go on; a lease not surely held is checked in the ledger
        first, so a process whose claim was taken over starts nothing."""
        if self.lease is not None and not self.lease.surely_held(LEASE_MARGIN_SECONDS):
            with self.ctx.session() as session:
                self._fence(session)
        for component in components:
            self.listener.step_started(component)
        journal.started(components, self.ctx.clock.now())

    def _finished(self, journal: Journal, outcomes: dict[str, StepOutcome]) -> None:
        journal.finished(outcomes, self.ctx.clock.now())
        if any(outcome.status == StepStatus.FAILED for outcome in outcomes.values()):
            journal.flush()  # the failure notice is told from the ledger: a rare wait, off the path to success
        for component, outcome in outcomes.items():
            self.listener.step_finished(component, outcome.status, outcome.error or outcome.detail)
            if outcome.status == StepStatus.FAILED:
                failure = {"component": component, "error": outcome.error}
                notifications.notify(self.ctx, "step-failed", self._rollback_id, step=failure)

    def _execute(self, spec: Component | None, work: _Work) -> StepOutcome:
        if spec is None:
            return StepOutcome(StepStatus.FAILED, "", 0, f"{work.component} is no longer in the runbook file")
        kind = self.ctx.kind_of(spec)
        if kind.name != work.kind:
            return StepOutcome(StepStatus.FAILED, "", 0, f"{work.component} is now a {kind.name}, was {work.kind}")
        if redeploy.is_redeploy(work.component):
            if not redeploy.can_redeploy(spec, kind):
                return StepOutcome(StepStatus.FAILED, "", 0, f"{spec.name} no longer says how to redeploy")
            kind = redeploy.RedeployStep(kind)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._apply_and_verify(kind, spec, work, attempt)
            except LastgoodError as error:
                if getattr(error, "retryable", False) and attempt < self.retry.attempts:
                    self.ctx.clock.sleep(self.retry.delay(attempt))
                    continue
                return StepOutcome(StepStatus.FAILED, "", attempt, str(error))
            except Exception as error:  # a bug or an unexpected library error must not kill the other steps
                return StepOutcome(StepStatus.FAILED, "", attempt, f"unexpected {type(error).__name__}: {error}")

    def _apply_and_verify(self, kind: Kind[Any], spec: Component, work: _Work, attempt: int) -> StepOutcome:
        if self._step_delay:
            self.ctx.clock.sleep(self._step_delay)
        kctx = self._kind_context(work.component)
        result = kind.apply(spec, kctx, work.target)
        status = StepStatus.SUCCEEDED if result.changed else StepStatus.UNCHANGED
        # The state AWS answered the write with (or the read apply made) is a verification of its own.
        output = result.extra or None
        if result.observed is not None and not kind.differences(spec, result.observed, work.target):
            return StepOutcome(status, result.detail + "; verified", attempt, output=output)
        deadline = self.ctx.clock.now().timestamp() + kind.verify_timeout_seconds
        interval = (
            self.retry.verify_interval if self.retry.verify_interval is not None else kind.verify_interval_seconds
        )
        while True:
            problems = kind.verify(spec, kctx, work.target)
            if not problems:
                return StepOutcome(status, result.detail + "; verified", attempt, output=output)
            if self.ctx.clock.now().timestamp() >= deadline:
                problem = "did not reach its target: " + "; ".join(problems)
                return StepOutcome(StepStatus.FAILED, result.detail, attempt, problem, output)
            self.ctx.clock.sleep(interval)

    def _kind_context(self, component: str) -> KindContext:
        def progress(message: str) -> None:
            self.listener.step_progress(component, message)
            if self._journal is not None:
                self._journal.progress(component, message, self.ctx.clock.now())

        base = self.ctx.kind_context
        token = f"{self._rollback_id}-{component}"
        with self._lock:
            known = self._known.pop(component, None)  # first attempt only: a retry reads afresh
        return KindContext(
            known_state=known,
            app=base.app,
            env=base.env,
            aws=base.aws,
            token=token,
            progress=progress,
            now=self.ctx.clock.now,
            sleep=self.ctx.clock.sleep,
        )

    def _finish(
        self,
        rollback_id: str,
        done: set[str],
        failed: dict[str, str],
        not_started: list[str],
        started: datetime,
        in_flight: list[str],
        validation: ValidationResult | None = None,
    ) -> RollbackResult:
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            self._fence(session)
            rollback = store.get_rollback(session, rollback_id)
            target = session.get(ReleaseRow, rollback.to_release_id)
            left = session.get(ReleaseRow, rollback.from_release_id) if rollback.from_release_id else None
            assert target is not None  # a foreign key
            cut_short = validation is not None and validation.interrupted
            ok = not failed and not not_started and not in_flight and not cut_short
            interrupted = not ok and self.stopping.is_set()
            end = (
                RollbackStatus.SUCCEEDED if ok else RollbackStatus.INTERRUPTED if interrupted else RollbackStatus.FAILED
            )
            if ok and validation is not None and not validation.passed:
                end = RollbackStatus.RESTORED_UNHEALTHY
            transition(rollback, end, ROLLBACK_TRANSITIONS)
            rollback.finished_at = now
            result = RollbackResult(
                id=rollback_id,
                env=rollback.env,
                status=rollback.status,
                to_release=target.label,
                from_release=left.label if left else None,
                done=sorted(done),
                failed=failed,
                not_started=sorted(not_started),
                in_flight=in_flight,
                seconds=(now - started).total_seconds(),
                validation=validation.to_dict() if validation is not None else None,
            )
            if ok:
                self._settle(session, rollback, target, left, now)
            if end != RollbackStatus.SUCCEEDED:  # failed, interrupted, or restored but failing its validation
                rollback.error = redact(result.summary())
                store.add_event(
                    session, rollback.app, rollback.env, f"rollback-{end}", result.summary(), now, rollback_id
                )
        return result

    def _settle(
        self,
        session: Session,
        rollback: RollbackRow,
        target: ReleaseRow,
        left: ReleaseRow | None,
        now: datetime,
    ) -> None:
        if not rollback.partial:
            store.set_live(session, rollback.app, rollback.env, target.id)
            # Returning to a release marked bad (a drill re-deploying one) judges nothing about the one left.
            if left is not None and left.id != target.id and not left.bad and not target.bad:
                store.mark_bad(session, left, f"rolled back by {rollback.id}", now)
        store.add_event(
            session,
            rollback.app,
            rollback.env,
            "rollback-succeeded" if rollback.status == RollbackStatus.SUCCEEDED else "rollback-restored",
            f"{rollback.env} verified on {target.label}" + (" (partial: --only)" if rollback.partial else ""),
            now,
            rollback.id,
        )


def _step_row(rollback_id: str, position: int, step: PlannedStep) -> dict[str, Any]:
    return {
        "rollback_id": rollback_id,
        "position": position,
        "component": step.component,
        "kind": step.kind,
        "action": step.change.action,
        "before": step.change.before,
        "after": step.change.after,
        "target": step.target,
        "waits_for": step.waits_for,
        "status": StepStatus.PENDING,
        "attempts": 0,
        "data_loss_window_seconds": step.change.data_loss_window_seconds,
    }


def check_runnable(session: Session, rollback: RollbackRow) -> None:
    """Refused (exit 3, nothing changed) unless the rollback may run (again): planned, failed, interrupted, or
    running with its process gone."""
    rollback_id = rollback.id
    if rollback.status == RollbackStatus.SUCCEEDED:
        raise Refused(f"rollback {rollback_id} has already succeeded; nothing to resume")
    if rollback.status == RollbackStatus.RESTORED_UNHEALTHY:
        raise Refused(
            f"rollback {rollback_id} restored every component but its validation failed (restored-unhealthy): "
            "nothing is rolled back again automatically; fix forward or roll back further by hand"
        )
    if rollback.status == RollbackStatus.AWAITING_APPROVAL:
        have = sum(1 for a in rollback_approvals(session, rollback_id) if a.decision == "approve")
        raise Refused(
            f"rollback {rollback_id} awaits approval ({have} of {rollback.approvals_needed}): "
            f"lastgood approve {rollback_id}"
        )
    if rollback.status == RollbackStatus.SUPERSEDED:
        raise Refused(f"rollback {rollback_id} was superseded: {rollback.error or 'a newer rollback ran'}")
    if rollback.status in (RollbackStatus.DENIED, RollbackStatus.DECLINED):
        raise Refused(f"rollback {rollback_id} was {rollback.status}: {rollback.decision_reason or ''}")
