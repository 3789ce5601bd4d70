"""Manual triggers on a rollback request: the name a person gives (`--trigger user-reports`) is checked against
the file's `manual_triggers:`, its severity feeds the decision matrix as a fired trigger's does, and it is
recorded on the rollback as its trigger (the report, `show` and JSON read it there) and in its timeline."""

from __future__ import annotations

from typing import Any

from lastgood.config.manual import resolve
from lastgood.config.models import Runbook
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext

__all__ = ["manual_trigger", "record_manual_trigger"]


def manual_trigger(runbook: Runbook, name: str, severity: str | None, actor: str) -> dict[str, Any]:
    """The trigger record of a named manual trigger (its `severity` the one given, else its own); BadInput
    (exit 2, naming the allowed names or severities) before anything is created."""
    try:
        firing = resolve(runbook.manual_triggers, name, severity, runbook.policy.default_severity)
    except ValueError as error:
        raise BadInput(f"{error}. Nothing was created.") from None
    return firing.to_dict(actor)


def record_manual_trigger(ctx: EnvContext, rollback_id: str, trigger: dict[str, Any]) -> None:
    """The timeline's entry: who raised which manual trigger, at what severity."""
    message = f"manual trigger {trigger['trigger']} ({trigger['severity']}), raised by {trigger['by']}"
    with ctx.session() as session:
        store.add_event(session, ctx.app, ctx.env, "manual-trigger", message, ctx.clock.now(), rollback_id, trigger)
