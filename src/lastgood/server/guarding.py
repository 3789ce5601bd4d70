"""The server's always-on work: one scheduler thread per worker process, however many environments.

Every tick (2 s) it reads every environment's live release and the newest judged period of each watched release
from the ledger (three queries per ledger), so a release recorded by the CLI, the API or another process is
noticed within a tick; a live release newer than those seen, inside its watch window, gets a `ReleaseWatch`. The
watches whose newest complete period nobody judged yet are submitted as "guard-periods" jobs, one per boundary per
BATCH environments (`key` = the boundary and the batch's first environment, so a batch is queued once however many
workers' scans find it). A job claims its periods in the ledger in one statement before judging them, so with
several workers each period is judged once, by whichever worker's job claims it first; the batch's CloudWatch
series come in one GetMetricData call (service/watching.py, `evaluate_periods`). Every
`recover_every` seconds, and at start, the "recover" job resumes rollbacks whose process died (as
`lastgood-server`) and pauses deployments whose process died. `state.stopping` stops it within a tick.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from lastgood.clock import Clock, SystemClock
from lastgood.domain.actor import GUARD
from lastgood.server.background import SERVER_USER
from lastgood.server.jobs import job
from lastgood.server.state import ServerState
from lastgood.service.escalation import escalate as escalate_rollback
from lastgood.service.escalation import open_rollbacks
from lastgood.service.recovery import orphans, pause_orphaned_deployment
from lastgood.service.session import Ledger
from lastgood.service.watching import (
    LiveRelease,
    ReleaseWatch,
    evaluate_periods,
    last_judged,
    live_releases,
    watch_window_open,
)

log = logging.getLogger("lastgood.server.guard")

Key = tuple[str, str]
SUBMITTERS = 8
BOUNDARY_GRACE = 0.05  # seconds after a boundary: the period just ended is complete
BATCH = 200  # environments per guard-periods job: one claim statement, one GetMetricData call (500 queries max)


class GuardScheduler:
    def __init__(
        self,
        state: ServerState,
        tick: float = 2.0,
        recover_every: float = 30.0,
        clock: Clock | None = None,
        escalate_every: float = 10.0,
    ) -> None:
        self.state = state
        self.tick_seconds = tick
        self.recover_every = recover_every
        self.clock = clock or SystemClock()
        self.watches: dict[Key, ReleaseWatch] = {}
        self._seen: dict[Key, int] = {}  # the newest release id seen per environment
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_recovery = 0.0
        self._next_drills = 0.0
        self.drills_every = 60.0
        self.escalate_every = escalate_every
        self._next_escalation = 0.0
        self._submitter = ThreadPoolExecutor(SUBMITTERS, thread_name_prefix="lastgood-submit")
        self.ticks = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lastgood-scheduler", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self.state.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a ledger that does not answer this tick may answer the next
                log.exception("scheduler tick failed")
            self.state.stopping.wait(self._pause())
        with self._lock:
            for watch in self.watches.values():
                watch.close()  # another worker, or this one restarted, goes on from the ledger
        self._submitter.shutdown(wait=False)

    def _pause(self) -> float:
        """Until the next tick, or until just after the next period boundary when that comes first: every
        period falls due at its boundary, and its lag counts from there."""
        with self._lock:
            intervals = {w.interval for w in self.watches.values() if not w.done}
        now = self.clock.now().timestamp()
        boundary = min((now // i + 1) * i - now + BOUNDARY_GRACE for i in intervals) if intervals else math.inf
        return max(BOUNDARY_GRACE, min(self.tick_seconds, boundary))

    def tick(self) -> None:
        now = self.clock.now()
        if time.monotonic() >= self._next_recovery and self._submit("recover", "recover"):
            self._next_recovery = time.monotonic() + self.recover_every
        if time.monotonic() >= self._next_drills and self._submit("drill-schedule", "drill-schedule"):
            self._next_drills = time.monotonic() + self.drills_every  # server/drilling.py: due scheduled drills
        if time.monotonic() >= self._next_escalation and self._submit("escalate", "escalate"):
            self._next_escalation = time.monotonic() + self.escalate_every
        judged: dict[tuple[str, str, int], datetime] = {}
        for ledger, apps in self.state.apps.by_ledger():
            self._notice_all(ledger, apps, now)
            judged |= last_judged(ledger, apps)
        with self._lock:
            watches = list(self.watches.items())
        due: dict[tuple[int, str], list[list[Any]]] = {}
        for (app, env), watch in watches:
            if watch.done:
                self._retire((app, env), watch)
                continue
            period = watch.due_period(now, judged.get((app, env, watch.release.release_id)))
            if period is not None:
                store = id(self.state.apps.ledger_of(app))
                due.setdefault((store, period.isoformat()), []).append([app, env, watch.release.label])
        # A job queue's submission is a database round trip: the batches are submitted in parallel.
        list(self._submitter.map(self._submit_periods, batches(due)))
        self.ticks += 1

    def _notice_all(self, ledger: Ledger, apps: list[str], now: datetime) -> None:
        for release in live_releases(ledger, apps):
            self._notice(release, now)

    def _submit_periods(self, args: dict[str, Any]) -> bool:
        app, env, _ = args["watches"][0]
        return self._submit("guard-periods", f"guard:{args['due']}:{app}:{env}", **args)

    def _submit(self, name: str, key: str, **args: Any) -> bool:
        jobs = self.state.jobs
        return jobs is not None and jobs.submit(name, key=key, **args) is not None

    def _notice(self, release: LiveRelease, now: datetime) -> None:
        key = (release.app, release.env)
        if release.env not in self.state.apps.runbook(release.app).environments:
            return  # the ledger remembers an environment the file no longer has
        with self._lock:
            watch = self.watches.get(key)
            seen = self._seen.get(key)
            self._seen[key] = max(seen or 0, release.newest_id)
        if watch is not None and watch.release.release_id != release.release_id:
            watch.end(f"release {watch.release.label} is no longer live ({release.label} is)")
            self._retire(key, watch)
            watch = None
        if watch is not None or (seen is not None and release.newest_id <= seen):
            return
        ctx = self.state.apps.env_context(release.app, release.env, GUARD.name, via="guard")
        if watch_window_open(ctx, release, now):
            started = ReleaseWatch(ctx, release, self.state.stopping, self.state.worker_name)
            with self._lock:
                self.watches[key] = started
            log.info("guarding %s/%s release %s until %s", *key, release.label, started.until.isoformat())

    def _retire(self, key: Key, watch: ReleaseWatch) -> None:
        with self._lock:
            if self.watches.get(key) is watch:
                del self.watches[key]

    def watch_of(self, app: str, env: str, release: str) -> ReleaseWatch | None:
        """This process's watch of `release`; when another worker's scan submitted the job before this process
        noticed the release, it looks at the ledger once more."""
        with self._lock:
            watch = self.watches.get((app, env))
        if watch is None:
            ledger = self.state.apps.ledger_of(app)
            self._notice_all(ledger, [app], self.clock.now())
            with self._lock:
                watch = self.watches.get((app, env))
        return watch if watch is not None and watch.release.label == release else None

    def watches_of(self, wanted: list[tuple[str, str, str]]) -> list[ReleaseWatch]:
        """`watch_of` for many (app, env, release), looking at the ledger once for those not noticed yet."""
        with self._lock:
            found = {(a, e): self.watches.get((a, e)) for a, e, _ in wanted}
        missing = sorted({a for a, e, _ in wanted if found[(a, e)] is None})
        if missing:
            for ledger, apps in self.state.apps.by_ledger():
                if chosen := [app for app in apps if app in missing]:
                    self._notice_all(ledger, chosen, self.clock.now())
            with self._lock:
                found = {(a, e): self.watches.get((a, e)) for a, e, _ in wanted}
        return [w for a, e, r in wanted if (w := found[(a, e)]) is not None and w.release.label == r]

    def watched(self) -> int:
        with self._lock:
            return sum(1 for w in self.watches.values() if not w.done)


def batches(due: dict[tuple[int, str], list[list[Any]]]) -> list[dict[str, Any]]:
    """The guard-periods jobs' arguments: the watches due at one boundary of one ledger, BATCH per job."""
    out: list[dict[str, Any]] = []
    for (_, period), members in due.items():
        members.sort()  # in one order, so every worker's scan cuts the same batches and the queue keeps one of each
        out += [{"due": period, "watches": members[i : i + BATCH]} for i in range(0, len(members), BATCH)]
    return out


def scheduler_of(state: ServerState) -> GuardScheduler:
    scheduler = state.guard
    if not isinstance(scheduler, GuardScheduler):
        raise RuntimeError("this server runs no guard scheduler (background work is off)")
    return scheduler


@job("guard-period")
def guard_period(state: ServerState, app: str, env: str, release: str, due: str) -> dict[str, Any]:
    """Judge one period of one environment's watched release; nothing when that period was judged already or
    the release is no longer watched. (The scheduler submits batches, `guard-periods`; this one still runs the
    jobs a replica of the previous version queued.)"""
    watch = scheduler_of(state).watch_of(app, env, release)
    if watch is None:
        return {"skipped": f"{app}/{env} release {release} is not watched"}
    evaluation = watch.evaluate(datetime.fromisoformat(due))
    if state.metrics is not None and not evaluation.skipped:
        state.metrics.guard_evaluated(app, env, evaluation)
    return {
        "skipped": evaluation.skipped,
        "lag": evaluation.lag,
        "error": evaluation.error,
        "acted": evaluation.outcome,
    }


@job("guard-periods")
def guard_periods(state: ServerState, due: str, watches: list[list[str]]) -> dict[str, Any]:
    """Judge one period of many environments' watched releases of one ledger (`watches`: [app, env, release]),
    each once across every worker: claimed together, fetched together, recorded together."""
    found = scheduler_of(state).watches_of([(app, env, release) for app, env, release in watches])
    evaluations = evaluate_periods(found, datetime.fromisoformat(due))
    judged = [(w, e) for w, e in zip(found, evaluations, strict=True) if not e.skipped]
    if state.metrics is not None:
        for watch, evaluation in judged:
            state.metrics.guard_evaluated(watch.ctx.app, watch.ctx.env, evaluation)
    return {
        "judged": len(judged),
        "skipped": len(watches) - len(judged),
        "errors": sum(1 for _, e in judged if e.error),
        "acted": {f"{w.ctx.app}/{w.ctx.env}": e.outcome for w, e in judged if e.outcome},
    }


@job("recover")
def recover(state: ServerState) -> dict[str, Any]:
    """Resume the rollbacks and pause the deployments whose process died (the lease expired)."""
    found = []
    for ledger, apps in state.apps.by_ledger():
        found += orphans(ledger, apps, SystemClock().now())
    assert state.jobs is not None
    for orphan in found:
        if orphan.env not in state.apps.runbook(orphan.app).environments:
            continue
        name = "resume-rollback" if orphan.kind == "rollback" else "pause-deployment"
        args: dict[str, Any] = {"app": orphan.app, "env": orphan.env, "user": SERVER_USER}
        args |= {"rollback_id": orphan.id} if orphan.kind == "rollback" else {"deployment_id": orphan.id}
        log.info("%s %s of %s/%s: its process died; %s", name, orphan.id, orphan.app, orphan.env, SERVER_USER)
        state.jobs.submit(name, key=f"{orphan.kind}:{orphan.id}", **args)
    return {"orphans": [o.id for o in found]}


@job("escalate")
def escalate(state: ServerState) -> dict[str, Any]:
    """Send the escalation steps and stakeholder updates that fell due on every open, unacknowledged rollback;
    each is claimed in the ledger first, so replicas (and a `lastgood guard` beside them) send it once."""
    sent: list[str] = []
    for ledger, apps in state.apps.by_ledger():
        for app, env, rollback_id in open_rollbacks(ledger, apps):
            if env not in state.apps.runbook(app).environments:
                continue
            ctx = state.apps.env_context(app, env, SERVER_USER, via="worker")
            sent += [f"{rollback_id}:{key}" for key in escalate_rollback(ctx, rollback_id)]
    return {"sent": sent}


@job("pause-deployment")
def pause_deployment(state: ServerState, app: str, env: str, user: str, deployment_id: str) -> dict[str, Any]:
    ctx = state.apps.env_context(app, env, user, via="worker")
    result = pause_orphaned_deployment(ctx, deployment_id)
    return {"paused": result is not None}
