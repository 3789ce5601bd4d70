"""Holding an environment and the lease of the running operation, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import parse_runbook
from lastgood.domain.actor import Actor
from lastgood.engine.executor import Executor
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.errors import EnvironmentHeld, LeaseLost
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import acquire, current_holder, hold

RUNBOOK = "app: shop\nenvironments:\n  prod: {}\ncomponents:\n  - {name: api, kind: fake}\n"


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld()) as fake:
        yield fake


@pytest.fixture
def ctx(ledger_url: str, world: FakeWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[EnvContext]:
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", "5")
    ledger = open_ledger(ledger_url)
    alice = Actor(name="alice", via="cli")
    yield EnvContext(parse_runbook(RUNBOOK), "prod", ledger, AwsClients(), actor=alice)
    ledger.close()


@pytest.mark.slow
def test_a_second_claim_is_refused_naming_the_holder(ctx: EnvContext) -> None:
    bob = replace(ctx, actor=Actor(name="bob", via="api"))
    with hold(ctx, "rollback", "rb-0000000001"):
        with pytest.raises(EnvironmentHeld) as refused:
            acquire(bob, "deploy", "dp-1")
        holder = refused.value.holder
        assert (holder["operation"], holder["id"], holder["actor"], holder["via"]) == (
            "rollback",
            "rb-0000000001",
            "alice",
            "cli",
        )
        assert "prod is held by rollback rb-0000000001 of alice" in str(refused.value)
        assert refused.value.exit_code == 3
    assert current_holder(ctx) is None  # let go at the end of the block
    acquire(bob, "deploy", "dp-1").release()


def short_lease(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(seconds))


@pytest.mark.slow
def test_the_lease_is_renewed_while_its_process_lives(ctx: EnvContext, monkeypatch: pytest.MonkeyPatch) -> None:
    bob = replace(ctx, actor=Actor(name="bob"))
    short_lease(monkeypatch, 1.5)
    with hold(ctx, "rollback", "rb-0000000002"):
        time.sleep(4)  # more than twice the lease: only the heartbeat (every 0.5 s) keeps it
        with pytest.raises(EnvironmentHeld):
            acquire(bob, "rollback", "rb-0000000002")


@pytest.mark.slow
def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_off(
    ctx: EnvContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_lease(monkeypatch, 0.6)
    old = acquire(ctx, "rollback", "rb-0000000003")
    old._stop.set()  # the owner's heartbeat dies, as with kill -9
    time.sleep(0.8)
    new = acquire(replace(ctx, actor=Actor(name="bob")), "rollback", "rb-0000000003")
    assert new.took_over is not None and new.took_over["actor"] == "alice"
    assert not old.renew() and old.lost.is_set()
    with ctx.session() as session, pytest.raises(LeaseLost):
        old.check(session)
    with ctx.session() as session:
        new.check(session)  # the claimant moves it on
    new.release()


@pytest.mark.slow
def test_wait_queues_behind_the_holder(ctx: EnvContext) -> None:
    first = acquire(ctx, "stop", "stop-1")
    threading.Timer(0.7, first.release).start()
    started = time.monotonic()
    second = acquire(replace(ctx, actor=Actor(name="bob")), "rollback", "rb-0000000004", wait=10)
    assert 0.5 < time.monotonic() - started < 5
    second.release()
    with pytest.raises(EnvironmentHeld), hold(ctx, "stop", "stop-2"):
        acquire(ctx, "rollback", "rb-0000000005", wait=0.3)


@pytest.mark.slow
def test_an_executor_whose_claim_was_taken_over_writes_nothing(
    ctx: EnvContext, world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.update({"api": "1"})
    record_release(ctx, "v1")
    world.update({"api": "2"})
    record_release(ctx, "v2")
    executor = Executor(ctx)
    rollback_id = executor.create(build_plan(ctx), reason="test")
    short_lease(monkeypatch, 0.6)
    executor.lease = acquire(ctx, "rollback", rollback_id)
    executor.lease._stop.set()
    time.sleep(0.8)
    acquire(replace(ctx, actor=Actor(name="bob")), "rollback", rollback_id).release()
    with pytest.raises(LeaseLost):
        executor.run(rollback_id)
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "planned" and {s.status for s in row.steps} == {"pending"}
    assert world.get("api") == "2" and not world.calls  # nothing applied
