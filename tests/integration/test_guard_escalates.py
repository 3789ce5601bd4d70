"""A running guard keeps the escalation timers of its environment's open rollbacks: each period it sends what
fell due (claimed in the ledger), on a fake clock; no terminal needs to stay open. Fake kind, SQLite ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import escalations, store
from lastgood.notify.dispatch import Dispatcher
from lastgood.notify.recording import RecordingNotifier
from lastgood.service import releases
from lastgood.service.guard import guard_for
from lastgood.service.rollbacks import RollbackRequest, request_rollback
from lastgood.service.session import open_environment
from lastgood.sources.base import Series, SeriesRequest

RUNBOOK = """
app: shop
state: sqlite:///state.db
environments: {staging: {}}
components: [{name: api, kind: fake}]
triggers:
  - {name: errors, when: "> 5", cloudwatch: {namespace: AWS/Lambda, metric: Errors}, action: alert}
validate:
  checks: [{name: smoke, command: {shell: "exit 1"}}]
policy:
  escalation:
    - {after: 2m, contact: [lead]}
    - {after: 6m, contact: [cto]}
"""


class QuietSource:
    name = "cloudwatch"

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        return {r.id: Series(r.id, status="no-data") for r in requests}


@pytest.fixture
def world() -> FakeWorld:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w  # type: ignore[misc]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_guard_sends_each_escalation_step_once_as_it_falls_due(tmp_path: Path, world: FakeWorld) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    runbook = load_runbook(tmp_path / "lastgood.yaml")
    clock = FakeClock(datetime.fromisoformat("2026-12-01T12:00:00+00:00"))
    recording = RecordingNotifier("channels[0].webhook")
    ctx = open_environment(runbook, "staging", Actor(name="tester", via="cli"))
    ctx = replace(ctx, clock=clock, dispatch=Dispatcher([recording], lambda *a: None, 0))
    releases.record(ctx, "v1")
    world.set("api", "v2")
    releases.record(ctx, "v2")
    outcome = request_rollback(ctx, RollbackRequest(confirmed=True))
    assert outcome.status == "restored-unhealthy"

    outcome_of_guard = guard_for(ctx, QuietSource()).run(5 * 60)  # the guard watches on for 5 minutes
    assert outcome_of_guard.evaluations >= 4
    with ctx.session() as session:
        sent = [c.key for c in escalations.claims_of(session, outcome.id or "")]
    assert sent == ["escalation:0"]  # 2m fell due while it watched, 6m did not
    guard_for(ctx, QuietSource()).run(3 * 60)
    with ctx.session() as session:
        claims = escalations.claims_of(session, outcome.id or "")
        row = store.get_rollback(session, outcome.id or "")
    assert [c.key for c in claims] == ["escalation:0", "escalation:1"]
    assert [(c.claimed_at - row.created_at).total_seconds() // 60 for c in claims] == [2, 6]
    messages = recording.wait_for(3)
    assert [m.event for m in messages].count("escalation") == 2


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_rollback_left_open_for_a_day_is_not_escalated_any_more(tmp_path: Path, world: FakeWorld) -> None:
    from lastgood.service import escalation

    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    runbook = load_runbook(tmp_path / "lastgood.yaml")
    clock = FakeClock(datetime.fromisoformat("2026-12-01T12:00:00+00:00"))
    ctx = replace(open_environment(runbook, "staging", Actor(name="tester", via="cli")), clock=clock)
    releases.record(ctx, "v1")
    world.set("api", "v2")
    releases.record(ctx, "v2")
    outcome = request_rollback(ctx, RollbackRequest(confirmed=True))
    with ctx.session() as session:
        row = store.get_rollback(session, outcome.id or "")
        finished = row.finished_at
        assert finished is not None
        late = [d.key for d in escalation.due_notices(ctx, row, finished + timedelta(hours=23))]
        stale = escalation.due_notices(ctx, row, finished + timedelta(hours=25))
    assert late == ["escalation:0", "escalation:1"] and stale == []
    clock.advance(25 * 3600)  # the server was down for a day: no page about yesterday's incident
    assert escalation.tick(ctx) == []
