"""What this process did for each step (stack + token): apply records it, verify polls read it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

from lastgood.kinds.base import KindContext
from lastgood.kinds.cloudformation_stack.read import event_line, events
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec

REPORTED_EVENTS = 20


@dataclass
class Run:
    """What this process did for one step (stack + token); the step's apply and its verify polls share it."""

    action: str = ""  # update | noop | cancel | continue | wait
    baseline: str | None = None  # the newest stack event before the action
    last_event: str | None = None  # the newest stack event reported through ctx.progress
    accepted: str | None = None  # a state CloudFormation answered "No updates are to be performed" for


class Runs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], Run] = {}

    def get(self, spec: CloudFormationStackSpec, ctx: KindContext) -> Run:
        with self._lock:
            return self._runs.setdefault((spec.stack, ctx.token), Run())

    def start(
        self,
        spec: CloudFormationStackSpec,
        ctx: KindContext,
        action: str,
        newest: list[dict[str, Any]],
        accepted: str | None = None,
    ) -> None:
        baseline = newest[0]["EventId"] if newest else None
        with self._lock:
            self._runs[(spec.stack, ctx.token)] = Run(action, baseline, baseline, accepted)

    def forget(self, spec: CloudFormationStackSpec, ctx: KindContext) -> None:
        with self._lock:
            self._runs.pop((spec.stack, ctx.token), None)

    def report_events(self, spec: CloudFormationStackSpec, ctx: KindContext, run: Run) -> None:
        """The stack events since the last report, oldest first, through ctx.progress."""
        with self._lock:
            since = run.last_event
        if since is None:  # nothing seen yet (verify without apply in this process): start from now
            newest = next(events(spec, ctx), None)
            with self._lock:
                run.last_event = newest["EventId"] if newest else None
            return
        new = list(takewhile(lambda event: event["EventId"] != since, events(spec, ctx)))
        if not new:
            return
        with self._lock:
            run.last_event = new[0]["EventId"]
        if len(new) > REPORTED_EVENTS:
            ctx.progress(f"{len(new) - REPORTED_EVENTS} earlier stack events not shown")
        for event in reversed(new[:REPORTED_EVENTS]):
            ctx.progress(event_line(event))
