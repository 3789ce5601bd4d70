"""The server's always-on work: one scheduler thread per worker process, however many environments.

Every tick (2 s) it reads every environment's live release and the newest judged period of each watched release
from the ledger (three queries per ledger), so a release recorded by the CLI, the API or another process is
noticed within a tick; a live release newer than those seen, inside its watch window, gets a `ReleaseWatch`. A
watch whose newest complete period nobody judged yet is submitted as one "guard-period" job (`key` = the
environment, so a slow period is never run twice at once). The job claims the period in the ledger before judging
it, so with several workers each period is judged once, by whichever worker's job claims it first. Every
`recover_every` seconds, and at start, the "recover" job resumes rollbacks whose process died (as
`lastgood-server`) and pauses deployments whose process died. `state.stopping` stops it within a tick.
"""

from __future__ import annotations

import logging
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
from lastgood.service.recovery import orphans, pause_orphaned_deployment
from lastgood.service.session import Ledger
from lastgood.service.watching import LiveRelease, ReleaseWatch, last_judged, live_releases, watch_window_open

log = logging.getLogger("lastgood.server.guard")

Key = tuple[str, str]
SUBMITTERS = 8


class GuardScheduler:
    def __init__(
        self, state: ServerState, tick: float = 2.0, recover_every: float = 30.0, clock: Clock | None = None
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
            self.state.stopping.wait(self.tick_seconds)
        with self._lock:
            for watch in self.watches.values():
                watch.close()  # another worker, or this one restarted, goes on from the ledger
        self._submitter.shutdown(wait=False)

    def tick(self) -> None:
        now = self.clock.now()
        if time.monotonic() >= self._next_recovery and self._submit("recover", "recover"):
            self._next_recovery = time.monotonic() + self.recover_every
        judged: dict[tuple[str, str, int], datetime] = {}
        for ledger, apps in self.state.apps.by_ledger():
            self._notice_all(ledger, apps, now)
            judged |= last_judged(ledger, apps)
        with self._lock:
            watches = list(self.watches.items())
        due: list[dict[str, Any]] = []
        for (app, env), watch in watches:
            if watch.done:
                self._retire((app, env), watch)
                continue
            period = watch.due_period(now, judged.get((app, env, watch.release.release_id)))
            if period is not None:
                due.append({"app": app, "env": env, "release": watch.release.label, "due": period.isoformat()})
        # A job queue's submission is a database round trip: every environment's period falls due at the same
        # boundary, so they are submitted in parallel rather than one after another.
        list(self._submitter.map(self._submit_period, due))
        self.ticks += 1

    def _notice_all(self, ledger: Ledger, apps: list[str], now: datetime) -> None:
        for release in live_releases(ledger, apps):
            self._notice(release, now)

    def _submit_period(self, args: dict[str, Any]) -> bool:
        return self._submit("guard-period", f"guard:{args['app']}:{args['env']}", **args)

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

    def watched(self) -> int:
        with self._lock:
            return sum(1 for w in self.watches.values() if not w.done)


def scheduler_of(state: ServerState) -> GuardScheduler:
    scheduler = state.guard
    if not isinstance(scheduler, GuardScheduler):
        raise RuntimeError("this server runs no guard scheduler (background work is off)")
    return scheduler


@job("guard-period")
def guard_period(state: ServerState, app: str, env: str, release: str, due: str) -> dict[str, Any]:
    """Judge one period of one environment's watched release; nothing when that period was judged already or
    the release is no longer watched."""
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


@job("pause-deployment")
def pause_deployment(state: ServerState, app: str, env: str, user: str, deployment_id: str) -> dict[str, Any]:
    ctx = state.apps.env_context(app, env, user, via="worker")
    result = pause_orphaned_deployment(ctx, deployment_id)
    return {"paused": result is not None}
