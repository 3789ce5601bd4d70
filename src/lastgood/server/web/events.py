"""Server-Sent Events: `/events?app=&env=&rollback=&after=` streams the ledger's new events (`event: ledger`)
and, for a rollback, its steps whenever one changes (`event: steps`). Each poll reads the ledger through
`service.events`; a stream ends when the browser goes, when the server stops (`state.stopping`), or after
`MAX_SECONDS` (the browser's EventSource reconnects, sending the last id it saw)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from lastgood.config.models import Runbook
from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.server.state import ServerState
from lastgood.server.web.render import PageRoute
from lastgood.service.events import events_after, latest_event_id, rollback_progress

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
MAX_SECONDS = 300.0
RETRY_MS = 2000

router = APIRouter(route_class=PageRoute)


class Watch:
    """What one stream follows: the apps (one, or all), an environment, a rollback; the last event id sent."""

    def __init__(self, runbooks: list[Runbook], env: str | None, rollback: str | None, after: dict[str, int]) -> None:
        self.runbooks, self.env, self.rollback, self.after = runbooks, env, rollback, after
        self.steps: str | None = None

    def poll(self) -> list[str]:
        """The messages due now (runs on a worker thread: it reads the ledger)."""
        messages = []
        for runbook in self.runbooks:
            for event in events_after(runbook, self.after[runbook.app], self.env, self.rollback):
                self.after[runbook.app] = event.id
                messages.append(_message("ledger", event.model_dump_json(), event.id))
        if self.rollback is not None:
            progress = rollback_progress(self.runbooks[0], self.rollback).model_dump_json()
            if progress != self.steps:
                self.steps = progress
                messages.append(_message("steps", progress))
        return messages


def _message(kind: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"


@router.get("/events")
def stream(
    request: Request,
    state: State,
    caller: Viewer,
    app: str | None = Query(default=None, max_length=128),
    env: str | None = Query(default=None, max_length=128),
    rollback: str | None = Query(default=None, max_length=64),
    after: int | None = Query(default=None, ge=0, description="Send events with ids above this one."),
) -> StreamingResponse:
    """Unknown names are refused before the stream starts (404), with the page's usual error."""
    if rollback is not None:
        app = state.apps.find_rollback(rollback)[0]
    runbooks = [state.apps.runbook(app)] if app is not None else list(state.apps.runbooks.values())
    if env is not None:
        for runbook in runbooks:
            state.apps.env_context(runbook.app, env, caller.user)  # 404 when the app has no such environment
    resumed = request.headers.get("last-event-id", "")
    start = int(resumed) if resumed.isdigit() else after
    marks = {r.app: start if start is not None else latest_event_id(r) for r in runbooks}
    watch = Watch(runbooks, env, rollback, marks)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_messages(request, state, watch), media_type="text/event-stream", headers=headers)


async def _messages(request: Request, state: ServerState, watch: Watch) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    started = last_sent = time.monotonic()
    while not state.stopping.is_set() and time.monotonic() - started < MAX_SECONDS:
        for message in await anyio.to_thread.run_sync(watch.poll):
            last_sent = time.monotonic()
            yield message
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await anyio.sleep(POLL_SECONDS)
