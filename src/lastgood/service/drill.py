"""Drills (000: "drills every month"): make a deliberately bad change, let the guard catch it, roll back,
verify, and record actual against target times, kept apart from real incidents."""

from __future__ import annotations

import shlex
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lastgood.domain.states import DRILL_TRANSITIONS, DrillStatus, transition
from lastgood.engine.executor import Executor
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.errors import BadInput, LastgoodError, Refused, StepFailed, UnknownDrill
from lastgood.guard.loop import GuardOutcome
from lastgood.kpis import check
from lastgood.ledger import store
from lastgood.ledger.tables import DrillRow, ReleaseRow, RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import hold
from lastgood.service.guard import guard_for
from lastgood.sources.base import MetricSource


@dataclass
class DrillResult:
    id: str
    env: str
    status: str  # passed | failed
    detect_seconds: float | None
    restore_seconds: float | None
    targets: dict[str, Any]
    notes: str
    rollback_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DrillClaimed(Refused):
    """A scheduled drill whose id another process claimed first."""


def check_allowed(ctx: EnvContext) -> None:
    if ctx.runbook.environment(ctx.env).protected and not ctx.runbook.policy.drills.allow_protected:
        raise Refused(f"{ctx.env} is protected: drills run there only with policy.drills.allow_protected: true")
    if not ctx.runbook.triggers_for(ctx.env):
        raise BadInput(f"a drill needs the guard: the file has no triggers for {ctx.env}")


class DrillView(BaseModel):
    """A drill as the ledger has it, running or finished."""

    id: str
    env: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    detect_seconds: float | None
    restore_seconds: float | None
    targets: dict[str, Any]
    notes: str
    rollback_id: str | None


def run_drill(
    ctx: EnvContext,
    source: MetricSource,
    on_start: Callable[[str], None] | None = None,
    drill_id: str | None = None,
) -> DrillResult:
    """Hold the environment, record its good release, make the bad change, let the guard catch it; whatever
    fails, the environment ends on the good release. `on_start(drill_id)` once it holds the environment.
    `drill_id`: a scheduled drill's claim (service/drill_schedule.py); a second run of it is `DrillClaimed`."""
    check_allowed(ctx)
    drill_id = drill_id or "drill-" + uuid.uuid4().hex[:8]
    with hold(ctx, "drill", drill_id) as lease:
        ctx = replace(ctx, holding=lease)
        started = ctx.clock.now()
        try:
            with ctx.session() as session:
                row = DrillRow(id=drill_id, app=ctx.app, env=ctx.env, started_at=started, status=DrillStatus.RUNNING)
                row.targets = _targets(ctx)
                session.add(row)
                session.flush()
                store.add_event(session, ctx.app, ctx.env, "drill-started", f"{drill_id} started", started)
        except IntegrityError:
            raise DrillClaimed(f"drill {drill_id} ran already (claimed by another process)") from None
        if on_start is not None:
            on_start(drill_id)
        good = record_release(ctx, f"{drill_id}-good").label
        try:
            bad_change = _make_bad_change(ctx, drill_id)
            changed_at = ctx.clock.now()
            outcome = guard_for(ctx, source).run(ctx.runbook.policy.drills.guard_for)
        except LastgoodError as error:
            restored = _restore(ctx, drill_id, good)
            return _failed(ctx, drill_id, f"the drill failed: {error}; {restored}")
        result = _finish(ctx, drill_id, bad_change, changed_at, outcome)
        restored = _restore(ctx, drill_id, good)
        if restored:
            result.notes += f"; {restored}"
            _add_note(ctx, drill_id, result.notes)
        return result


def _add_note(ctx: EnvContext, drill_id: str, notes: str) -> None:
    """The restore runs after the drill is judged: its row says so too, for whoever reads it later."""
    with ctx.session() as session:
        row = session.get(DrillRow, drill_id)
        if row is not None:
            row.notes = notes


def _restore(ctx: EnvContext, drill_id: str, good: str) -> str:
    """Back to the drill's good release if the environment is not on it (the guard did not roll back, or
    a step failed); the note says what was done."""
    plan = build_plan(ctx, to=good)
    if not plan.steps:
        return ""
    executor = Executor(ctx)
    result = executor.run(executor.create(plan, reason=f"{drill_id}: back to the good release {good}"))
    _mark_drill(ctx, result.id)
    if result.status != "succeeded":
        return f"RESTORING {good} FAILED ({result.summary()}); finish it with lastgood resume {result.id}"
    return f"restored {good} ({result.id})"


def _failed(ctx: EnvContext, drill_id: str, notes: str) -> DrillResult:
    now = ctx.clock.now()
    with ctx.session() as session:
        row = session.get(DrillRow, drill_id)
        assert row is not None
        transition(row, DrillStatus.FAILED, DRILL_TRANSITIONS)
        row.finished_at, row.notes = now, notes
        store.add_event(session, ctx.app, ctx.env, "drill-finished", f"{drill_id}: failed ({notes})", now)
        targets = dict(row.targets)
    return DrillResult(drill_id, ctx.env, "failed", None, None, targets, notes, None)


def _targets(ctx: EnvContext) -> dict[str, Any]:
    targets = ctx.runbook.policy.targets
    return {
        "restore_seconds": targets.mean_time_to_restore,
        "detect_seconds": targets.mean_time_to_detect,
        "rto_seconds": ctx.runbook.environment(ctx.env).rto,
    }


def _against_targets(
    ctx: EnvContext, session: Session, rollback_id: str | None, detect: float | None, restore: float | None
) -> dict[str, Any]:
    """The drill's times against the file's targets: met, missed or no data (kpis.check), the rollback time
    against its severity's maximum (policy.targets.rollback_time)."""
    targets = ctx.runbook.policy.targets
    severity = session.get(RollbackRow, rollback_id).severity if rollback_id else None  # type: ignore[union-attr]
    maximum = targets.rollback_time_for(severity)
    results = {
        "detect": check(detect, targets.mean_time_to_detect).status,
        "restore": check(restore, targets.mean_time_to_restore).status,
        "rollback_time": check(restore, maximum).status,
        "rto": check(restore, ctx.runbook.environment(ctx.env).rto).status,
    }
    return {"severity": severity, "rollback_time_seconds": maximum, "results": results}


def _make_bad_change(ctx: EnvContext, drill_id: str) -> str:
    drills = ctx.runbook.policy.drills
    if drills.command:
        done = subprocess.run(shlex.split(drills.command), capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise StepFailed(f"the drill's bad change failed (exit {done.returncode}): {done.stderr[-500:]}")
        record_release(ctx, f"{drill_id}-bad")
        return f"command: {drills.command}"
    bad = _bad_release(ctx, drills.redeploy)
    plan = build_plan(ctx, to=bad.label)
    executor = Executor(ctx)
    result = executor.run(executor.create(plan, reason=f"{drill_id}: re-deploy bad release {bad.label}"))
    _mark_drill(ctx, result.id)
    if result.status != "succeeded":
        raise StepFailed(f"re-deploying {bad.label} for the drill failed: {result.summary()}")
    record_release(ctx, f"{drill_id}-bad")
    return f"re-deployed release {bad.label}"


def _bad_release(ctx: EnvContext, label: str | None) -> ReleaseRow:
    with ctx.session() as session:
        if label:
            release = store.get_release(session, ctx.app, ctx.env, label)
        else:
            bad = store.list_releases(session, ctx.app, ctx.env, limit=1, bad=True)
            if not bad:
                raise BadInput("no release is marked bad to re-deploy: set policy.drills.redeploy or drills.command")
            release = bad[0]
        release.components  # noqa: B018 - load before the session closes
        return release


def _mark_drill(ctx: EnvContext, rollback_id: str) -> None:
    with ctx.session() as session:
        row = session.get(RollbackRow, rollback_id)
        if row is not None:
            row.drill = True


def _finish(ctx: EnvContext, drill_id: str, bad_change: str, changed_at: Any, outcome: GuardOutcome) -> DrillResult:
    rollback = outcome.rollback
    if rollback is not None:
        _mark_drill(ctx, rollback.id)
    detect = (outcome.detected_at - changed_at).total_seconds() if outcome.detected_at else None
    restore = rollback.seconds if rollback is not None and rollback.status == "succeeded" else None
    passed = outcome.status == "rolled-back"
    notes = f"{bad_change}; guard: {outcome.status}: {outcome.message}"
    now = ctx.clock.now()
    with ctx.session() as session:
        row = session.get(DrillRow, drill_id)
        assert row is not None
        transition(row, DrillStatus.PASSED if passed else DrillStatus.FAILED, DRILL_TRANSITIONS)
        row.finished_at, row.notes = now, notes
        row.detect_seconds, row.restore_seconds = detect, restore
        row.rollback_id = rollback.id if rollback else None
        row.targets = {**row.targets, **_against_targets(ctx, session, row.rollback_id, detect, restore)}
        store.add_event(
            session,
            ctx.app,
            ctx.env,
            "drill-finished",
            f"{drill_id}: {row.status} ({notes})",
            now,
            row.rollback_id,
            {"detect_seconds": detect, "restore_seconds": restore},
        )
        targets = dict(row.targets)
    return DrillResult(
        drill_id,
        ctx.env,
        "passed" if passed else "failed",
        detect,
        restore,
        targets,
        notes,
        rollback.id if rollback else None,
    )


def drills(ctx: EnvContext, limit: int = 20, offset: int = 0) -> list[DrillView]:
    """The environment's drills, newest first."""
    with ctx.session() as session:
        query = select(DrillRow).filter_by(app=ctx.app, env=ctx.env).order_by(DrillRow.started_at.desc())
        return [_view(r) for r in session.scalars(query.limit(limit).offset(offset))]


def drill(ctx: EnvContext, drill_id: str) -> DrillView:
    with ctx.session() as session:
        row = session.get(DrillRow, drill_id)
        if row is None or (row.app, row.env) != (ctx.app, ctx.env):
            raise UnknownDrill(f"no drill {drill_id!r} in {ctx.app}/{ctx.env}")
        return _view(row)


def _view(row: DrillRow) -> DrillView:
    return DrillView(
        id=row.id,
        env=row.env,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        detect_seconds=row.detect_seconds,
        restore_seconds=row.restore_seconds,
        targets=dict(row.targets),
        notes=row.notes,
        rollback_id=row.rollback_id,
    )
