"""The planner and the executor, on the fake kind and a real SQLite ledger: no AWS involved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import parse_runbook
from lastgood.domain.states import RollbackStatus, StepStatus
from lastgood.engine.executor import Executor, RetryPolicy, RollbackResult
from lastgood.engine.planner import Plan, build_plan
from lastgood.engine.record import record_release
from lastgood.errors import Refused
from lastgood.kinds import registry
from lastgood.kinds.base import IamScope
from lastgood.kinds.fake import FakeKind, FakeSpec, FakeWorld, installed
from lastgood.kinds.registry import get_kind
from lastgood.ledger import store
from lastgood.ledger.db import Ledger, open_ledger, resolve_url
from lastgood.ledger.tables import RollbackRow, StepRow
from lastgood.runtime.context import EnvContext

FAST = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0, verify_interval=0.5)


class RecordingClock(FakeClock):
    """Simulated time that remembers every sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.delenv("LASTGOOD_TEST_STEP_DELAY", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld()) as w:
        yield w
    assert "fake" not in registry.KINDS


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(resolve_url("sqlite:///state/ledger.db", tmp_path))
    yield led
    led.close()


def runbook_text(components: str) -> str:
    return f"app: shop\nenvironments:\n  prod: {{}}\ncomponents:\n{components}"


def make_ctx(ledger: Ledger, components: str, concurrency: int = 16, clock: FakeClock | None = None) -> EnvContext:
    return EnvContext(
        runbook=parse_runbook(runbook_text(components)),
        env="prod",
        ledger=ledger,
        aws=AwsClients(),
        clock=clock or FakeClock(),
        concurrency=concurrency,
    )


def record(ctx: EnvContext, world: FakeWorld, label: str, **values: str) -> None:
    world.update(values)
    record_release(ctx, label)


def rollback(ctx: EnvContext, plan: Plan, retry: RetryPolicy = FAST) -> tuple[str, RollbackResult]:
    executor = Executor(ctx, retry=retry)
    rollback_id = executor.create(plan, reason="test")
    return rollback_id, executor.run(rollback_id)


def steps_of(ctx: EnvContext, rollback_id: str) -> dict[str, StepRow]:
    with ctx.ledger.session() as session:
        rows = session.scalars(select(StepRow).filter_by(rollback_id=rollback_id))
        return {s.component: s for s in rows}


def live_and_bad(ctx: EnvContext) -> tuple[str | None, list[str]]:
    with ctx.ledger.session() as session:
        live = store.live_release(session, ctx.app, ctx.env)
        bad = [r.label for r in store.list_releases(session, ctx.app, ctx.env) if r.bad]
        return (live.label if live else None), sorted(bad)


SHOP = """\
  - {name: api, kind: fake}
  - {name: worker, kind: fake, depends_on: [config]}
  - {name: config, kind: fake}
"""


def shop_ctx(ledger: Ledger, world: FakeWorld, concurrency: int = 16, clock: FakeClock | None = None) -> EnvContext:
    """v1 then v2 recorded for api, worker and config; v2 is live and the world is on v2."""
    ctx = make_ctx(ledger, SHOP, concurrency=concurrency, clock=clock)
    record(ctx, world, "v1", api="1", worker="1", config="1")
    record(ctx, world, "v2", api="2", worker="2", config="2")
    return ctx


# --- the fake kind itself ------------------------------------------------------------------------------------


def test_fake_kind_is_not_registered_by_default() -> None:
    assert "fake" not in registry.KINDS


def test_fake_spec_key_defaults_to_name_and_substitutes_env(world: FakeWorld, ledger: Ledger) -> None:
    ctx = make_ctx(ledger, "  - {name: api, kind: fake}\n  - {name: db, kind: fake, key: 'db-{env}'}\n")
    api, db = ctx.runbook.components_for("prod")
    assert isinstance(api, FakeSpec) and isinstance(db, FakeSpec)
    assert api.key == "api" and db.key == "db-prod"
    assert isinstance(get_kind("fake"), FakeKind)
    assert get_kind("fake").iam_statements(api, IamScope(region="us-east-1")) == []


def test_fake_apply_is_idempotent(world: FakeWorld, ledger: Ledger) -> None:
    ctx = make_ctx(ledger, "  - {name: api, kind: fake}\n")
    kind, (spec,) = get_kind("fake"), ctx.components()
    world.set("api", "2")
    assert kind.read(spec, ctx.kind_context) == {"value": "2"}
    assert kind.differences(spec, {"value": "2"}, {"value": "1"}) == ["value 2 -> 1"]
    assert kind.apply(spec, ctx.kind_context, {"value": "1"}).changed
    assert not kind.apply(spec, ctx.kind_context, {"value": "1"}).changed
    assert world.get("api") == "1"
    assert [c.outcome for c in world.calls] == ["changed", "unchanged"]
    assert kind.describe({"value": "1"}) == "value 1"


# --- planning --------------------------------------------------------------------------------------------------


def test_plan_targets_previous_release_and_orders_dependents_first(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    plan = build_plan(ctx)
    assert (plan.from_release, plan.to_release, plan.partial) == ("v2", "v1", False)
    waits = {s.component: s.waits_for for s in plan.steps}
    assert waits == {"api": [], "worker": [], "config": ["worker"]}
    assert plan.unchanged == [] and plan.not_recorded == []
    assert all(s.change.action == "set" for s in plan.steps)
    # The plan changed nothing.
    assert world.snapshot() == {"api": "2", "worker": "2", "config": "2"}
    assert world.calls == []


def test_plan_lists_unchanged_and_not_recorded(world: FakeWorld, ledger: Ledger) -> None:
    ctx = make_ctx(ledger, "  - {name: api, kind: fake}\n  - {name: worker, kind: fake}\n")
    record(ctx, world, "v1", api="1", worker="1")
    record(ctx, world, "v2", api="2")
    wider = make_ctx(
        ledger, "  - {name: api, kind: fake}\n  - {name: worker, kind: fake}\n  - {name: new, kind: fake}\n"
    )
    world.set("new", "x")
    plan = build_plan(wider)
    assert [s.component for s in plan.steps] == ["api"]
    assert plan.unchanged == ["worker"] and plan.not_recorded == ["new"]


def test_rollback_target_skips_releases_marked_bad(world: FakeWorld, ledger: Ledger) -> None:
    ctx = make_ctx(ledger, "  - {name: api, kind: fake}\n")
    for label in ("v1", "v2", "v3"):
        record(ctx, world, label, api=label)
    with ledger.session() as session:
        store.mark_bad(session, store.get_release(session, "shop", "prod", "v2"), "broke checkout", ctx.clock.now())
    plan = build_plan(ctx)
    assert (plan.from_release, plan.to_release) == ("v3", "v1")
    assert plan.steps[0].target == {"value": "v1"}


def test_nothing_to_roll_back_to_when_every_older_release_is_bad(world: FakeWorld, ledger: Ledger) -> None:
    ctx = make_ctx(ledger, "  - {name: api, kind: fake}\n")
    record(ctx, world, "v1", api="1")
    record(ctx, world, "v2", api="2")
    with ledger.session() as session:
        store.mark_bad(session, store.get_release(session, "shop", "prod", "v1"), "also bad", ctx.clock.now())
    with pytest.raises(Refused, match="no release older than the live one"):
        build_plan(ctx)


# --- ordering --------------------------------------------------------------------------------------------------


def test_dependents_are_rolled_back_before_their_dependencies(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    _, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED, result.summary()
    order = world.apply_order()
    assert order.index("worker") < order.index("config")
    worker = next(c for c in world.calls if c.key == "worker")
    config = next(c for c in world.calls if c.key == "config")
    assert worker.finished <= config.started
    assert world.snapshot() == {"api": "1", "worker": "1", "config": "1"}


def test_order_holds_through_an_unplanned_middle_component(world: FakeWorld, ledger: Ledger) -> None:
    components = """\
  - {name: worker, kind: fake, depends_on: [queue]}
  - {name: queue, kind: fake, depends_on: [config]}
  - {name: config, kind: fake}
"""
    ctx = make_ctx(ledger, components)
    record(ctx, world, "v1", worker="1", queue="q", config="1")
    record(ctx, world, "v2", worker="2", config="2")  # the queue did not change: it is not planned
    plan = build_plan(ctx)
    assert {s.component: s.waits_for for s in plan.steps} == {"worker": [], "config": ["worker"]}
    assert plan.unchanged == ["queue"]
    _, result = rollback(ctx, plan)
    assert result.status == RollbackStatus.SUCCEEDED
    assert world.apply_order() == ["worker", "config"]
    assert world.calls[0].finished <= world.calls[1].started


# --- concurrency -----------------------------------------------------------------------------------------------


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_independent_steps_run_in_parallel_up_to_the_limit(world: FakeWorld, ledger: Ledger, concurrency: int) -> None:
    names = [f"c{i}" for i in range(6)]
    ctx = make_ctx(ledger, "".join(f"  - {{name: {n}, kind: fake}}\n" for n in names), concurrency=concurrency)
    record(ctx, world, "v1", **dict.fromkeys(names, "1"))
    record(ctx, world, "v2", **dict.fromkeys(names, "2"))
    world.apply_delay = 0.05
    _, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED
    assert sorted(world.apply_order()) == names
    assert world.peak_concurrency == concurrency


def test_concurrency_limit_holds_when_steps_become_ready_in_bursts(world: FakeWorld, ledger: Ledger) -> None:
    # Four dependents of one shared dependency, plus four independent components, two at a time.
    components = "  - {name: base, kind: fake}\n" + "".join(
        f"  - {{name: d{i}, kind: fake, depends_on: [base]}}\n  - {{name: i{i}, kind: fake}}\n" for i in range(4)
    )
    ctx = make_ctx(ledger, components, concurrency=2)
    names = ["base", *(f"d{i}" for i in range(4)), *(f"i{i}" for i in range(4))]
    record(ctx, world, "v1", **dict.fromkeys(names, "1"))
    record(ctx, world, "v2", **dict.fromkeys(names, "2"))
    world.apply_delay = 0.02
    _, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED
    assert world.peak_concurrency == 2
    base = next(c for c in world.calls if c.key == "base")
    assert all(c.finished <= base.started for c in world.calls if c.key.startswith("d"))


# --- retries and verification ------------------------------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff(world: FakeWorld, ledger: Ledger) -> None:
    clock = RecordingClock()
    ctx = shop_ctx(ledger, world, clock=clock)
    world.fail_next("api", 2)
    rollback_id, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED, result.summary()
    steps = steps_of(ctx, rollback_id)
    assert steps["api"].attempts == 3 and steps["api"].status == StepStatus.SUCCEEDED
    assert steps["worker"].attempts == 1 and steps["config"].attempts == 1
    assert world.apply_count("api", "failed") == 2 and world.apply_count("api", "changed") == 1
    # Two backoff sleeps, each within its exponential cap; no verify polls were needed.
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 0.5 and 0 <= clock.sleeps[1] <= 1.0
    assert world.get("api") == "1"


def test_transient_errors_give_up_after_the_last_attempt(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    world.fail_next("api", 10)
    rollback_id, result = rollback(ctx, build_plan(ctx), retry=RetryPolicy(attempts=3, verify_interval=0.5))
    assert result.status == RollbackStatus.FAILED
    assert "injected transient failure" in result.failed["api"]
    assert steps_of(ctx, rollback_id)["api"].attempts == 3
    assert world.apply_count("api") == 3


def test_verify_that_lags_a_few_polls_still_succeeds(world: FakeWorld, ledger: Ledger) -> None:
    clock = RecordingClock()
    ctx = shop_ctx(ledger, world, clock=clock)
    world.lag_verify("api", 3)
    rollback_id, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED
    assert clock.sleeps == [FAST.verify_interval] * 3
    step = steps_of(ctx, rollback_id)["api"]
    assert step.attempts == 1 and step.detail is not None and step.detail.endswith("verified")
    assert world.apply_count("api") == 1


def test_verify_that_never_catches_up_fails_the_step(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    world.lag_verify("api", 1000)
    _, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.FAILED
    assert "did not reach its target" in result.failed["api"]
    assert result.done == ["config", "worker"]


# --- failure and resume ------------------------------------------------------------------------------------------


def test_permanent_failure_stops_what_waits_and_names_everything(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    world.fail_next("worker", permanent=True, message="fake:Put worker: AccessDenied")
    rollback_id, result = rollback(ctx, build_plan(ctx))

    assert result.status == RollbackStatus.FAILED
    assert result.done == ["api"]
    assert result.failed == {"worker": "fake:Put worker: AccessDenied"}
    assert result.not_started == ["config"]
    summary = result.summary()
    assert "done: api" in summary
    assert "failed: worker (fake:Put worker: AccessDenied)" in summary
    assert "not started: config" in summary
    assert f"lastgood resume {rollback_id}" in summary
    assert result.to_dict()["resume"] == f"lastgood resume {rollback_id}"

    steps = steps_of(ctx, rollback_id)
    assert steps["api"].status == StepStatus.SUCCEEDED
    assert steps["worker"].status == StepStatus.FAILED and steps["worker"].attempts == 1
    assert steps["config"].status == StepStatus.PENDING and steps["config"].attempts == 0
    assert world.apply_count("config") == 0 and world.get("config") == "2"
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == RollbackStatus.FAILED and row.error == summary
    # A failed rollback moves nothing.
    assert live_and_bad(ctx) == ("v2", [])


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_resume_skips_done_steps_and_finishes(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    world.fail_next("worker", permanent=True)
    rollback_id, first = rollback(ctx, build_plan(ctx))
    assert first.status == RollbackStatus.FAILED
    applies_before = {k: world.apply_count(k) for k in ("api", "worker", "config")}
    assert applies_before == {"api": 1, "worker": 1, "config": 0}

    result = Executor(ctx, retry=FAST).run(rollback_id)
    assert result.status == RollbackStatus.SUCCEEDED, result.summary()
    assert result.done == ["api", "config", "worker"]
    assert world.apply_count("api") == 1  # not re-applied
    assert world.apply_count("worker") == 2 and world.apply_count("config") == 1
    assert world.snapshot() == {"api": "1", "worker": "1", "config": "1"}
    steps = steps_of(ctx, rollback_id)
    assert {c: s.status for c, s in steps.items()} == dict.fromkeys(("api", "worker", "config"), "succeeded")
    assert steps["worker"].attempts == 2  # attempts accumulate across runs
    assert live_and_bad(ctx) == ("v1", ["v2"])
    assert "v1" in result.summary()

    with ledger.session() as session:
        types = [e.type for e in store.events_of(session, rollback_id)]
    assert types[0] == "rollback-requested" and types[-1] == "rollback-succeeded"
    assert "rollback-failed" in types and "rollback-resumed" in types


def test_resume_of_a_succeeded_rollback_is_refused(world: FakeWorld, ledger: Ledger) -> None:
    from lastgood.errors import LastgoodError

    ctx = shop_ctx(ledger, world)
    rollback_id, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED
    with pytest.raises(LastgoodError, match="already succeeded"):
        Executor(ctx, retry=FAST).run(rollback_id)


def test_step_left_running_by_a_crash_is_rerun_as_a_no_op(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    executor = Executor(ctx, retry=FAST)
    rollback_id = executor.create(build_plan(ctx))
    # The process died after api's apply reached AWS but before the step was written as done.
    world.set("api", "1")
    with ledger.session() as session:
        session.get(RollbackRow, rollback_id).status = RollbackStatus.RUNNING  # type: ignore[union-attr]
        store.get_step(session, rollback_id, "api").status = StepStatus.RUNNING

    result = Executor(ctx, retry=FAST).run(rollback_id)
    assert result.status == RollbackStatus.SUCCEEDED, result.summary()
    steps = steps_of(ctx, rollback_id)
    assert steps["api"].status == StepStatus.UNCHANGED
    assert steps["worker"].status == StepStatus.SUCCEEDED and steps["config"].status == StepStatus.SUCCEEDED
    assert world.apply_count("api") == 1 and world.apply_count("api", "unchanged") == 1
    assert live_and_bad(ctx) == ("v1", ["v2"])


def test_partial_rollback_does_not_move_the_live_pointer(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    plan = build_plan(ctx, only=["api"])
    assert plan.partial and [s.component for s in plan.steps] == ["api"]
    _, result = rollback(ctx, plan)
    assert result.status == RollbackStatus.SUCCEEDED and result.done == ["api"]
    assert world.snapshot() == {"api": "1", "worker": "2", "config": "2"}
    assert live_and_bad(ctx) == ("v2", [])


def test_full_rollback_marks_the_left_release_bad_and_moves_live(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    rollback_id, result = rollback(ctx, build_plan(ctx))
    assert result.status == RollbackStatus.SUCCEEDED
    assert result.summary() == f"rollback {rollback_id}: prod is back on v1 (3 steps verified)"
    assert live_and_bad(ctx) == ("v1", ["v2"])
    with ledger.session() as session:
        v2 = store.get_release(session, "shop", "prod", "v2")
        assert v2.bad_reason == f"rolled back by {rollback_id}"


def test_components_are_substituted_once_per_runbook_and_a_new_runbook_is_read_anew(
    world: FakeWorld, ledger: Ledger
) -> None:
    ctx = make_ctx(ledger, "  - name: api\n    kind: fake\n    key: api-{env}\n")
    first, again = ctx.components(), ctx.components()
    assert [(s.name, s.key) for s in first if isinstance(s, FakeSpec)] == [("api", "api-prod")]
    assert again is not first and again[0] is first[0]  # a fresh list of the same specs: no second substitution
    ctx.runbook = parse_runbook(runbook_text("  - name: web\n    kind: fake\n  - name: db\n    kind: fake\n"))
    assert [s.name for s in ctx.components()] == ["web", "db"]
    assert [s.name for s in ctx.components(["db"])] == ["db"]


def test_a_created_rollback_has_every_step_pending_in_plan_order(world: FakeWorld, ledger: Ledger) -> None:
    ctx = shop_ctx(ledger, world)
    plan = build_plan(ctx)
    assert len(plan.steps) == 3
    rollback_id = Executor(ctx, retry=FAST).create(plan, reason="test")
    with ctx.ledger.session() as session:
        steps = sorted(session.scalars(select(StepRow).filter_by(rollback_id=rollback_id)), key=lambda s: s.position)
        assert [(s.component, s.status, s.attempts) for s in steps] == [
            (p.component, StepStatus.PENDING, 0) for p in plan.steps
        ]
        assert [s.target for s in steps] == [p.target for p in plan.steps]
        assert [s.waits_for for s in steps] == [p.waits_for for p in plan.steps]
