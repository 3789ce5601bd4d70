"""Guarding every release for its watch window, one period at a time: the team service's guard.

Releases recorded anywhere (the CLI, the API, another server) are found in the ledger (`live_releases`); each
live release newer than the ones seen gets a `ReleaseWatch`, which whoever schedules it steps once per period
(`evaluate`): the same `Guard` as `lastgood guard`, its rollback triggers filing rollbacks as `lastgood-guard`,
its canary judges following any deployment in flight. A watch ends when its window closes, when it acted, or
when its release is no longer live. Its `GuardHealth` is what the environment status shows.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lastgood.domain.actor import GUARD
from lastgood.guard.loop import GuardOutcome, window_end
from lastgood.judge.base import TriggerVerdict
from lastgood.ledger import guard_periods
from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import EnvironmentRow, ReleaseRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.service.models import IsoTime

KEEP_ERRORS = 5
# Responses after which the watch goes on: another operation (a deployment) holds the environment, so the guard
# tries again next period; the deployment's own judge or its end decides meanwhile.
RETRY = {"held"}


@dataclass(frozen=True)
class LiveRelease:
    app: str
    env: str
    release_id: int
    label: str
    recorded_at: datetime
    bad: bool
    newest_id: int  # the newest release of the environment: a live release older than it was rolled back to


def live_releases(ledger: Ledger, apps: list[str]) -> list[LiveRelease]:
    """Every environment's live release in `apps`, in two queries however many environments there are."""
    with ledger.session() as session:
        newest = dict(
            ((app, env), top)
            for app, env, top in session.execute(
                select(ReleaseRow.app, ReleaseRow.env, func.max(ReleaseRow.id))
                .where(ReleaseRow.app.in_(apps))
                .group_by(ReleaseRow.app, ReleaseRow.env)
            )
        )
        rows = session.execute(
            select(EnvironmentRow.app, EnvironmentRow.env, ReleaseRow)
            .join(ReleaseRow, ReleaseRow.id == EnvironmentRow.live_release_id)
            .where(EnvironmentRow.app.in_(apps))
        )
        return [
            LiveRelease(app, env, r.id, r.label, r.recorded_at, r.bad, newest.get((app, env), r.id))
            for app, env, r in rows
        ]


class TriggerHealth(BaseModel):
    state: str  # ok | breaching | firing | no-data | error
    action: str
    value: float | None
    detail: str


class GuardHealth(BaseModel):
    """An environment's guard as the team service runs it: what it watches, how recently, what it saw."""

    status: str  # watching | ended (window over, release no longer live) | acted (rolled back, joined, ...)
    release: str
    watching_since: IsoTime
    watch_until: IsoTime
    evaluations: int = 0
    last_evaluated_at: IsoTime | None = None
    lag_seconds: float | None = None  # from the end of the period judged to its evaluation
    triggers: dict[str, TriggerHealth] = {}
    canaries: list[dict[str, Any]] = []
    errors: list[str] = []  # the last few, newest last
    outcome: str | None = None  # what the guard did: rolled-back, joined, nothing-to-roll-back-to, ...
    message: str = ""
    # healthy | blind | inconclusive (guard/verdicts.py): so far while watching (inconclusive until every rollback
    # trigger's window was judged whole), final once the window closed without the guard acting
    verdict: str = "inconclusive"
    coverage: list[dict[str, Any]] = []  # each rollback trigger's: seen | blind | inconclusive, and why


@dataclass
class Evaluation:
    """One period's work, for the server's metrics."""

    seconds: float
    lag: float
    verdicts: list[TriggerVerdict] = field(default_factory=list)
    canary_states: list[str] = field(default_factory=list)
    error: str | None = None
    outcome: str | None = None
    skipped: bool = False


class _Listener:
    def __init__(self) -> None:
        self.verdicts: list[TriggerVerdict] = []

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        self.verdicts = verdicts

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        pass


class ReleaseWatch:
    """One live release's guard for its window, in one process. `evaluate` judges one period once across every
    process (the period is claimed in the ledger first; a claim that meets another's does nothing) and keeps the
    guard's health in the ledger, so whichever worker judges the next period, and every API replica, sees it.
    Calls within a process are serialised."""

    def __init__(
        self, ctx: EnvContext, release: LiveRelease, stop: threading.Event | None = None, worker: str = ""
    ) -> None:
        self.ctx = replace(ctx, actor=GUARD)
        self.release = release
        self.worker = worker or default_worker_name()
        self.until = release.recorded_at + timedelta(seconds=ctx.runbook.watch_for(ctx.env))
        self._listener = _Listener()
        self.guard = guard_for(self.ctx, listener=self._listener, stop=stop)
        self.outcome = GuardOutcome(ctx.env, "healthy", 0)
        self.health = GuardHealth(
            status="watching", release=release.label, watching_since=self.ctx.clock.now(), watch_until=self.until
        )
        self.first_due = self._boundary_after(self.ctx.clock.now())
        self.done = False
        self._opened = False
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        return self.guard.interval

    def _boundary_after(self, now: datetime) -> datetime:
        return window_end(now, self.interval) + timedelta(seconds=self.interval)

    def due_period(self, now: datetime, last_judged: datetime | None) -> datetime | None:
        """The period to judge now (the newest complete one), or None: nothing new since `last_judged`."""
        period = window_end(now, self.interval)
        if self.done or period < self.first_due or (last_judged is not None and period <= last_judged):
            return None
        return period

    def evaluate(self, due: datetime) -> Evaluation:
        """Judge the period ending at `due`; nothing when any process claimed it already, or the window is over.
        Two transactions per period: load what others saw and claim it; then record the period and the health."""
        with self._lock:
            now = self.ctx.clock.now()
            if self.done:
                return Evaluation(0.0, 0.0, skipped=True)
            try:
                claimed = self._load_and_claim(due, now)
            except IntegrityError:  # another process judges (or judged) this period
                return Evaluation(0.0, 0.0, skipped=True)
            if not claimed:
                return Evaluation(0.0, 0.0, skipped=True)
            evaluation = self._step(now, (now - due).total_seconds())
            self._finish(due, evaluation)
            return evaluation

    def _load_and_claim(self, due: datetime, now: datetime) -> bool:
        """Take over what other processes saw of this release (evaluations, triggers, errors, its end), then
        claim the period: False when the watch is over (ended here or elsewhere)."""
        with self.ctx.session() as session:
            stored = guard_periods.watch_of(session, self.ctx.app, self.ctx.env)
            if stored is not None and stored.release_id == self.release.release_id:
                self.health = GuardHealth.model_validate(stored.health)
                self.outcome.evaluations = self.health.evaluations
                if stored.status != "watching":
                    self.done = True
            if not self.done and now < self.until:
                guard_periods.claim(session, self.ctx.app, self.ctx.env, self.release.release_id, due, self.worker, now)
                return True
        if self.done:
            self.guard.close()
        else:
            ended = f"no rollback trigger fired in the watch window ({self.health.evaluations} periods)"
            self.guard.conclude(self.outcome, ended)
            self.health.verdict, self.health.coverage = self.outcome.status, self.outcome.triggers
            self._end("ended", self.outcome.message)
        return False

    def _finish(self, due: datetime, evaluation: Evaluation) -> None:
        outcome = "error" if evaluation.error else (evaluation.outcome or "watching")
        with self.ctx.session() as session:
            now = self.ctx.clock.now()
            guard_periods.finish(session, self.ctx.app, self.ctx.env, self.release.release_id, due, outcome, now)
            self._save_health_in(session, now)

    def _save_health(self) -> None:
        with self.ctx.session() as session:
            self._save_health_in(session, self.ctx.clock.now())

    def _save_health_in(self, session: Session, now: datetime) -> None:
        health = self.health.model_dump(mode="json")
        release = self.release.release_id
        guard_periods.save_watch(session, self.ctx.app, self.ctx.env, release, self.health.status, health, now)

    def _step(self, now: datetime, lag: float) -> Evaluation:
        started = self.ctx.clock.now()
        evaluation = Evaluation(0.0, lag)
        try:
            if self._opened:
                self.guard.refresh_canaries()
            else:
                self.guard.open()
                self._opened = True
            acted = self.guard.step(self.outcome)
        except Exception as error:  # a period that cannot be judged is reported, and the next one is tried
            evaluation.error = redact(f"{type(error).__name__}: {error}")
            self.health.errors = [*self.health.errors, evaluation.error][-KEEP_ERRORS:]
            acted = False
        evaluation.verdicts = self._listener.verdicts
        evaluation.canary_states = [w.state for w in self.guard.canaries]
        self._record(now, lag, evaluation)
        if acted:
            evaluation.outcome = self.outcome.status
            if self.outcome.status in RETRY:
                self.health.message = self.outcome.message
                self.outcome.status = "healthy"
            else:
                self._end("acted", self.outcome.message, self.outcome.status, save=False)
        evaluation.seconds = (self.ctx.clock.now() - started).total_seconds()
        return evaluation

    def _record(self, now: datetime, lag: float, evaluation: Evaluation) -> None:
        health = self.health
        health.evaluations += 1
        health.last_evaluated_at, health.lag_seconds = now, round(lag, 3)
        health.triggers = {
            v.trigger: TriggerHealth(state=v.state, action=v.action, value=v.value, detail=v.detail)
            for v in evaluation.verdicts
        } or health.triggers
        health.canaries = [w.to_dict() for w in self.guard.canaries]
        health.verdict, health.coverage = self.guard.coverage.verdict, self.guard.coverage.to_list()

    def end(self, message: str) -> None:
        """Stop watching (the release is no longer live); the server stopping only closes the watch."""
        with self._lock:
            if not self.done:
                self._end("ended", message)

    def close(self) -> None:
        with self._lock:
            if not self.done:
                self.done = True
                self.guard.close()

    def _end(self, status: str, message: str, outcome: str | None = None, save: bool = True) -> None:
        self.done = True
        self.health.status, self.health.message, self.health.outcome = status, message, outcome
        self.guard.close()
        if save:
            self._save_health()


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def stored_health(ledger: Ledger, app: str, env: str) -> GuardHealth | None:
    """The environment's guard as the last period (in any process) left it; None if it never guarded a release."""
    with ledger.session() as session:
        stored = guard_periods.watch_of(session, app, env)
    return GuardHealth.model_validate(stored.health) if stored is not None else None


def last_judged(ledger: Ledger, apps: list[str]) -> dict[tuple[str, str, int], datetime]:
    with ledger.session() as session:
        return guard_periods.last_periods(session, apps)


def watch_window_open(ctx: EnvContext, release: LiveRelease, now: datetime | None = None) -> bool:
    """Whether `release` should be guarded now: the newest of its environment, not marked bad, inside its window."""
    now = now or datetime.now(UTC)
    until = release.recorded_at + timedelta(seconds=ctx.runbook.watch_for(ctx.env))
    return release.release_id == release.newest_id and not release.bad and now < until
