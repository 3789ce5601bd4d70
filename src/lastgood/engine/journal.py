"""The executor's ledger writer: steps' transitions and their events, written in batches from one thread.

The thread that starts steps hands each fact over (a step started, steps finished, a step's progress) with the
time it happened and goes on; the writer writes everything queued in one transaction (the lease checked once,
the audit chain's head read once). `written_done` tells the executor which steps' success is committed: a step
that waits for another starts only then, so the ledger never holds a step that ran before one it waits for is
done there. A step that took effect on AWS but whose success had not been committed when the process died is
still pending or running there, and resume reruns it, whose apply reads the live state first and does nothing
when it is already at target (docs/RETRIES.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lastgood.domain.states import DONE_STEP, STEP_TRANSITIONS, StepStatus, transition
from lastgood.ledger import store
from lastgood.ledger.tables import EventRow, StepRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext


@dataclass
class StepOutcome:
    status: StepStatus
    detail: str
    attempts: int
    error: str | None = None
    output: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STEP


@dataclass(frozen=True)
class _Started:
    components: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class _Finished:
    outcomes: dict[str, StepOutcome]
    at: datetime


@dataclass(frozen=True)
class _Progress:
    component: str
    message: str
    at: datetime


_Fact = _Started | _Finished | _Progress


class Journal:
    """Writes one rollback's step facts in order. `check()` raises what the writer failed with (LeaseLost, a
    database error); after a failure nothing more is written."""

    def __init__(
        self,
        ctx: EnvContext,
        rollback_id: str,
        fence: Callable[[Session], None],
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_written` is called from the writer's thread after each committed batch."""
        self.ctx = ctx
        self.rollback_id = rollback_id
        self._fence = fence
        self._on_written = on_written
        self._queue: list[_Fact] = []
        self._written_done: list[str] = []
        self._writing = False
        self._closed = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"journal-{rollback_id}", daemon=True)
        self._thread.start()

    def started(self, components: list[str], at: datetime) -> None:
        self._put(_Started(tuple(components), at))

    def finished(self, outcomes: dict[str, StepOutcome], at: datetime) -> None:
        self._put(_Finished(dict(outcomes), at))

    def progress(self, component: str, message: str, at: datetime) -> None:
        self._put(_Progress(component, message, at))

    def written_done(self) -> list[str]:
        """The steps whose success (succeeded or unchanged) was committed since the last call."""
        with self._changed:
            taken, self._written_done = self._written_done, []
        return taken

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Wait until everything handed over is written; raise what the writer failed with."""
        with self._changed:
            self._changed.wait_for(lambda: self._error is not None or not (self._queue or self._writing))
        self.check()

    def close(self) -> None:
        """Stop the writer once the queue is written (the thread is a daemon: a process exiting does not wait)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _put(self, fact: _Fact) -> None:
        with self._changed:
            self._queue.append(fact)
            self._changed.notify_all()

    def _loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue or self._error is not None:
                    return
                batch, self._queue, self._writing = self._queue, [], True
            try:
                self._write(batch)
                done = [c for fact in batch if isinstance(fact, _Finished) for c, o in fact.outcomes.items() if o.done]
            except BaseException as error:  # handed to the executor's thread, which raises it
                self._error, done = error, []
            finally:
                with self._changed:
                    self._writing = False
                    self._written_done += done
                    self._changed.notify_all()
            self._on_written()

    def _write(self, batch: list[_Fact]) -> None:
        names = sorted({c for fact in batch for c in _components(fact)})
        with self.ctx.session() as session:
            self._fence(session)
            steps = {s.component: s for s in store.get_steps(session, self.rollback_id, names)} if names else {}
            events: list[EventRow] = []
            for fact in batch:
                events += self._apply(session, fact, steps)
            store.add_events(session, events)

    def _apply(self, session: Session, fact: _Fact, steps: dict[str, StepRow]) -> list[EventRow]:
        if isinstance(fact, _Started):
            for component in fact.components:
                _mark_running(steps[component], fact.at)
            return []
        if isinstance(fact, _Finished):
            return [self._mark_finished(session, steps[c], outcome, fact.at) for c, outcome in fact.outcomes.items()]
        message = f"{fact.component}: {fact.message}"
        return [self._event(session, "step-progress", message, fact.at, {"component": fact.component})]

    def _mark_finished(self, session: Session, step: StepRow, outcome: StepOutcome, at: datetime) -> EventRow:
        transition(step, outcome.status, STEP_TRANSITIONS)
        step.finished_at = at
        step.attempts += max(0, outcome.attempts - 1)
        step.detail = redact(outcome.detail)
        step.error = redact(outcome.error)
        step.output = redact(outcome.output)
        message = f"{step.component}: {outcome.error or outcome.detail}"
        data = {"component": step.component, "attempts": outcome.attempts}
        return self._event(session, f"step-{outcome.status}", message, at, data)

    def _event(self, session: Session, type: str, message: str, at: datetime, data: dict[str, Any]) -> EventRow:
        return store.new_event(session, self.ctx.app, self.ctx.env, type, message, at, self.rollback_id, data)


def _mark_running(step: StepRow, at: datetime) -> None:
    transition(step, StepStatus.RUNNING, STEP_TRANSITIONS)
    step.started_at = at
    step.error = None
    step.attempts += 1  # counted with the start: a step left RUNNING may have taken effect


def _components(fact: _Fact) -> tuple[str, ...]:
    if isinstance(fact, _Started):
        return fact.components
    if isinstance(fact, _Finished):
        return tuple(fact.outcomes)
    return ()
