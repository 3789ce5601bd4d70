"""The emergency stop from the runbooks: cut traffic everywhere the file allows (API Gateway stages throttled
to 0, kill-switch flags off), saving what each component was, so that releasing the stop undoes it exactly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from lastgood.config.models import Component
from lastgood.domain.states import STOP_TRANSITIONS, StopStatus, transition
from lastgood.errors import AwsError, BadInput, LastgoodError, Refused
from lastgood.ledger import store
from lastgood.ledger.tables import EmergencyStopRow
from lastgood.runtime.context import EnvContext


@dataclass
class StopResult:
    id: str
    env: str
    status: str
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "env": self.env, "status": self.status, "done": self.done, "failed": self.failed}


def stoppable(ctx: EnvContext) -> list[Component]:
    return [s for s in ctx.components() if ctx.kind_of(s).takes_part_in_stop(s)]


def active_stop(ctx: EnvContext) -> EmergencyStopRow | None:
    with ctx.session() as session:
        query = select(EmergencyStopRow).filter_by(app=ctx.app, env=ctx.env, status=StopStatus.ACTIVE)
        return session.scalar(query.order_by(EmergencyStopRow.created_at.desc()))


def new_stop_id() -> str:
    return "stop-" + uuid.uuid4().hex[:10]


def stop(ctx: EnvContext, stop_id: str | None = None) -> StopResult:
    """Cut traffic; `stop_id` lets a caller that holds the environment under that id name the stop the same."""
    specs = stoppable(ctx)
    if not specs:
        raise BadInput(f"nothing in {ctx.env} can be stopped: no apigateway-stage, no feature-flag with kill_switch")
    existing = active_stop(ctx)
    if existing is not None:
        raise Refused(f"{ctx.env} is already stopped ({existing.id}); undo it with: lastgood stop {ctx.env} --release")
    stop_id = stop_id or new_stop_id()
    with ctx.session() as session:
        session.add(
            EmergencyStopRow(
                id=stop_id,
                app=ctx.app,
                env=ctx.env,
                status=StopStatus.ACTIVE,
                created_at=ctx.clock.now(),
                created_by=ctx.actor.name,
                saved={},
            )
        )
        store.add_event(session, ctx.app, ctx.env, "stop-started", f"emergency stop {stop_id}", ctx.clock.now())
    result = StopResult(stop_id, ctx.env, "active")
    # Components are stopped one by one and each saved state is written at once, so a crash loses nothing.
    for spec in specs:
        try:
            saved = ctx.kind_of(spec).stop(spec, ctx.kind_context)
        except (AwsError, LastgoodError) as error:
            result.failed[spec.name] = str(error)
            continue
        _save(ctx, stop_id, spec.name, saved)
        result.done.append(spec.name)
    _event(ctx, "stop-applied", f"{stop_id}: stopped {', '.join(result.done) or 'nothing'}", result)
    return result


def release(ctx: EnvContext) -> StopResult:
    row = active_stop(ctx)
    if row is None:
        raise Refused(f"{ctx.env} has no active emergency stop to release")
    specs = {s.name: s for s in ctx.components()}
    result = StopResult(row.id, ctx.env, "released")
    for name, saved in row.saved.items():
        spec = specs.get(name)
        if spec is None:
            result.failed[name] = "no longer in the runbook file; restore it by hand"
            continue
        try:
            ctx.kind_of(spec).release_stop(spec, ctx.kind_context, saved)
            result.done.append(name)
        except (AwsError, LastgoodError) as error:
            result.failed[name] = str(error)
    if result.failed:
        result.status = "active"
    else:
        with ctx.session() as session:
            stored = session.get(EmergencyStopRow, row.id)
            assert stored is not None
            transition(stored, StopStatus.RELEASED, STOP_TRANSITIONS)
            stored.released_at, stored.released_by = ctx.clock.now(), ctx.actor.name
    _event(
        ctx,
        "stop-released" if not result.failed else "stop-release-failed",
        f"{row.id}: released {result.done}",
        result,
    )
    return result


def _save(ctx: EnvContext, stop_id: str, component: str, saved: dict[str, Any]) -> None:
    with ctx.session() as session:
        row = session.get(EmergencyStopRow, stop_id)
        assert row is not None
        row.saved = {**row.saved, component: saved}  # reassigned: JSON columns do not track in-place changes


def _event(ctx: EnvContext, type_: str, message: str, result: StopResult) -> None:
    with ctx.session() as session:
        store.add_event(session, ctx.app, ctx.env, type_, message, ctx.clock.now(), data=result.to_dict())
