"""Drills started from the server: the job runs the whole drill (hold, record, bad change, guard, rollback);
the request answers once the drill holds the environment, or with the refusal (held: 409)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from lastgood.errors import LastgoodError
from lastgood.server.jobs import NoBackgroundWork, job
from lastgood.server.started import Waiters
from lastgood.server.state import ServerState
from lastgood.service.drill import check_allowed, run_drill
from lastgood.sources.cloudwatch import CloudWatchSource

START_TIMEOUT = 30.0


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
