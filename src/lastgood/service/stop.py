"""The emergency stop and its release, each holding the environment while it acts.

Only these entry points (the CLI's and the API's) claim the environment: a rollback that stops traffic as part
of its own flow already holds it and calls `engine.stop` directly (see `demo/data_corruption.py`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lastgood.engine import stop as emergency
from lastgood.errors import BadInput, Refused
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import hold


class StopOutcome(BaseModel):
    id: str
    env: str
    status: str
    done: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)


def stoppable(ctx: EnvContext) -> list[str]:
    """The components a stop would cut (API Gateway stages, kill-switch flags)."""
    return [s.name for s in emergency.stoppable(ctx)]


def check_stop(ctx: EnvContext) -> list[str]:
    """Before anyone is asked to confirm: what a stop would cut; BadInput when nothing can be stopped, Refused
    when the environment is stopped already (the same errors `stop` raises, nothing changed)."""
    names = stoppable(ctx)
    if not names:
        raise BadInput(f"nothing in {ctx.env} can be stopped: no apigateway-stage, no feature-flag with kill_switch")
    existing = emergency.active_stop(ctx)
    if existing is not None:
        raise Refused(f"{ctx.env} is already stopped ({existing.id}); undo it with: lastgood stop {ctx.env} --release")
    return names


def stop(ctx: EnvContext, wait: float | None = None) -> StopOutcome:
    """Cut traffic everywhere the file allows, saving each component's state. Refused (EnvironmentHeld, exit 3,
    the holder named) while a rollback, deployment or drill holds the environment, unless it lets go in `wait`."""
    stop_id = emergency.new_stop_id()
    with hold(ctx, "stop", stop_id, wait):
        result = emergency.stop(ctx, stop_id)
    return StopOutcome.model_validate(result.to_dict())


def release(ctx: EnvContext, wait: float | None = None) -> StopOutcome:
    """Undo the active stop exactly, from the states it saved."""
    active = emergency.active_stop(ctx)
    if active is None:
        raise Refused(f"{ctx.env} has no active emergency stop to release")
    with hold(ctx, "stop", active.id, wait):
        result = emergency.release(ctx)
    return StopOutcome.model_validate(result.to_dict())
