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
from lastgood.guard.loop import GuardOutcome, PlannedFetch, window_end
from lastgood.judge.base import TriggerVerdict
from lastgood.ledger import guard_periods
from lastgood.ledger.db import Ledger
from lastgood.ledger.tables import EnvironmentRow, ReleaseRow
from lastgood.redact import redact
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.service.models import IsoTime
from lastgood.sources.cloudwatch import CloudWatchSource

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
        """Judge the period ending at `due`; nothing when any process claimed it already, or the window is over."""
        return evaluate_periods([self], due)[0]

    def _take_over(self, stored: guard_periods.StoredWatch | None) -> None:
        """What other processes saw of this release (evaluations, triggers, errors, its end)."""
        if stored is not None and stored.release_id == self.release.release_id:
            self.health = GuardHealth.model_validate(stored.health)
            self.outcome.evaluations = self.health.evaluations
            if stored.status != "watching":
                self.done = True

    def _claim(self, due: datetime) -> guard_periods.Claim:
        return guard_periods.Claim(self.ctx.app, self.ctx.env, self.release.release_id, due)

    def _close_unclaimed(self) -> None:
        """The watch is over (ended elsewhere, or its window closed): close it, saying why when it ends here."""
        if self.done:
            self.guard.close()
            return
        ended = f"no rollback trigger fired in the watch window ({self.health.evaluations} periods)"
        self.guard.conclude(self.outcome, ended)
        self.health.verdict, self.health.coverage = self.outcome.status, self.outcome.triggers
        self._end("ended", self.outcome.message)

    def _saved(self) -> tuple[str, str, int, str, dict[str, Any]]:
        health = self.health.model_dump(mode="json")
        return (self.ctx.app, self.ctx.env, self.release.release_id, self.health.status, health)

    def _save_health(self) -> None:
        with self.ctx.session() as session:
            self._save_health_in(session, self.ctx.clock.now())

    def _save_health_in(self, session: Session, now: datetime) -> None:
        app, env, release, status, health = self._saved()
        guard_periods.save_watch(session, app, env, release, status, health, now)

    def _step(self, now: datetime, lag: float) -> Evaluation:
        """Judge one period; a rollback it calls for is left pending (`_act_pending`)."""
        started = self.ctx.clock.now()
        evaluation = Evaluation(0.0, lag)
        self.guard.act_later = True
        try:
            if self._opened:
                self.guard.refresh_canaries()
            else:
                self.guard.open()
                self._opened = True
            self.guard.step(self.outcome)
        except Exception as error:  # a period that cannot be judged is reported, and the next one is tried
            self._error(evaluation, error)
        evaluation.verdicts = self._listener.verdicts
        evaluation.canary_states = [w.state for w in self.guard.canaries]
        self._record(now, lag, evaluation)
        evaluation.seconds = (self.ctx.clock.now() - started).total_seconds()
        return evaluation

    @property
    def pending(self) -> bool:
        return self.guard.pending is not None

    def _act_pending(self, evaluation: Evaluation) -> None:
        """The rollback the period called for, through the service, as `lastgood-guard`."""
        started = self.ctx.clock.now()
        try:
            acted = self.guard.act_pending(self.outcome)
        except Exception as error:
            self._error(evaluation, error)
            acted = False
        if acted:
            evaluation.outcome = self.outcome.status
            if self.outcome.status in RETRY:
                self.health.message = self.outcome.message
                self.outcome.status = "healthy"
            else:
                self._end("acted", self.outcome.message, self.outcome.status, save=False)
        evaluation.seconds += (self.ctx.clock.now() - started).total_seconds()

    def _error(self, evaluation: Evaluation, error: Exception) -> None:
        evaluation.error = redact(f"{type(error).__name__}: {error}")
        self.health.errors = [*self.health.errors, evaluation.error][-KEEP_ERRORS:]

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


def evaluate_periods(watches: list[ReleaseWatch], due: datetime) -> list[Evaluation]:
    """Judge the period ending at `due` of many watches of one ledger, each once across every process. One
    transaction loads what other processes saw and claims the periods in one statement (a period claimed
    elsewhere is skipped); the claimed ones are judged, their CloudWatch series fetched together (up to 500 per
    GetMetricData call); one transaction records the periods and the health. Calls on a watch are serialised."""
    if not watches:
        return []
    ordered = sorted(watches, key=lambda w: (w.ctx.app, w.ctx.env))
    for watch in ordered:  # always in one order: two batches sharing watches never deadlock
        watch._lock.acquire()
    held = list(ordered)
    try:
        claimed = _load_and_claim(ordered, due)
        judged = [w for w in ordered if id(w) in claimed]
        now = ordered[0].ctx.clock.now()
        prefetch(judged, now)
        evaluations = {id(w): w._step(now, (now - due).total_seconds()) for w in judged}
        # The periods that call for no rollback are recorded at once; each rollback then runs, and its period
        # is recorded when it returns.
        _finish(ordered[0].ctx, [(w, evaluations[id(w)]) for w in judged if not w.pending], due)
        for watch in [w for w in ordered if not (id(w) in claimed and w.pending)]:
            held.remove(watch)
            watch._lock.release()
        for watch in [w for w in judged if w.pending]:
            watch._act_pending(evaluations[id(watch)])
            _finish(watch.ctx, [(watch, evaluations[id(watch)])], due)
    finally:
        for watch in held:
            watch._lock.release()
    return [evaluations.get(id(w), Evaluation(0.0, 0.0, skipped=True)) for w in watches]


def _load_and_claim(watches: list[ReleaseWatch], due: datetime) -> set[int]:
    """The ids of the watches whose period this process claimed; the others that are over are closed."""
    ctx = watches[0].ctx
    now = ctx.clock.now()
    were_done = {id(w) for w in watches if w.done}
    with ctx.session() as session:
        stored = guard_periods.watches_of(session, [(w.ctx.app, w.ctx.env) for w in watches if not w.done])
        for watch in watches:
            if not watch.done:
                watch._take_over(stored.get((watch.ctx.app, watch.ctx.env)))
        open_ = [w for w in watches if not w.done and now < w.until]
        won = guard_periods.claim_many(session, [w._claim(due) for w in open_], watches[0].worker, now)
    over = [w for w in watches if w not in open_ and id(w) not in were_done]
    for watch in over:
        watch._close_unclaimed()
    return {id(w) for w in open_ if w._claim(due) in won}


def _finish(ctx: EnvContext, judged: list[tuple[ReleaseWatch, Evaluation]], due: datetime) -> None:
    if not judged:
        return
    finished = [(w._claim(due), "error" if e.error else (e.outcome or "watching")) for w, e in judged]
    saved = [w._saved() for w, _ in judged]
    try:
        with ctx.session() as session:
            now = ctx.clock.now()
            guard_periods.finish_many(session, finished, now)
            guard_periods.save_watches(session, saved, now)
    except IntegrityError:  # another process saved a first health meanwhile: one environment at a time
        for (claim, outcome), watch in zip(finished, (w for w, _ in judged), strict=True):
            with ctx.session() as session:
                now = ctx.clock.now()
                guard_periods.finish_many(session, [(claim, outcome)], now)
                watch._save_health_in(session, now)


def prefetch(watches: list[ReleaseWatch], now: datetime) -> None:
    """One GetMetricData call (up to 500 queries) for the CloudWatch triggers of many environments that share
    an AWS account, region and endpoint; each guard gets its own series. A failed call leaves the guards to
    fetch their own (each then reports its own error)."""
    groups: dict[tuple[str, datetime, datetime], list[tuple[ReleaseWatch, PlannedFetch]]] = {}
    for watch in watches:
        source = watch.guard.sources.get("cloudwatch")
        if type(source) is not CloudWatchSource:
            continue  # a test's or a drill's own source
        for plan in watch.guard.planned_fetches(now):
            if plan.source_type == "cloudwatch":
                key = (watch.ctx.aws.settings.model_dump_json(), plan.start, plan.end)
                groups.setdefault(key, []).append((watch, plan))
    for members in groups.values():
        if len(members) > 1:
            _fetch_together(members)


def _fetch_together(members: list[tuple[ReleaseWatch, PlannedFetch]]) -> None:
    requests = [replace(r, id=f"{i}/{r.id}") for i, (_, plan) in enumerate(members) for r in plan.requests]
    source = members[0][0].guard.sources["cloudwatch"]
    try:
        series = source.fetch(requests, members[0][1].start, members[0][1].end)
    except Exception:  # each guard fetches its own and reports what went wrong
        return
    for i, (watch, plan) in enumerate(members):
        watch.guard.prefetched[plan.key] = {r.id: replace(series[f"{i}/{r.id}"], id=r.id) for r in plan.requests}


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
