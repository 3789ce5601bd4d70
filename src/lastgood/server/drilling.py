"""Drills started from the server: the job runs the whole drill (hold, record, bad change, guard, rollback);
the request answers once the drill holds the environment, or with the refusal (held: 409).

Scheduled drills (`drills:` in the file): the scheduler submits "drill-schedule" every minute; it submits one
"scheduled-drill" job per due environment, keyed by the drill's claim id, which runs it as `lastgood-server`
under that id (service/drill_schedule.py: one run per due time across replicas)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import BaseModel

from lastgood.errors import LastgoodError, Refused
from lastgood.server.background import SERVER_USER
from lastgood.server.jobs import NoBackgroundWork, job
from lastgood.server.started import Waiters
from lastgood.server.state import ServerState
from lastgood.service.drill import check_allowed, run_drill
from lastgood.service.drill_schedule import due_drills, run_due_drill
from lastgood.sources.cloudwatch import CloudWatchSource

START_TIMEOUT = 30.0
log = logging.getLogger("lastgood.server.drills")


class DrillStarted(BaseModel):
    id: str | None
    env: str
    status: str
    message: str


_waiters: Waiters[DrillStarted] = Waiters("drills", DrillStarted)


@job("drill")
def drill_job(state: ServerState, app: str, env: str, user: str, token: str) -> dict[str, Any]:
    ctx = state.apps.env_context(app, env, user)

    def on_start(drill_id: str) -> None:
        _waiters.signal(token, DrillStarted(id=drill_id, env=env, status="running", message="the drill started"))

    try:
        result = run_drill(ctx, CloudWatchSource(ctx.aws), on_start=on_start)
    except LastgoodError as error:
        _waiters.signal(token, error=error)
        raise
    except Exception as error:
        _waiters.signal(token, error=LastgoodError(f"the drill failed: {type(error).__name__}"))
        raise
    return result.to_dict()


def start_drill(state: ServerState, app: str, env: str, user: str) -> DrillStarted:
    """Check the drill may run here, then run it as `user` in the background; answer once it has started."""
    check_allowed(state.apps.env_context(app, env, user))
    if state.jobs is None:
        raise NoBackgroundWork()
    token = uuid.uuid4().hex
    with _waiters.waiting(token) as started:
        state.jobs.submit("drill", key=f"drill:{token}", app=app, env=env, user=user, token=token)
        answer = started.wait(START_TIMEOUT)
    return answer or DrillStarted(id=None, env=env, status="starting", message="still starting")


@job("drill-schedule")
def drill_schedule_job(state: ServerState) -> list[str]:
    """Submit every due scheduled drill of every app served; returns the claims submitted."""
    jobs, submitted = state.jobs, []
    if jobs is None:
        return []
    for app in sorted({app for _ledger, apps in state.apps.by_ledger() for app in apps}):
        for due in due_drills(state.apps.app_context(app, SERVER_USER)):
            args = {"app": app, "env": due.env, "claim": due.claim}
            if due.due and not due.note and jobs.submit("scheduled-drill", key=due.claim, **args):
                submitted.append(due.claim)
    return submitted


@job("scheduled-drill")
def scheduled_drill_job(state: ServerState, app: str, env: str, claim: str) -> dict[str, Any] | None:
    ctx = state.apps.env_context(app, env, SERVER_USER)
    try:
        result = run_due_drill(ctx, CloudWatchSource(ctx.aws), claim)
    except Refused as refused:  # held by another operation, or claimed by another replica: not this one's to run
        log.info("scheduled drill %s in %s/%s not run: %s", claim, app, env, refused)
        return None
    return None if result is None else result.to_dict()
