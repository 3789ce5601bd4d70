"""The executor's ledger writes happen off the path that starts steps: the journal writes them in batches, with
one read of the audit chain's head per transaction, and the rollback ends only once they are all written."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import parse_runbook
from lastgood.domain.states import RollbackStatus, StepStatus
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import audit, store
from lastgood.ledger.db import Ledger, open_ledger
from lastgood.runtime.context import EnvContext

COMPONENTS = [f"c{i}" for i in range(6)]
RUNBOOK = "app: shop\nenvironments:\n  prod: {}\ncomponents:\n" + "".join(
    f"  - {{name: {name}, kind: fake{', depends_on: [c0]' if name == 'c5' else ''}}}\n" for name in COMPONENTS
)


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld()) as fake:
        yield fake


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


@pytest.fixture
def ctx(ledger: Ledger, world: FakeWorld) -> EnvContext:
    context = EnvContext(parse_runbook(RUNBOOK), "prod", ledger, AwsClients(), clock=FakeClock(), concurrency=16)
    world.update(dict.fromkeys(COMPONENTS, "1"))
    record_release(context, "v1")
    world.update(dict.fromkeys(COMPONENTS, "2"))
    record_release(context, "v2")
    return context


WAITING = "c0"  # waits for c5 (c5 depends on it: a rollback undoes the dependent first)


class LockOnFirstStart:
    """A listener that, when the first step starts, has another thread take the ledger's write lock (as a
    slow writer would) and hold it until every step that waits for nothing has finished."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.taken = threading.Event()
        self.release = threading.Event()
        self.finished: list[str] = []
        self.all_ran_while_locked = False
        self.dependency_written_at_start = False

    def _hold(self) -> None:
        with self.ledger.session():
            self.taken.set()
            self.all_ran_while_locked = self.release.wait(20)  # False: the executor waited on the ledger

    def step_started(self, component: str) -> None:
        if not self.taken.is_set():
            threading.Thread(target=self._hold, daemon=True).start()
            assert self.taken.wait(10)
        if component == WAITING:
            self.dependency_written_at_start = self._committed_status("c5") == StepStatus.SUCCEEDED

    def _committed_status(self, component: str) -> str | None:
        """What another process would read now, past any lock (SQLite in WAL mode reads without waiting)."""
        database = self.ledger.engine.url.database
        assert database is not None
        with closing(sqlite3.connect(database, timeout=10)) as connection:
            row = connection.execute("SELECT status FROM steps WHERE component = ?", (component,)).fetchone()
        return None if row is None else str(row[0])

    def step_progress(self, component: str, message: str) -> None:
        pass

    def step_finished(self, component: str, status: str, detail: str) -> None:
        self.finished.append(component)
        if len(self.finished) == len(COMPONENTS) - 1:
            self.release.set()  # every independent step ran and finished while the ledger could not be written


def test_steps_start_and_finish_while_the_ledger_is_locked(ctx: EnvContext, world: FakeWorld) -> None:
    listener = LockOnFirstStart(ctx.ledger)
    executor = Executor(ctx, listener, retry=RetryPolicy(verify_interval=0.0))
    rollback_id = executor.create(build_plan(ctx))
    result = executor.run(rollback_id)
    assert result.status == RollbackStatus.SUCCEEDED, result.summary()
    assert listener.all_ran_while_locked
    # c0 waits for c5: it starts only once c5's success is committed (on main it started from memory).
    assert listener.dependency_written_at_start
    assert sorted(listener.finished) == COMPONENTS and listener.finished[-1] == WAITING
    assert all(world.get(name) == "1" for name in COMPONENTS)
    with ctx.session() as session:
        steps = {s.component: s for s in store.get_rollback(session, rollback_id).steps}
        assert {s.status for s in steps.values()} == {StepStatus.SUCCEEDED}
        assert all(s.attempts == 1 and s.started_at and s.finished_at for s in steps.values())
        c0, c5 = steps[WAITING].started_at, steps["c5"].finished_at
        assert c0 is not None and c5 is not None and c0 >= c5
        events = [e.type for e in store.events_of(session, rollback_id)]
        assert events.count("step-succeeded") == len(COMPONENTS) and events[-1] == "rollback-succeeded"
        assert audit.verify(session).ok


def test_a_batch_of_events_reads_the_chain_head_once(ledger: Ledger) -> None:
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "audit_head" in statement:
            reads.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", count)
    clock = FakeClock()
    with ledger.session() as session:
        rows = [store.new_event(session, "shop", "prod", "note", f"n{i}", clock.now()) for i in range(5)]
        store.add_events(session, rows)
    assert len(reads) == 1
    with ledger.session() as session:
        store.add_event(session, "shop", "prod", "note", "one more", clock.now())
        report = audit.verify(session)
    assert report.ok and report.entries == 6
    assert [r.id for r in rows] == sorted(r.id for r in rows)  # inserted in chain order
