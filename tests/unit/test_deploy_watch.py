"""The deployment's states go through the transition table, and a step's watch wakes for a person's request
or Ctrl-C within a slice of simulated time, not at the end of its period."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import parse_runbook
from lastgood.domain.states import DEPLOYMENT_TRANSITIONS, DeploymentStatus, IllegalTransition, transition
from lastgood.engine.deploy import rows
from lastgood.engine.deploy.listener import QuietDeployListener
from lastgood.guard.loop import Guard
from lastgood.ledger.db import Ledger, open_ledger, resolve_url
from lastgood.ledger.tables import DeploymentRow
from lastgood.runtime.context import EnvContext
from lastgood.service.deploy.watch import PAUSE, PROMOTE, SLICE, StepWatch

RUNBOOK = """\
app: shop
environments:
  prod: {}
components:
  - {name: api, kind: command, record: 'echo 1', rollback: 'true'}
"""


class CallingClock(FakeClock):
    """Simulated time that calls `then` after the n-th sleep and remembers every sleep."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.sleeps = n, list[float]()
        self.then: Callable[[], None] = lambda: None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)
        if len(self.sleeps) == self.n:
            self.then()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(resolve_url("sqlite:///state/ledger.db", tmp_path))
    yield led
    led.close()


def deployment(ctx: EnvContext) -> str:
    now = ctx.clock.now()
    row = DeploymentRow(
        id=rows.new_id(),
        app="shop",
        env="prod",
        component="api",
        from_version="1",
        to_version="2",
        release_label="2",
        previous_release="1",
        steps=[10.0, 100.0],
        current_step=0,
        weight=0.1,
        pause_seconds=300.0,
        status=DeploymentStatus.RUNNING,
        started_by="tester",
        created_at=now,
        updated_at=now,
        message="",
        decisions=[],
    )
    with ctx.session() as session:
        session.add(row)
    return row.id


def watch(ledger: Ledger, clock: CallingClock, stop: threading.Event) -> tuple[EnvContext, StepWatch]:
    ctx = EnvContext(parse_runbook(RUNBOOK), "prod", ledger, AwsClients(), clock=clock)
    guard = Guard(ctx)
    assert not guard.triggers and guard.interval == 60  # one evaluation a minute, were it not for the slices
    return ctx, StepWatch(ctx, guard, None, QuietDeployListener(), None, stop)


def test_deployment_states_move_only_through_the_table() -> None:
    row = DeploymentRow(status=DeploymentStatus.RUNNING)
    for to in (DeploymentStatus.PAUSED, DeploymentStatus.RUNNING, DeploymentStatus.PROMOTED):
        transition(row, to, DEPLOYMENT_TRANSITIONS)
    with pytest.raises(IllegalTransition):
        transition(row, DeploymentStatus.RUNNING, DEPLOYMENT_TRANSITIONS)


def test_a_request_is_read_within_a_slice_not_a_period(ledger: Ledger) -> None:
    clock = CallingClock(n=3)
    ctx, step = watch(ledger, clock, threading.Event())
    deployment_id = deployment(ctx)

    def promote() -> None:
        rows.request(ctx, deployment_id, "promote")

    clock.then = promote
    assert step.run(deployment_id, 0, 10.0, judged_for=300.0) == PROMOTE
    assert len(clock.sleeps) == 3 and all(s <= SLICE for s in clock.sleeps)


def test_ctrl_c_is_read_within_a_slice(ledger: Ledger) -> None:
    stop = threading.Event()
    clock = CallingClock(n=2)
    ctx, step = watch(ledger, clock, stop)
    clock.then = stop.set
    assert step.run(deployment(ctx), 0, 10.0, judged_for=300.0) == PAUSE
    assert sum(clock.sleeps) <= 2 * SLICE
